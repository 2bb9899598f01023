"""The end of a build hands its slot to the backlog's head, and records the training, in one transaction.

What must hold: the handover never breaks a rule the dispatcher keeps (the limit, a tenant's cap, a burst
still on the queue, tier priority under an account quota); when it cannot, the slot is only released and
the dispatcher admits; the end is recorded in every case; and a success named by its description costs
one transaction, no ledger read.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError
from trigger_helpers import Stack, request

from mlops.aws.dynamo import from_attrs
from mlops.aws.ledger import state_key
from mlops.builds import DispatchReport
from mlops.errors import MlopsError
from mlops.requests import execution_description, parse_status_event, status_event
from mlops.statuses import EXECUTING, QUEUED, STARTING, SUCCEEDED


def _end(service: Any, started: Any, ended_at: str = "2026-01-01T00:10:00Z", described: bool = True,
         status: str = "Succeeded") -> Any:
    tenant = started.execution_id.split("-")[0]  # `<tenant>-<model>-<hex>`
    description = execution_description("ci", tenant, "churn", "1.4.0", "commit 1") if described else None
    body = json.dumps(status_event(started.execution_id, status, started.pipeline_execution_arn, at=ended_at,
                                   started_at="2026-01-01T00:00:00Z", ended_at=ended_at, description=description))
    return service.record_status(parse_status_event(body))


def _calls(client: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.dynamodb.*", lambda event_name, **_: calls.update([event_name.split(".")[-1]]))
    return calls


def _state(stack: Stack, tenant: str, model: str = "churn") -> dict[str, Any]:
    item = stack.dynamodb.get_item(TableName=stack.names.ledger_table(), Key=state_key(tenant, model), ConsistentRead=True)
    return from_attrs(item.get("Item") or {})


def test_a_success_is_recorded_with_its_training_in_one_transaction(stack: Stack) -> None:
    service = stack.service()
    started = service.submit(request("acme", 1))
    calls = _calls(service.slots.client)
    assert _end(service, started).result == "applied"
    assert calls == {"Query": 1, "TransactWriteItems": 1}  # the backlog's head (empty), then the end: no ledger read
    state = _state(stack, "acme")
    assert (state["trained_execution"], state["trained_version"]) == (started.execution_id, "1.4.0")
    assert state["trained_ended_at"].startswith("2026-01-01T00:10:00") and "active" not in state
    assert service.slots.read_tier("gold", 3).inflight == 0


def test_an_older_training_that_ends_later_does_not_replace_the_newer(stack: Stack) -> None:
    service = stack.service()
    older, newer = service.submit(request("acme", 1)), service.submit(request("acme", 2))
    assert _end(service, newer, ended_at="2026-01-01T02:00:00Z").result == "applied"
    calls = _calls(service.slots.client)
    assert _end(service, older, ended_at="2026-01-01T01:00:00Z").result == "applied"
    assert calls["TransactWriteItems"] == 2  # refused on the newer training alone, then the end without it
    assert _state(stack, "acme")["trained_execution"] == newer.execution_id
    assert service.ledger.get(older.execution_id)["status"] == SUCCEEDED
    assert service.slots.read_tier("gold", 3).inflight == 0


def test_an_event_without_our_description_reads_the_ledger_for_the_training(stack: Stack) -> None:
    service = stack.service()
    started = service.submit(request("acme", 3))
    assert _end(service, started, described=False).result == "applied"
    assert _state(stack, "acme")["trained_version"] == "1.0.3"  # the request's version, from the ledger


def test_no_handover_while_a_burst_waits_to_be_filed(stack: Stack) -> None:
    service = stack.service()
    first = service.submit(request("umbrella", 1))
    service.dispatch()  # nothing to file yet
    second = service.submit(request("umbrella", 2))
    assert service.dispatch().filed == {"bronze": 1}
    service.submit(request("umbrella", 3))  # on the queue, not filed: the backlog's order is not final
    ended = _end(service, first)
    assert (ended.result, ended.detail) == ("applied", None)
    assert service.ledger.get(second.execution_id)["status"] == QUEUED
    assert service.slots.read_tier("bronze", 1).inflight == 0
    assert service.dispatch().admitted == {"bronze": 1}  # the dispatcher files the burst, then admits in tag order
    assert service.ledger.get(second.execution_id)["status"] == STARTING


def test_a_tenant_at_its_cap_gets_no_handover(stack_factory: Any) -> None:
    stack = stack_factory({"acme": "gold", "initech": "gold"}, overrides={"acme": {"max_concurrent_builds": 1}})
    service = stack.service()
    others = [service.submit(request("initech", n)) for n in range(2)]
    mine = service.submit(request("acme", 1))
    waiting = service.submit(request("acme", 2))  # acme at its cap of 1
    assert [o.result for o in others + [mine, waiting]] == ["started", "started", "started", "queued"]
    assert service.dispatch().filed == {"gold": 1}
    ended = _end(service, others[0])
    assert ended.detail is None  # the head is acme's, at its cap: released only
    state = service.slots.read_tier("gold", 3)
    assert (state.inflight, state.tenants["acme"].running, state.tenants["acme"].waiting) == (2, 1, 1)
    ended = _end(service, mine)
    assert ended.detail == f"slot handed to {waiting.execution_id}"  # its own slot: within its cap
    state = service.slots.read_tier("gold", 3)
    assert (state.inflight, state.tenants["acme"].running, state.tenants["acme"].waiting) == (2, 1, 0)


def test_under_an_account_quota_a_higher_tier_that_waits_gets_the_slot(stack: Stack) -> None:
    service = stack.service(account_quota=1)
    first = service.submit(request("umbrella", 1))
    bronze = service.submit(request("umbrella", 2))
    gold = service.submit(request("acme", 3))
    assert (first.result, bronze.result, gold.result) == ("started", "queued", "queued")
    assert service.dispatch().filed == {"gold": 1, "bronze": 1}
    assert _end(service, first).detail is None  # not to bronze: gold waits with room of its own
    assert service.dispatch().admitted == {"gold": 1}
    assert service.ledger.get(bronze.execution_id)["status"] == QUEUED
    assert service.slots.account_inflight() == 1


def test_a_start_that_fails_after_the_handover_is_retaken_by_the_sweep(stack: Stack) -> None:
    service = stack.service(lease_seconds=0)
    first = service.submit(request("umbrella", 1))
    second = service.submit(request("umbrella", 2))
    service.dispatch()

    def unreachable(**_: Any) -> None:
        raise ConnectionError("SageMaker unreachable")

    stack.sagemaker.meta.events.register("before-call.sagemaker.StartPipelineExecution", unreachable)
    ended = _end(service, first)
    stack.sagemaker.meta.events.unregister("before-call.sagemaker.StartPipelineExecution", unreachable)
    assert (ended.result, ended.detail) == ("applied", f"slot handed to {second.execution_id}")  # the end is kept
    assert service.ledger.get(second.execution_id)["status"] == STARTING
    report = DispatchReport()
    service.sweep("bronze", report)  # as every tenth dispatcher run does
    assert report.restarted == 1
    assert service.ledger.get(second.execution_id)["status"] == EXECUTING
    assert stack.starter.starts[second.execution_id] == 1


def test_a_terminal_transaction_that_conflicts_is_retried_not_reported_applied(stack: Stack) -> None:
    service = stack.service()
    started = service.submit(request("acme", 1))

    def conflict(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                           "CancellationReasons": [{"Code": "TransactionConflict"}]}, "TransactWriteItems")

    service.slots.client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict)
    with pytest.raises(MlopsError, match="was not recorded"):
        _end(service, started)
    service.slots.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", conflict)
    assert _end(service, started).result == "applied"  # the redelivery records it (nothing remembered as done)
    assert service.slots.read_tier("gold", 3).inflight == 0


def test_the_ends_of_one_batch_read_the_backlog_head_once_and_go_to_the_next_in_tag_order(stack: Stack) -> None:
    service = stack.service()
    running = [service.submit(request("acme", n)) for n in range(3)]  # gold is full (3)
    waiting = [service.submit(request(tenant, n)) for tenant, n in (("acme", 10), ("acme", 11), ("initech", 12))]
    assert service.dispatch().filed == {"gold": 3}
    events = [parse_status_event(json.dumps(status_event(
        r.execution_id, "Succeeded", r.pipeline_execution_arn, at="2026-01-01T00:10:00Z", started_at="2026-01-01T00:00:00Z",
        ended_at="2026-01-01T00:10:00Z", description=execution_description("ci", "acme", "churn", "1.0.0"))))
        for r in running[:2]]
    calls = _calls(service.slots.client)
    service.begin_batch(events + events)  # a batch with each end delivered twice
    try:
        handed = [service.record_status(e).detail for e in events + events]
    finally:
        service.end_batch()
    assert calls["Query"] == 1
    # tags: acme's requests 1, 2; initech's 1: initech goes before acme's second
    assert handed == [f"slot handed to {waiting[0].execution_id}", f"slot handed to {waiting[2].execution_id}",
                      "already recorded", "already recorded"]
    assert service.slots.backlog_head("gold", 5)[0]["execution_id"] == waiting[1].execution_id


def _body(stack: Stack, started: Any, status: str) -> str:
    arn = started.pipeline_execution_arn or stack.starter.arns[started.execution_id]
    return json.dumps(status_event(started.execution_id, status, arn, at="2026-01-01T00:20:00Z",
                                   started_at="2026-01-01T00:00:00Z", ended_at="2026-01-01T00:20:00Z",
                                   description=execution_description("ci", "acme", "churn", "1.0.0")))


def test_a_batch_s_executing_events_ride_on_its_terminal_transaction_through_the_handler(stack: Stack) -> None:
    from trigger_helpers import LAMBDA_DIR

    from mlops.builds import HandlerConfig, use_service
    from mlops.local.lambda_runtime import LambdaContext, load_handler, sqs_event

    service = stack.service()
    running = [service.submit(request("acme", n)) for n in range(3)]  # gold is full (3)
    queued = service.submit(request("acme", 4))
    service.dispatch()
    assert _end(service, running[0]).detail == f"slot handed to {queued.execution_id}"  # STARTING, started
    arn = f"arn:aws:sqs:us-east-1:123456789012:{stack.names.events_queue('status')}"
    executing = type("Started", (), {"execution_id": queued.execution_id, "pipeline_execution_arn": None})()
    bodies = [_body(stack, executing, "Executing"), _body(stack, running[1], "Succeeded")]  # Executing first
    event = sqs_event([{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": b} for i, b in enumerate(bodies)], arn)
    calls = _calls(service.slots.client)
    use_service(lambda: (service, HandlerConfig()))
    try:
        response = load_handler(LAMBDA_DIR, "status")(event, LambdaContext("status"))
    finally:
        use_service(None)
    assert response == {"batchItemFailures": []}
    assert calls == {"Query": 1, "TransactWriteItems": 1}  # the Executing write rode on the end's transaction
    item = service.ledger.get(queued.execution_id)
    assert (item["status"], item["pipeline_execution_arn"]) == (EXECUTING, stack.starter.arns[queued.execution_id])
    assert service.ledger.get(running[1].execution_id)["status"] == SUCCEEDED


def test_a_rider_whose_condition_fails_is_dropped_and_the_end_still_recorded(stack: Stack) -> None:
    service = stack.service()
    running = [service.submit(request("acme", n)) for n in range(3)]  # recorded EXECUTING by the trigger
    events = [parse_status_event(_body(stack, running[0], "Executing")),  # already EXECUTING: its condition fails
              parse_status_event(_body(stack, running[1], "Succeeded"))]
    calls = _calls(service.slots.client)
    service.begin_batch(events)
    try:
        outcomes = [service.record_status(e) for e in reversed(events)]
    finally:
        service.end_batch()
    assert [o.result for o in outcomes] == ["applied", "stale"]
    assert calls["TransactWriteItems"] == 2  # with the rider (refused), then without it
    assert service.ledger.get(running[1].execution_id)["status"] == SUCCEEDED
    assert service.slots.read_tier("gold", 3).inflight == 2
