"""Lambda Invoke on the local AWS: the function moto holds, run in a process of the project's Python.

moto stores Lambda functions (their zip, handler, environment and timeout) but runs them only in Docker.
This WSGI middleware sits in front of moto in the local AWS process (`mlops.local.server`) and answers
`Invoke` (`POST /2015-03-31/functions/<name or ARN>/invocations`) as Lambda does, so the product invokes
functions with boto3 alone, on AWS and locally:

- the function is looked up through moto (GetFunction: an unknown function is moto's, that is Lambda's,
  `ResourceNotFoundException`); its deployed zip (`code_bytes` of moto's Lambda backend, in this process)
  is extracted once per code under the code folder;
- the handler (`handler.handler`) runs in a new process of this Python with the zip's folder first on its
  path, where Lambda has `/var/task`; this virtual environment stands in for the function's layers (it holds
  what `lambda/layer.txt` pins). The environment is the function's variables (a value that starts with
  `/var/task` names the extracted folder), Lambda's own (`AWS_LAMBDA_FUNCTION_NAME`, `_HANDLER`, ...),
  this server as `AWS_ENDPOINT_URL` and dummy credentials; nothing else of the server's environment;
  the event arrives on stdin, the answer through a file;
- RequestResponse: 200 with the handler's JSON answer; an exception, an import error, an exit, an answer
  that is not JSON or the function's `Timeout`: 200 with `X-Amz-Function-Error: Unhandled` and Lambda's
  error document (`errorMessage`, `errorType`, `requestId`, `stackTrace`). `LogType=Tail` adds the last
  4 KB of the log (`X-Amz-Log-Result`). Event: 202 at once, the function runs in the background. DryRun:
  204. A payload that is not JSON: `InvalidRequestContentException`; over 6 MB: `RequestTooLargeException`;
- each invocation's output goes to CloudWatch Logs as Lambda puts it (`/aws/lambda/<name>`, one stream per
  invocation, with its START, END and REPORT lines).

Not copied: warm starts (every invocation is a new process, a cold start without its cost in the REPORT
line), concurrency limits and throttling, the memory limit, the Event type's retries and destinations,
layers (this environment stands in), other runtimes than Python, container images, response streaming.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from mlops.local.wsgi import Answer, answer_of

LOG = logging.getLogger("mlops.local.lambda_api")
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
#: Lambda's limit of a synchronous invocation's request and response payloads.
MAX_PAYLOAD = 6 * 1024 * 1024
MAX_RESPONSE = 6291556
#: `LogType=Tail` returns this much of the end of the log.
TAIL_BYTES = 4096
TASK_ROOT = "/var/task"

StartResponse = Callable[..., Any]

#: The runtime's bootstrap: imports the handler from the task folder, calls it with the event of stdin and a
#: context, and writes `{"ok": <answer JSON>}` or `{"error": <Lambda's error document>}` to the file of argv[1].
BOOTSTRAP = r'''
import importlib, json, os, sys, time, traceback

result_file, request_id, invoked_arn, deadline_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


class Context:
    """The attributes of Lambda's Python context object."""

    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
    log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
    log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
    aws_request_id = request_id
    invoked_function_arn = invoked_arn
    identity = None
    client_context = None

    @staticmethod
    def get_remaining_time_in_millis():
        return max(0, deadline_ms - int(time.time() * 1000))


def write(document):
    with open(result_file, "w", encoding="utf-8") as out:
        json.dump(document, out)


def fail(kind, message, frames=()):
    frames = list(frames)
    print(f"[ERROR] {kind}: {message}", file=sys.stderr)
    if frames:
        print("Traceback (most recent call last):\n" + "".join(frames), end="", file=sys.stderr)
    write({"error": {"errorMessage": message, "errorType": kind, "requestId": request_id, "stackTrace": frames}})


