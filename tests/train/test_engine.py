"""The local engine runs a registered definition with an execution's parameters, on in-process moto.

The tiny model repo (standard-library scripts) keeps each run about a second; its hyperparameters make it
fail the ways a real model repo fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from train_helpers import NAMES, LocalAws, upload_tiny_data

from mlops.aws import sagemaker as adapter
from mlops.config.contract import load_contract
from mlops.local import engine
from mlops.pipeline import parameters as P
from mlops.pipeline import source
from mlops.pipeline.builder import definition_json

RECORD_BUCKET = NAMES.artifacts_bucket()
# Each run starts four script subprocesses (a few seconds): slow by the project's rule.
slow = pytest.mark.slow


def start(aws: LocalAws, repo: Path, tenant: str = "acme", tier: str = "gold", definition: str | None = None) -> str:
    """Register the repo's pipeline, upload its sources and start one execution (no engine yet).

    Against a moto server in this process, pass the `definition` built beforehand: building one runs the SDK
    inside in-process moto, which resets the server's state when it ends.
    """
    contract = load_contract(repo)
    name = NAMES.pipeline(tenant, contract.model)
    definition = definition or definition_json(contract, pipeline_name=name)
    adapter.upsert_pipeline(aws.sm, name=name, definition=definition,
                            role_arn="arn:aws:iam::123456789012:role/mlops-demo-svc-sagemaker")
    code = adapter.upload_source_bundle(aws.s3, bucket=RECORD_BUCKET, model=contract.model, bundle=source.bundle(repo))
    run = P.RunRequest(tenant=tenant, tier=tier, model=contract.model, instance_type="ml.m5.large", instance_count=1, code_uri=code,
                       image_uri=P.image_uri(NAMES, contract.model, "1.2.3"), model_version="1.2.3",
                       image_digest="sha256:" + "a" * 64, git_commit="f" * 40)
    return adapter.start_pipeline_execution(aws.sm, pipeline=name, parameters=P.execution_parameters(NAMES, run),
                                            display_name=f"{tenant}-test", description="test", token="t" * 32)


def run(aws: LocalAws, arn: str, tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    """Run the execution in this process."""
    return engine.run_execution(arn, record_bucket=RECORD_BUCKET, work_dir=tmp_path / "work", session=aws.session, **kwargs)


def steps(record: dict[str, Any]) -> dict[str, str]:
    """Step name -> status."""
    return {s["StepName"]: s["StepStatus"] for s in record["Steps"]}


def packages(aws: LocalAws, tenant: str = "acme") -> list[dict[str, Any]]:
    """The tenant's registered churn packages."""
    return adapter.list_model_packages(aws.sm, NAMES.model_package_group(tenant, "churn"))


