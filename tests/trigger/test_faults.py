"""Faults the trigger path must survive without losing a request or a slot (issue class: nothing lost, nothing
leaked): refused and throttled starts, a direct call where one request fails, a terminal event that never
arrives, a backlog item that no longer reads, a CI job retried by GitLab."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from botocore.stub import Stubber
from trigger_helpers import LAMBDA_DIR, Stack, request

from mlops.statuses import EXECUTING, FAILED, QUEUED, SUCCEEDED
from mlops.aws.queues import REASON_ATTRIBUTE
from mlops.errors import MlopsError
from mlops.requests import PipelineStatusEvent, StartRejected


class FlakyStarter:
    """The moto start port, failing the first `failures` starts of chosen executions with `error`."""

    def __init__(self, stack: Stack, error: Exception, failures: dict[str, int]):
        self.stack, self.error, self.failures = stack, error, dict(failures)
        self.calls: list[str] = []

    def __call__(self, req: Any, token: str) -> str:
        self.calls.append(req.execution_id)
        if self.failures.get(req.execution_id, 0) > 0:
            self.failures[req.execution_id] -= 1
            raise self.error
        return self.stack.starter(req, token)

    def find(self, req: Any) -> str | None:
        """The moto port's own `find`."""
        return self.stack.starter.find(req)


def _service(stack: Stack, starter: Any, **kwargs: Any) -> Any:
    service = stack.service(**kwargs)
    service.context.start, service.context.find = starter, starter.find
    return service


@pytest.mark.parametrize(("code", "refused"), [("ValidationException", True), ("ResourceNotFound", True),
                                               ("AccessDeniedException", True), ("ThrottlingException", False),
                                               ("ResourceLimitExceeded", False), ("ConflictException", False)])
def test_start_errors_are_classified_by_sagemakers_error_code(aws: None, code: str, refused: bool) -> None:
    del aws
    import boto3

    from mlops.aws.sagemaker import start_pipeline_execution

    sm = boto3.client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_client_error("start_pipeline_execution", service_error_code=code, service_message="no")
        with pytest.raises(MlopsError) as raised:
            start_pipeline_execution(sm, pipeline="p", parameters={}, display_name="d", description="", token="t" * 32)
    assert isinstance(raised.value, StartRejected) is refused


def test_a_refused_start_fails_the_request_at_once_and_frees_the_slot(stack: Stack) -> None:
    first = request("acme", 1)
    starter = FlakyStarter(stack, StartRejected("SageMaker refused: ValidationException: bad parameter"), {first.execution_id: 1})
    service = _service(stack, starter)
    outcome = service.submit(first)
    assert (outcome.result, outcome.status) == ("failed", FAILED)
    assert "ValidationException" in outcome.detail
    assert starter.calls == [first.execution_id], "never retried"
    assert service.ledger.get(first.execution_id)["failure_reason"].startswith("SageMaker refused")
    assert service.slots.read_tier("gold", 3).inflight == 0


def test_a_throttled_start_neither_stops_the_round_nor_loses_its_request(stack: Stack) -> None:
    throttled = MlopsError("cannot start pipeline now: ThrottlingException: Rate exceeded")
    reqs = [request("umbrella", n) for n in range(3)] + [request("globex", 9)]
    starter = FlakyStarter(stack, throttled, {reqs[0].execution_id: 1})
    service = _service(stack, starter, lease_seconds=1, direct_start=False)
    assert all(service.submit(r).result == "queued" for r in reqs)
    # bronze (limit 1) has umbrella's three, silver globex: the throttled start of umbrella's first neither
    # raises out of the round nor keeps silver from starting.
    report = service.dispatch()
    assert report.admitted == {"bronze": 1, "silver": 1}
    assert stack.starter.starts == {reqs[3].execution_id: 1}
    assert service.ledger.get(reqs[0].execution_id)["status"] == "STARTING"  # its slot kept
    time.sleep(1.2)  # the lease: the back-off before the sweep starts it again
    report = service.dispatch()
    # Both STARTING items are retaken: umbrella's is started now; globex's (no Executing event in this test)
    # is found on SageMaker by the `find` port and not started again.
    assert report.restarted == 2
    assert stack.starter.starts == {reqs[0].execution_id: 1, reqs[3].execution_id: 1}, "each started exactly once"
    assert service.ledger.get(reqs[0].execution_id)["status"] == EXECUTING


