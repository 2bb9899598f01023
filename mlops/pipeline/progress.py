"""Following an execution: its status and steps, as SageMaker reports them.

DescribePipelineExecution and ListPipelineExecutionSteps say how an execution is doing, the failed job's
CloudWatch log stream gives its last lines, and the registered package's evaluation report its metrics. They
are turned into one plain `Status` for `mlops train --wait`, `mlops executions show` and the status handler.
The local AWS answers the same calls (mlops.local.pipelines_api). No SageMaker SDK; boto3 clients are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlops import evaluation
from mlops.errors import MlopsError
from mlops.statuses import SAGEMAKER_TERMINAL, SM_EXECUTING, SM_FAILED, SM_STOPPED

#: SageMaker's statuses of an execution that has ended (`mlops.statuses`).
TERMINAL = SAGEMAKER_TERMINAL


@dataclass
class Status:
    """An execution's state, as people and --json want it."""

    arn: str
    status: str
    failure_reason: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    model_package_arn: str | None = None

    @property
    def done(self) -> bool:
        """Whether the execution reached an end state."""
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"execution_arn": self.arn, "status": self.status, "failure_reason": self.failure_reason, "steps": self.steps,
                "metrics": self.metrics, "model_package_arn": self.model_package_arn}


def _step(entry: dict[str, Any]) -> dict[str, Any]:
    """A step of ListPipelineExecutionSteps as plain data: times as ISO 8601 text, and its seconds once ended."""
    keep = ("StepName", "StepStatus", "StartTime", "EndTime", "FailureReason", "Metadata")
    step = {key: entry[key] for key in keep if entry.get(key) not in (None, "", {})}
    start, end = step.get("StartTime"), step.get("EndTime")
    if isinstance(start, datetime) and isinstance(end, datetime):
        step["Seconds"] = round((end - start).total_seconds(), 3)
    for key in ("StartTime", "EndTime"):
        if isinstance(step.get(key), datetime):
            step[key] = step[key].astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return step


def _metrics_of(report: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report's metrics, read as the gate reads them (the headline metric's path comes with the package)."""
    metadata = metadata or {}
    return evaluation.metrics(report, metric=metadata.get("metric_name"), path=metadata.get("metric_path"))


#: CloudWatch log group of each kind of SageMaker job a step runs (streams are `<job name>/<host>`).
_JOB_LOG_GROUPS = {"TrainingJob": "/aws/sagemaker/TrainingJobs", "ProcessingJob": "/aws/sagemaker/ProcessingJobs",
                   "TransformJob": "/aws/sagemaker/TransformJobs"}
#: Lines of a failed job's log kept as its tail.
LOG_TAIL_LINES = 20


def job_log_tail(logs: Any, step: dict[str, Any], lines: int = LOG_TAIL_LINES) -> tuple[str, str] | None:
    """(log stream, last lines) of the job a failed step ran, from CloudWatch Logs; None when the step ran no job
    or its log cannot be read (no permission, no stream yet): the failure reason still stands."""
    from botocore.exceptions import BotoCoreError, ClientError

    kind, job = next(((k, v) for k, v in step.get("Metadata", {}).items() if k in _JOB_LOG_GROUPS and isinstance(v, dict)),
                     (None, None))
    if logs is None or kind is None or not job or not job.get("Arn"):
        return None
    group, name = _JOB_LOG_GROUPS[kind], str(job["Arn"]).rsplit("/", 1)[-1]
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/").get("logStreams", [])
        if not streams:
            return None
        stream = streams[0]["logStreamName"]
        events = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=lines, startFromHead=False).get("events", [])
    except (BotoCoreError, ClientError):
        return None
    return f"{group}/{stream}", "\n".join(str(e.get("message", "")).rstrip("\n") for e in events)


def aws_status(sm: Any, s3: Any, arn: str, logs: Any = None) -> Status:
    """SageMaker's view of an execution; metrics come from the registered package's evaluation report. With a
    CloudWatch Logs client, a failed step also gets its job's log tail (`LogFile`, `StderrTail`), as locally."""
    from mlops.aws import sagemaker as adapter

    described = adapter.describe_execution(sm, arn)
    steps = [_step(s) for s in adapter.list_execution_steps(sm, arn)]
    for step in steps:
        if step.get("StepStatus") == SM_FAILED and not step.get("StderrTail"):
            tail = job_log_tail(logs, step)
            if tail:
                step["LogFile"], step["StderrTail"] = tail
    package = next((s["Metadata"]["RegisterModel"]["Arn"] for s in steps if "RegisterModel" in s.get("Metadata", {})), None)
    metrics: dict[str, Any] = {}
    if package:
        registered = adapter.describe_model_package(sm, package)
        statistics = registered.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
        if statistics.get("S3Uri"):
            metrics = _metrics_of(adapter.read_json_object(s3, statistics["S3Uri"]), registered.get("CustomerMetadataProperties"))
    return Status(arn, described.get("PipelineExecutionStatus", SM_EXECUTING), described.get("FailureReason") or None,
                  steps, metrics, package)


def reader(session: Any, arn: str) -> Callable[[], Status]:
    """How to read an execution's status, clients made once: SageMaker, with the failed job's CloudWatch log tail.
    What `mlops train --wait` follows, and what the status handler and `mlops executions show` read a failure with."""
    s3, sm, logs = session.client("s3"), session.client("sagemaker"), session.client("logs")
    return lambda: aws_status(sm, s3, arn, logs)


def model_package_port(*, sagemaker: Any = None) -> Callable[[str], str | None]:
    """The model package a succeeded execution registered, for every build whatever started it: the RegisterModel
    step's metadata in ListPipelineExecutionSteps (as `mlops train --wait` reads it). The client is made when first
    needed."""
    clients: list[Any] = [sagemaker] if sagemaker is not None else []

    def registered(execution_arn: str) -> str | None:
        from mlops.aws.sagemaker import list_execution_steps

        if not clients:
            import boto3

            clients.append(boto3.client("sagemaker"))
        return next((step["Metadata"]["RegisterModel"]["Arn"] for step in list_execution_steps(clients[0], execution_arn)
                     if step.get("Metadata", {}).get("RegisterModel", {}).get("Arn")), None)

    return registered


def failure_reader(*, session: Any = None) -> Callable[[str], dict[str, Any] | None]:
    """Why a failed execution failed, by ARN, for the status handler (every build, whatever started it): the reader
    `mlops train --wait` follows. The session is made when first needed."""
    sessions: list[Any] = [session] if session is not None else []

    def failed(execution_arn: str) -> dict[str, Any] | None:
        if not sessions:
            import boto3

            sessions.append(boto3.session.Session())
        return failure(reader(sessions[0], execution_arn)())

    return failed


def failure(status: Status) -> dict[str, Any] | None:
    """Why a failed execution failed: the first failed step, its reason (else the execution's) and its log tail."""
    if status.status not in (SM_FAILED, SM_STOPPED) and not any(s.get("StepStatus") == SM_FAILED for s in status.steps):
        return None
    step = next((s for s in status.steps if s.get("StepStatus") == SM_FAILED), {})
    found = {"step": step.get("StepName"), "reason": step.get("FailureReason") or status.failure_reason,
             "log": step.get("LogFile"), "log_tail": step.get("StderrTail")}
    return {k: v for k, v in found.items() if v}


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
