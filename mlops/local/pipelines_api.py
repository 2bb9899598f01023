"""SageMaker Pipelines on the local AWS: the executions moto records, run by the local engine.

moto stores pipelines and executions and answers every execution `Succeeded` from its start, without
running a step; it has no ListPipelineExecutionSteps and no StopPipelineExecution. This WSGI middleware sits
in front of moto in the local AWS process (`mlops.local.server`) and makes those operations behave as on
SageMaker, so the product drives pipelines with boto3 alone:

- StartPipelineExecution: moto records the execution; the local engine (`mlops.local.engine`) is then
  launched for it, detached, with its work folder under the engine folder. Not copied: queueing behind
  SageMaker's concurrency limits.
- DescribePipelineExecution: moto's answer, with the status, failure reason and times of the engine's
  execution record (a dead engine's record is closed as Failed). Not copied: `PipelineExperimentConfig`,
  `SelectiveExecutionConfig`.
- ListPipelineExecutionSteps: the record's steps, newest first unless asked otherwise, in SageMaker's shape
  (status, times, failure reason, job / model package / condition / fail metadata); each ended job's log is
  put into CloudWatch Logs where SageMaker puts it (`/aws/sagemaker/<kind>Jobs`, `<job>/algo-1-<epoch>`).
  Not copied: pagination (an execution has a handful of steps), retried attempts.
- StopPipelineExecution: stops the engine and the step it runs; the execution and its running steps end
  `Stopped`. Not copied: the `Stopping` state and a step's own stop handling.

The engine keeps its record in S3 (`mlops.local.engine.record_key` in the record bucket), as the shape of
DescribePipelineExecution plus `Steps`; the middleware reads it through the same server with boto3.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.local.processes import pid_alive, terminate_tree
from mlops.local.wsgi import Answer, answer_of, json_request

LOG = logging.getLogger("mlops.local.pipelines_api")
TARGET_PREFIX = "SageMaker."
#: A launched engine that wrote no record yet is Executing this long; after that, and dead, it Failed.
NO_RECORD_SECONDS = 60.0
_STEP_KEYS = ("StepName", "StepDisplayName", "StepStatus", "FailureReason", "Metadata")
_METADATA_KEYS = ("ProcessingJob", "TrainingJob", "RegisterModel", "Condition", "Fail", "Model", "TransformJob")

StartResponse = Callable[..., Any]


@dataclass
class _Launched:
    pid: int
    started: float
    work_dir: Path


def _epoch(value: Any) -> float | None:
    """An ISO 8601 time of the record as the epoch seconds the JSON protocol carries."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps({"__type": code, "message": message}).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body))),
                            ("x-amzn-ErrorType", code)])
    return [body]


def _json(start_response: StartResponse, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]


