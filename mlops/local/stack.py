"""The local AWS: start a moto server, provision it with the Terraform root, inspect it, stop it.

Everything lives in `$MLOPS_STATE_DIR/local/`:

- `state.json`: the server's pid, host, port, start time, `status` (`provisioning`, then `ready`), the
  Terraform outputs and the timings of the last `up`;
- `env`: `export` lines (endpoint, fake credentials, region, `MLOPS_LOCAL=1`) that other commands and
  people source;
- `server.log`, `build/` (Lambda zips), `terraform/` (working copy, state, logs; see mlops.terraform).

A second `up` while the server answers changes nothing. A `state.json` whose server is gone, or whose
`up` died before `ready`, is stale: `up` clears it (and stops a leftover server of ours) and starts fresh.
Nothing is ever destroyed with Terraform: `destroy` hangs on moto, and stopping the server drops it all.
A lock file serialises concurrent `up`/`down` calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError
from mlops.settings import Settings

FAKE_KEY = "testing"
SERVER_MODULE = "mlops.local.server"
RUNTIME_MODULE = "mlops.local.runtime_process"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0

Progress = Callable[[str], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, but not ours
        return True
    return True


def _is_our_server(pid: int, module: str = SERVER_MODULE) -> bool:
    """True when `pid` runs `module` (where /proc tells); guards against reused pids."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return module in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
    return _pid_alive(pid)


