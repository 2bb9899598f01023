"""SageMaker Pipelines through the local AWS server: boto3 alone starts, follows, lists and stops executions.

The server runs here with the pipelines stand-in (mlops.local.pipelines_api), as `mlops local up` runs it;
the engine it launches is a real process running the registered definition.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops.local.pipelines_api import job_log_location
from mlops.local.server import ThreadedServer

REGION = "us-east-1"
BUCKET = "records"
ROLE = "arn:aws:iam::123456789012:role/pipeline"


@pytest.fixture(name="aws")
def _aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with ThreadedServer(engine={"record_bucket": BUCKET, "engine_dir": tmp_path / "engine"}) as url:
        clients = {name: boto3.client(name, endpoint_url=url, region_name=REGION) for name in ("sagemaker", "s3", "logs")}
        clients["s3"].create_bucket(Bucket=BUCKET)
        yield clients


def _pipeline(sm: Any, name: str, steps: list[dict[str, Any]]) -> None:
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "Limit", "Type": "Integer", "DefaultValue": 1}],
                  "Steps": steps}
    sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)


def _gate(message: str) -> list[dict[str, Any]]:
    """A condition on the parameter, failing with `message` when Limit > 2."""
    return [{"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "LessThanOrEqualTo", "LeftValue": {"Get": "Parameters.Limit"}, "RightValue": 2}],
        "IfSteps": [], "ElseSteps": [{"Name": "TooHigh", "Type": "Fail", "Arguments": {"ErrorMessage": message}}]}}]


def _wait(sm: Any, arn: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if described["PipelineExecutionStatus"] not in ("Executing", "Stopping"):
            return described
        assert time.monotonic() < deadline, f"{arn} still {described['PipelineExecutionStatus']}"
        time.sleep(0.3)


def test_an_execution_runs_its_steps_and_reports_them_as_sagemaker_does(aws: dict[str, Any]) -> None:
    sm = aws["sagemaker"]
    _pipeline(sm, "gate", _gate("Limit is above 2"))
    passing = sm.start_pipeline_execution(PipelineName="gate", PipelineParameters=[{"Name": "Limit", "Value": "1"}])
    failing = sm.start_pipeline_execution(PipelineName="gate", PipelineParameters=[{"Name": "Limit", "Value": "5"}])
    # moto alone answers Succeeded at once; the stand-in answers what the engine did
    assert sm.describe_pipeline_execution(PipelineExecutionArn=failing["PipelineExecutionArn"])[
        "PipelineExecutionStatus"] == "Executing"

    assert _wait(sm, passing["PipelineExecutionArn"])["PipelineExecutionStatus"] == "Succeeded"
    ended = _wait(sm, failing["PipelineExecutionArn"])
    assert ended["PipelineExecutionStatus"] == "Failed"
    assert ended["FailureReason"] == "Limit is above 2"

    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=failing["PipelineExecutionArn"])["PipelineExecutionSteps"]
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("TooHigh", "Failed"), ("Check", "Succeeded")]
    assert steps[1]["Metadata"] == {"Condition": {"Outcome": "false"}}
    assert steps[0]["Metadata"] == {"Fail": {"ErrorMessage": "Limit is above 2"}}
    assert steps[0]["StartTime"] >= steps[1]["StartTime"]  # boto3 parsed them as datetimes
    ascending = sm.list_pipeline_execution_steps(PipelineExecutionArn=failing["PipelineExecutionArn"], SortOrder="Ascending")
    assert [s["StepName"] for s in ascending["PipelineExecutionSteps"]] == ["Check", "TooHigh"]


def test_a_failed_job_has_its_reason_in_the_step_and_its_log_in_cloudwatch(aws: dict[str, Any]) -> None:
    sm, logs = aws["sagemaker"], aws["logs"]
    script = "import sys; print('reading the data'); sys.exit('no rows in the input')"
    _pipeline(sm, "job", [{"Name": "Prepare", "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
        "AppSpecification": {"ImageUri": "image", "ContainerEntrypoint": ["python3", "-c", script]},
        "RoleArn": ROLE}}])
    arn = sm.start_pipeline_execution(PipelineName="job")["PipelineExecutionArn"]
    ended = _wait(sm, arn)
    assert ended["PipelineExecutionStatus"] == "Failed"
    assert "no rows in the input" in ended["FailureReason"]
    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert step["StepStatus"] == "Failed" and "no rows in the input" in step["FailureReason"]
    job = step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
    group, stream = job_log_location("ProcessingJob", job, step["StartTime"].timestamp())
    lines = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]
    assert "reading the data" in lines and any("no rows in the input" in line for line in lines)


def _running(marker: str) -> list[str]:
    """Processes whose command line carries `marker`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().decode(errors="replace"):
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


def test_stop_ends_a_running_execution_and_unknown_executions_are_not_found(aws: dict[str, Any]) -> None:
    sm = aws["sagemaker"]
    marker = f"stop-me-{uuid.uuid4().hex}"
    _pipeline(sm, "slow", [{"Name": "Sleep", "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
        "AppSpecification": {"ImageUri": "image", "ContainerEntrypoint": ["python3", "-c", f"import time; time.sleep(120)  # {marker}"]},
        "RoleArn": ROLE}}])
    arn = sm.start_pipeline_execution(PipelineName="slow")["PipelineExecutionArn"]
    deadline = time.monotonic() + 30
    while not sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]:
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.3)
    sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="stop-1".ljust(32, "0"))
    ended = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert ended["PipelineExecutionStatus"] == "Stopped"
    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert step["StepStatus"] == "Stopped"
    deadline = time.monotonic() + 10
    while _running(marker):  # the step's own process (in a session of its own) is gone too
        assert time.monotonic() < deadline, "the step's process outlived the stop"
        time.sleep(0.2)
    time.sleep(1.0)  # the killed engine must not write its own end over the stop
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Stopped"
    with pytest.raises(ClientError) as stopped_again:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken="stop-2".ljust(32, "0"))
    assert stopped_again.value.response["Error"]["Code"] == "ValidationException"

    unknown = arn.rsplit("/", 1)[0] + "/nosuchexecution"
    for call in (sm.list_pipeline_execution_steps, sm.describe_pipeline_execution):
        with pytest.raises(ClientError) as missing:
            call(PipelineExecutionArn=unknown)
        assert missing.value.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException")