class PipelinesApi:
    """WSGI middleware: SageMaker Pipelines operations answered with the local engine's runs."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, record_bucket: str, engine_dir: Path,
                 endpoint_url: Callable[[], str], step_timeout: float | None = None):
        self.app = app
        self.record_bucket = record_bucket
        self.engine_dir = engine_dir
        self.endpoint_url = endpoint_url
        self.step_timeout = step_timeout
        self._launched: dict[str, _Launched] = {}
        self._lock = threading.Lock()
        self._s3: Any = None
        self._published: set[str] = set()
        self._log_lock = threading.Lock()

    # -- WSGI ---------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(TARGET_PREFIX):
            return self.app(environ, start_response)
        operation = target[len(TARGET_PREFIX):]
        handler = {"StartPipelineExecution": self._start, "DescribePipelineExecution": self._describe,
                   "ListPipelineExecutionSteps": self._steps, "StopPipelineExecution": self._stop}.get(operation)
        if handler is None:
            return self.app(environ, start_response)
        request = json_request(environ)
        if request is None:
            return self.app(environ, start_response)  # moto answers a malformed body as AWS does
        return handler(environ, start_response, request)

    def _inner(self, environ: dict[str, Any]) -> Answer:
        """moto's answer to the request, kept to be changed or passed on."""
        return answer_of(self.app, environ)

    @staticmethod
    def _pass(start_response: StartResponse, status: str, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
        start_response(status, headers)
        return [body]

    # -- operations ---------------------------------------------------------------------------------
    def _start(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        del request
        status, headers, body = self._inner(environ)
        if status.startswith("200"):
            arn = json.loads(body)["PipelineExecutionArn"]
            with self._lock:
                if arn not in self._launched:  # a client token's repeat names the same execution
                    self._launched[arn] = self._launch(arn)
        return self._pass(start_response, status, headers, body)

    def _describe(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        status, headers, body = self._inner(environ)
        if not status.startswith("200"):
            return self._pass(start_response, status, headers, body)
        described = json.loads(body)
        record = self.record(request.get("PipelineExecutionArn", ""))
        described["PipelineExecutionStatus"] = record.get("PipelineExecutionStatus", "Executing")
        described.pop("FailureReason", None)
        if record.get("FailureReason"):
            described["FailureReason"] = record["FailureReason"]
        if record.get("LastModifiedTime"):
            described["LastModifiedTime"] = _epoch(record["LastModifiedTime"])
        return _json(start_response, described)

    def _steps(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        arn = request.get("PipelineExecutionArn", "")
        known = self._known(environ, arn)
        if known is not None:
            return self._pass(start_response, *known)
        record = self.record(arn)
        self._publish_logs(arn, record)
        steps = [self._step(entry) for entry in record.get("Steps", [])]
        newest_first = request.get("SortOrder", "Descending") != "Ascending"
        steps.sort(key=lambda s: s.get("StartTime") or 0.0, reverse=newest_first)
        return _json(start_response, {"PipelineExecutionSteps": steps})

    def _stop(self, environ: dict[str, Any], start_response: StartResponse, request: dict[str, Any]) -> list[bytes]:
        arn = request.get("PipelineExecutionArn", "")
        known = self._known(environ, arn)
        if known is not None:
            return self._pass(start_response, *known)
        record = self.record(arn)
        if record.get("PipelineExecutionStatus") in ("Succeeded", "Failed", "Stopped"):
            return _error(start_response, "400 Bad Request", "ValidationException",
                          f"Pipeline execution {arn} is {record['PipelineExecutionStatus']} and cannot be stopped")
        with self._lock:
            launched = self._launched.get(arn)
        pid = launched.pid if launched else record.get("EnginePid")
        if pid:
            terminate_tree(int(pid))
        self._close(arn, record, "Stopped", None)
        return _json(start_response, {"PipelineExecutionArn": arn})

    def _known(self, environ: dict[str, Any], arn: str) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """moto's error when it does not know the execution (DescribePipelineExecution asks it); None when known."""
        probe = dict(environ)
        body = json.dumps({"PipelineExecutionArn": arn}).encode()
        probe.update({"HTTP_X_AMZ_TARGET": TARGET_PREFIX + "DescribePipelineExecution", "wsgi.input": io.BytesIO(body),
                      "CONTENT_LENGTH": str(len(body))})
        status, headers, answer = self._inner(probe)
        return None if status.startswith("200") else (status, headers, answer)

    # -- the engine and its record ------------------------------------------------------------------
    def _launch(self, arn: str) -> _Launched:
        """Run the execution with the local engine in a detached process (it outlives this request)."""
        from mlops.local.engine import parse_execution_arn  # pylint: disable=import-outside-toplevel

        pipeline, execution_id = parse_execution_arn(arn)
        work_dir = self.engine_dir / pipeline / execution_id
        work_dir.mkdir(parents=True, exist_ok=True)
        region = arn.split(":")[3]
        env = {**os.environ, "AWS_ENDPOINT_URL": self.endpoint_url(), "AWS_DEFAULT_REGION": region, "AWS_REGION": region,
               "PYTHONUNBUFFERED": "1"}
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the local AWS takes any key
            env[name] = env.get(name) or "testing"
        command = [sys.executable, "-m", "mlops.local.engine", "--execution-arn", arn, "--record-bucket", self.record_bucket,
                   "--work-dir", str(work_dir)]
        if self.step_timeout:
            command += ["--step-timeout", str(self.step_timeout)]
        with (work_dir / "engine.log").open("ab") as log:
            process = subprocess.Popen(  # pylint: disable=consider-using-with  # detached on purpose
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                close_fds=True, env=env)
        threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
        LOG.info("engine pid %s runs %s (%s)", process.pid, arn, work_dir)
        return _Launched(process.pid, time.time(), work_dir)

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3  # pylint: disable=import-outside-toplevel

            self._s3 = boto3.client("s3", endpoint_url=self.endpoint_url(), region_name="us-east-1",
                                    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                                    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
        return self._s3

    def record(self, arn: str) -> dict[str, Any]:
        """The engine's record of an execution; one that can no longer end by itself is closed as Failed."""
        from mlops.local import engine  # pylint: disable=import-outside-toplevel

        try:
            record = engine.read_record(self._client(), self.record_bucket, arn)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # e.g. no record bucket yet
            LOG.warning("cannot read the engine record of %s: %s", arn, exc)
            record = None
        with self._lock:
            launched = self._launched.get(arn)
        if record is None:
            if launched is None:
                return {}  # not started here (e.g. before a restart of this server): moto's view stands
            if pid_alive(launched.pid) or time.time() - launched.started < NO_RECORD_SECONDS:
                return {"PipelineExecutionStatus": "Executing"}
            return self._close(arn, {"PipelineExecutionArn": arn, "Steps": []}, "Failed",
                               f"the local engine (pid {launched.pid}) exited before writing a record; "
                               f"see {launched.work_dir / 'engine.log'}")
        if engine.is_stale(record):
            record = engine.mark_dead(self._client(), self.record_bucket, record)
        return record

    def _close(self, arn: str, record: dict[str, Any], status: str, reason: str | None) -> dict[str, Any]:
        """End a record that its engine will not end (stopped, or the engine died)."""
        from mlops.local import engine  # pylint: disable=import-outside-toplevel

        record = {**record, "PipelineExecutionArn": arn, "PipelineExecutionStatus": status}
        ended = engine.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record["EndTime"] = record["LastModifiedTime"] = ended
        if reason:
            record["FailureReason"] = reason
        for step in record.get("Steps", []):
            if step.get("StepStatus") in ("Starting", "Executing"):
                step.update(StepStatus=status, EndTime=ended)
        try:
            self._client().put_object(Bucket=self.record_bucket, Key=engine.record_key(arn),
                                      Body=json.dumps(record, indent=1).encode(), ContentType="application/json")
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the answer still says it
            LOG.warning("cannot write the record of %s: %s", arn, exc)
        return record

    def _publish_logs(self, arn: str, record: dict[str, Any]) -> None:
        """Put each ended job's log where SageMaker puts it: CloudWatch Logs, group /aws/sagemaker/<kind>Jobs,
        stream `<job name>/algo-1-<epoch>` (once per job)."""
        region = arn.split(":")[3]
        for entry in record.get("Steps", []):
            job = next(((kind, meta["Arn"]) for kind, meta in entry.get("Metadata", {}).items()
                        if kind in ("ProcessingJob", "TrainingJob") and isinstance(meta, dict) and meta.get("Arn")), None)
            log_file = Path(entry.get("LogFile") or "")
            if job is None or entry.get("StepStatus") not in ("Succeeded", "Failed", "Stopped") or not log_file.is_file():
                continue
            # One publisher at a time: a reader that lists the steps while another publishes waits for the log to
            # be whole (the CLI and the status function read a failed execution at the same moment).
            with self._log_lock:
                if job[1] in self._published:
                    continue
                self._published.add(job[1])
                try:
                    publish_job_log(self._logs(region), job[0], job[1].rsplit("/", 1)[-1], log_file,
                                    _epoch(entry.get("StartTime")) or time.time())
                except Exception as exc:  # pylint: disable=broad-exception-caught  # the log stays on disk
                    LOG.warning("cannot put the log of %s into CloudWatch Logs: %s", job[1], exc)

    def _logs(self, region: str) -> Any:
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3.client("logs", endpoint_url=self.endpoint_url(), region_name=region,
                            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))

    @staticmethod
    def _step(entry: dict[str, Any]) -> dict[str, Any]:
        """One step of the record in ListPipelineExecutionSteps' shape."""
        step = {key: entry[key] for key in _STEP_KEYS if entry.get(key) not in (None, "", {})}
        if "Metadata" in step:
            step["Metadata"] = {k: v for k, v in step["Metadata"].items() if k in _METADATA_KEYS}
        for key in ("StartTime", "EndTime"):
            if entry.get(key):
                step[key] = _epoch(entry[key])
        step["AttemptCount"] = 1
        return step


def job_log_location(kind: str, job_name: str, started: float) -> tuple[str, str]:
    """SageMaker's log group and stream of a job's first host (`/aws/sagemaker/TrainingJobs`, `<job>/algo-1-<epoch>`)."""
    return f"/aws/sagemaker/{kind}s", f"{job_name}/algo-1-{int(started)}"


def publish_job_log(logs: Any, kind: str, job_name: str, log_file: Path, started: float) -> None:
    """Put a job's log lines (at most the last 1,000) as its log stream."""
    group, stream = job_log_location(kind, job_name, started)
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-1000:] or ["(no output)"]
    stamp = int(started * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": stamp, "message": line or " "} for line in lines])
