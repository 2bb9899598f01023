"""The status path's use case over the in-memory ports: status recording, the end handing its slot over, notifications."""

from __future__ import annotations

from typing import Any

import pytest
from builds_world import World, event, request
from fakes import Counting

from mlops.errors import MlopsError
from mlops.requests import PipelineStatusEvent
from mlops.statuses import EXECUTING, QUEUED, STARTING, SUCCEEDED


def test_duplicate_and_late_events_change_nothing(world: World) -> None:
    service = world.service()
    first, second = service.submit(request("acme", 1)), service.submit(request("acme", 2))
    results = [service.record_status(event(first.execution_id, s)).result for s in ("Succeeded", "Succeeded", "Executing")]
    assert results == ["applied", "stale", "stale"]
    other = world.service()  # another container, which knows nothing yet: the store refuses the late event
    assert other.record_status(event(first.execution_id, "Executing")).result == "stale"
    assert other.record_status(event(first.execution_id, "Succeeded")).result == "stale"
    record = world.store.execution(first.execution_id)
    assert [h["status"] for h in record["history"]] == [QUEUED, STARTING, EXECUTING, SUCCEEDED]
    assert (record["duration_seconds"], record["model_package_arn"] if "model_package_arn" in record else None) == (1800.0, None)
    assert world.tier("gold").slots == [second.execution_id]
    assert world.notifier.sent == [f"[SUCCEEDED] {first.execution_id}"]


def test_the_end_of_a_build_hands_its_slot_to_the_backlog_s_head(world: World) -> None:
    service = world.service()
    first, second = service.submit(request("umbrella", 1)), service.submit(request("umbrella", 2))
    assert service.dispatch().filed == {"bronze": 1}
    ended = service.record_status(event(first.execution_id, "Succeeded"))
    assert (ended.result, ended.detail) == ("applied", f"slot handed to {second.execution_id}")
    assert world.status(second.execution_id) == STARTING and world.pipelines.starts[second.execution_id] == 1
    assert service.record_status(event(second.execution_id, "Executing")).result == "applied"
    state = world.tier("bronze")
    assert (state.inflight, state.waiting, state.slots) == (1, 0, [second.execution_id])
    assert service.dispatch().admitted == {}


def test_no_handover_while_a_burst_waits_to_be_filed(world: World) -> None:
    service = world.service()
    first, second = service.submit(request("umbrella", 1)), service.submit(request("umbrella", 2))
    service.dispatch()
    service.submit(request("umbrella", 3))  # on the queue, not filed: the backlog's order is not final
    assert service.record_status(event(first.execution_id, "Succeeded")).detail is None
    assert (world.status(second.execution_id), world.tier("bronze").inflight) == (QUEUED, 0)
    assert service.dispatch().admitted == {"bronze": 1}
    assert world.status(second.execution_id) == STARTING


def test_a_tenant_at_its_cap_gets_no_handover_but_its_own_slot(world_factory: Any) -> None:
    world = world_factory({"acme": "gold", "initech": "gold"}, overrides={"acme": {"overrides": {"max_concurrent_builds": 1}}})
    service = world.service()
    others = [service.submit(request("initech", n)) for n in range(2)]
    mine, waiting = service.submit(request("acme", 1)), service.submit(request("acme", 2))
    service.dispatch()
    assert service.record_status(event(others[0].execution_id, "Succeeded")).detail is None
    assert service.record_status(event(mine.execution_id, "Succeeded")).detail == f"slot handed to {waiting.execution_id}"
    state = world.tier("gold")
    assert (state.inflight, state.tenants["acme"].running, state.tenants["acme"].waiting) == (2, 1, 0)


def test_under_an_account_quota_a_waiting_higher_tier_keeps_the_slot_from_a_handover(world_factory: Any) -> None:
    from fakes import FakeBuildStore

    world = world_factory(store=FakeBuildStore(account_quota=1))
    service = world.service()
    first, bronze, gold = service.submit(request("umbrella", 1)), service.submit(request("umbrella", 2)), service.submit(request("acme", 3))
    assert service.dispatch().filed == {"gold": 1, "bronze": 1}
    assert service.record_status(event(first.execution_id, "Succeeded")).detail is None
    assert service.dispatch().admitted == {"gold": 1}
    assert (world.status(bronze.execution_id), world.status(gold.execution_id)) == (QUEUED, STARTING)


