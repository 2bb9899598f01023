"""Nothing lost, nothing retried forever: poison and malformed messages end in the DLQ with a reason,
partial batch responses retry only what failed, and handlers never import the SageMaker SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from trigger_helpers import LAMBDA_DIR, Stack, request, upload_event

from mlops.aws.queues import REASON_ATTRIBUTE
from mlops.builds import HandlerConfig, use_service
from mlops.local.lambda_runtime import EventSourceMapping, load_handler


@pytest.fixture
def uploads(stack: Stack) -> Any:
    """The uploads queue's event source mapping onto the trigger handler."""
    service = stack.service()
    use_service(lambda: (service, HandlerConfig(max_receives=3)))
    mapping = EventSourceMapping(stack.sqs, stack.names.events_queue("uploads"), load_handler(LAMBDA_DIR, "trigger"),
                                 "trigger", visibility_seconds=0)
    yield mapping
    use_service(None)


def _send(stack: Stack, queue: str, body: str) -> None:
    stack.sqs.send_message(QueueUrl=stack.urls[queue], MessageBody=body)


@pytest.mark.parametrize("body, reason", [
    pytest.param("{not json", "message body is not JSON", id="not-json"),
    pytest.param(json.dumps({"source": "ci", "tenant": "nobody", "model": "churn"}), "unknown tenant 'nobody'", id="unknown-tenant"),
    pytest.param(json.dumps({"source": "ci", "tenant": "acme", "model": "churn", "colour": "red"}),
                 "colour: Extra inputs are not permitted", id="unknown-field"),
    pytest.param(json.dumps({"source": "ci", "tenant": "acme", "model": "fraud"}), "unknown model 'fraud'", id="unknown-model"),
    pytest.param(json.dumps({"detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
                             "detail": {"bucket": {"name": "someone-elses-bucket"}, "object": {"key": "data/churn/x.csv"}}}),
                 "belongs to no tenant", id="foreign-bucket"),
])
def test_malformed_events_go_to_the_dlq_with_the_reason_and_are_not_retried(stack: Stack, uploads: Any, body: str, reason: str) -> None:
    queue = stack.names.events_queue("uploads")
    _send(stack, queue, body)
    assert uploads.poll_once() == 1
    assert uploads.poll_once() == 0  # deleted from the source queue: not retried
    dead = stack.dlq_messages(queue)
    assert [m["Body"] for m in dead] == [body]
    assert reason in dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert not stack.starter.starts


def test_a_poison_message_is_retried_then_dead_lettered_with_the_error(stack: Stack, uploads: Any) -> None:
    queue = stack.names.events_queue("uploads")
    good = json.dumps(upload_event(stack.names, "acme", "churn", "data/churn/a.csv"))
    poison = json.dumps(upload_event(stack.names, "initech", "churn", "data/churn/b.csv"))

    def fail_for_initech(**kwargs: Any) -> None:
        if b"initech" in kwargs["params"]["body"]:
            raise RuntimeError("DynamoDB said no")

    stack.services[0].slots.client.meta.events.register("before-call.dynamodb.TransactWriteItems", fail_for_initech)
    _send(stack, queue, good)
    _send(stack, queue, poison)
    for _ in range(3):
        uploads.poll_once()
    assert uploads.poll_once() == 0
    dead = stack.dlq_messages(queue)
    assert [m["Body"] for m in dead] == [poison]
    assert dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] == \
        "gave up after 3 deliveries: RuntimeError: DynamoDB said no"
    assert len(stack.starter.starts) == 1  # the good record of the same batches went through once