def test_a_direct_call_answers_every_request_when_one_fails(stack: Stack) -> None:
    from mlops.builds import HandlerConfig, use_service
    from mlops.local.lambda_runtime import LambdaContext, load_handler

    good, bad = request("acme", 1), request("initech", 2)
    service = stack.service()
    submit = service.submit

    def failing(req: Any) -> Any:
        if req.execution_id == bad.execution_id:
            raise MlopsError("could not queue it: transaction conflict", "retry")
        return submit(req)

    service.submit = failing
    use_service(lambda: (service, HandlerConfig()))
    try:
        answer = load_handler(LAMBDA_DIR, "trigger")(
            {"requests": [json.loads(r.to_message()) for r in (bad, good)]}, LambdaContext("trigger"))
    finally:
        use_service(None)
    results = answer["results"]
    assert [r["result"] for r in results] == ["error", "started"]
    assert "transaction conflict" in results[0]["detail"] and "send it again" in results[0]["detail"]
    assert results[1]["execution_id"] == good.execution_id


def test_a_missed_terminal_event_is_repaired_by_the_sweep(stack: Stack) -> None:
    # umbrella's build ends on SageMaker, but its Succeeded event went to the DLQ: without the reconciler its
    # bronze slot (the only one) would be held for good and the next request would wait forever.
    sagemaker_status: dict[str, str] = {}
    service = stack.service(lease_seconds=1, status_of=lambda arn: sagemaker_status.get(arn, "Executing"))
    first = service.submit(request("umbrella", 1))
    second = service.submit(request("umbrella", 2))
    assert (first.result, second.result) == ("started", "queued")
    service.dispatch()  # files the second; nothing ended, nothing to repair
    time.sleep(1.2)
    assert service.dispatch().reconciled == {}, "still executing on SageMaker: nothing to apply"
    sagemaker_status[first.pipeline_execution_arn] = "Succeeded"
    time.sleep(1.2)
    report = service.dispatch()
    assert report.reconciled == {first.execution_id: SUCCEEDED}
    assert service.ledger.get(first.execution_id)["status"] == SUCCEEDED
    assert service.ledger.get(second.execution_id)["status"] in ("STARTING", EXECUTING), "the slot went to the next"
    assert stack.starter.starts[second.execution_id] == 1
    state = service.slots.read_tier("bronze", 1)
    assert (state.inflight, state.waiting, state.slots) == (1, 0, [second.execution_id])