def test_a_success_records_its_training_in_one_write_and_an_older_one_never_replaces_it(world: World) -> None:
    service = world.service(notifier=None)
    older, newer = service.submit(request("acme", 1)), service.submit(request("acme", 2))
    service.context.store = counted = Counting(world.store)
    service.record_status(event(newer.execution_id, "Succeeded", at="2026-01-01T02:00:00+00:00"))
    assert counted.calls == {"backlog_head": 1, "end": 1}, "the training rides on the end: no read of the record"
    counted.calls.clear()
    service.record_status(event(older.execution_id, "Succeeded", at="2026-01-01T01:00:00+00:00"))
    assert counted.calls["end"] == 2, "refused on the newer training alone, then without it"
    state = world.store.states[("acme", "churn")]
    assert (state["trained_execution"], state["trained_version"], "active" in state) == (newer.execution_id, "1.4.0", False)
    assert world.status(older.execution_id) == SUCCEEDED


def test_an_end_without_our_description_reads_the_version_from_the_record(world: World) -> None:
    service = world.service()
    started = service.submit(request("acme", 3))
    service.record_status(event(started.execution_id, "Succeeded", version=None))
    assert world.store.states[("acme", "churn")]["trained_version"] == "1.0.3"


def test_an_end_that_conflicts_raises_and_its_redelivery_records_it(world: World) -> None:
    service = world.service()
    started = service.submit(request("acme", 1))
    world.store.conflicts = 1
    with pytest.raises(MlopsError, match="was not recorded: transaction conflict"):
        service.record_status(event(started.execution_id, "Succeeded"))
    assert service.record_status(event(started.execution_id, "Succeeded")).result == "applied"
    assert world.tier("gold").inflight == 0


def test_a_batch_reads_the_backlog_once_and_its_executing_events_ride_along(world: World) -> None:
    service = world.service(notifier=None)
    running = [service.submit(request("acme", n)) for n in range(3)]
    waiting = [service.submit(request(t, n)) for t, n in (("acme", 10), ("acme", 11), ("initech", 12))]
    service.dispatch()
    handed = service.record_status(event(running[0].execution_id, "Succeeded")).detail
    assert handed == f"slot handed to {waiting[0].execution_id}"
    ends = [event(r.execution_id, "Succeeded", at=f"2026-01-01T0{n}:00:00+00:00") for n, r in enumerate(running[1:], 2)]
    executing = event(waiting[0].execution_id, "Executing")
    service.context.store = counted = Counting(world.store)
    service.begin_batch([*ends, executing, *ends])
    try:
        details = [service.record_status(e).detail for e in [*ends, executing, *ends]]
    finally:
        service.end_batch()
    assert details == [f"slot handed to {waiting[2].execution_id}", f"slot handed to {waiting[1].execution_id}",
                       "already recorded", "already recorded", "already recorded"], "initech's first before acme's second"
    assert counted.calls == {"backlog_head": 1, "end": 2}, "one read for the batch; the Executing rode on an end"
    assert world.status(waiting[0].execution_id) == EXECUTING


def test_a_notification_owed_is_sent_by_a_redelivery(world: World) -> None:
    service = world.service()
    started = service.submit(request("acme", 1))
    world.notifier.down = True
    assert service.record_status(event(started.execution_id, "Failed")).detail == "unconfirmed"
    world.notifier.down = False
    assert service.record_status(event(started.execution_id, "Failed")).result == "stale"
    assert world.notifier.sent == [f"[FAILED] {started.execution_id}"]
    assert world.store.execution(started.execution_id)["notified"] is True
    assert service.record_status(event(started.execution_id, "Failed")).detail == "already recorded"


def test_an_event_of_no_execution_of_ours_is_ignored(world: World) -> None:
    outcome = world.service().record_status(PipelineStatusEvent(execution_id="someone-else-0123", status="Succeeded",
                                                                pipeline_execution_arn="arn:x", at="2026-01-01T00:00:00Z"))
    assert (outcome.result, outcome.detail) == ("ignored", "not an execution of this platform")


def test_failure_and_package_ports_add_to_the_end_and_never_fail_it(world: World) -> None:
    def broken(arn: str) -> Any:
        raise RuntimeError(f"throttled: {arn}")

    failing = world.service(failure_of=lambda arn: {"step": "Train", "reason": "KeyError", "log_tail": "x" * 5000})
    started = failing.submit(request("acme", 1))
    failing.record_status(event(started.execution_id, "Failed"))
    record = world.store.execution(started.execution_id)
    assert (record["failed_step"], record["failure_reason"], len(record["log_tail"])) == ("Train", "KeyError", 4000)
    assert record["history"][-1]["detail"] == "KeyError"
    unlucky = world.service(model_package=broken, failure_of=broken)
    for n, status in ((2, "Succeeded"), (3, "Failed")):
        started = unlucky.submit(request("acme", n))
        assert unlucky.record_status(event(started.execution_id, status)).result == "applied"
    assert world.tier("gold").inflight == 0
