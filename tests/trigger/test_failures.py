"""A failed build says where and why wherever people look: the status event records the failing step, the reason
and the log tail in the ledger (whatever started the build), `mlops executions list|show` show them, and the
notification carries them. The reader is the one `mlops train --wait` follows (mlops.pipeline.progress)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from trigger_helpers import Stack, request

from mlops.cli import cli
from mlops.notify import slack_payload
from mlops.pipeline.progress import Status, failure, job_log_tail
from mlops.requests import parse_status_event, status_event

TAIL = "Traceback (most recent call last):\n  File \"train.py\", line 3\nKeyError: 'churned'"


def _cli(stack: Stack, *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env={"MLOPS_LEDGER_TABLE": stack.names.ledger_table(), "COLUMNS": "400"},
                                catch_exceptions=False)  # a wide table: no cell wraps
    assert result.exit_code == 0, result.output
    return result


def test_a_failed_build_records_its_step_reason_and_log_tail_and_the_commands_show_them(stack: Stack) -> None:
    asked: list[str] = []

    def failure_of(arn: str) -> dict[str, Any]:
        asked.append(arn)
        return {"step": "Train", "reason": "AlgorithmError: KeyError: 'churned'", "log": "/aws/sagemaker/TrainingJobs/job/algo-1",
                "log_tail": TAIL}

    service = stack.service(failure_of=failure_of)
    started = service.submit(request("acme", 1))
    event = status_event(started.execution_id, "Failed", started.pipeline_execution_arn, at="2026-03-01T01:00:00.123456Z",
                         started_at="2026-03-01T00:00:00Z", ended_at="2026-03-01T00:01:30Z")
    service.record_status(parse_status_event(json.dumps(event)))
    assert asked == [started.pipeline_execution_arn]
    item = service.ledger.get(started.execution_id)
    assert (item["failed_step"], item["failure_reason"], item["log_tail"]) == ("Train", "AlgorithmError: KeyError: 'churned'", TAIL)
    assert item["history"][-1]["detail"] == "AlgorithmError: KeyError: 'churned'"

    listed = json.loads(_cli(stack, "executions", "list", "--json").stdout)
    assert [(r["status"], r["failed_step"], r["failure_reason"]) for r in listed] == [
        ("FAILED", "Train", "AlgorithmError: KeyError: 'churned'")]
    text = _cli(stack, "executions", "list").output
    assert "Train: AlgorithmError: KeyError: 'churned'" in text and "1 min 30 s" in text
    shown = _cli(stack, "executions", "show", started.execution_id).output
    assert "failed in step Train: AlgorithmError: KeyError: 'churned'" in shown
    assert "  | KeyError: 'churned'" in shown
    assert "2026-03-01T01:00:00Z" in shown and ".123456" not in shown  # one time format, to the second
    assert "failure in Train: AlgorithmError" in slack_payload(item)["text"]


def test_a_failure_that_cannot_be_read_still_records_the_end(stack: Stack) -> None:
    def broken(arn: str) -> dict[str, Any]:
        raise RuntimeError(f"no access to {arn}")

    service = stack.service(failure_of=broken)
    started = service.submit(request("acme", 2))
    service.record_status(parse_status_event(json.dumps(status_event(started.execution_id, "Failed", started.pipeline_execution_arn))))
    item = service.ledger.get(started.execution_id)
    assert item["status"] == "FAILED" and "failed_step" not in item


@pytest.mark.parametrize(("status", "expected"), [
    pytest.param(Status("arn", "Failed", "step Train failed", [
        {"StepName": "Preprocess", "StepStatus": "Succeeded"},
        {"StepName": "Train", "StepStatus": "Failed", "FailureReason": "ClientError: no data", "LogFile": "job.log", "StderrTail": "x"},
        {"StepName": "Evaluate", "StepStatus": "Failed", "FailureReason": "later"}]),
        {"step": "Train", "reason": "ClientError: no data", "log": "job.log", "log_tail": "x"}, id="first-failed-step"),
    pytest.param(Status("arn", "Failed", "the local engine stopped"), {"reason": "the local engine stopped"}, id="no-step"),
    pytest.param(Status("arn", "Succeeded", None, [{"StepName": "Train", "StepStatus": "Succeeded"}]), None, id="succeeded"),
])
def test_the_failure_of_a_status(status: Status, expected: dict[str, Any] | None) -> None:
    assert failure(status) == expected


def test_the_log_tail_of_a_failed_job_comes_from_cloudwatch(aws: None) -> None:  # pylint: disable=unused-argument
    import time

    import boto3

    logs = boto3.client("logs")
    now = int(time.time() * 1000)  # CloudWatch refuses events older than 14 days
    group = "/aws/sagemaker/TrainingJobs"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="pipelines-abc-Train/algo-1-1700000000")
    logs.put_log_events(logGroupName=group, logStreamName="pipelines-abc-Train/algo-1-1700000000",
                        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(30)])
    step = {"StepName": "Train", "StepStatus": "Failed",
            "Metadata": {"TrainingJob": {"Arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/pipelines-abc-Train"}}}
    where, tail = job_log_tail(logs, step, lines=3)
    assert where == f"{group}/pipelines-abc-Train/algo-1-1700000000"
    assert tail.splitlines() == ["line 27", "line 28", "line 29"]
    assert job_log_tail(logs, {"StepName": "Check", "Metadata": {"Condition": {"Outcome": "False"}}}) is None
    missing = {"Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:us-east-1:123456789012:processing-job/none"}}}
    assert job_log_tail(logs, missing) is None  # no such log group: the reason stands without a tail