def endpoint_answers(endpoint: str, timeout: float = 1.0) -> bool:
    """True when a moto server answers at `endpoint` (its management API; data.json would touch Docker)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/config", timeout=timeout) as response:  # nosec B310 - loopback
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class LocalStack:
    """The local AWS of one checkout (one state folder)."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.home = self.settings.state_dir / "local"
        self.state_file = self.home / "state.json"
        self.env_file = self.home / "env"
        self.log_file = self.home / "server.log"
        self.runtime_log = self.home / "runtime.log"
        self.build_dir = self.home / "build"

    # -- state ---------------------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any] | None:
        """The recorded state, or None when there is none (or it is unreadable)."""
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def is_running(self, state: dict[str, Any] | None) -> bool:
        """True when the recorded server process lives and answers."""
        return bool(state) and _pid_alive(int(state.get("pid", 0) or 0)) and endpoint_answers(state["endpoint"])

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "w", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MlopsError("another `mlops local up` or `down` is running", "wait for it to finish") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def env_lines(self, endpoint: str, region: str) -> list[str]:
        """The env file's lines: what a shell needs to talk to the local AWS."""
        return [
            "# Written by `mlops local up`: source it to use the local AWS (`. .mlops/local/env`).",
            f"export AWS_ENDPOINT_URL={endpoint}",
            f"export AWS_ACCESS_KEY_ID={FAKE_KEY}",
            f"export AWS_SECRET_ACCESS_KEY={FAKE_KEY}",
            f"export AWS_DEFAULT_REGION={region}",
            f"export AWS_REGION={region}",
            "export MLOPS_LOCAL=1",
        ]

    # -- server process ------------------------------------------------------------------------------
    def _spawn_server(self) -> subprocess.Popen[bytes]:
        """Start the server process detached; `_await_server` waits until it answers."""
        ready = self.home / "server.ready"
        ready.unlink(missing_ok=True)
        with open(self.log_file, "ab") as log:
            return subprocess.Popen(  # pylint: disable=consider-using-with  # detached on purpose
                [sys.executable, "-m", SERVER_MODULE, "--host", "127.0.0.1", "--port", "0", "--ready-file", str(ready)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # survives the CLI process and its terminal
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def _await_server(self, process: subprocess.Popen[bytes], started: float) -> dict[str, Any]:
        """Wait (up to `_START_TIMEOUT` after `started`) until the spawned server answers; where it listens."""
        ready = self.home / "server.ready"
        deadline = started + _START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
                raise MlopsError(f"the local AWS server exited at start: {' '.join(tail) or 'no output'}", f"see {self.log_file}")
            if ready.exists():
                info = json.loads(ready.read_text(encoding="utf-8"))
                endpoint = f"http://{info['host']}:{info['port']}"
                if endpoint_answers(endpoint):
                    return {"pid": process.pid, "host": info["host"], "port": info["port"], "endpoint": endpoint}
            time.sleep(0.05)
        _stop_pid(process.pid)
        raise MlopsError(f"the local AWS server did not answer within {_START_TIMEOUT:.0f} s", f"see {self.log_file}")

    def _start_runtime(self) -> int:
        """The local Lambda runtime (mlops.local.runtime_process), detached like the server; its pid."""
        with open(self.runtime_log, "ab") as log:
            process = subprocess.Popen(  # pylint: disable=consider-using-with  # detached on purpose
                [sys.executable, "-m", RUNTIME_MODULE, "--env-file", str(self.env_file),
                 "--lambda-dir", str(self.settings.root / "lambda")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "MLOPS_ROOT": str(self.settings.root),
                     "MLOPS_STATE_DIR": str(self.settings.state_dir)},
            )
        return process.pid

    def runtime_running(self, state: dict[str, Any] | None) -> bool:
        """True when the recorded local Lambda runtime process lives."""
        pid = int((state or {}).get("runtime_pid", 0) or 0)
        return bool(pid) and _pid_alive(pid) and _is_our_server(pid, RUNTIME_MODULE)

    def _clear(self, state: dict[str, Any] | None) -> None:
        """Stop our leftover runtime and server (if any) and remove every file of the local AWS but the lock."""
        if self.runtime_running(state):
            _stop_pid(int((state or {})["runtime_pid"]))
        if state and state.get("pid") and _is_our_server(int(state["pid"])):
            _stop_pid(int(state["pid"]))
        for item in self.home.iterdir() if self.home.exists() else []:
            if item.name == ".lock":
                continue
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)

    # -- commands ------------------------------------------------------------------------------------
    def up(self, progress: Progress = lambda _: None) -> dict[str, Any]:
        """Start and provision the local AWS; a running one is left alone. Returns the state."""
        from mlops.config.tenants import load_from_settings
        from mlops.packaging import build_packages
        from mlops.terraform import Workspace

        started = time.monotonic()
        with self._lock():
            state = self.read_state()
            if state and state.get("status") == "ready" and self.is_running(state):
                if not self.runtime_running(state):  # the runtime died (or predates it): start it again
                    state["runtime_pid"] = self._start_runtime()
                    self._write_state(state)
                    progress(f"local Lambda runtime restarted (pid {state['runtime_pid']})")
                return {**state, "already_running": True}
            if state:
                progress(f"clearing stale local AWS state (pid {state.get('pid')}, status {state.get('status')})")
            self._clear(state)
            registry = load_from_settings(self.settings)  # fail on a bad registry before starting anything
            timings: dict[str, float] = {}

            # The server (~1 s to import moto and bind), the Lambda zips and `terraform init` need nothing
            # of each other: the zips are built and Terraform initialised while the server starts.
            process = self._spawn_server()
            workspace = Workspace("local", self.settings)
            try:
                build_packages(self.settings.root, self.build_dir)
                progress("terraform init")
                workspace.init()
                timings["init"] = round(time.monotonic() - started, 2)
                server = self._await_server(process, started)
            except BaseException:
                _stop_pid(process.pid)
                raise
            timings["server"] = round(time.monotonic() - started, 2)
            progress(f"moto server on {server['endpoint']} (pid {server['pid']}), zips built and terraform initialised "
                     f"in {timings['server']:.1f} s")
            state = {**server, "started": _now(), "status": "provisioning", "tenants": sorted(registry.tenants)}
            self._write_state(state)

            enabled = [t for t in registry.tenants.values() if t.enabled]
            progress(f"terraform apply: platform and {len(enabled)} tenant(s); SQS queues take ~25 s each, in parallel")
            try:
                outputs = workspace.apply(
                    {"lambda_package_dir": str(self.build_dir), "aws_endpoint_url": server["endpoint"], "force_destroy": True}
                )
            except MlopsError:
                progress("apply failed: stopping the local AWS (Terraform logs kept under the state folder)")
                _stop_pid(server["pid"])
                self.state_file.unlink(missing_ok=True)
                raise
            timings["total"] = round(time.monotonic() - started, 2)
            self.env_file.write_text("\n".join(self.env_lines(server["endpoint"], registry.platform.region)) + "\n", encoding="utf-8")
            state["runtime_pid"] = self._start_runtime()
            progress(f"local Lambda runtime (pid {state['runtime_pid']}): uploads and status queues, dispatcher every 2 s; "
                     f"log {self.runtime_log}")
            state.update(status="ready", outputs=outputs, timings=timings, env_file=str(self.env_file), ready=_now())
            self._write_state(state)
            progress(f"local AWS ready in {timings['total']:.1f} s: source {self.env_file}")
            return {**state, "already_running": False}

    def record_outputs(self, outputs: dict[str, Any]) -> None:
        """Keep the outputs of a later apply (`mlops infra apply`) so `status` knows every tenant."""
        with self._lock():
            state = self.read_state()
            if state:
                tenants = sorted((outputs.get("names", {}).get("tenants") or {}))
                self._write_state({**state, "outputs": outputs, "tenants": tenants})

    def down(self) -> dict[str, Any]:
        """Stop the local AWS and remove its state; says so when nothing runs."""
        with self._lock():
            state = self.read_state()
            running = self.is_running(state)
            # Endpoint servers (mlops deploy) serve models from this local AWS: they go with it.
            from mlops.local.serving import LocalEndpoints  # pylint: disable=import-outside-toplevel

            endpoints = LocalEndpoints(self.settings.state_dir).stop_all()
            if state is None and not self.env_file.exists():
                return {"stopped": False, "message": "the local AWS is not running", "endpoints_stopped": endpoints}
            self._clear(state)
            message = "local AWS stopped" if running else "the local AWS was not running; stale state removed"
            return {"stopped": running, "message": message, "pid": (state or {}).get("pid"), "endpoints_stopped": endpoints}

    def status(self) -> dict[str, Any]:
        """Whether it runs, where, and what the live local AWS holds (read through boto3)."""
        state = self.read_state()
        if not state:
            return {"running": False, "message": "the local AWS is not running (start it with `mlops local up`)"}
        running = self.is_running(state)
        result: dict[str, Any] = {
            "running": running,
            "status": state.get("status") if running else "stale",
            "endpoint": state.get("endpoint"),
            "pid": state.get("pid"),
            "started": state.get("started"),
            "env_file": str(self.env_file),
            "timings": state.get("timings", {}),
            "runtime": {"pid": state.get("runtime_pid"), "running": self.runtime_running(state), "log": str(self.runtime_log)},
        }
        if running:
            result["provisioned"] = inventory(state["endpoint"], state.get("outputs", {}))
        return result


def _stop_pid(pid: int) -> None:
    """SIGTERM, then SIGKILL after a grace period."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our child (tests), harmless otherwise
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def inventory(endpoint: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """What the live local AWS holds, per kind, and per tenant (tenants as Terraform provisioned them)."""
    import boto3

    region = outputs.get("region") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session(aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY, region_name=region)

    def client(service: str):  # type: ignore[no-untyped-def]
        return session.client(service, endpoint_url=endpoint)

    buckets = sorted(b["Name"] for b in client("s3").list_buckets().get("Buckets", []))
    repos = sorted(r["repositoryName"] for r in client("ecr").describe_repositories().get("repositories", []))
    groups = sorted(
        g["ModelPackageGroupName"]
        for page in client("sagemaker").get_paginator("list_model_package_groups").paginate()
        for g in page["ModelPackageGroupSummaryList"]
    )
    queues = sorted(url.rsplit("/", 1)[-1] for url in client("sqs").list_queues().get("QueueUrls", []))
    tables = sorted(client("dynamodb").list_tables().get("TableNames", []))
    functions = sorted(f["FunctionName"] for f in client("lambda").list_functions().get("Functions", []))
    topics = sorted(t["TopicArn"].rsplit(":", 1)[-1] for t in client("sns").list_topics().get("Topics", []))
    tenants = {}
    for tenant_id, names in (outputs.get("names", {}).get("tenants") or {}).items():
        tenants[tenant_id] = {
            "bucket": names["bucket"] if names["bucket"] in buckets else None,
            "model_package_groups": sorted(g for g in names["model_package_groups"].values() if g in groups),
        }
    return {
        "tenants": tenants,
        "buckets": buckets,
        "ecr_repositories": repos,
        "model_package_groups": groups,
        "queues": queues,
        "tables": tables,
        "functions": functions,
        "topics": topics,
    }
