"""Fair admission inside a tier and tier priority (pure)."""

from __future__ import annotations

from collections import Counter

from mlops.admission import Candidate, TenantState, TierState, jain_index, plan_window, tier_order


def _window(*tenants: str) -> list[Candidate]:
    return [Candidate(ref=i, tenant=t, requested_at=f"2026-01-01T00:00:{i:02d}") for i, t in enumerate(tenants)]


def test_tiers_are_visited_by_priority_then_name() -> None:
    assert tier_order({"bronze": 1, "gold": 10, "silver": 5, "platinum": 10}) == ["gold", "platinum", "silver", "bronze"]


def test_a_busy_tenant_at_the_head_of_the_queue_gets_one_slot_while_others_wait() -> None:
    state = TierState("gold", limit=4, tenants={"busy": TenantState(waiting=9), "quiet": TenantState(waiting=1),
                                                "deeper": TenantState(waiting=2)})
    plan = plan_window(state, _window(*["busy"] * 9, "quiet"), free=4, mean_build_seconds=60)
    assert [c.tenant for c, _ in plan.admit] == ["busy", "quiet"]
    assert len(plan.defer) == 8 and all(seconds >= 1 for _, seconds in plan.defer)
    assert state.inflight == 2


def test_a_lone_tenant_uses_every_free_slot() -> None:
    state = TierState("gold", limit=4, tenants={"busy": TenantState(waiting=9)})
    plan = plan_window(state, _window(*["busy"] * 6), free=4, mean_build_seconds=60)
    assert len(plan.admit) == 4 and len(plan.release) == 2 and not plan.defer


def test_a_tenant_ahead_in_service_waits_for_the_others() -> None:
    state = TierState("silver", limit=2, tenants={"a": TenantState(served=6, waiting=3), "b": TenantState(served=3, waiting=3)})
    plan = plan_window(state, _window("a", "a", "b", "b"), free=2, mean_build_seconds=60)
    assert [c.tenant for c, _ in plan.admit] == ["b", "b"]
    assert sorted(c.tenant for c, _ in plan.defer) == ["a", "a"]


def test_a_newcomer_is_lifted_to_the_clock_and_not_given_a_backlog_of_credit() -> None:
    state = TierState("gold", limit=4, clock=100, tenants={"old": TenantState(served=100, waiting=5)})
    plan = plan_window(state, _window("new", "new", "old"), free=4, mean_build_seconds=60)
    assert [(c.tenant, increment) for c, increment in plan.admit] == [("new", 101), ("old", 1), ("new", 1)]


def test_a_tenant_override_caps_its_running_builds() -> None:
    state = TierState("gold", limit=4, tenants={"capped": TenantState(running=1, waiting=3)})
    plan = plan_window(state, _window("capped", "capped"), free=3, mean_build_seconds=60, tenant_limits={"capped": 1})
    assert not plan.admit and len(plan.defer) == 2


def test_work_conserving_admits_when_no_request_has_lag_zero() -> None:
    state = TierState("gold", limit=2, tenants={"a": TenantState(served=9, waiting=2), "ghost": TenantState(waiting=1)})
    assert not plan_window(state, _window("a"), free=2, mean_build_seconds=60).admit
    state = TierState("gold", limit=2, tenants={"a": TenantState(served=9, waiting=2), "ghost": TenantState(waiting=1)})
    assert len(plan_window(state, _window("a"), free=2, mean_build_seconds=60, work_conserving=True).admit) == 1


def test_five_free_slots_go_to_five_tenants_even_behind_a_burst() -> None:
    state = TierState("gold", limit=5, tenants={t: TenantState(waiting=20) for t in "abcde"})
    plan = plan_window(state, _window(*"aaaaaa", "b", "c", "d", "e"), free=5, mean_build_seconds=1)
    admitted = Counter(c.tenant for c, _ in plan.admit)
    assert admitted == dict.fromkeys("abcde", 1)
    assert jain_index(admitted.values()) == 1.0


def test_jain_index_bounds() -> None:
    assert jain_index([3, 3, 3]) == 1.0
    assert abs(jain_index([9, 0, 0]) - 1 / 3) < 1e-9
    assert jain_index([]) == 1.0
