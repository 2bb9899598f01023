"""The local pipeline engine: runs a registered SageMaker pipeline execution on this machine, without Docker.

moto records a pipeline execution and marks it Succeeded at once, without running a step. The engine
reads what SageMaker would run through the same AWS calls: the definition the execution was started with
(DescribePipelineDefinitionForExecution) and its parameters (ListPipelineParametersForExecution). It then
runs the steps in dependency order: processing and training jobs as subprocesses under the container
contract (`mlops.local.container`: each in a private mount namespace with SageMaker's `/opt/ml` paths, as
the job's role: its RoleArn is assumed through STS and the job's S3 transfers and its script use those
credentials), `Get` / `Std:Join` / `Std:JsonGet` and conditions evaluated from the
definition (`mlops.local.engine_expressions`), model packages registered with CreateModelPackage, and a
fail step ending the execution with its message.

moto cannot store an execution's status or its steps, so the engine keeps an *execution record* in S3
(`s3://<record bucket>/local-engine/<pipeline>/<execution id>.json`, with the shape of
DescribePipelineExecution plus `Steps` shaped like ListPipelineExecutionSteps) and puts the status-change
events SageMaker would put on EventBridge. The record is written in a `finally`, and a heartbeat in it lets
a reader tell a crashed engine from a slow step, so no execution stays "Executing" forever.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlops.aws import errors
from mlops.local import container
from mlops.local.engine_expressions import Context, ExpressionError, evaluate_condition, execution_order, parameter_values, resolve
from mlops.naming import sagemaker_job_arn
from mlops.statuses import SAGEMAKER_TERMINAL

RECORD_PREFIX = "local-engine"
HEARTBEAT_SECONDS = 5.0
#: A record whose heartbeat is older than this, from an engine process that is gone, is a dead execution.
STALE_SECONDS = 30.0
DEFAULT_STEP_TIMEOUT = 3600.0
EXECUTION_EVENT = "SageMaker Model Building Pipeline Execution Status Change"
STEP_EVENT = "SageMaker Model Building Pipeline Execution Step Status Change"
EVENT_SOURCE = "aws.sagemaker"

# CreateModelPackage takes these keys of a RegisterModel step's arguments (the SDK adds a few of its own).
_MODEL_PACKAGE_KEYS = ("ModelPackageGroupName", "ModelPackageDescription", "InferenceSpecification", "ModelApprovalStatus",
                       "ModelMetrics", "CustomerMetadataProperties", "MetadataProperties", "DriftCheckBaselines", "Domain",
                       "Task", "SamplePayloadUrl", "AdditionalInferenceSpecifications", "Tags")


def now() -> datetime:
    """The current time in UTC (records and events use ISO 8601)."""
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_key(execution_arn: str) -> str:
    """Where an execution's record lives in the record bucket."""
    pipeline, execution_id = parse_execution_arn(execution_arn)
    return f"{RECORD_PREFIX}/{pipeline}/{execution_id}.json"


def parse_execution_arn(execution_arn: str) -> tuple[str, str]:
    """`arn:aws:sagemaker:r:a:pipeline/<name>/execution/<id>` -> (name, id)."""
    resource = execution_arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) != 4 or parts[0] != "pipeline" or parts[2] != "execution":
        raise ValueError(f"'{execution_arn}' is not a pipeline execution ARN")
    return parts[1], parts[3]


def read_record(s3: Any, bucket: str, execution_arn: str) -> dict[str, Any] | None:
    """The engine's record of an execution, or None if the engine has not written one yet."""
    try:
        body = s3.get_object(Bucket=bucket, Key=record_key(execution_arn))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def is_stale(record: dict[str, Any], at: datetime | None = None) -> bool:
    """An Executing record whose engine stopped writing (crashed or killed) long ago."""
    if record.get("PipelineExecutionStatus") in SAGEMAKER_TERMINAL:
        return False
    beat = datetime.fromisoformat(str(record.get("LastHeartbeat", record.get("StartTime"))).replace("Z", "+00:00"))
    if ((at or now()) - beat).total_seconds() < STALE_SECONDS:
        return False
    pid = record.get("EnginePid")
    if pid and record.get("EngineHost") == os.uname().nodename:
        try:
            os.kill(int(pid), 0)
            return False
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return True


