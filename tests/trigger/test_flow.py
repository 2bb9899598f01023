"""The trigger → dispatcher → status path on moto: starts, queues, admission, release, duplicates."""

from __future__ import annotations

from typing import Any

from trigger_helpers import Stack, request

from mlops.statuses import EXECUTING, QUEUED, STARTING, SUCCEEDED
from mlops.builds import DispatchReport
from mlops.requests import parse_status_event, status_event


def _finish(service: Any, execution_id: str, arn: str, status: str = "Succeeded") -> Any:
    import json

    body = json.dumps(status_event(execution_id, status, arn, started_at="2026-01-01T00:00:00Z", ended_at="2026-01-01T00:10:00Z"))
    return service.record_status(parse_status_event(body))


def test_a_request_starts_at_once_when_its_tier_is_free(stack: Stack) -> None:
    service = stack.service()
    outcome = service.submit(request("acme"))
    assert outcome.result == "started"
    item = service.ledger.get(outcome.execution_id)
    assert item["status"] == EXECUTING
    assert item["pipeline_execution_arn"] == outcome.pipeline_execution_arn
    assert [h["status"] for h in item["history"]] == ["QUEUED", "STARTING", "EXECUTING"]
    assert service.slots.read_tier("gold", 3).inflight == 1


def test_a_full_tier_queues_and_the_end_of_a_build_hands_its_slot_to_the_next(stack: Stack) -> None:
    service = stack.service()
    first = service.submit(request("umbrella", 1))
    second = service.submit(request("umbrella", 2))
    assert (first.result, second.result) == ("started", "queued")
    assert service.dispatch().filed == {"bronze": 1}  # into the backlog; the tier is full
    ended = _finish(service, first.execution_id, first.pipeline_execution_arn)
    assert (ended.result, ended.detail) == ("applied", f"slot handed to {second.execution_id}")
    assert service.ledger.get(second.execution_id)["status"] == STARTING  # until SageMaker's Executing event:
    arn = stack.starter.arns[second.execution_id]
    assert _finish(service, second.execution_id, arn, "Executing").result == "applied"
    item = service.ledger.get(second.execution_id)
    assert (item["status"], item["pipeline_execution_arn"]) == (EXECUTING, arn)
    assert stack.starter.starts == {first.execution_id: 1, second.execution_id: 1}
    state = service.slots.read_tier("bronze", 1)
    assert (state.inflight, state.waiting, state.slots) == (1, 0, [second.execution_id])
    assert service.dispatch().admitted == {}  # nothing left for the dispatcher
    assert service.slots.backlog_head("bronze", 5) == []


def test_a_full_tier_queues_and_the_dispatcher_admits_after_release(stack: Stack) -> None:
    service = stack.service(handover=False)
    first = service.submit(request("umbrella", 1))
    second = service.submit(request("umbrella", 2))
    assert (first.result, second.result) == ("started", "queued")
    assert service.ledger.get(second.execution_id)["status"] == QUEUED
    assert service.dispatch().admitted == {}
    assert _finish(service, first.execution_id, first.pipeline_execution_arn).result == "applied"
    assert service.dispatch().admitted == {"bronze": 1}
    assert service.ledger.get(second.execution_id)["status"] == STARTING
    assert stack.queue_depth(stack.names.tier_queue("bronze")) == 0
    assert service.ledger.get(first.execution_id)["status"] == SUCCEEDED
    assert service.ledger.get(first.execution_id)["duration_seconds"] == 600


def test_the_same_request_twice_is_one_execution(stack: Stack) -> None:
    service = stack.service()
    assert service.submit(request("acme", 7)).result == "started"
    again = service.submit(request("acme", 7))
    assert again.result == "duplicate"
    assert again.status == EXECUTING
    assert sum(stack.starter.starts.values()) == 1


def test_an_account_quota_holds_every_tier_and_priority_decides_who_gets_it(stack: Stack) -> None:
    service = stack.service(account_quota=1)
    first = service.submit(request("umbrella", 1))
    gold = service.submit(request("acme", 2))
    silver = service.submit(request("globex", 3))
    assert (first.result, gold.result, silver.result) == ("started", "queued", "queued")
    _finish(service, first.execution_id, first.pipeline_execution_arn)
    assert service.dispatch().admitted == {"gold": 1}  # gold has the higher priority
    assert service.slots.account_inflight() == 1
    assert service.ledger.get(silver.execution_id)["status"] == QUEUED


