"""`mlops executions`, `mlops cost report`, the cost model and notifications."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from trigger_helpers import Stack, request

from mlops.cli import cli
from mlops.cost import cost_report
from mlops.notify import Notifier
from mlops.requests import parse_status_event, status_event


def _finished(stack: Stack, tenant: str, n: int, minutes: int) -> str:
    service = stack.service()
    started = service.submit(request(tenant, n))
    event = status_event(started.execution_id, "Succeeded", started.pipeline_execution_arn, at="2026-03-01T01:00:00Z",
                         started_at="2026-03-01T00:00:00Z", ended_at=f"2026-03-01T00:{minutes:02d}:00Z")
    service.record_status(parse_status_event(json.dumps(event)))
    return started.execution_id


def _run(stack: Stack, *args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--json"], env={"MLOPS_LEDGER_TABLE": stack.names.ledger_table()},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_executions_list_and_show(stack: Stack) -> None:
    eid = _finished(stack, "acme", 1, 30)
    _finished(stack, "globex", 2, 10)
    listed = _run(stack, "executions", "list", "--tenant", "acme")
    assert [(r["execution_id"], r["status"], r["duration_seconds"]) for r in listed] == [(eid, "SUCCEEDED", 1800)]
    shown = _run(stack, "executions", "show", eid)
    assert [h["status"] for h in shown["history"]] == ["QUEUED", "STARTING", "EXECUTING", "SUCCEEDED"]
    assert shown["instance_type"] == "ml.m5.large"


def test_cost_report_per_tenant_with_a_price_override(stack: Stack, tmp_path: Any) -> None:
    _finished(stack, "acme", 1, 30)
    _finished(stack, "acme", 2, 30)
    _finished(stack, "globex", 3, 6)
    prices = tmp_path / "prices.yaml"
    prices.write_text("ml.m5.large: 1.0\n")
    report = _run(stack, "cost", "report", "--month", "2026-03", "--prices", str(prices))
    assert report["per_tenant"] == {"acme": 1.0, "globex": 0.1}
    assert [(r["tenant"], r["executions"]) for r in report["rows"]] == [("acme", 2), ("globex", 1)]


def test_cost_counts_running_executions_up_to_now_and_reports_unpriced_types() -> None:
    now = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    items = [{"tenant": "a", "model": "m", "instance_type": "ml.m5.large", "instance_count": 2,
              "started_at": "2026-03-01T00:00:00+00:00"},
             {"tenant": "a", "model": "m", "instance_type": "ml.x9.huge", "duration_seconds": 3600,
              "started_at": "2026-03-01T00:00:00+00:00"},
             {"tenant": "b", "model": "m", "instance_type": "ml.m5.large", "requested_at": "2026-03-01T00:00:00+00:00", "status": "QUEUED"}]
    report = cost_report(items, now=now).as_dict()
    assert report["per_tenant"] == {"a": round(4 * 0.115, 4), "b": 0.0}
    assert report["unpriced_instance_types"] == {"ml.x9.huge": 1}


def test_a_failing_slack_webhook_never_fails_the_build(aws: None) -> None:
    del aws
    import boto3

    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="trig-notifications")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    item = {"execution_id": "acme-churn-0123456789ab", "status": "FAILED", "tenant": "acme", "model": "churn", "version": "1.2.0",
            "failure_reason": "evaluation below threshold", "metrics": {"auc": 0.61}, "links": {"pipeline": "https://gitlab/p/1"}}
    result = Notifier(sns, topic, "http://127.0.0.1:9/unreachable", timeout_seconds=0.5).notify(item)
    assert result.sns_message_id and result.slack_ok is False
    assert result.errors and result.errors[0].startswith("slack:")
    body = json.loads(json.loads(sqs.receive_message(QueueUrl=inbox)["Messages"][0]["Body"])["Message"])
    assert (body["status"], body["metrics"], body["failure_reason"]) == ("FAILED", {"auc": 0.61}, "evaluation below threshold")


@pytest.mark.parametrize("code", [200, 500])
def test_slack_gets_the_message_and_a_5xx_is_reported_not_raised(code: int) -> None:
    import http.server
    import threading

    received: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        """A Slack incoming webhook answering `code`."""

        def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's naming
            """Take the message."""
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # pylint: disable=arguments-differ  # silence, whatever the format
            """Keep the test output clean."""
            del args

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = Notifier(slack_webhook_url=f"http://127.0.0.1:{server.server_port}/hook").notify(
            {"status": "SUCCEEDED", "tenant": "acme", "model": "churn", "links": {"mr": "https://gitlab/mr/3"}})
    finally:
        server.shutdown()
        server.server_close()
    assert result.slack_ok is (code == 200)
    assert "<https://gitlab/mr/3|mr>" in json.loads(received[0])["text"]


def test_the_terminal_event_notifies_once(stack: Stack) -> None:
    import boto3

    sns = boto3.client("sns")
    topic = sns.create_topic(Name="trig-notifications")["TopicArn"]
    sent: list[str] = []
    sns.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: sent.append(params["Subject"]))
    service = stack.service(notifier=Notifier(sns, topic))
    started = service.submit(request("acme", 1))
    event = parse_status_event(json.dumps(status_event(started.execution_id, "Succeeded", started.pipeline_execution_arn)))
    service.record_status(event)
    service.record_status(event)
    assert sent == ["[SUCCEEDED] acme/churn 1.0.1"]
    assert service.ledger.get(started.execution_id)["notified"] is True
