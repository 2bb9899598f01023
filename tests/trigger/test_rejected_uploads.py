"""A tenant's upload the trigger refuses is recorded in the ledger (status REJECTED, with the reason), notified once,
and shown by `mlops executions list|show`, besides going to the DLQ; it never reaches the execution readers
(cost, retraining check)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from trigger_helpers import LAMBDA_DIR, Stack, upload_event

from mlops.statuses import REJECTED
from mlops.builds import HandlerConfig, use_service
from mlops.cli import cli
from mlops.local.lambda_runtime import EventSourceMapping, load_handler
from mlops.notify import Notifier


@pytest.fixture
def sent(stack: Stack) -> Any:
    """The trigger handler on the uploads queue with an SNS notifier; yields (mapping, subjects sent)."""
    import boto3

    sns = boto3.client("sns")
    topic = sns.create_topic(Name="trig-notifications")["TopicArn"]
    subjects: list[str] = []
    sns.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: subjects.append(params["Subject"]))
    service = stack.service(notifier=Notifier(sns, topic))
    use_service(lambda: (service, HandlerConfig(max_receives=3)))
    mapping = EventSourceMapping(stack.sqs, stack.names.events_queue("uploads"), load_handler(LAMBDA_DIR, "trigger"),
                                 "trigger", visibility_seconds=0)
    yield mapping, subjects
    use_service(None)


def _cli(stack: Stack, *args: str, as_json: bool = True) -> Any:
    result = CliRunner().invoke(cli, [*args, *(["--json"] if as_json else [])],
                                env={"MLOPS_LEDGER_TABLE": stack.names.ledger_table()}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if as_json else result.stdout


@pytest.mark.parametrize(("key", "model", "reason"), [
    pytest.param("data/home_value/prices.csv", "home_value", "malformed build request: model: String should match pattern",
                 id="bad-model-name"),
    pytest.param("data/fraud/x.csv", "fraud", "unknown model 'fraud' (platform models: churn, house-prices)", id="unknown-model"),
    pytest.param("uploads/x.csv", None, "object 'uploads/x.csv' is not under data/<model>/ (upload training data to "
                 "data/<model>/<file>)", id="outside-data"),
])
def test_a_refused_upload_is_in_the_ledger_with_its_reason_and_notified_once(stack: Stack, sent: Any, key: str,
                                                                             model: str | None, reason: str) -> None:
    mapping, subjects = sent
    body = json.dumps(upload_event(stack.names, "acme", "churn", key))
    queue = stack.names.events_queue("uploads")
    for _ in range(2):  # S3 and EventBridge deliver at least once: the same upload twice is one record, one message
        stack.sqs.send_message(QueueUrl=stack.urls[queue], MessageBody=body)
        assert mapping.poll_once() == 1
    assert not stack.starter.starts
    assert len(stack.dlq_messages(queue)) == 2  # still dead-lettered, as every refused message is
    listed = _cli(stack, "executions", "list")
    assert len(listed) == 1
    row = listed[0]
    assert (row["tenant"], row["model"], row["source"], row["status"]) == ("acme", model, "upload", REJECTED)
    assert row["failure_reason"].startswith(reason)
    assert subjects == [f"[REJECTED] acme/{model or '?'}"]
    shown = _cli(stack, "executions", "show", row["execution_id"])
    assert shown["data_uri"] == f"s3://{stack.names.tenant_bucket('acme')}/{key}"
    assert shown["notified"] is True
    assert [h["status"] for h in shown["history"]] == [REJECTED]
    text = _cli(stack, "executions", "list", as_json=False)
    assert "REJECTED" in text and "not under data/<model>/" in text or "model" in text
    assert _cli(stack, "executions", "list", "--status", "SUCCEEDED") == []
    assert _cli(stack, "cost", "report")["rows"] == []  # not an execution: no cost


def test_a_refused_upload_of_a_disabled_model_for_the_tenant_is_recorded(stack_factory: Any) -> None:
    """A model of the platform that this tenant does not train: the registry's own reason."""
    stack = stack_factory({"acme": "gold"})
    service = stack.service()
    body = json.dumps(upload_event(stack.names, "acme", "churn", "data/churn/x.csv"))
    item = service.record_rejected_upload(body, "tenant 'acme' does not train model 'churn'")
    assert item is not None and item["status"] == REJECTED and item["model"] == "churn"
    assert service.record_rejected_upload(body, "again")["failure_reason"] == "tenant 'acme' does not train model 'churn'"


@pytest.mark.parametrize("body", [
    pytest.param("{not json", id="not-json"),
    pytest.param(json.dumps({"source": "ci", "tenant": "nobody", "model": "churn"}), id="not-an-upload"),
    pytest.param(json.dumps({"detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
                             "detail": {"bucket": {"name": "someone-elses-bucket"}, "object": {"key": "data/x/y.csv"}}}),
                 id="foreign-bucket"),
])
def test_what_is_no_tenant_upload_is_only_dead_lettered(stack: Stack, sent: Any, body: str) -> None:
    mapping, subjects = sent
    stack.sqs.send_message(QueueUrl=stack.urls[stack.names.events_queue("uploads")], MessageBody=body)
    assert mapping.poll_once() == 1
    assert _cli(stack, "executions", "list") == [] and subjects == []
