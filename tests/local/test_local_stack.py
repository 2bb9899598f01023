"""`mlops local up|status|down` as a user runs them: real moto server process, real Terraform.

One lifecycle, in order: `down` with nothing running, `up` (two repository tenants), a second `up`,
`status`, a crash (the server killed, its state left behind), `up` after the crash, `down` twice.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.config.tenants import load_registry
from mlops.local.stack import LocalStack, endpoint_answers
from mlops.settings import Settings
from mlops.plans import summarise
from mlops.terraform import Workspace

ROOT = Path(__file__).resolve().parents[2]


def _mlops(env: dict[str, str], *args: str) -> tuple[int, Any, str]:
    result = subprocess.run([sys.executable, "-m", "mlops", *args, "--json"], env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    data = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, data, result.stderr


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a user's shell with its own state folder."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update(MLOPS_ROOT=str(ROOT), MLOPS_STATE_DIR=str(tmp_path / "state"))
    env.pop("MLOPS_TENANTS_DIR", None)
    env.pop("MLOPS_PLATFORM_FILE", None)
    yield env
    state_file = tmp_path / "state" / "local" / "state.json"
    if state_file.exists():  # a failed test must not leave a server behind
        subprocess.run([sys.executable, "-m", "mlops", "local", "down"], env=env, capture_output=True, timeout=60, check=False)


def test_down_and_status_when_nothing_runs(local_env: dict[str, str]) -> None:
    code, data, _ = _mlops(local_env, "local", "down")
    assert code == 0 and data == {"stopped": False, "message": "the local AWS is not running", "endpoints_stopped": []}
    code, data, _ = _mlops(local_env, "local", "status")
    assert code == 0 and data["running"] is False


@pytest.mark.slow
@pytest.mark.terraform
def test_up_twice_crash_up_again_down_twice(local_env: dict[str, str]) -> None:
    state_dir = Path(local_env["MLOPS_STATE_DIR"]) / "local"
    registry = load_registry(ROOT / "platform.yaml", ROOT / "tenants")
    names = registry.names()

    code, first, stderr = _mlops(local_env, "local", "up")
    assert code == 0, stderr
    assert first["already_running"] is False and first["status"] == "usable"
    assert first["endpoint"].startswith("http://127.0.0.1:")
    print(f"\nmlops local up (2 tenants): {first['timings']}")
    assert "local AWS usable in" in stderr
    env_file = (state_dir / "env").read_text(encoding="utf-8")
    assert f"export AWS_ENDPOINT_URL={first['endpoint']}\n" in env_file and "export MLOPS_LOCAL=1\n" in env_file
    # usable: what the flow calls first is there (ECR, buckets, tables), the queues may not be yet
    s3 = boto3.client("s3", endpoint_url=first["endpoint"], region_name="us-east-1")
    s3.head_bucket(Bucket=names.tenant_bucket("acme"))
    _assert_status_lists_every_tenant(local_env, sorted(registry.tenants))

    # a second up while the rest is applied changes nothing
    code, second, stderr = _mlops(local_env, "local", "up")
    assert code == 0, stderr
    assert second["already_running"] is True and second["pid"] == first["pid"] and second["endpoint"] == first["endpoint"]

    code, ready, stderr = _mlops(local_env, "local", "wait")
    assert code == 0, stderr
    assert ready["status"] == "ready" and ready["timings"]["total"] > ready["timings"]["usable"]
    print(f"mlops local wait: {ready['timings']}")
    for tenant_id, tenant in registry.tenants.items():
        assert ready["outputs"]["names"]["tenants"][tenant_id] == names.tenant_names(tenant_id, tenant.models)
    # the outputs `up` read from the state file are what `terraform output -json` prints
    workspace = Workspace("local", Settings.from_env(local_env))
    assert ready["outputs"] == workspace.outputs() == workspace.terraform_outputs()
    _assert_equals_one_full_apply(workspace, ready["apply_variables"])

    # status reads the live local AWS
    code, status, _ = _mlops(local_env, "local", "status")
    assert code == 0 and status["running"] is True and status["endpoint"] == first["endpoint"]
    live = status["provisioned"]
    assert live["ecr_repositories"] == sorted(names.ecr_repository(m) for m in registry.platform.models)
    assert set(live["buckets"]) == {names.artifacts_bucket()} | {names.tenant_bucket(t) for t in registry.tenants}
    assert sorted(live["tenants"]) == sorted(registry.tenants)
    assert live["model_package_groups"] == sorted(names.model_package_group(t, m) for t, x in registry.tenants.items() for m in x.models)
    assert names.tier_queue("gold") in live["queues"] and names.dead_letter_queue(names.events_queue("uploads")) in live["queues"]

    # crash: the server dies, its state stays behind
    os.kill(first["pid"], signal.SIGKILL)
    assert _gone(first["pid"])
    code, status, _ = _mlops(local_env, "local", "status")
    assert code == 0 and status["running"] is False and status["status"] == "stale"

    code, third, stderr = _mlops(local_env, "local", "up", "--wait")
    assert code == 0, stderr
    assert third["status"] == "ready"
    assert "clearing stale local AWS state" in stderr
    assert third["already_running"] is False and third["pid"] != first["pid"]
    assert endpoint_answers(third["endpoint"])

    code, data, _ = _mlops(local_env, "local", "down")
    assert code == 0 and data["stopped"] is True
    assert _gone(third["pid"])
    assert not (state_dir / "state.json").exists() and not (state_dir / "env").exists()
    code, data, _ = _mlops(local_env, "local", "down")
    assert code == 0 and data["stopped"] is False


def _assert_status_lists_every_tenant(local_env: dict[str, str], tenants: list[str]) -> None:
    """`status` knows every tenant and its bucket as soon as the flow can run (before the outputs exist)."""
    code, early, _ = _mlops(local_env, "local", "status")
    assert code == 0 and early["status"] in ("usable", "ready")
    assert sorted(early["provisioned"]["tenants"]) == tenants
    assert all(t["bucket"] for t in early["provisioned"]["tenants"].values())


def _assert_equals_one_full_apply(workspace: Workspace, variables: dict[str, Any]) -> None:
    """`up`, though it returns early, leaves exactly what one full apply leaves: the resources of a plan from
    nothing, and nothing left to do but moto's known read-back drift."""
    applied = {r["address"] for r in _state_resources(workspace.show_state()["values"]["root_module"])}
    one_phase = Workspace("one-phase", workspace.settings).plan(variables)
    planned = {c["address"] for c in one_phase["resource_changes"] if c["mode"] == "managed"}
    assert applied == planned and len(applied) > 60
    again = summarise(workspace.plan(variables), local=True)
    assert not again["changes"], again