def main():
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        return fail("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    handler = getattr(module, function_name, None)
    if handler is None:
        return fail("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    event = json.loads(sys.stdin.buffer.read() or b"{}")
    try:
        answer = handler(event, Context())
    except Exception as exc:
        frames = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
        return fail(type(exc).__name__, str(exc), frames)
    try:
        body = json.dumps(answer)
    except (TypeError, ValueError) as exc:
        return fail("Runtime.MarshalError", f"Unable to marshal response: {exc}")
    return write({"ok": body})


main()
'''


@dataclass(frozen=True)
class Function:
    """What an invocation needs of a function moto holds."""

    name: str
    arn: str
    region: str
    version: str
    handler: str
    runtime: str
    timeout: float
    memory: int
    environment: dict[str, str]
    code: bytes
    package_type: str


@dataclass
class Invocation:
    """What one run of a function gave."""

    request_id: str
    payload: bytes
    error: bool
    log: str
    seconds: float


def _error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    """An error as Lambda's REST-JSON API sends it."""
    body = json.dumps({"Type": "User", "message": message}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("x-amzn-ErrorType", code), ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [body]


def _lambda_error(request_id: str, kind: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": kind, "requestId": request_id, "stackTrace": []}).encode()


def _refusal(kind: str, body: bytes) -> tuple[str, str, str] | None:
    """Lambda's (status, code, message) for an invocation it refuses before running anything; None if valid."""
    if kind not in ("RequestResponse", "Event", "DryRun"):
        return ("400 Bad Request", "InvalidParameterValueException",
                f"1 validation error detected: Value '{kind}' at 'invocationType' failed to satisfy constraint: "
                "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
    if len(body) > MAX_PAYLOAD:
        return ("413 Request Entity Too Large", "RequestTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation")
    try:
        json.loads(body or b"{}")
    except ValueError as exc:
        return "400 Bad Request", "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
    return None


class LambdaApi:
    """WSGI middleware: Lambda Invoke answered by running the function moto holds (see the module's docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, endpoint_url: Callable[[], str], code_dir: Path | None = None,
                 python: str = sys.executable):
        self.app = app
        self.endpoint_url = endpoint_url
        self.python = python
        if code_dir is None:  # removed with this object, or when the process exits
            code_dir = Path(tempfile.mkdtemp(prefix="mlops-lambda-"))
            weakref.finalize(self, shutil.rmtree, code_dir, ignore_errors=True)
        self.code_dir = code_dir
        self._lock = threading.Lock()

    # -- WSGI ---------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        name = unquote(match.group("function"))
        query = parse_qs(environ.get("QUERY_STRING", ""))
        qualifier = (query.get("Qualifier") or [None])[0]
        kind = environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse"
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        refused = _refusal(kind, body)
        if refused is not None:
            return _error(start_response, *refused)
        found = self._function(environ, name, qualifier)
        if not isinstance(found, Function):
            status, headers, answer = found
            start_response(status, headers)
            return [answer]
        if found.package_type != "Zip" or not found.runtime.startswith("python"):
            return _error(start_response, "502 Bad Gateway", "InvalidRuntimeException",
                          f"the local AWS runs Python zip functions only; {found.name} is {found.package_type} "
                          f"{found.runtime or 'without a runtime'}")
        if kind == "DryRun":
            start_response("204 No Content", [("x-amzn-RequestId", str(uuid.uuid4())), ("Content-Length", "0")])
            return [b""]
        if kind == "Event":
            request_id = str(uuid.uuid4())
            threading.Thread(target=self.run, args=(found, body, request_id), name=f"lambda-{request_id}", daemon=True).start()
            start_response("202 Accepted", [("x-amzn-RequestId", request_id), ("Content-Length", "0")])
            return [b""]
        done = self.run(found, body, str(uuid.uuid4()))
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(done.payload))),
                   ("x-amzn-RequestId", done.request_id), ("X-Amz-Executed-Version", found.version)]
        if done.error:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        if environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail":
            tail = done.log.encode()[-TAIL_BYTES:]
            headers.append(("X-Amz-Log-Result", base64.b64encode(tail).decode()))
        start_response("200 OK", headers)
        return [done.payload]

    def _function(self, environ: dict[str, Any], name: str, qualifier: str | None) -> Function | tuple[str, list[tuple[str, str]], bytes]:
        """The function as moto holds it, or moto's answer when it has none (ResourceNotFoundException)."""
        probe = {key: value for key, value in environ.items() if key not in ("RAW_URI", "REQUEST_URI")}
        probe.update({"REQUEST_METHOD": "GET", "PATH_INFO": f"/2015-03-31/functions/{name}",
                      "QUERY_STRING": f"Qualifier={quote(qualifier)}" if qualifier else "", "CONTENT_LENGTH": "0",
                      "wsgi.input": io.BytesIO(b"")})
        probe.pop("CONTENT_TYPE", None)
        status, headers, body = self._inner(probe)
        if not status.startswith("200"):
            return status, headers, body
        configuration = json.loads(body)["Configuration"]
        _, _, _, region, account, _, function_name, *_ = configuration["FunctionArn"].split(":")
        from moto.awslambda.models import lambda_backends  # pylint: disable=import-outside-toplevel  # moto's own process

        held = lambda_backends[account][region].get_function(function_name, qualifier)
        return Function(name=held.function_name, arn=configuration["FunctionArn"], region=region,
                        version=str(configuration.get("Version") or "$LATEST"),
                        handler=held.handler or "", runtime=held.run_time or "", timeout=float(held.timeout or 3),
                        memory=int(held.memory_size or 128), environment=dict(held.environment_vars or {}),
                        code=bytes(getattr(held, "code_bytes", b"") or b""), package_type=held.package_type or "Zip")

    def _inner(self, environ: dict[str, Any]) -> Answer:
        return answer_of(self.app, environ)

    # -- running a function -------------------------------------------------------------------------
    def task_root(self, function: Function) -> Path:
        """The folder of the function's extracted zip (one per function and code)."""
        target = self.code_dir / function.name / hashlib.sha256(function.code).hexdigest()[:16]
        with self._lock:
            if not target.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
                work = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
                try:
                    with zipfile.ZipFile(io.BytesIO(function.code)) as archive:
                        archive.extractall(work)
                    os.replace(work, target)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
        return target

    def environment(self, function: Function, task: Path, stream: str) -> dict[str, str]:
        """What Lambda sets for the function, with this server as the AWS endpoint."""
        def local(value: str) -> str:
            return str(task) + value[len(TASK_ROOT):] if value == TASK_ROOT or value.startswith(TASK_ROOT + "/") else value

        env = {name: local(str(value)) for name, value in function.environment.items()}
        env.update({
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "en_US.UTF-8", "TZ": ":UTC",
            "PYTHONPATH": str(task), "LAMBDA_TASK_ROOT": str(task), "_HANDLER": function.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}", "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": function.version, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}", "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_REGION": function.region, "AWS_DEFAULT_REGION": function.region, "AWS_ENDPOINT_URL": self.endpoint_url(),
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "PYTHONUNBUFFERED": "1",
        })
        return env

    def run(self, function: Function, event: bytes, request_id: str) -> Invocation:
        """Run the function once on `event` in a process of its own; its answer, or Lambda's error document."""
        started = time.time()
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime(started))}/[{function.version}]{uuid.uuid4().hex}"
        task = self.task_root(function)
        deadline_ms = int((started + function.timeout) * 1000)
        with tempfile.TemporaryDirectory(prefix="mlops-invoke-") as work:
            result_file = Path(work) / "result.json"
            command = [self.python, "-s", "-c", BOOTSTRAP, str(result_file), request_id, function.arn, str(deadline_ms)]
            try:
                process = subprocess.Popen(  # pylint: disable=consider-using-with  # killed with its group on a timeout
                    command, cwd=task, env=self.environment(function, task, stream), stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                message = f"RequestId: {request_id} Error: cannot start {self.python}: {exc}"
                return Invocation(request_id, _lambda_error(request_id, "Runtime.Unknown", message), True, message, 0.0)
            try:
                output, _ = process.communicate(event or b"{}", timeout=function.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                output, _ = process.communicate()
                timed_out = True
            seconds = time.time() - started
            text = output.decode("utf-8", errors="replace")
            payload, error = self._answer(function, request_id, result_file, process.returncode, timed_out)
        done = Invocation(request_id, payload, error, self._log(function, request_id, text, seconds, timed_out), seconds)
        self._publish(function, stream, started, done)
        return done

    @staticmethod
    def _answer(function: Function, request_id: str, result_file: Path, returncode: int, timed_out: bool) -> tuple[bytes, bool]:
        """(payload, whether it is an error) from what the bootstrap wrote, or from how the process ended."""
        if timed_out:
            return _lambda_error(request_id, "Sandbox.Timedout",
                                 f"RequestId: {request_id} Error: Task timed out after {function.timeout:.2f} seconds"), True
        try:
            result = json.loads(result_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            how = f"signal: {signal.Signals(-returncode).name}" if returncode < 0 else f"exit status {returncode}"
            return _lambda_error(request_id, "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {how}"), True
        if "error" in result:
            return json.dumps(result["error"]).encode(), True
        payload = str(result["ok"]).encode()
        if len(payload) > MAX_RESPONSE:
            return _lambda_error(request_id, "Function.ResponseSizeTooLarge",
                                 f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."), True
        return payload, False

    @staticmethod
    def _log(function: Function, request_id: str, output: str, seconds: float, timed_out: bool) -> str:
        """The invocation's log as Lambda writes it: START, the function's output, END and REPORT."""
        lines = [f"START RequestId: {request_id} Version: {function.version}", *output.splitlines()]
        if timed_out:
            lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} "
                         f"Task timed out after {function.timeout:.2f} seconds")
        lines.append(f"END RequestId: {request_id}")
        lines.append(f"REPORT RequestId: {request_id}\tDuration: {seconds * 1000:.2f} ms\t"
                     f"Billed Duration: {math.ceil(seconds * 1000)} ms\tMemory Size: {function.memory} MB")
        return "\n".join(lines) + "\n"

    def _publish(self, function: Function, stream: str, started: float, done: Invocation) -> None:
        """Put the invocation's log into CloudWatch Logs, as Lambda does; a failure here fails no invocation."""
        import boto3  # pylint: disable=import-outside-toplevel

        group = f"/aws/lambda/{function.name}"
        try:
            logs = boto3.client("logs", endpoint_url=self.endpoint_url(), region_name=function.region,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
            try:
                logs.create_log_group(logGroupName=group)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            stamp = int(started * 1000)
            logs.put_log_events(logGroupName=group, logStreamName=stream,
                                logEvents=[{"timestamp": stamp, "message": line or " "} for line in done.log.splitlines()[-10000:]])
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the answer stands without its log
            LOG.warning("cannot put the log of %s (%s) into CloudWatch Logs: %s", function.name, done.request_id, exc)