def mark_dead(s3: Any, bucket: str, record: dict[str, Any]) -> dict[str, Any]:
    """Close the record of an execution whose engine died, so it never stays Executing."""
    record = dict(record)
    record["PipelineExecutionStatus"] = "Failed"
    record["FailureReason"] = (f"the local engine (pid {record.get('EnginePid')}) stopped without finishing; "
                               f"see {record.get('EngineLog', 'its log')}")
    record["EndTime"] = _iso(now())
    for step in record.get("Steps", []):
        if step.get("StepStatus") in ("Starting", "Executing"):
            step.update(StepStatus="Failed", EndTime=record["EndTime"], FailureReason="the local engine stopped")
    s3.put_object(Bucket=bucket, Key=record_key(record["PipelineExecutionArn"]), Body=json.dumps(record, indent=1).encode(),
                  ContentType="application/json")
    return record


class StepFailed(Exception):
    """A step ended the execution; `reason` is what the user sees."""

    def __init__(self, reason: str, details: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}


@dataclass
class Engine:  # pylint: disable=too-many-instance-attributes  # the clients and the record belong together
    """One execution being run: its clients, folders and record."""

    sagemaker: Any
    s3: Any
    events: Any
    execution_arn: str
    record_bucket: str
    work_dir: Path
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    #: boto3 session of the engine; with it, each job runs as its role (without it, with the engine's clients)
    session: Any = None
    record: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _property_files: dict[tuple[str, str], Any] = field(default_factory=dict)

    # -- record and events ------------------------------------------------------------------------
    def save(self) -> None:
        """Write the record (also the heartbeat) to S3."""
        with self._lock:
            self.record["LastHeartbeat"] = _iso(now())
            body = json.dumps(self.record, indent=1, default=str).encode()
            self.s3.put_object(Bucket=self.record_bucket, Key=record_key(self.execution_arn), Body=body,
                               ContentType="application/json")

    def _event(self, detail_type: str, detail: dict[str, Any]) -> None:
        """Put the status-change event SageMaker would put; an EventBridge hiccup never fails a run."""
        try:
            self.events.put_events(Entries=[{
                "Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail, default=str),
                "Resources": [self.record.get("PipelineArn", ""), self.execution_arn],
            }])
        except Exception as exc:  # pylint: disable=broad-exception-caught  # events are best effort, as in AWS
            self.record.setdefault("EventErrors", []).append(f"{detail_type}: {exc}")

    def set_status(self, status: str, reason: str | None = None) -> None:
        """Change the execution status, record it and announce it."""
        previous = self.record.get("PipelineExecutionStatus")
        self.record["PipelineExecutionStatus"] = status
        self.record["LastModifiedTime"] = _iso(now())
        if reason:
            self.record["FailureReason"] = reason
        if status in SAGEMAKER_TERMINAL:
            self.record["EndTime"] = self.record["LastModifiedTime"]
        self.save()
        self._event(EXECUTION_EVENT, {
            "pipelineArn": self.record.get("PipelineArn"), "pipelineExecutionArn": self.execution_arn,
            "pipelineExecutionDisplayName": self.record.get("PipelineExecutionDisplayName"),
            "pipelineExecutionDescription": self.record.get("PipelineExecutionDescription"),
            "currentPipelineExecutionStatus": status, "previousPipelineExecutionStatus": previous,
            "executionStartTime": self.record.get("StartTime"), "executionEndTime": self.record.get("EndTime"),
            "failureReason": self.record.get("FailureReason"),
        })

    def set_step(self, step: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
        """Change a step's status in the record (adding it on first sight) and announce it."""
        entry = next((s for s in self.record["Steps"] if s["StepName"] == step["Name"]), None)
        if entry is None:
            entry = {"StepName": step["Name"], "StepDisplayName": step.get("DisplayName", step["Name"]),
                     "StepType": step.get("Type"), "StartTime": _iso(now()), "Metadata": {}}
            self.record["Steps"].append(entry)
        previous = entry.get("StepStatus")
        entry["StepStatus"] = status
        entry.update(fields)
        if status in ("Succeeded", "Failed", "Stopped"):
            entry["EndTime"] = _iso(now())
        self.save()
        self._event(STEP_EVENT, {
            "pipelineArn": self.record.get("PipelineArn"), "pipelineExecutionArn": self.execution_arn,
            "stepName": step["Name"], "stepType": step.get("Type"), "currentStepStatus": status,
            "previousStepStatus": previous, "stepStartTime": entry.get("StartTime"), "stepEndTime": entry.get("EndTime"),
            "metadata": entry.get("Metadata", {}), "failureReason": entry.get("FailureReason"),
        })
        return entry

    # -- running ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run the execution to an end state; always leaves a terminal record behind."""
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True)
        try:
            self._start()
            beat.start()
            self._run_steps()
            if self.record["PipelineExecutionStatus"] == "Executing":
                self.set_status("Succeeded")
        except StepFailed as exc:
            self.set_status("Failed", exc.reason)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # never leave an execution Executing
            self.record["EngineTraceback"] = traceback.format_exc()
            self.set_status("Failed", f"local engine error: {type(exc).__name__}: {exc}")
        finally:
            stop.set()
            if self.record.get("PipelineExecutionStatus") not in SAGEMAKER_TERMINAL:
                self.set_status("Failed", "the local engine stopped before the execution finished")
        return self.record

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                self.save()
            except Exception:  # pylint: disable=broad-exception-caught  # a missed beat is retried next time
                continue

    def _start(self) -> None:
        described = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=self.execution_arn)
        pipeline_name, execution_id = parse_execution_arn(self.execution_arn)
        started = now()
        self.record = {
            "PipelineArn": described.get("PipelineArn"), "PipelineExecutionArn": self.execution_arn,
            "PipelineName": pipeline_name, "PipelineExecutionId": execution_id,
            "PipelineExecutionDisplayName": described.get("PipelineExecutionDisplayName"),
            "PipelineExecutionDescription": described.get("PipelineExecutionDescription"),
            "PipelineExecutionStatus": "Executing", "StartTime": _iso(started), "Steps": [],
            "EnginePid": os.getpid(), "EngineHost": os.uname().nodename, "WorkDir": str(self.work_dir),
            "EngineLog": str(self.work_dir / "engine.log"), "Parameters": {}, "PropertyFiles": {},
        }
        self.set_status("Executing")
        paths = container.isolation()
        if not paths.real_paths:
            self.record["Warnings"] = [paths.warning()]
            print(f"{self.execution_arn}: {paths.warning()}", file=sys.stderr, flush=True)
        definition = json.loads(self.sagemaker.describe_pipeline_definition_for_execution(
            PipelineExecutionArn=self.execution_arn)["PipelineDefinition"])
        pages = self.sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(PipelineExecutionArn=self.execution_arn)
        given = {p["Name"]: p["Value"] for page in pages for p in page.get("PipelineParameters", [])}
        try:
            params = parameter_values(definition.get("Parameters", []), given)
        except ExpressionError as exc:
            raise StepFailed(str(exc)) from None
        self.record["Parameters"] = params
        self.definition = definition  # pylint: disable=attribute-defined-outside-init  # set once the run starts
        self.context = Context(  # pylint: disable=attribute-defined-outside-init
            parameters=params,
            execution={"PipelineExecutionId": execution_id, "PipelineExecutionArn": self.execution_arn,
                       "PipelineName": pipeline_name, "StartDateTime": _iso(started), "CurrentDateTime": _iso(started)},
            read_property_file=self._read_property_file,
        )

    def _run_steps(self) -> None:
        try:
            order = execution_order(self.definition.get("Steps", []))
        except ExpressionError as exc:
            raise StepFailed(f"invalid pipeline definition: {exc}") from None
        for step in order:
            self._run_step(step)
            if self.record["PipelineExecutionStatus"] != "Executing":
                return

    def _run_step(self, step: dict[str, Any]) -> None:
        kind = step.get("Type")
        handler = {"Processing": self._processing, "Training": self._training, "Condition": self._condition,
                   "RegisterModel": self._register, "Fail": self._fail}.get(kind)
        self.set_step(step, "Executing")
        self.context.execution["CurrentDateTime"] = _iso(now())
        try:
            if handler is None:
                raise StepFailed(f"step type '{kind}' is not supported by the local engine")
            try:
                metadata = handler(step)
            except ExpressionError as exc:
                raise StepFailed(str(exc)) from None
        except StepFailed as exc:
            self.set_step(step, "Failed", FailureReason=exc.reason, **exc.details)
            reason = exc.reason if kind == "Fail" else f"step {step['Name']} failed: {exc.reason}"
            raise StepFailed(reason) from None
        self.set_step(step, "Succeeded", Metadata=metadata)
        if kind == "Condition":
            # The chosen branch runs after the condition step has succeeded, as steps of their own.
            branch = "IfSteps" if metadata["Condition"]["Outcome"] == "true" else "ElseSteps"
            for inner in step.get("Arguments", {}).get(branch, []):
                self._run_step(inner)

    def _job_name(self, step: dict[str, Any]) -> str:
        return f"pipelines-{self.context.execution['PipelineExecutionId']}-{step['Name'][:24]}-{secrets.token_hex(4)}"

    def _as_role(self, role_arn: Any) -> tuple[Any, dict[str, str]]:
        """An S3 client and the environment credentials of the job's role, as SageMaker assumes it for a job."""
        if self.session is None:
            return self.s3, {}
        if not role_arn:
            raise StepFailed("the job request has no RoleArn to run as")
        sts = self.session.client("sts")
        try:
            answer = sts.assume_role(RoleArn=str(role_arn), RoleSessionName="SageMaker")["Credentials"]
        except sts.exceptions.ClientError as exc:
            raise StepFailed(f"cannot assume the job's role {role_arn}: {errors.message(exc) or exc}") from None
        import boto3  # pylint: disable=import-outside-toplevel  # the engine module stays importable without it

        role = boto3.session.Session(aws_access_key_id=answer["AccessKeyId"], aws_secret_access_key=answer["SecretAccessKey"],
                                     aws_session_token=answer["SessionToken"], region_name=self.session.region_name)
        return role.client("s3"), {"AWS_ACCESS_KEY_ID": answer["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": answer["SecretAccessKey"],
                                   "AWS_SESSION_TOKEN": answer["SessionToken"]}

    def _job(self, step: dict[str, Any], kind: str) -> dict[str, Any]:
        request = resolve(step.get("Arguments", {}), self.context)
        name = self._job_name(step)
        folder = self.work_dir / step["Name"]
        s3, credentials = self._as_role(request.get("RoleArn"))
        try:
            if kind == "ProcessingJob":
                result = container.run_processing(request, s3=s3, folder=folder, timeout=self.step_timeout, credentials=credentials)
                properties = {**result.properties, "ProcessingJobName": name}
            else:
                result = container.run_training(request, s3=s3, folder=folder, timeout=self.step_timeout, job_name=name,
                                                job_arn=self._job_arn(kind, name), credentials=credentials)
                properties = result.properties
        except container.JobFailed as exc:
            raise StepFailed(exc.reason, {"LogFile": str(folder / "job.log"), "StderrTail": exc.log_tail,
                                          "Metadata": {kind: {"Arn": self._job_arn(kind, name)}}}) from None
        properties[f"{kind}Arn"] = self._job_arn(kind, name)
        self.context.steps[step["Name"]] = properties
        self.set_step(step, "Executing", LogFile=str(result.log_file), Seconds=round(result.seconds, 3))
        return {kind: {"Arn": self._job_arn(kind, name)}}

    def _job_arn(self, kind: str, name: str) -> str:
        region, account = self.execution_arn.split(":")[3:5]
        return sagemaker_job_arn(region, account, kind, name)

    def _processing(self, step: dict[str, Any]) -> dict[str, Any]:
        metadata = self._job(step, "ProcessingJob")
        for prop in step.get("PropertyFiles", []):
            self._load_property_file(step["Name"], prop)
        return metadata

    def _training(self, step: dict[str, Any]) -> dict[str, Any]:
        return self._job(step, "TrainingJob")

    def _load_property_file(self, step_name: str, prop: dict[str, Any]) -> None:
        """Read a property file from the step's output, as SageMaker does right after the job."""
        outputs = self.context.steps[step_name].get("ProcessingOutputConfig", {}).get("Outputs", [])
        output = next((o for o in outputs if o.get("OutputName") == prop["OutputName"]), None)
        name = prop["PropertyFileName"]
        if output is None:
            raise StepFailed(f"property file {name}: the step has no output named '{prop['OutputName']}'")
        bucket, prefix = container.split_s3(output["S3Output"]["S3Uri"])
        key = f"{prefix.rstrip('/')}/{prop['FilePath']}"
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            raise StepFailed(f"property file {name}: the script wrote no {prop['FilePath']} (s3://{bucket}/{key})") from None
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise StepFailed(f"property file {name}: {prop['FilePath']} is not valid JSON ({exc})") from None
        self._property_files[(step_name, name)] = document
        self.record["PropertyFiles"].setdefault(step_name, {})[name] = document

    def _read_property_file(self, step: str, name: str) -> Any:
        if (step, name) not in self._property_files:
            raise ExpressionError(f"step {step} has no property file {name}")
        return self._property_files[(step, name)]

    def _condition(self, step: dict[str, Any]) -> dict[str, Any]:
        conditions = step.get("Arguments", {}).get("Conditions", [])
        outcome = all(evaluate_condition(condition, self.context) for condition in conditions)
        return {"Condition": {"Outcome": str(outcome).lower()}}

    def _register(self, step: dict[str, Any]) -> dict[str, Any]:
        arguments = resolve(step.get("Arguments", {}), self.context)
        request = {key: arguments[key] for key in _MODEL_PACKAGE_KEYS if arguments.get(key) not in (None, {}, [])}
        if "ModelMetrics" in request:
            request["ModelMetrics"] = {k: v for k, v in request["ModelMetrics"].items() if v}
        if "CustomerMetadataProperties" in request:
            request["CustomerMetadataProperties"] = {k: str(v) for k, v in request["CustomerMetadataProperties"].items()}
        try:
            arn = self.sagemaker.create_model_package(**request)["ModelPackageArn"]
        except self.sagemaker.exceptions.ClientError as exc:
            raise StepFailed(f"CreateModelPackage failed: {errors.message(exc) or exc}") from None
        self.record["ModelPackageArn"] = arn
        self.record["ModelPackageMetadata"] = request.get("CustomerMetadataProperties", {})
        self.context.steps[step["Name"]] = {"ModelPackageArn": arn}
        return {"RegisterModel": {"Arn": arn}}

    def _fail(self, step: dict[str, Any]) -> dict[str, Any]:
        message = resolve(step.get("Arguments", {}).get("ErrorMessage", ""), self.context)
        raise StepFailed(str(message) or f"fail step {step['Name']} reached",
                         {"Metadata": {"Fail": {"ErrorMessage": str(message)}}})


def run_execution(execution_arn: str, *, record_bucket: str, work_dir: Path, session: Any = None,
                  step_timeout: float = DEFAULT_STEP_TIMEOUT) -> dict[str, Any]:
    """Run one execution to its end and return its record (boto3 clients from `session` or the default)."""
    import boto3

    session = session or boto3.session.Session()
    work_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine(sagemaker=session.client("sagemaker"), s3=session.client("s3"), events=session.client("events"),
                    execution_arn=execution_arn, record_bucket=record_bucket, work_dir=work_dir, step_timeout=step_timeout,
                    session=session)
    return engine.run()


def main(argv: list[str] | None = None) -> int:
    """`python -m mlops.local.engine --execution-arn ARN --record-bucket B --work-dir D`."""
    parser = argparse.ArgumentParser(prog="python -m mlops.local.engine", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--execution-arn", required=True)
    parser.add_argument("--record-bucket", required=True)
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--step-timeout", type=float, default=DEFAULT_STEP_TIMEOUT)
    args = parser.parse_args(argv)
    record = run_execution(args.execution_arn, record_bucket=args.record_bucket, work_dir=args.work_dir,
                           step_timeout=args.step_timeout)
    print(f"{args.execution_arn}: {record['PipelineExecutionStatus']} {record.get('FailureReason', '')}".rstrip())
    return 0 if record["PipelineExecutionStatus"] == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
