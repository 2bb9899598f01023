"""The trigger's use case over the in-memory ports: start at once or queue, once per request, within the tier's rules."""

from __future__ import annotations

from typing import Any

import pytest
from builds_world import World, request

from mlops.builds import DispatchReport
from mlops.errors import MlopsError
from mlops.requests import RejectedRequest, StartRejected
from mlops.statuses import EXECUTING, FAILED, QUEUED, STARTING


def test_a_request_starts_at_once_when_its_tier_is_free(world: World) -> None:
    outcome = world.service().submit(request("acme", 1))
    assert (outcome.result, outcome.status) == ("started", STARTING)
    record = world.store.execution(outcome.execution_id)
    assert (record["status"], record["pipeline_execution_arn"]) == (EXECUTING, outcome.pipeline_execution_arn)
    assert [h["status"] for h in record["history"]] == [QUEUED, STARTING, EXECUTING]
    assert (record["tier"], record["instance_type"], record["instance_count"]) == ("gold", "ml.m5.large", 1)
    assert world.tier("gold").slots == [outcome.execution_id]
    assert world.pipelines.starts == {outcome.execution_id: 1}


def test_a_full_tier_queues_and_nobody_jumps_the_queue(world: World) -> None:
    service = world.service()
    first, second = service.submit(request("umbrella", 1)), service.submit(request("umbrella", 2))
    assert (first.result, second.result) == ("started", "queued")
    assert world.status(second.execution_id) == QUEUED
    assert world.queues.bodies(world.registry.names().tier_queue("bronze")) == [request("umbrella", 2).to_message()]
    state = world.tier("bronze")
    assert (state.inflight, state.waiting, state.unfiled) == (1, 1, 1)
    world.store.release("bronze", "umbrella", first.execution_id)  # room again, but someone waits:
    assert service.submit(request("umbrella", 3)).result == "queued"


def test_the_same_request_twice_is_one_execution(world: World) -> None:
    services = [world.service(), world.service(direct_start=False)]
    outcomes = [s.submit(request("acme", 7)) for s in services + services]
    assert [o.result for o in outcomes] == ["started", "duplicate", "duplicate", "duplicate"]
    assert {o.status for o in outcomes[1:]} == {EXECUTING}
    assert world.pipelines.starts == {outcomes[0].execution_id: 1}
    assert world.queues.depth(world.registry.names().tier_queue("gold")) == 0


def test_a_tenant_cap_and_the_account_quota_hold_at_the_direct_start(world_factory: Any) -> None:
    capped = world_factory({"acme": "gold", "initech": "gold"}, overrides={"acme": {"overrides": {"max_concurrent_builds": 1}}})
    service = capped.service()
    assert [service.submit(request("acme", n)).result for n in (1, 2)] == ["started", "queued"]
    from fakes import FakeBuildStore

    quota = world_factory(store=FakeBuildStore(account_quota=1))
    service = quota.service()
    assert [service.submit(request(t, 1)).result for t in ("acme", "globex")] == ["started", "queued"]


def test_a_queued_request_whose_message_was_never_sent_is_sent_again(world: World) -> None:
    service = world.service(direct_start=False)
    lost = request("acme", 1)
    service.submit(lost)
    queue = world.registry.names().tier_queue("gold")
    world.queues.messages[queue].clear()  # the first trigger died between its write and its message
    assert service.submit(lost).detail is None  # within the lease: the first may still be sending it
    world.clock.jump(120)
    again = service.submit(lost)
    assert (again.result, again.detail) == ("duplicate", "re-queued: the first delivery did not finish")
    assert world.queues.bodies(queue) == [lost.to_message()]


def test_a_refused_start_fails_the_request_and_frees_its_slot(world: World) -> None:
    req = request("umbrella", 1)
    world.pipelines.refuse[req.execution_id] = StartRejected("SageMaker refused: ValidationException: bad", "fix it")
    outcome = world.service().submit(req)
    assert (outcome.result, outcome.status) == ("failed", FAILED)
    record = world.store.execution(req.execution_id)
    assert record["status"] == FAILED and record["failure_reason"].startswith("SageMaker refused")
    assert world.tier("bronze").inflight == 0
    assert "active" not in world.store.states[("umbrella", "churn")]


def test_a_start_that_keeps_failing_is_retried_by_the_sweep_then_given_up(world: World) -> None:
    req = request("umbrella", 1)
    world.pipelines.fail[req.execution_id] = [ConnectionError("unreachable")] * 5
    service = world.service()
    outcome = service.submit(req)
    assert (outcome.result, outcome.status) == ("delayed", STARTING) and "attempt 1 failed" in outcome.detail
    for attempt in range(2, 5):
        world.clock.jump(120)
        report = DispatchReport()
        service.sweep("bronze", report)
        assert report.restarted == 1 and world.store.execution(req.execution_id)["start_attempt"] == attempt
    report = DispatchReport()
    service.sweep("bronze", report)
    assert report.restarted == 0, "not before the lease has passed again"
    world.clock.jump(120)
    service.sweep("bronze", DispatchReport())
    record = world.store.execution(req.execution_id)
    assert (record["status"], record["start_attempt"]) == (FAILED, 5)
    assert "gave up after 5 start attempts: ConnectionError" in record["failure_reason"]
    assert world.tier("bronze").inflight == 0


def test_a_restart_asks_whether_the_execution_exists_first(world: World) -> None:
    req = request("umbrella", 1)
    service = world.service()
    service.submit(req)
    world.store.executions[req.execution_id] |= {"status": STARTING, "status_rank": 20}  # as if its starter died after the start
    world.store.executions[req.execution_id].pop("pipeline_execution_arn")
    world.clock.jump(120)
    report = DispatchReport()
    service.sweep("bronze", report)
    assert report.restarted == 1 and world.pipelines.starts == {req.execution_id: 1}
    assert world.status(req.execution_id) == EXECUTING


def test_an_unknown_tenant_or_model_is_rejected_and_nothing_recorded(world: World) -> None:
    service = world.service()
    for bad in (request("nobody", 1), request("acme", 1, model="fraud")):
        with pytest.raises(RejectedRequest):
            service.submit(bad)
    assert world.store.executions == {}


def test_a_request_nothing_could_record_is_an_error_to_send_again(world: World) -> None:
    world.store.conflicts = 2  # the direct start and the queueing both lose to a concurrent write
    with pytest.raises(MlopsError, match="could not queue .*: transaction conflict"):
        world.service().submit(request("acme", 1))
    assert world.store.executions == {}
    assert world.service().submit(request("acme", 1)).result == "started"
