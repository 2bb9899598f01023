"""The trigger wired into the local AWS: `mlops local up` runs the local Lambda runtime, `mlops train` goes
through the trigger, a tenant's data upload starts a build by itself, and everything lands in the ledger.

One `mlops local up` for the module (real moto server, real Terraform, the runtime as a detached process);
the tests run in order on it: an upload by itself, then a CI build that has to queue behind an upload for
the bronze tier's single slot, then the ledger and cost views of both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.lambda_functions import publish_image

from mlops.aws.ledger import Ledger
from mlops.aws.slots import Slots
from mlops.config.tenants import load_registry

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "platform.yaml", ROOT / "tenants")
NAMES = REGISTRY.names("123456789012")


def _mlops(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


class Local:
    """The running local AWS of the module: its environment and clients."""

    def __init__(self, env: dict[str, str], state: dict[str, Any]):
        self.env, self.state = env, state
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        self.s3 = session.client("s3", endpoint_url=state["endpoint"])
        dynamodb = session.client("dynamodb", endpoint_url=state["endpoint"])
        self.ledger = Ledger(dynamodb, NAMES.ledger_table())
        self.slots = Slots(dynamodb, NAMES.slots_table())

    def upload(self, tenant: str, model: str, tmp: Path, files: int = 1) -> None:
        """A tenant's data upload, as the tenant does it (S3 puts under data/<model>/): one build per file."""
        target = tmp / f"{tenant}-{model}.csv"
        subprocess.run([sys.executable, str(ROOT / "examples" / "datagen.py"), "--model", model, "--tenant", tenant,
                        "--out", str(target)], check=True, capture_output=True)
        for n in range(files):
            self.s3.upload_file(str(target), NAMES.tenant_bucket(tenant), f"data/{model}/data{'' if n == 0 else n}.csv")

    def wait_for(self, what: Any, timeout: float = 300) -> Any:
        """Poll `what()` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            time.sleep(1)
        raise AssertionError(f"not within {timeout} s: {self.ledger.scan()}")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """`mlops local up` with a private state folder; `mlops local down` at the end."""
    state_dir = tmp_path_factory.mktemp("wiring") / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "MLOPS_", "CI_"))}
    env.update(MLOPS_ROOT=str(ROOT), MLOPS_STATE_DIR=str(state_dir))
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        env["MLOPS_TF_PLUGIN_DIR"] = os.environ["MLOPS_TF_PLUGIN_DIR"]
    up = _mlops(env, "local", "up", "--wait", "--json")
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads(up.stdout)
        assert "local Lambda runtime" in up.stderr
        env.update(AWS_ENDPOINT_URL=state["endpoint"], AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", MLOPS_LOCAL="1")
        upsert = _mlops(env, "pipeline", "upsert", "--repo", str(ROOT / "examples" / "churn"))
        assert upsert.returncode == 0, upsert.stderr
        # a released image for the builds to resolve, as `mlops image publish` leaves it
        publish_image(boto3.client("ecr", endpoint_url=state["endpoint"], region_name="us-east-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing"), NAMES, "churn", "1.0.0")
        yield Local(env, json.loads((state_dir / "local" / "state.json").read_text(encoding="utf-8")))
    finally:
        log = state_dir / "local" / "runtime.log"
        if log.exists():  # what the handlers did, for a failing test's report
            print("\n".join(line for line in log.read_text(encoding="utf-8").splitlines() if '"dispatch"' not in line))
        down = _mlops(env, "local", "down", "--json")
        assert down.returncode == 0, down.stderr


def test_local_up_runs_the_lambda_runtime(local: Local) -> None:
    pid = local.state["runtime_pid"]
    os.kill(pid, 0)  # alive
    status = _mlops(local.env, "local", "status", "--json")
    runtime = json.loads(status.stdout)["runtime"]
    assert runtime["pid"] == pid and runtime["running"] is True and Path(runtime["log"]).exists()


def test_a_data_upload_starts_a_build_by_itself(local: Local, tmp_path: Path) -> None:
    local.upload("acme", "churn", tmp_path)
    item = local.wait_for(lambda: [i for i in local.ledger.scan(tenant="acme", status="SUCCEEDED") if i["source"] == "upload"])[0]
    assert item["data_uri"] == f"s3://{NAMES.tenant_bucket('acme')}/data/churn/data.csv"
    assert item["pipeline_execution_arn"] and item["tier"] == "gold" and item["duration_seconds"] > 0
    statuses = [h["status"] for h in item["history"]]
    assert "STARTING" in statuses and statuses[-1] == "SUCCEEDED", statuses
    assert len(local.ledger.scan(tenant="acme")) == 1  # one upload, one build
    assert local.slots.read_counter("gold", 4).inflight == 0


def test_train_waits_for_a_bronze_slot_then_lands_in_the_ledger(local: Local, tmp_path: Path) -> None:
    local.upload("globex", "churn", tmp_path, files=3)  # three builds for the bronze tier's only slot
    uploads = local.wait_for(lambda: [i for i in local.ledger.scan(tenant="globex") if i["status"] != "QUEUED"])
    assert uploads[0]["source"] == "upload"
    out = _mlops(local.env, "train", "--tenant", "globex", "--repo", str(ROOT / "examples" / "churn"), "--wait", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "Succeeded" and result["model_package_arn"]
    assert result["trigger"] == "queued" and "queued for a bronze slot" in out.stderr  # behind the uploads
    assert result["ledger"]["status"] == "SUCCEEDED"
    item = local.ledger.get(result["execution_id"])
    assert item["status"] == "SUCCEEDED" and item["source"] == "ci"
    assert item["model_package_arn"] == result["model_package_arn"]
    assert item["pipeline_execution_arn"] == result["execution_arn"]
    assert item["instance_type"] == "ml.m5.large" and item["tier"] == "bronze"
    local.wait_for(lambda: all(i["status"] == "SUCCEEDED" for i in local.ledger.scan(tenant="globex")))
    assert sorted(i["source"] for i in local.ledger.scan(tenant="globex")) == ["ci", "upload", "upload", "upload"]
    state = local.slots.read_tier("bronze", 1)
    assert (state.inflight, state.waiting) == (0, 0)


def test_executions_list_and_cost_report_show_both_ways_in(local: Local) -> None:
    listed = json.loads(_mlops(local.env, "executions", "list", "--json").stdout)
    assert {(i["tenant"], i["source"]) for i in listed} == {("acme", "upload"), ("globex", "upload"), ("globex", "ci")}
    assert all(i["status"] == "SUCCEEDED" for i in listed)
    report = json.loads(_mlops(local.env, "cost", "report", "--json").stdout)
    assert set(report["per_tenant"]) == {"acme", "globex"}
    assert {r["tenant"] for r in report["rows"]} == {"acme", "globex"}
