"""Exactly once: concurrent duplicate deliveries start one execution; duplicate and late status events
leave the ledger and the slot counts right."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from trigger_helpers import Stack, request

from mlops.statuses import EXECUTING, STARTING, SUCCEEDED
from mlops.requests import parse_status_event, status_event


def _deliver_concurrently(calls: list[Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _moto_executions(stack: Stack, model: str = "churn") -> list[dict[str, Any]]:
    """Every execution moto holds for `model`, over the pipelines of all tenants."""
    return [summary for tenant in stack.registry.tenants
            for summary in stack.sagemaker.list_pipeline_executions(
                PipelineName=stack.names.pipeline(tenant, model))["PipelineExecutionSummaries"]]


@pytest.mark.parametrize("tenant, direct_start", [
    pytest.param("acme", True, id="free-tier-starts-directly"),
    pytest.param("acme", False, id="queued-then-dispatched"),
])
def test_same_request_delivered_three_times_concurrently_starts_one_execution(stack: Stack, tenant: str, direct_start: bool) -> None:
    services = [stack.service(direct_start=direct_start) for _ in range(3)]
    same = request(tenant, 42)
    outcomes = _deliver_concurrently([lambda s=s: s.submit(same) for s in services])
    results = sorted(o.result for o in outcomes)
    assert results.count("duplicate") == 2
    if not direct_start:
        _deliver_concurrently([s.dispatch for s in services])
    assert stack.starter.starts == {same.execution_id: 1}
    assert [e["PipelineExecutionDisplayName"] for e in _moto_executions(stack)] == [same.execution_id]
    # started directly by the trigger: recorded at once; by the dispatcher: STARTING until the Executing event
    assert services[0].ledger.get(same.execution_id)["status"] == (EXECUTING if direct_start else STARTING)
    assert services[0].slots.read_tier("gold", 3).inflight == 1


def test_same_upload_event_delivered_three_times_through_the_trigger_handler(stack: Stack) -> None:
    from mlops.builds import use_service
    from mlops.local.lambda_runtime import LambdaContext, load_handler, sqs_event
    from trigger_helpers import LAMBDA_DIR, upload_event

    service = stack.service()
    use_service(lambda: (service, __import__("mlops.builds", fromlist=["HandlerConfig"]).HandlerConfig()))
    try:
        handler = load_handler(LAMBDA_DIR, "trigger")
        body = json.dumps(upload_event(stack.names, "globex", "churn", "data/churn/2026-01-01.csv"))
        arn = f"arn:aws:sqs:us-east-1:123456789012:{stack.names.events_queue('uploads')}"
        events = [sqs_event([{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body}], arn) for i in range(3)]
        responses = _deliver_concurrently([lambda e=e: handler(e, LambdaContext("trigger")) for e in events])
    finally:
        use_service(None)
    assert all(r == {"batchItemFailures": []} for r in responses)
    assert sum(stack.starter.starts.values()) == 1
    assert len(_moto_executions(stack)) == 1


def _event(stack: Stack, eid: str, status: str) -> Any:
    arn = stack.starter.arns[eid]
    return parse_status_event(json.dumps(status_event(eid, status, arn, at=f"2026-01-01T00:0{'5' if status == 'Executing' else '9'}:00Z",
                                                      started_at="2026-01-01T00:00:00Z",
                                                      ended_at=None if status == "Executing" else "2026-01-01T00:09:00Z")))


def test_status_events_twice_and_out_of_order_leave_ledger_and_slots_right(stack: Stack) -> None:
    service = stack.service()
    first = service.submit(request("acme", 1))
    second = service.submit(request("acme", 2))
    events = [_event(stack, first.execution_id, s) for s in ("Succeeded", "Succeeded", "Executing", "Succeeded")]
    results = [service.record_status(e).result for e in events]
    assert results == ["applied", "stale", "stale", "stale"]
    item = service.ledger.get(first.execution_id)
    assert item["status"] == SUCCEEDED
    assert [h["status"] for h in item["history"]] == ["QUEUED", "STARTING", "EXECUTING", "SUCCEEDED"]
    assert item["duration_seconds"] == 540
    state = service.slots.read_tier("gold", 3)
    assert (state.inflight, state.slots, state.tenants["acme"].running) == (1, [second.execution_id], 1)


def test_concurrent_duplicate_terminal_events_release_the_slot_once(stack: Stack) -> None:
    services = [stack.service() for _ in range(4)]
    started = services[0].submit(request("umbrella", 1))
    event = _event(stack, started.execution_id, "Failed")
    outcomes = _deliver_concurrently([lambda s=s: s.record_status(event) for s in services])
    assert sorted(o.result for o in outcomes) == ["applied", "stale", "stale", "stale"]
    state = services[0].slots.read_tier("bronze", 1)
    assert (state.inflight, state.slots, state.tenants["umbrella"].running) == (0, [], 0)


def test_late_executing_event_after_a_crash_before_recording_does_not_regress(stack: Stack) -> None:
    service = stack.service()
    started = service.submit(request("globex", 3))
    assert service.record_status(_event(stack, started.execution_id, "Succeeded")).result == "applied"
    assert not service.ledger.record_started(started.execution_id, started.pipeline_execution_arn, "2026-01-01T00:10:00Z")
    assert service.ledger.get(started.execution_id)["status"] == SUCCEEDED
