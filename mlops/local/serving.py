"""Local endpoint servers: serve one endpoint's model over HTTP through its inference script.

The SageMaker endpoints of the local AWS (`mlops.local.endpoints_api`, in the server process) are served by
these. For one endpoint config it downloads `model.tar.gz` from the (local) S3, extracts it, finds the
inference module the model carries, and starts a small HTTP server in a detached process that loads the
model with `model_fn` and answers the SageMaker container routes: `GET /ping` and `POST
/endpoints/<endpoint>/invocations` (the runtime API's path, so the endpoint name is part of every request)
through `input_fn` -> `predict_fn` -> `output_fn`. An error of the inference code is answered as one line
of text: 400 for a `ValueError` (bad input), 500 naming the failing hook otherwise.

A server serves exactly one endpoint of one tenant: a request naming another endpoint, or carrying another
tenant in `X-Mlops-Tenant`, is refused (403). Which server is live for an endpoint is recorded in
`<state dir>/endpoints/<endpoint>/live.json`. The blue/green switch is: start green, health check it,
rewrite `live.json`, stop blue (`LocalEndpoints.switch`).

Where the inference code comes from, first match wins (docs/deploy.md):
1. the container's `SAGEMAKER_SUBMIT_DIRECTORY` (an S3 `.tar.gz` of the source) and `SAGEMAKER_PROGRAM`;
2. the package's `CustomerMetadataProperties` `source_uri` (S3 `.tar.gz` of the model repository) and
   `inference_entry` (default `src/inference.py`);
3. a `code/` folder inside `model.tar.gz` (SageMaker's framework convention), program `SAGEMAKER_PROGRAM`
   or `inference.py`.

This module imports only the standard library and mlops' error modules at the top: the server process must
start fast, and the caller passes its own boto3 S3 client for the downloads.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.aws import errors
from mlops.errors import MlopsError
from mlops.local.processes import pid_alive

TENANT_HEADER = "X-Mlops-Tenant"
LIVE_FILE = "live.json"
_INVOCATION_PATH = re.compile(r"^/endpoints/([A-Za-z0-9-]+)/invocations$")
_HOOKS = ("model_fn", "input_fn", "predict_fn", "output_fn")


# -- preparing a version: download, extract, find the code ------------------------------------------

def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    match = re.fullmatch(r"s3://([^/]+)/(.+)", uri or "")
    if not match:
        raise MlopsError(f"'{uri}' is not an s3://bucket/key URI", "check the model package's InferenceSpecification")
    return match.group(1), match.group(2)


def _download_tar(s3: Any, uri: str, dest: Path, what: str) -> None:
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(uri)
    archive = dest.parent / f"{dest.name}.tar.gz"
    dest.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(bucket, key, str(archive))
    except ClientError as exc:
        raise MlopsError(f"cannot download the {what} {uri}: {errors.code(exc) or '?'}",
                         "check that the object exists in the tenant's bucket") from exc
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise MlopsError(f"the {what} {uri} is not a readable .tar.gz: {exc}", "re-run the training that produced it") from exc
    finally:
        archive.unlink(missing_ok=True)


@dataclass(frozen=True)
class PreparedVersion:
    """A model version unpacked on this machine, ready to serve."""

    folder: Path
    model_dir: Path
    program: Path


def prepare_version(s3: Any, package: dict[str, Any], folder: Path) -> PreparedVersion:
    """Download and unpack a model package's model and inference code into `folder`."""
    containers = package.get("InferenceSpecification", {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise MlopsError(f"model package {package.get('ModelPackageArn')} has no ModelDataUrl", "register it with its model.tar.gz")
    container = containers[0]
    env = container.get("Environment") or {}
    meta = package.get("CustomerMetadataProperties") or {}
    model_dir = folder / "model"
    _download_tar(s3, container["ModelDataUrl"], model_dir, "model artifact")
    code_dir = folder / "code"
    if env.get("SAGEMAKER_SUBMIT_DIRECTORY", "").startswith("s3://"):
        _download_tar(s3, env["SAGEMAKER_SUBMIT_DIRECTORY"], code_dir, "inference source")
        program = code_dir / env.get("SAGEMAKER_PROGRAM", "inference.py")
    elif meta.get("source_uri", "").startswith("s3://"):
        _download_tar(s3, meta["source_uri"], code_dir, "model source")
        program = code_dir / meta.get("inference_entry", "src/inference.py")
    else:
        program = model_dir / "code" / env.get("SAGEMAKER_PROGRAM", "inference.py")
    if not program.is_file():
        raise MlopsError(
            f"model package {package.get('ModelPackageArn')} carries no inference module (looked for {program.relative_to(folder)})",
            "register the package with SAGEMAKER_SUBMIT_DIRECTORY/SAGEMAKER_PROGRAM, a source_uri, or code/ in model.tar.gz",
        )
    return PreparedVersion(folder=folder, model_dir=model_dir, program=program)


# -- the server process ----------------------------------------------------------------------------

def load_inference_module(program: Path) -> ModuleType:
    """Import the inference script from its file, with its folder importable for its own helpers."""
    for folder in (str(program.parent), str(program.parent.parent)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"mlops_inference_{program.stem}", program)
    if spec is None or spec.loader is None:
        raise MlopsError(f"cannot import {program}", "is it a Python file?")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [hook for hook in _HOOKS if not callable(getattr(module, hook, None))]
    if missing:
        raise MlopsError(f"{program.name} lacks {', '.join(missing)}", "see docs/model-contract.md (inference module)")
    return module


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


class ModelServer(ThreadingHTTPServer):
    """One endpoint version: the loaded model and the identity it answers for."""

    daemon_threads = True

    def __init__(self, endpoint: str, tenant: str, version: str, program: Path, model_dir: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint, self.tenant, self.version = endpoint, tenant, version
        self.module: ModuleType | None = None
        self.model: Any = None
        self.load_error: str | None = None
        try:
            self.module = load_inference_module(program)
            self.model = self.module.model_fn(str(model_dir))
        except Exception as exc:  # pylint: disable=broad-exception-caught  # any failure of user code is reported by /ping
            self.load_error = f"model_fn failed: {_one_line(exc)}"


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin  # the base class's name
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _reply(self, status: int, body: bytes | str | dict, content_type: str = "application/json") -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Mlops-Endpoint", self.server.endpoint)
        self.send_header("X-Mlops-Model-Version", self.server.version)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # pylint: disable=invalid-name  # http.server's naming
        """`/ping`: healthy only when the model loaded."""
        if self.path != "/ping":
            self._reply(404, {"error": f"no route {self.path}"})
            return
        identity = {"endpoint": self.server.endpoint, "tenant": self.server.tenant, "version": self.server.version}
        if self.server.load_error:
            self._reply(503, {**identity, "status": "unhealthy", "error": self.server.load_error})
        else:
            self._reply(200, {**identity, "status": "healthy"})

    def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's naming
        """`/endpoints/<name>/invocations`: the inference script's four hooks, errors as one line."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = _INVOCATION_PATH.match(self.path)
        if not match:
            self._reply(404, {"error": f"no route {self.path}"})
            return
        if match.group(1) != self.server.endpoint or self.headers.get(TENANT_HEADER, "") != self.server.tenant:
            self._reply(403, f"this server serves endpoint {self.server.endpoint} of its own tenant only", "text/plain")
            return
        if self.server.load_error or self.server.module is None:
            self._reply(503, self.server.load_error or "model not loaded", "text/plain")
            return
        module, stage = self.server.module, "input_fn"
        try:
            data = module.input_fn(body, self.headers.get("Content-Type") or "text/csv")
            stage = "predict_fn"
            prediction = module.predict_fn(data, self.server.model)
            stage = "output_fn"
            accept = self.headers.get("Accept") or "application/json"
            out = module.output_fn(prediction, accept)
        except ValueError as exc:
            self._reply(400, _one_line(exc), "text/plain")
            return
        except Exception as exc:  # pylint: disable=broad-exception-caught  # a model error must answer, not kill the server
            traceback.print_exc()  # into the server's log, as a container's stderr goes to its log stream
            self._reply(500, f"{stage} failed: {_one_line(exc)}", "text/plain")
            return
        content_type = accept if accept not in ("*/*", "") else "application/json"
        if isinstance(out, tuple):  # the SageMaker toolkits accept (body, content_type)
            out, content_type = out
        self._reply(200, out if isinstance(out, (bytes, str)) else json.dumps(out), content_type)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def serve(endpoint: str, tenant: str, version: str, program: Path, model_dir: Path, ready_file: Path) -> None:
    """Run one model server until SIGTERM; write the bound port to `ready_file` once it answers."""
    server = ModelServer(endpoint, tenant, version, program, model_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _write_json(ready_file, {"pid": os.getpid(), "port": server.server_address[1], "load_error": server.load_error})
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


# -- the stand-in's side: start, check, switch, stop, forward --------------------------------------

@dataclass
class LocalServer:
    """A running (or failed) local endpoint server: `model` is the SageMaker model, `version` the endpoint
    config it serves, `package_arn` the model package (or model) it was made from."""

    endpoint: str
    tenant: str
    model: str
    version: str
    package_arn: str
    pid: int
    port: int
    folder: str
    started_at: float

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Health:
    """The result of a health check."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class Reply:
    """A model server's answer to one invocation."""

    status: int
    body: bytes
    content_type: str


def _is_our_server(pid: int, endpoint: str) -> bool:
    """Whether `pid` is still the server we started for `endpoint` (pids are reused)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.is_file():
        return pid_alive(pid)
    args = cmdline.read_bytes().split(b"\0")
    return b"mlops.local.serving" in args and endpoint.encode() in args


class LocalEndpoints:
    """The registry of local endpoint servers under `<state_dir>/endpoints`."""

    def __init__(self, state_dir: Path, start_timeout: float = 60.0):
        self.root = Path(state_dir) / "endpoints"
        self.start_timeout = start_timeout

    def _live_file(self, endpoint: str) -> Path:
        return self.root / endpoint / LIVE_FILE

    def live(self, endpoint: str) -> LocalServer | None:
        """The server currently taking the endpoint's traffic, if any."""
        path = self._live_file(endpoint)
        if not path.is_file():
            return None
        return LocalServer(**json.loads(path.read_text(encoding="utf-8")))

    def new_folder(self, endpoint: str, version: str) -> Path:
        """A fresh folder for one start of a version (a redeploy never reuses a live one)."""
        label = re.sub(r"[^A-Za-z0-9.-]", "-", version)
        folder = self.root / endpoint / f"{label}-{time.time_ns()}"
        folder.mkdir(parents=True)
        return folder

    def start(self, prepared: PreparedVersion, *, endpoint: str, tenant: str, model: str, version: str, package_arn: str) -> LocalServer:
        """Start a detached server for a prepared version and wait until it listens."""
        ready = prepared.folder / "ready.json"
        log = prepared.folder / "server.log"
        args = [sys.executable, "-m", "mlops.local.serving", "launch", "--endpoint", endpoint, "--tenant", tenant,
                "--version", version, "--program", str(prepared.program), "--model-dir", str(prepared.model_dir),
                "--ready-file", str(ready), "--log", str(log)]
        launched = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
        if launched.returncode != 0:
            raise MlopsError(f"cannot start the local server for {endpoint}: {launched.stderr.strip()[-300:]}", "see the log above")
        deadline = time.monotonic() + self.start_timeout
        pid = int(launched.stdout.strip() or 0)
        while not ready.is_file():
            if time.monotonic() > deadline or (pid and not pid_alive(pid)):
                tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.is_file() else []
                raise MlopsError(f"the local server for {endpoint} {version} did not start: {' '.join(tail) or 'no output'}", f"see {log}")
            time.sleep(0.05)
        info = json.loads(ready.read_text(encoding="utf-8"))
        return LocalServer(endpoint=endpoint, tenant=tenant, model=model, version=version, package_arn=package_arn,
                           pid=info["pid"], port=info["port"], folder=str(prepared.folder), started_at=time.time())

    @staticmethod
    def health(server: LocalServer, timeout: float = 5.0) -> Health:
        """GET /ping: healthy only if the model loaded and the server answers for the right endpoint."""
        try:
            with urllib.request.urlopen(f"{server.url}/ping", timeout=timeout) as response:
                data = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            data = _error_body(exc)
            return Health(False, f"/ping answered {exc.code}: {data.get('error', 'unhealthy')}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return Health(False, f"/ping failed: {exc}")
        if data.get("endpoint") != server.endpoint or data.get("version") != server.version:
            return Health(False, f"/ping answered for {data.get('endpoint')} {data.get('version')}, not {server.endpoint} {server.version}")
        return Health(True, f"/ping healthy ({server.endpoint} {server.version} on port {server.port})")

    def switch(self, server: LocalServer) -> LocalServer | None:
        """Send all of the endpoint's traffic to `server`; stop and return the one it replaces."""
        previous = self.live(server.endpoint)
        self._live_file(server.endpoint).parent.mkdir(parents=True, exist_ok=True)
        _write_json(self._live_file(server.endpoint), asdict(server))
        if previous is not None and previous.pid != server.pid:
            self.stop(previous)
        return previous

    @staticmethod
    def stop(server: LocalServer, timeout: float = 5.0) -> None:
        """Stop one server (only if that pid is still the server we started)."""
        if not pid_alive(server.pid) or not _is_our_server(server.pid, server.endpoint):
            return
        os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(server.pid):
            if time.monotonic() > deadline:
                os.kill(server.pid, signal.SIGKILL)
                break
            time.sleep(0.05)

    def stop_all(self) -> list[str]:
        """Stop every live local endpoint (for `mlops local down`); return the endpoints stopped."""
        stopped = []
        for live in sorted(self.root.glob(f"*/{LIVE_FILE}")) if self.root.is_dir() else []:
            server = LocalServer(**json.loads(live.read_text(encoding="utf-8")))
            self.stop(server)
            live.unlink(missing_ok=True)
            stopped.append(server.endpoint)
        return stopped

    def retire(self, endpoint: str) -> LocalServer | None:
        """Stop the endpoint's live server and forget it (the endpoint was deleted); the server stopped, if any."""
        server = self.live(endpoint)
        if server is not None:
            self.stop(server)
        self._live_file(endpoint).unlink(missing_ok=True)
        return server

    @staticmethod
    def forward(server: LocalServer, endpoint: str, tenant: str, body: bytes, headers: dict[str, str],  # pylint: disable=too-many-arguments,too-many-positional-arguments  # the request's parts
                timeout: float = 60.0) -> Reply:
        """Post one request for `endpoint` of `tenant` to `server`: its answer, whatever the status (the server refuses
        another endpoint or tenant with 403). OSError: no answer."""
        request = urllib.request.Request(f"{server.url}/endpoints/{endpoint}/invocations", data=body, method="POST",
                                         headers={**headers, TENANT_HEADER: tenant})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Reply(response.status, response.read(), response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, exc.read(), exc.headers.get("Content-Type", ""))


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    """The JSON body of an error answer (closed once read)."""
    try:
        with exc:
            data = json.loads(exc.read() or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# -- entry point of the server process -------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """`launch` starts a detached `serve` process and prints its pid; `serve` runs the server."""
    parser = argparse.ArgumentParser(prog="python -m mlops.local.serving")
    parser.add_argument("mode", choices=["launch", "serve"])
    for option in ("--endpoint", "--tenant", "--version", "--program", "--model-dir", "--ready-file", "--log"):
        parser.add_argument(option, required=True)
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    if args.mode == "launch":
        # The server outlives the CLI that deployed it: start it in its own session and return at once.
        with open(args.log, "ab") as log:
            child = subprocess.Popen(  # pylint: disable=consider-using-with  # detached on purpose
                [sys.executable, "-m", "mlops.local.serving", "serve", *raw[1:]],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=str(Path(args.program).parent),
            )
        print(child.pid)
        return
    serve(args.endpoint, args.tenant, args.version, Path(args.program), Path(args.model_dir), Path(args.ready_file))


if __name__ == "__main__":
    main()