@slow
def test_a_good_model_is_registered_with_its_metrics_and_metadata(local_aws: LocalAws, tiny_repo: Callable[..., Path],
                                                                  tmp_path: Path) -> None:
    upload_tiny_data(local_aws.s3, "acme")
    arn = start(local_aws, tiny_repo())
    record = run(local_aws, arn, tmp_path)
    assert record["PipelineExecutionStatus"] == "Succeeded", record.get("FailureReason")
    assert steps(record) == {"Preprocess": "Succeeded", "Train": "Succeeded", "Evaluate": "Succeeded", "CheckMetric": "Succeeded",
                             "Register-RegisterModel": "Succeeded"}
    [package] = packages(local_aws)
    assert record["ModelPackageArn"] == package["ModelPackageArn"]
    described = adapter.describe_model_package(local_aws.sm, package["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = described["CustomerMetadataProperties"]
    assert metadata | {"pipeline_execution_arn": arn} == {
        "semantic_version": "1.2.3", "image_digest": "sha256:" + "a" * 64, "git_commit": "f" * 40, "tenant": "acme", "tier": "gold",
        "metric_name": "auc", "metric_direction": "maximize", "metric_threshold": "0.6", "metric_min_improvement": "0.0",
        "metric_value": "0.9", "metric_path": "binary_classification_metrics.auc.value",
        "pipeline_execution_arn": arn}
    report_uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert adapter.read_json_object(local_aws.s3, report_uri)["binary_classification_metrics"] == {"auc": {"value": 0.9}}
    model_uri = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert model_uri.startswith(f"s3://{NAMES.tenant_bucket('acme')}/runs/churn/") and model_uri.endswith("/output/model.tar.gz")
    assert engine.read_record(local_aws.s3, RECORD_BUCKET, arn)["PipelineExecutionStatus"] == "Succeeded"


@slow
def test_the_record_is_what_moto_cannot_keep(local_aws: LocalAws, tiny_repo: Callable[..., Path], tmp_path: Path) -> None:
    """moto says Succeeded at once; the engine's record (read through S3) says what really happened."""
    arn = start(local_aws, tiny_repo(hyperparameters={"fail": True}))
    upload_tiny_data(local_aws.s3, "acme")
    assert local_aws.sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Succeeded"
    run(local_aws, arn, tmp_path)
    record = engine.read_record(local_aws.s3, RECORD_BUCKET, arn)
    assert record["PipelineExecutionStatus"] == "Failed"
    assert record["Parameters"]["TenantId"] == "acme" and record["Parameters"]["InstanceCount"] == 1


@pytest.mark.parametrize(("changes", "upload", "failed_step", "reason"), [
    pytest.param({"hyperparameters": {"fail": True}}, True, "Train",
                 "step Train failed: the script exited with code 1: RuntimeError: learning rate exploded: loss is NaN", id="script-raises"),
    pytest.param({}, False, "Preprocess", "step Preprocess failed: input 'data': no S3 objects found under "
                 f"s3://{NAMES.tenant_bucket('acme')}/data/churn/", id="missing-tenant-data"),
    pytest.param({"hyperparameters": {"omit_metric": True}}, True, "CheckMetric",
                 "step CheckMetric failed: property file EvaluationReport of step Evaluate has no value at "
                 "'binary_classification_metrics.auc.value'",
                 id="report-without-metric"),
    pytest.param({"metric": {"threshold": 0.95}}, True, "MetricNotMet",
                 "auc = 0.9 does not meet the threshold (>= 0.95); the model was not registered", id="metric-below-threshold"),
])
@slow
def test_bad_input_ends_failed_with_the_reason_and_registers_nothing(
        local_aws: LocalAws, tiny_repo: Callable[..., Path], tmp_path: Path, changes: dict, upload: bool, failed_step: str,
        reason: str) -> None:
    if upload:
        upload_tiny_data(local_aws.s3, "acme")
    record = run(local_aws, start(local_aws, tiny_repo(**changes)), tmp_path)
    assert record["PipelineExecutionStatus"] == "Failed"
    assert record["FailureReason"] == reason
    assert steps(record)[failed_step] == "Failed"
    assert "Register-RegisterModel" not in steps(record)
    assert not packages(local_aws)


@slow
def test_a_missing_training_channel_fails_the_training_step(local_aws: LocalAws, tiny_repo: Callable[..., Path], tmp_path: Path) -> None:
    repo = tiny_repo()
    script = repo / "src" / "preprocess.py"
    script.write_text(script.read_text(encoding="utf-8").replace('("train", "validation", "test")', '("train", "test")'), encoding="utf-8")
    upload_tiny_data(local_aws.s3, "acme")
    record = run(local_aws, start(local_aws, repo), tmp_path)
    assert record["PipelineExecutionStatus"] == "Failed"
    assert record["FailureReason"].startswith("step Train failed: channel 'validation': no S3 objects found under s3://")
    assert steps(record) == {"Preprocess": "Succeeded", "Train": "Failed"}


@slow
def test_a_hanging_script_is_stopped_and_the_execution_fails(local_aws: LocalAws, tiny_repo: Callable[..., Path], tmp_path: Path) -> None:
    repo = tiny_repo()
    script = repo / "src" / "train.py"
    script.write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    upload_tiny_data(local_aws.s3, "acme")
    record = run(local_aws, start(local_aws, repo), tmp_path, step_timeout=1.0)
    assert record["PipelineExecutionStatus"] == "Failed"
    assert record["FailureReason"] == "step Train failed: the script ran longer than 1 s and was stopped"


@slow
def test_status_changes_are_put_on_eventbridge(local_aws: LocalAws, tiny_repo: Callable[..., Path], tmp_path: Path) -> None:
    events, sqs = local_aws.session.client("events"), local_aws.session.client("sqs")
    queue = sqs.create_queue(QueueName="status-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="pipeline-status", EventPattern=json.dumps({"source": ["aws.sagemaker"],
                                                                    "detail-type": [engine.EXECUTION_EVENT]}))
    events.put_targets(Rule="pipeline-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    upload_tiny_data(local_aws.s3, "acme")
    arn = start(local_aws, tiny_repo())
    run(local_aws, arn, tmp_path)
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert [b["detail"]["currentPipelineExecutionStatus"] for b in bodies] == ["Executing", "Succeeded"]
    assert all(b["detail"]["pipelineExecutionArn"] == arn and b["detail-type"] == engine.EXECUTION_EVENT for b in bodies)


def test_a_dead_engine_does_not_leave_the_execution_executing(local_aws: LocalAws) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/mlops-demo-acme-churn/execution/deadbeef0001"
    record = {"PipelineExecutionArn": arn, "PipelineExecutionStatus": "Executing", "StartTime": "2020-01-01T00:00:00.000Z",
              "LastHeartbeat": "2020-01-01T00:00:00.000Z", "EnginePid": 999999999, "EngineHost": "elsewhere",
              "Steps": [{"StepName": "Train", "StepStatus": "Executing"}]}
    assert engine.is_stale(record)
    closed = engine.mark_dead(local_aws.s3, RECORD_BUCKET, record)
    assert closed["PipelineExecutionStatus"] == "Failed" and closed["Steps"][0]["StepStatus"] == "Failed"
    assert engine.read_record(local_aws.s3, RECORD_BUCKET, arn)["FailureReason"].startswith("the local engine (pid 999999999) stopped")