def test_a_tenant_override_caps_it_inside_its_tier(stack_factory: Any) -> None:
    stack = stack_factory({"acme": "gold", "initech": "gold"}, overrides={"acme": {"max_concurrent_builds": 1}})
    service = stack.service()
    assert [service.submit(request("acme", n)).result for n in range(2)] == ["started", "queued"]
    assert service.submit(request("initech", 9)).result == "queued"  # someone waits: no jumping the queue
    report = service.dispatch()
    assert report.admitted == {"gold": 1} and report.filed == {"gold": 2}
    state = service.slots.read_tier("gold", 3)
    assert state.tenants["acme"].running == 1 and state.tenants["acme"].waiting == 1  # at its cap: initech went first
    assert state.tenants["initech"].running == 1


def test_a_start_the_pipeline_refuses_fails_the_request_and_frees_the_slot(stack: Stack) -> None:
    from mlops.requests import StartRejected

    def refuse(request_: Any, token: str) -> str:
        raise StartRejected(f"pipeline {request_.model} does not exist ({token[:6]})", "register it first")

    stack.starter = refuse  # type: ignore[assignment]
    service = stack.service()
    outcome = service.submit(request("umbrella", 1))
    assert outcome.result == "failed"
    item = service.ledger.get(outcome.execution_id)
    assert item["status"] == "FAILED" and "does not exist" in item["history"][-1]["detail"]
    assert service.slots.read_tier("bronze", 1).inflight == 0


def test_a_direct_start_whose_trigger_died_is_restarted_by_the_dispatcher_sweep(stack: Stack) -> None:
    class Died(RuntimeError):
        """The trigger Lambda timed out inside StartPipelineExecution."""

    def die(**_: Any) -> None:
        raise Died("timeout")

    stack.sagemaker.meta.events.register("before-call.sagemaker.StartPipelineExecution", die)
    service = stack.service(lease_seconds=0)
    try:
        service.submit(request("acme", 1))
    except Died:
        pass
    stack.sagemaker.meta.events.unregister("before-call.sagemaker.StartPipelineExecution", die)
    eid = request("acme", 1).execution_id
    assert service.ledger.get(eid)["status"] == "STARTING"
    assert service.dispatch().restarted == 1
    assert service.ledger.get(eid)["status"] == EXECUTING
    assert stack.starter.starts == {eid: 1}
    assert service.dispatch().restarted == 0


def test_the_sweep_releases_a_slot_whose_execution_already_ended(stack: Stack) -> None:
    service = stack.service(lease_seconds=0)
    started = service.submit(request("globex", 1))
    service.ledger.write(service.ledger.status_item(started.execution_id, "SUCCEEDED", "2026-01-01T00:00:00Z", "test"))
    assert service.slots.read_tier("silver", 2).inflight == 1  # the release was lost
    assert service.dispatch().released_stale == 1
    assert service.slots.read_tier("silver", 2).inflight == 0


def test_a_start_that_keeps_failing_is_given_up_and_its_slot_freed(stack: Stack) -> None:
    def broken(request_: Any, token: str) -> str:
        raise ConnectionError(f"SageMaker unreachable for {request_.execution_id} ({token[:6]})")

    stack.starter = broken  # type: ignore[assignment]
    service = stack.service(lease_seconds=0)
    eid = request("umbrella", 1).execution_id
    outcome = service.submit(request("umbrella", 1))  # a temporary error: answered, never raised
    assert (outcome.result, outcome.status) == ("delayed", "STARTING")
    assert "start attempt 1 failed (ConnectionError" in outcome.detail
    for attempt in range(2, 5):  # the sweep retakes the stuck start after each lease
        report = DispatchReport()
        service.sweep("bronze", report)
        assert report.restarted == 1 and service.ledger.get(eid)["start_attempt"] == attempt
    service.sweep("bronze", DispatchReport())  # the fifth attempt gives up
    item = service.ledger.get(eid)
    assert item["status"] == "FAILED" and item["start_attempt"] == 5
    assert "gave up after 5 start attempts: ConnectionError" in item["history"][-1]["detail"]
    assert service.slots.read_tier("bronze", 1).inflight == 0


def test_a_request_filed_behind_the_clock_is_still_admitted(stack: Stack) -> None:
    """Another dispatcher (no lease) may move the clock past a tag that is being filed: never stuck."""
    service = stack.service(handover=False)  # the dispatcher's admission is under test
    first = service.submit(request("umbrella", 1))  # bronze, limit 1: started, the tier is full
    second = service.submit(request("umbrella", 2))
    assert (first.result, second.result) == ("started", "queued")
    assert service.dispatch().filed == {"bronze": 1}  # filed with tag 1, no room to admit
    service.slots.client.update_item(TableName=stack.names.slots_table(), Key={"pk": {"S": "TIER#bronze"}, "sk": {"S": "#COUNTER"}},
                                     UpdateExpression="SET vclock = :v", ExpressionAttributeValues={":v": {"N": "100"}})
    _finish(service, first.execution_id, first.pipeline_execution_arn)
    assert service.dispatch().admitted == {"bronze": 1}
    assert service.ledger.get(second.execution_id)["status"] == STARTING
