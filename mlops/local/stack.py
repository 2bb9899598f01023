"""The local AWS: start a moto server, provision it with the Terraform root, inspect it, stop it.

Everything lives in `$MLOPS_STATE_DIR/local/`:

- `state.json`: the server's pid, host, port, start time, `status` (`provisioning`, `usable`, `ready` or
  `failed`), the Terraform outputs and the timings of the last `up`;
- `env`: `export` lines (endpoint, fake credentials, region, `MLOPS_LOCAL=1`) that other commands and
  people source;
- `server.log`, `build/` (Lambda zips), `terraform/` (working copy, state, logs; see mlops.terraform).

`up` starts one full `terraform apply` in a detached process (`python -m mlops.local.stack --finish`) that
streams Terraform's machine-readable events into `apply.jsonl`, and returns as soon as those events show
that everything the flow calls first exists (`usable`). What it does not wait for is the resources whose
creation only waits for AWS to confirm what it set (`LATER_TYPES`: SQS queues, about 25 s each behind their
dead-letter queues; S3 lifecycle rules, 55 s; Lambda functions, 5 s each, one after another) and what needs
them (EventBridge targets, event source mappings, permissions); `terraform graph` tells which those are.
When the apply ends, the background process starts the local Lambda runtime and records `ready`. It holds
`.provision.lock` from before `up` starts it until it ends, so `wait`, `down` and `mlops infra` wait for it
instead of racing it. The final state is a single full apply's, because it is one.

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
from mlops.local.processes import pid_alive
from mlops.settings import Settings

#: Resource types whose creation, after the call that creates them, only waits for AWS to confirm it (the
#: AWS provider's waiters: queue attributes read back six times 5 s apart, lifecycle rules ten times, a
#: function polled until Active, one function at a time): `up` does not wait for them.
LATER_TYPES = frozenset({"aws_sqs_queue", "aws_s3_bucket_lifecycle_configuration", "aws_lambda_function"})
FAKE_KEY = "testing"
SERVER_MODULE = "mlops.local.server"
RUNTIME_MODULE = "mlops.local.runtime_process"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0

Progress = Callable[[str], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_our_server(pid: int, module: str = SERVER_MODULE) -> bool:
    """True when `pid` runs `module` (where /proc tells); guards against reused pids."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return module in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
    return pid_alive(pid)


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
        self.events_file = self.home / "apply.jsonl"

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
        return bool(state) and pid_alive(int(state.get("pid", 0) or 0)) and endpoint_answers(state["endpoint"])

    def _open_provision_lock(self) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        return os.open(self.home / ".provision.lock", os.O_RDWR | os.O_CREAT, 0o644)

    def finishing(self) -> bool:
        """True while the background part of `up` holds the provision lock."""
        if not (self.home / ".provision.lock").exists():
            return False
        fd = self._open_provision_lock()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock taken here
        return False

    def wait(self, progress: Progress = lambda _: None) -> dict[str, Any]:
        """Wait until the background part of `up` has ended; the state. A failed one is an error."""
        if self.finishing():
            progress("waiting for the rest of the local AWS (SQS queues, S3 lifecycle rules, Lambda functions, "
                     "the local Lambda runtime)")
            started = time.monotonic()
            fd = self._open_provision_lock()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                os.close(fd)
            progress(f"waited {time.monotonic() - started:.1f} s")
        state = self.read_state()
        if not state:
            raise MlopsError("the local AWS is not running", "start it with `mlops local up`")
        if state.get("status") == "failed":
            raise MlopsError(f"the background part of `mlops local up` failed: {state.get('error', 'no message')}",
                             "run `mlops local down` and `mlops local up` again; Terraform's log is under "
                             f"{self.home / 'terraform' / 'logs'}")
        if state.get("status") != "ready":
            raise MlopsError(f"the local AWS is {state.get('status')}, not ready (its background apply ended early)",
                             "run `mlops local down` and `mlops local up` again")
        return state

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
    def _spawn_server(self, names: Any) -> subprocess.Popen[bytes]:
        """Start the server process detached; `_await_server` waits until it answers. Pipeline executions are run
        by the local engine inside it (mlops.local.pipelines_api), its records kept in the artifacts bucket, and
        SageMaker endpoints by local model servers (mlops.local.endpoints_api) under the state dir."""
        ready = self.home / "server.ready"
        ready.unlink(missing_ok=True)
        with open(self.log_file, "ab") as log:
            return subprocess.Popen(  # pylint: disable=consider-using-with  # detached on purpose
                [sys.executable, "-m", SERVER_MODULE, "--host", "127.0.0.1", "--port", "0", "--ready-file", str(ready),
                 "--engine-record-bucket", names.artifacts_bucket(), "--engine-dir", str(self.settings.state_dir / "engine"),
                 "--state-dir", str(self.settings.state_dir)],
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

    def _spawn_finisher(self, lock_fd: int) -> None:
        """The background part of `up`, detached; it inherits the held provision lock and keeps it to the end."""
        with open(self.home / "finish.log", "ab") as log:
            subprocess.Popen(  # pylint: disable=consider-using-with  # detached on purpose
                [sys.executable, "-m", __name__, "--finish", "--lock-fd", str(lock_fd)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, pass_fds=(lock_fd,),
                env={**os.environ, "PYTHONUNBUFFERED": "1", "MLOPS_ROOT": str(self.settings.root),
                     "MLOPS_STATE_DIR": str(self.settings.state_dir)},
            )

    def finish(self) -> int:
        """The background apply: a full `terraform apply`, then the local Lambda runtime and `ready`. Exit code."""
        from mlops.terraform import Workspace  # pylint: disable=import-outside-toplevel

        state = self.read_state() or {}
        try:
            outputs = Workspace("local", self.settings).apply(state["apply_variables"], events=self.events_file)
        except (MlopsError, KeyError) as error:
            message = error.message if isinstance(error, MlopsError) else f"no {error} in {self.state_file}"
            self._update_state(lambda s: {**s, "status": "failed", "error": message})
            print(f"error: {message}", file=sys.stderr)
            return 1
        runtime_pid = self._start_runtime()
        total = round(time.time() - float(state.get("started_epoch", time.time())), 2)
        self._update_state(lambda s: {**s, "status": "ready", "outputs": outputs, "runtime_pid": runtime_pid,
                                      "timings": {**s.get("timings", {}), "total": total}, "ready": _now()})
        print(f"local AWS ready in {total:.1f} s", file=sys.stderr)
        return 0

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
        return bool(pid) and pid_alive(pid) and _is_our_server(pid, RUNTIME_MODULE)

    def _own_files(self) -> list[Path]:
        """Every file and folder the local AWS writes in its home (the locks excepted): all `_clear` removes."""
        return [self.state_file, self.env_file, self.log_file, self.runtime_log, self.build_dir, self.events_file,
                self.home / "terraform", self.home / "server.ready", self.home / "finish.log"]

    def _clear(self, state: dict[str, Any] | None) -> None:
        """Stop our leftover runtime and server (if any) and remove the files of the local AWS, none other."""
        if self.runtime_running(state):
            _stop_pid(int((state or {})["runtime_pid"]))
        if state and state.get("pid") and _is_our_server(int(state["pid"])):
            _stop_pid(int(state["pid"]))
        for item in self._own_files():
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)

    def _check_before_start(self) -> Any:
        """What `up` needs, checked before it touches anything: the registry, the Terraform root and terraform.
        Returns the registry."""
        from mlops.config.tenants import load_from_settings

        registry = load_from_settings(self.settings)
        if not (self.settings.terraform_dir / "main.tf").is_file():
            raise MlopsError(f"{self.settings.terraform_dir}: no Terraform root (main.tf) found",
                             "set MLOPS_ROOT to the ml-ops checkout")
        if shutil.which("terraform") is None:
            raise MlopsError("terraform is not on PATH", "install Terraform (https://developer.hashicorp.com/terraform/install)")
        return registry

    # -- commands ------------------------------------------------------------------------------------
    def up(self, progress: Progress = lambda _: None, wait: bool = False) -> dict[str, Any]:
        """Start and provision the local AWS; a running one is left alone. Returns the state.

        Returns once the flow can run (`usable`); the rest is applied in the background (see the module
        docstring). `wait`: return only when everything is applied (`ready`).
        """
        state = self._up(progress)
        if wait and state.get("status") != "ready":
            return {**self.wait(progress), "already_running": state["already_running"]}
        return state

    def _up(self, progress: Progress) -> dict[str, Any]:
        from mlops.packaging import build_packages
        from mlops.terraform import Workspace, split_by_wait

        started, started_epoch = time.monotonic(), time.time()
        with self._lock():
            state = self.read_state()
            if state and state.get("status") in ("usable", "ready") and self.is_running(state) and \
                    (state["status"] == "ready" or self.finishing()):
                if state["status"] == "ready" and not self.runtime_running(state):  # the runtime died: start it again
                    state["runtime_pid"] = self._start_runtime()
                    self._write_state(state)
                    progress(f"local Lambda runtime restarted (pid {state['runtime_pid']})")
                return {**state, "already_running": True}
            registry = self._check_before_start()  # a bad registry or a missing tool changes nothing
            if state:
                progress(f"clearing stale local AWS state (pid {state.get('pid')}, status {state.get('status')})")
            self._clear(state)
            timings: dict[str, float] = {}

            # The server (~1 s to import moto and bind), the Lambda zips, `terraform init` and `graph` need
            # nothing of each other: they run while the server starts.
            process = self._spawn_server(registry.names())
            workspace = Workspace("local", self.settings)
            try:
                build_packages(self.settings.root, self.build_dir)
                progress("terraform init")
                workspace.init()
                first, _ = split_by_wait(workspace.graph(), LATER_TYPES)
                timings["init"] = round(time.monotonic() - started, 2)
                server = self._await_server(process, started)
            except BaseException:
                _stop_pid(process.pid)
                raise
            timings["server"] = round(time.monotonic() - started, 2)
            progress(f"moto server on {server['endpoint']} (pid {server['pid']}), zips built and terraform initialised "
                     f"in {timings['server']:.1f} s")
            variables = {"lambda_package_dir": str(self.build_dir), "aws_endpoint_url": server["endpoint"], "force_destroy": True}
            self.env_file.write_text("\n".join(self.env_lines(server["endpoint"], registry.platform.region)) + "\n", encoding="utf-8")
            state = {**server, "started": _now(), "started_epoch": started_epoch, "status": "provisioning", "timings": timings,
                     "tenants": sorted(registry.tenants), "apply_variables": variables, "env_file": str(self.env_file)}
            self._write_state(state)
            enabled = sum(1 for t in registry.tenants.values() if t.enabled)
            progress(f"terraform apply: platform and {enabled} tenant(s), in the background; this returns once what the "
                     "flow calls first exists (queues, lifecycle rules and functions only wait for AWS to confirm them)")
            try:
                self._start_apply()
                self._await_usable(set(first), progress)
            except MlopsError:
                progress("apply failed: stopping the local AWS (Terraform logs kept under the state folder)")
                _stop_pid(server["pid"])
                self.state_file.unlink(missing_ok=True)
                raise
            timings["usable"] = round(time.monotonic() - started, 2)
            state = self._update_state(lambda s: {**s, "timings": {**s.get("timings", {}), **timings},
                                                  "status": "usable" if s["status"] == "provisioning" else s["status"],
                                                  "usable": _now()})
            progress(f"local AWS usable in {timings['usable']:.1f} s: source {self.env_file}; the SQS queues, lifecycle "
                     f"rules, Lambda functions and the local Lambda runtime follow (`mlops local wait`, "
                     f"log {self.home / 'finish.log'})")
            return {**state, "already_running": False}

    def _start_apply(self) -> None:
        """Start the background apply with the provision lock taken first, so nobody sees it unlocked."""
        self.events_file.write_text("", encoding="utf-8")
        lock_fd = self._open_provision_lock()
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)  # held from here by the background apply, until it ends
            self._spawn_finisher(lock_fd)
        finally:
            os.close(lock_fd)

    def _await_usable(self, first: set[str], progress: Progress) -> None:
        """Follow the background apply's events until every planned instance of `first` exists."""
        from mlops.terraform import applied_so_far, config_address  # pylint: disable=import-outside-toplevel

        planned: set[str] = set()
        done: set[str] = set()
        said, offset = time.monotonic(), 0
        while True:
            with open(self.events_file, "rb") as events:  # only what was added since, up to the last whole line
                events.seek(offset)
                chunk = events.read()
            whole = chunk[:chunk.rfind(b"\n") + 1]
            offset += len(whole)
            seen = applied_so_far(whole.decode("utf-8", errors="replace"))
            planned |= seen["planned"]
            done |= seen["done"]
            wanted = {addr for addr in planned if config_address(addr) in first}
            if wanted and wanted <= done:
                return
            if not self.finishing():  # the apply ended: ready, or failed before the flow could run
                state = self.read_state() or {}
                if state.get("status") == "ready":
                    return
                raise MlopsError(state.get("error") or "terraform apply failed (no error reported)",
                                 f"full output in {self.events_file} and {self.home / 'finish.log'}")
            if time.monotonic() - said >= 10:
                progress(f"{len(done)} of {len(planned)} resources created")
                said = time.monotonic()
            time.sleep(0.25)

    def _update_state(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read, change and write state.json under its own lock (`up` and the background apply both write it)."""
        with open(self.home / ".state.lock", "w", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            state = change(self.read_state() or {})
            self._write_state(state)
            return state

    def record_outputs(self, outputs: dict[str, Any]) -> None:
        """Keep the outputs of a later apply (`mlops infra apply`) so `status` knows every tenant."""
        with self._lock():
            state = self.read_state()
            if state:
                tenants = sorted((outputs.get("names", {}).get("tenants") or {}))
                self._write_state({**state, "outputs": outputs, "tenants": tenants})

    def down(self, progress: Progress = lambda _: None) -> dict[str, Any]:
        """Stop the local AWS and remove its state; says so when nothing runs.

        A background apply still running is waited for first: stopping the server under it would leave
        Terraform failing against a closed port.
        """
        if self.finishing():
            with contextlib.suppress(MlopsError):
                self.wait(progress)
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
            "finishing": running and state.get("status") == "usable" and self.finishing(),
            "error": state.get("error"),
            "endpoint": state.get("endpoint"),
            "pid": state.get("pid"),
            "started": state.get("started"),
            "env_file": str(self.env_file),
            "timings": state.get("timings", {}),
            "runtime": {"pid": state.get("runtime_pid"), "running": self.runtime_running(state), "log": str(self.runtime_log)},
        }
        if running:
            result["provisioned"] = inventory(state["endpoint"], state.get("outputs") or self._expected_outputs())
        return result

    def _expected_outputs(self) -> dict[str, Any]:
        """Before the apply has written its outputs (`usable`): the tenants' names from the naming module, the
        same that Terraform's `names` output holds (tests/local/test_local_stack.py compares them)."""
        from mlops.config.tenants import load_from_settings  # pylint: disable=import-outside-toplevel

        registry = load_from_settings(self.settings)
        names = registry.names()
        tenants = {tid: names.tenant_names(tid, tenant.models) for tid, tenant in registry.tenants.items() if tenant.enabled}
        return {"region": registry.platform.region, "names": {"tenants": tenants}}


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
        if not pid_alive(pid):
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


def _main(argv: list[str] | None = None) -> int:
    """`python -m mlops.local.stack --finish --lock-fd N`: the background part of `mlops local up`."""
    import argparse  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("--finish", action="store_true", required=True, help="run the full apply, then mark ready")
    parser.add_argument("--lock-fd", type=int, required=True, help="the provision lock, held until this process ends")
    args = parser.parse_args(argv)
    try:
        return LocalStack().finish()
    finally:
        os.close(args.lock_fd)


if __name__ == "__main__":
    sys.exit(_main())