def test_partial_batch_response_names_only_the_failed_record(stack: Stack) -> None:
    from mlops.local.lambda_runtime import LambdaContext, sqs_event

    service = stack.service()
    use_service(lambda: (service, HandlerConfig(max_receives=5)))
    try:
        handler = load_handler(LAMBDA_DIR, "status")

        def fail(**_: Any) -> None:
            raise RuntimeError("throttled")

        started = service.submit(request("acme", 1))
        from mlops.requests import status_event

        good = json.dumps(status_event(started.execution_id, "Executing", started.pipeline_execution_arn))
        other = json.dumps(status_event("acme-churn-000000000000", "Succeeded", "arn:aws:sagemaker:us-east-1:1:pipeline/x/execution/y"))
        arn = f"arn:aws:sqs:us-east-1:123456789012:{stack.names.events_queue('status')}"
        service.slots.client.meta.events.register("before-call.dynamodb.TransactWriteItems", fail)
        response = handler(sqs_event([{"MessageId": "ok", "ReceiptHandle": "r1", "Body": good},
                                      {"MessageId": "bad", "ReceiptHandle": "r2", "Body": other}], arn), LambdaContext("status"))
    finally:
        use_service(None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def test_the_dispatcher_dead_letters_a_poison_tier_message(stack: Stack) -> None:
    service = stack.service(direct_start=False)
    queue = stack.names.tier_queue("gold")
    service.submit(request("acme", 1))
    _send(stack, queue, '{"source": "ci", "tenant": "acme"}')
    _send(stack, queue, request("acme", 9).to_message())  # queued behind the trigger's back: no ledger item
    report = service.dispatch()
    assert (report.admitted, report.rejected) == ({"gold": 1}, 2)
    reasons = sorted(m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in stack.dlq_messages(queue))
    assert reasons[0].startswith("malformed build request: model: Field required")
    assert "is not in the ledger" in reasons[1]
    assert stack.queue_depth(queue) == 0


@pytest.mark.parametrize("function", ["trigger", "dispatcher", "status"])
def test_handlers_import_no_sagemaker(function: str) -> None:
    code = (f"import sys; sys.path.insert(0, {str(LAMBDA_DIR / function)!r}); import handler; "
            "bad = sorted(m for m in sys.modules if m == 'sagemaker' or m.startswith('sagemaker.')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_real_pipeline_port_loads_without_sagemaker() -> None:
    code = ("import sys; import mlops.builds as b; start, find, status = b.pipeline_ports(); "  # the handlers' own lookup
            "import mlops.pipeline.start; "
            "bad = sorted(m for m in sys.modules if m == 'sagemaker' or m.startswith('sagemaker.')); "
            "print(start.__module__, bad); sys.exit(1 if bad or start.__module__ != 'mlops.pipeline.ports' else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("poison, reason", [
    pytest.param({"detail-type": "SageMaker Model Building Pipeline Execution Status Change", "detail": "Succeeded"},
                 "malformed event: detail is a str, not an object", id="detail-is-a-string"),
    pytest.param({"detail-type": "SageMaker Model Building Pipeline Execution Status Change", "detail": ["x"]},
                 "malformed event: detail is a list, not an object", id="detail-is-a-list"),
    pytest.param(["not", "an", "event"], "not a pipeline status-change event: 'list'", id="body-is-a-list"),
])
def test_a_malformed_status_record_loses_none_of_the_good_ones_in_its_batch(stack: Stack, poison: Any, reason: str) -> None:
    """The poison record goes to the DLQ with its reason at once; the batch's good events are all applied."""
    from mlops.statuses import SUCCEEDED
    from mlops.local.lambda_runtime import LambdaContext, sqs_event
    from mlops.requests import status_event

    service = stack.service()
    use_service(lambda: (service, HandlerConfig(max_receives=5)))
    try:
        handler = load_handler(LAMBDA_DIR, "status")
        started = [service.submit(request("acme", n)) for n in (1, 2)]
        queue = stack.names.events_queue("status")
        records = [{"MessageId": f"good-{n}", "ReceiptHandle": f"r{n}",
                    "Body": json.dumps(status_event(s.execution_id, "Succeeded", s.pipeline_execution_arn))}
                   for n, s in enumerate(started)]
        records.insert(1, {"MessageId": "poison", "ReceiptHandle": "rp", "Body": json.dumps(poison)})
        response = handler(sqs_event(records, f"arn:aws:sqs:us-east-1:123456789012:{queue}"), LambdaContext("status"))
    finally:
        use_service(None)
    assert response == {"batchItemFailures": []}
    assert [service.ledger.get(s.execution_id)["status"] for s in started] == [SUCCEEDED, SUCCEEDED]
    dead = stack.dlq_messages(queue)
    assert [m["Body"] for m in dead] == [json.dumps(poison)]
    assert dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"].startswith(reason)


@pytest.mark.parametrize("detail", [
    pytest.param("a string", id="detail-is-a-string"),
    pytest.param({"bucket": "b", "object": {"key": "data/churn/x.csv"}}, id="bucket-is-a-string"),
    pytest.param({"bucket": {"name": "b"}, "object": {"key": 7}}, id="key-is-a-number"),
])
def test_a_malformed_upload_event_is_rejected_at_once(stack: Stack, uploads: Any, detail: Any) -> None:
    """Parsing errors are permanent: to the DLQ with the reason on the first delivery, not retried."""
    queue = stack.names.events_queue("uploads")
    body = json.dumps({"detail-type": "Object Created", "source": "aws.s3", "account": "123456789012", "detail": detail})
    _send(stack, queue, body)
    assert uploads.poll_once() == 1
    assert uploads.poll_once() == 0
    dead = stack.dlq_messages(queue)
    assert [m["Body"] for m in dead] == [body]
    reason = dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert reason.startswith(("malformed event:", "S3 event without bucket name or object key")), reason