def _state_resources(module: dict[str, Any]) -> list[dict[str, Any]]:
    """Every managed resource of `terraform show -json`'s state values, child modules included."""
    found = [r for r in module.get("resources", []) if r["mode"] == "managed"]
    for child in module.get("child_modules", []):
        found += _state_resources(child)
    return found


def test_stale_provisioning_state_of_a_dead_process_is_not_running(tmp_path: Path) -> None:
    stack = LocalStack(Settings.from_env({"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(tmp_path)}))
    stack.home.mkdir(parents=True)
    stack.state_file.write_text(json.dumps({"pid": 2**22 + 12345, "endpoint": "http://127.0.0.1:9", "status": "provisioning"}))
    assert stack.is_running(stack.read_state()) is False
    assert stack.status()["status"] == "stale"
    assert stack.down() == {"stopped": False, "message": "the local AWS was not running; stale state removed", "pid": 2**22 + 12345,
                            "endpoints_stopped": []}
    assert not stack.state_file.exists()


def test_env_file_lines_export_endpoint_fake_credentials_and_region(tmp_path: Path) -> None:
    stack = LocalStack(Settings.from_env({"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(tmp_path)}))
    lines = stack.env_lines("http://127.0.0.1:1234", "eu-west-1")
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:1234" in lines
    assert "export AWS_DEFAULT_REGION=eu-west-1" in lines and "export MLOPS_LOCAL=1" in lines
    assert all(line.startswith(("#", "export ")) for line in lines)


def test_local_plan_needs_the_local_aws_running(local_env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "mlops", "local", "plan"], env=local_env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: the local AWS is not running (start it with `mlops local up`)"


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions `text` (the server's unique ready file)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_up_whose_terraform_init_fails_stops_the_server_it_started(tmp_path: Path, local_env: dict[str, str]) -> None:
    # The server starts while the zips are built and Terraform is initialised: a failure there stops it.
    root = tmp_path / "ml-ops"
    root.mkdir()
    shutil.copy2(ROOT / "platform.yaml", root / "platform.yaml")
    shutil.copytree(ROOT / "tenants", root / "tenants")
    shutil.copytree(ROOT / "lambda", root / "lambda")
    (root / "terraform").mkdir()
    (root / "terraform" / "main.tf").write_text("this is not HCL {\n", encoding="utf-8")
    env = {**local_env, "MLOPS_ROOT": str(root)}

    code, _, stderr = _mlops(env, "local", "up")

    assert code == 1
    assert stderr.strip().splitlines()[-1].startswith("error: terraform init failed:")
    state_dir = Path(env["MLOPS_STATE_DIR"]) / "local"
    assert not (state_dir / "state.json").exists()
    ready_file = str(state_dir / "server.ready")
    deadline = time.monotonic() + 10
    while _processes_mentioning(ready_file) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_mentioning(ready_file)


def test_terraform_gets_a_local_endpoint_as_aws_endpoint_url_and_a_real_account_none(tmp_path: Path) -> None:
    workspace = Workspace("local", Settings.from_env({"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(tmp_path)}))
    workspace.home.mkdir(parents=True)
    assert workspace._env("http://127.0.0.1:1234")["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1234"  # pylint: disable=protected-access
    assert "AWS_ENDPOINT_URL" not in workspace._env("")  # pylint: disable=protected-access
