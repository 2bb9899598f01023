"""Following an execution: its status and steps, from SageMaker or from the local engine's record.

On AWS, DescribePipelineExecution and ListPipelineExecutionSteps say how an execution is doing. Locally,
moto cannot (it marks every execution Succeeded at once and has no step listing), so the local engine's
record in S3 is read instead. Both are turned into one plain `Status` so `mlops train --wait` prints the
same thing in both places. No SageMaker SDK; boto3 clients are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import MlopsError

TERMINAL = ("Succeeded", "Failed", "Stopped")
#: How long a local execution may go without a record before its engine is presumed never to have started.
NO_RECORD_SECONDS = 60.0


@dataclass
class Status:
    """An execution's state, as people and --json want it."""

    arn: str
    status: str
    failure_reason: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    model_package_arn: str | None = None
    log: str | None = None

    @property
    def done(self) -> bool:
        """Whether the execution reached an end state."""
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"execution_arn": self.arn, "status": self.status, "failure_reason": self.failure_reason, "steps": self.steps,
                "metrics": self.metrics, "model_package_arn": self.model_package_arn, "engine_log": self.log}


def _step(entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("StepName", "StepType", "StepStatus", "StartTime", "EndTime", "FailureReason", "Metadata", "Seconds", "LogFile", "StderrTail")
    return {key: entry[key] for key in keep if entry.get(key) not in (None, "", {})}


def _metrics_of(report: Any) -> dict[str, Any]:
    metrics = report.get("metrics", {}) if isinstance(report, dict) else {}
    return {name: item.get("value") if isinstance(item, dict) else item for name, item in metrics.items()}


def local_status(s3: Any, record_bucket: str, arn: str, started: float) -> Status:
    """The local engine's view of an execution (closing the record of a dead engine)."""
    from mlops.local import engine

    record = engine.read_record(s3, record_bucket, arn)
    if record is None:
        if time.time() - started > NO_RECORD_SECONDS:
            return Status(arn, "Failed", "the local engine never started this execution (no record after "
                                         f"{NO_RECORD_SECONDS:.0f} s); see .mlops/engine/ for its log")
        return Status(arn, "Starting")
    if engine.is_stale(record):
        record = engine.mark_dead(s3, record_bucket, record)
    report = next((doc for files in record.get("PropertyFiles", {}).values() for doc in files.values()), None)
    return Status(arn, record.get("PipelineExecutionStatus", "Executing"), record.get("FailureReason"),
                  [_step(s) for s in record.get("Steps", [])], _metrics_of(report), record.get("ModelPackageArn"),
                  record.get("EngineLog"))


def aws_status(sm: Any, s3: Any, arn: str) -> Status:
    """SageMaker's view of an execution; metrics come from the registered package's evaluation report."""
    from mlops.aws import sagemaker as adapter

    described = adapter.describe_execution(sm, arn)
    steps = [_step(s) for s in adapter.list_execution_steps(sm, arn)]
    package = next((s["Metadata"]["RegisterModel"]["Arn"] for s in steps if "RegisterModel" in s.get("Metadata", {})), None)
    metrics: dict[str, Any] = {}
    if package:
        statistics = adapter.describe_model_package(sm, package).get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
        if statistics.get("S3Uri"):
            metrics = _metrics_of(adapter.read_json_object(s3, statistics["S3Uri"]))
    return Status(arn, described.get("PipelineExecutionStatus", "Executing"), described.get("FailureReason") or None,
                  steps, metrics, package)


def follow(read: Callable[[], Status], on_change: Callable[[Status, dict[str, Any] | None], None], *,
           timeout: float, poll: float = 1.0) -> Status:
    """Poll until the execution ends, calling `on_change(status, step)` for every step status change."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        status = read()
        for step in status.steps:
            if seen.get(step["StepName"]) != step.get("StepStatus"):
                seen[step["StepName"]] = step.get("StepStatus", "")
                on_change(status, step)
        if status.done:
            return status
        if time.monotonic() > deadline:
            raise MlopsError(f"execution {status.arn} still {status.status} after {timeout:.0f} s",
                             "follow it later with `mlops train --follow ARN`, or raise --timeout")
        time.sleep(poll)
