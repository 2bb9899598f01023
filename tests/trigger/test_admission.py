"""Fair admission inside a tier (start-time fair queuing) and tier priority (pure)."""

from __future__ import annotations

from collections import Counter

from mlops.admission import Candidate, assign_tags, jain_index, pick, tier_order


def _arrivals(*tenants: str) -> list[Candidate]:
    return [Candidate(ref=i, tenant=t, requested_at=f"2026-01-01T00:00:{i:02d}") for i, t in enumerate(tenants)]


def _serve(head: list[Candidate], slots: int) -> list[str]:
    """Admit `slots` at a time from the backlog until it is empty; the tenants in admission order."""
    order = []
    head = list(head)
    while head:
        chosen = pick(head, slots)
        order += [c.tenant for c in chosen]
        head = [c for c in head if c not in chosen]
    return order


def test_tiers_are_visited_by_priority_then_name() -> None:
    assert tier_order({"bronze": 1, "gold": 10, "silver": 5, "platinum": 10}) == ["gold", "platinum", "silver", "bronze"]


def test_a_burst_queued_first_is_served_round_robin_with_the_others() -> None:
    tagged, _ = assign_tags(0, {}, _arrivals(*["busy"] * 9, "quiet", "deeper", "deeper"))
    order = _serve(tagged, 2)
    assert order[:5] == ["busy", "quiet", "deeper", "busy", "deeper"]
    assert order[5:] == ["busy"] * 7


def test_tags_continue_per_tenant_and_next_tags_are_returned() -> None:
    tagged, new = assign_tags(4, {"a": 9}, _arrivals("a", "b", "a"))
    assert [(c.tenant, c.tag) for c in tagged] == [("a", 9), ("b", 5), ("a", 10)]
    assert new == {"a": 11, "b": 6}


def test_a_newcomer_starts_at_the_clock_and_gets_no_credit_for_its_quiet_past() -> None:
    tagged, _ = assign_tags(100, {"old": 101, "new": 3}, _arrivals("new", "new", "old"))
    assert sorted((c.tag, c.tenant) for c in tagged) == [(101, "new"), (101, "old"), (102, "new")]


def test_a_tenant_at_its_cap_is_skipped_and_the_next_tenant_gets_the_slot() -> None:
    tagged, _ = assign_tags(0, {}, _arrivals("capped", "capped", "other"))
    assert [c.tenant for c in pick(tagged, 1, skip={"capped"})] == ["other"]
    assert [c.tenant for c in pick(tagged, 2)] == ["capped", "other"]


def test_five_free_slots_go_to_five_tenants_even_behind_a_burst() -> None:
    tagged, _ = assign_tags(0, {}, _arrivals(*"aaaaaa", "b", "c", "d", "e"))
    admitted = Counter(c.tenant for c in pick(tagged, 5))
    assert admitted == dict.fromkeys("abcde", 1)
    assert jain_index(admitted.values()) == 1.0


def test_jain_index_bounds() -> None:
    assert jain_index([3, 3, 3]) == 1.0
    assert abs(jain_index([9, 0, 0]) - 1 / 3) < 1e-9
    assert jain_index([]) == 1.0