def test_an_unreadable_backlog_item_goes_to_the_dlq_and_its_request_fails(stack: Stack) -> None:
    service = stack.service(handover=False)
    running = service.submit(request("umbrella", 1))
    waiting = service.submit(request("umbrella", 2))
    assert service.dispatch().filed == {"bronze": 1}
    [item] = service.slots.backlog_head("bronze", 5)
    stack.dynamodb.update_item(TableName=stack.names.slots_table(), Key={"pk": {"S": "BACKLOG#bronze"}, "sk": {"S": item["sk"]}},
                               UpdateExpression="SET #r = :r", ExpressionAttributeNames={"#r": "request"},
                               ExpressionAttributeValues={":r": {"S": "{not json"}})
    ended = service.record_status(PipelineStatusEvent(
        execution_id=running.execution_id, status="Succeeded", pipeline_execution_arn=running.pipeline_execution_arn,
        at="2026-01-01T00:10:00Z"))
    assert ended.result == "applied"
    service.dispatch()
    recorded = service.ledger.get(waiting.execution_id)
    assert recorded["status"] == FAILED and "cannot be read" in recorded["failure_reason"]
    [dead] = stack.dlq_messages(stack.names.tier_queue("bronze"))
    assert dead["Body"] == "{not json"
    assert "cannot be read" in dead["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    state = service.slots.read_tier("bronze", 1)
    assert (state.inflight, state.waiting) == (0, 0)
    assert service.slots.backlog_head("bronze", 5) == []
    assert QUEUED not in {i["status"] for i in service.ledger.scan(tenant="umbrella")}


def test_a_ci_job_retried_by_gitlab_asks_for_the_same_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops.cli.train import _dedup_id

    monkeypatch.setenv("CI_PIPELINE_ID", "4242")
    monkeypatch.setenv("CI_JOB_ID", "1")
    first = request("acme", 1, dedup_id=_dedup_id())
    monkeypatch.setenv("CI_JOB_ID", "2")  # GitLab's retry of the same job
    assert request("acme", 1, dedup_id=_dedup_id()).execution_id == first.execution_id
    monkeypatch.setenv("CI_PIPELINE_ID", "4243")  # a new pipeline of the same commit: a new build
    assert request("acme", 1, dedup_id=_dedup_id()).execution_id != first.execution_id


def test_a_queued_request_started_elsewhere_leaves_no_count_behind(stack: Stack) -> None:
    # A filed request that a status event moved on (its build started by another way): admission finds it no
    # longer QUEUED and takes it out of the backlog and out of the waiting counts.
    service = stack.service(handover=False, direct_start=False)
    moved = service.submit(request("umbrella", 1))
    assert service.dispatch().admitted == {"bronze": 1}
    other = service.submit(request("umbrella", 2))
    assert service.dispatch().filed == {"bronze": 1}
    service.record_status(PipelineStatusEvent(execution_id=other.execution_id, status="Executing",
                                              pipeline_execution_arn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/y",
                                              at="2026-01-01T00:05:00Z"))
    service.record_status(PipelineStatusEvent(execution_id=moved.execution_id, status="Succeeded",
                                              pipeline_execution_arn=stack.starter.arns[moved.execution_id],
                                              at="2026-01-01T00:10:00Z"))
    service.dispatch()
    state = service.slots.read_tier("bronze", 1)
    assert (state.waiting, state.tenants["umbrella"].waiting) == (0, 0)
    assert service.slots.backlog_head("bronze", 5) == []


def test_drifted_counts_are_corrected_by_the_recount(stack: Stack) -> None:
    service = stack.service(lease_seconds=0, handover=False)
    service.context.settings = dataclasses.replace(service.context.settings, recount_every_seconds=0)  # at every run
    running = service.submit(request("umbrella", 1))
    assert running.result == "started"
    # Counts gone wrong (a lost write of an older release, a hand edit): two in flight, five waiting, three
    # unfiled, while bronze runs one build and nothing waits.
    stack.dynamodb.update_item(TableName=stack.names.slots_table(), Key={"pk": {"S": "TIER#bronze"}, "sk": {"S": "#COUNTER"}},
                               UpdateExpression="SET inflight = :i, waiting = :w, unfiled = :u",
                               ExpressionAttributeValues={":i": {"N": "2"}, ":w": {"N": "5"}, ":u": {"N": "3"}})
    first = service.dispatch().recounted
    assert first == {"bronze/tier.inflight": [2, 1], "bronze/tier.waiting": [5, 3]}, "unfiled: not on one look"
    second = service.dispatch().recounted
    assert second == {"bronze/tier.waiting": [3, 0], "bronze/tier.unfiled": [3, 0]}, "two empty looks in a row"
    assert service.dispatch().recounted == {}
    service.record_status(PipelineStatusEvent(execution_id=running.execution_id, status="Succeeded",
                                              pipeline_execution_arn=running.pipeline_execution_arn, at="2026-01-01T00:10:00Z"))
    assert service.submit(request("umbrella", 2)).result == "started", "the freed slot is usable at once"


def test_the_status_port_answers_what_sagemaker_says(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The reconciler's port is DescribePipelineExecution. On the local AWS the engine runs the execution, so the
    # port sees it Executing, then Failed by its fail step (moto alone would answer Succeeded from the start).
    import boto3

    from mlops.pipeline import ports
    from mlops.naming import Names

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setattr(ports._LOCAL, "session", boto3.session.Session(), raising=False)  # pylint: disable=protected-access  # the port's session, on the server
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    bucket = Names(project="mlops-demo", account_id="123456789012", region="us-east-1").artifacts_bucket()
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)  # the engine's records (the server's record bucket)
    definition = {"Version": "2020-12-01", "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}
    sm.create_pipeline(PipelineName="status-port", PipelineDefinition=json.dumps(definition),
                       RoleArn="arn:aws:iam::123456789012:role/r")
    arn = sm.start_pipeline_execution(PipelineName="status-port", ClientRequestToken="t" * 32)["PipelineExecutionArn"]
    seen = [ports.execution_status(arn)]
    deadline = time.monotonic() + 60
    while seen[-1] == "Executing" and time.monotonic() < deadline:
        time.sleep(0.3)
        seen.append(ports.execution_status(arn))
    assert seen[0] == "Executing" and seen[-1] == "Failed", seen
