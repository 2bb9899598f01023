"""Data is kept unless the user says otherwise: `mlops infra plan|apply` against a moto server.

One environment (the platform and two tenants) is applied once through the CLI, the way a user does it:
an environment other than `local`, with a `--var-file` naming the moto endpoint. The tests then change
the registry and run the CLI again: disabling a tenant keeps its data; removing a tenant's file is refused
with nothing applied; `--allow-destroy-data` lets a destroying plan through (removing a model from the
platform deletes its ECR repository: moto has no DeleteModelPackageGroup, so removing a whole tenant
with the flag would hang here). checkov checks the plan that first apply made (`terraform show -json`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from python_terraform import IsFlagged

from mlops.naming import Names
from mlops.settings import Settings
from mlops.terraform import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.terraform]

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT = "guard"
DISABLED, REMOVED = "tenant-01", "tenant-02"
OBJECTS = ("data/churn/train.csv", "models/churn/model.tar.gz")
#: checkov in its own virtual environment (`make checkov` makes it, and `make test` makes it before pytest runs).
CHECKOV = ROOT / ".ci" / "checkov-venv" / "bin" / "checkov"


@dataclass
class Environment:
    """The applied environment: its registry folder, the CLI's environment variables and the moto endpoint."""

    base: Path
    env: dict[str, str]
    endpoint: str
    names: Names

    def mlops(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`mlops infra <args> --environment guard --var-file moto.tfvars.json --json`, as a user runs it."""
        command = [sys.executable, "-m", "mlops", "infra", *args, "--environment", ENVIRONMENT,
                   "--var-file", str(self.base / "moto.tfvars.json"), "--json"]
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=False, timeout=600)

    def client(self, service: str) -> Any:
        """A client of the moto server (its own fake credentials: the module fixture runs before the per-test ones)."""
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def workspace(self) -> Workspace:
        """The environment's Terraform working folder (read its state only)."""
        return Workspace(ENVIRONMENT, Settings.from_env(self.env))

    def tenant_file(self, tenant_id: str) -> Path:
        """The tenant's registry file."""
        return self.base / "tenants" / f"{tenant_id}.yaml"

    def set_enabled(self, tenant_id: str, enabled: bool) -> None:
        """Write `enabled` into the tenant's registry file."""
        doc = yaml.safe_load(self.tenant_file(tenant_id).read_text(encoding="utf-8"))
        self.tenant_file(tenant_id).write_text(yaml.safe_dump({**doc, "enabled": enabled}, sort_keys=False), encoding="utf-8")


def _write_tenant(folder: Path, tenant_id: str) -> None:
    doc = {"id": tenant_id, "display_name": tenant_id, "tier": "bronze", "models": ["churn"], "tags": {"customer": tenant_id}}
    (folder / f"{tenant_id}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def applied(fresh_moto: str, terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Environment:  # pylint: disable=unused-argument
    """The platform (models churn and house-prices) and two tenants training churn, applied by `mlops infra apply`,
    with objects in the tenants' buckets."""
    base = tmp_path_factory.mktemp("guard")
    platform = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    platform["models"] = ["churn", "house-prices"]  # what the test names, whatever models the shipped registry gains
    (base / "platform.yaml").write_text(yaml.safe_dump(platform, sort_keys=False), encoding="utf-8")
    (base / "tenants").mkdir()
    for tenant_id in (DISABLED, REMOVED):
        _write_tenant(base / "tenants", tenant_id)
    (base / "moto.tfvars.json").write_text(json.dumps({"aws_endpoint_url": fresh_moto, "force_destroy": True}), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               MLOPS_ROOT=str(ROOT), MLOPS_STATE_DIR=str(base / "state"), MLOPS_PLATFORM_FILE=str(base / "platform.yaml"),
               MLOPS_TENANTS_DIR=str(base / "tenants"))
    environment = Environment(base, env, fresh_moto, Names(project="mlops-demo", account_id="123456789012", region="us-east-1"))
    started = time.monotonic()
    outputs = _json(environment.mlops("apply"))
    print(f"\nmlops infra apply of the platform and 2 tenants: {time.monotonic() - started:.1f} s")
    assert outputs["data_destroyed"] == []
    assert sorted(outputs["names"]["tenants"]) == [DISABLED, REMOVED] and outputs["disabled_tenants"] == {}
    s3 = environment.client("s3")
    for tenant_id in (DISABLED, REMOVED):
        for key in OBJECTS:
            s3.put_object(Bucket=environment.names.tenant_bucket(tenant_id), Key=key, Body=b"tenant data")
    return environment


def _tenant_resources(environment: Environment, tenant_id: str) -> set[str]:
    """The resource addresses of the tenant's module in the state, instance keys left out."""
    found: set[str] = set()

    def walk(module: dict[str, Any]) -> None:
        prefix = f'module.tenant["{tenant_id}"].'
        found.update(r["address"][len(prefix):].split("[")[0] for r in module.get("resources", [])
                     if r["address"].startswith(prefix) and r["mode"] == "managed")
        for child in module.get("child_modules", []):
            walk(child)

    walk(environment.workspace().show_state()["values"]["root_module"])
    return found


def _assert_data_kept(environment: Environment, tenant_id: str) -> None:
    s3, kms, sagemaker = (environment.client(s) for s in ("s3", "kms", "sagemaker"))
    bucket = environment.names.tenant_bucket(tenant_id)
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == sorted(OBJECTS)
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == f"alias/mlops-demo-tenant-{tenant_id}")
    assert kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    group = sagemaker.describe_model_package_group(ModelPackageGroupName=environment.names.model_package_group(tenant_id, "churn"))
    assert group["ModelPackageGroupStatus"] == "Completed"


def test_checkov_finds_no_failed_check_in_the_plan(applied: Environment) -> None:
    """checkov on the plan JSON of the environment: the plan `mlops infra apply` saved and applied in the fixture (the
    platform, the CI roles and two tenants, against the local AWS), not a plan of its own. The source's justified
    `checkov:skip` comments count for the plan's resources (.ci/checkov.sh --plan maps them back to terraform/)."""
    if not CHECKOV.is_file():
        pytest.skip("checkov's virtual environment is missing: `make checkov` makes it")
    workspace = applied.workspace()
    plan = workspace.run("show", str(workspace.plan_file), json=IsFlagged, what="show plan")
    addresses = {change["address"] for change in json.loads(plan)["resource_changes"]}
    for module in ("module.platform.", "module.ci[0].", f'module.tenant["{DISABLED}"].', f'module.tenant["{REMOVED}"].'):
        assert any(address.startswith(module) for address in addresses), module
    plan_file = applied.base / "plan.json"
    plan_file.write_text(plan, encoding="utf-8")

    result = subprocess.run(["bash", str(ROOT / ".ci" / "checkov.sh"), "--plan", str(plan_file)],
                            capture_output=True, text=True, check=False, timeout=600)

    counts = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", result.stdout)
    assert result.returncode == 0 and counts, result.stdout[-5000:] + result.stderr[-2000:]
    print(f"\ncheckov on the plan JSON: {counts[1]} passed, {counts[2]} failed, {counts[3]} skipped")
    assert int(counts[1]) > 0 and counts[2] == "0"


def test_disabling_a_tenant_keeps_its_data_and_enabling_it_again_restores_only_its_access(applied: Environment) -> None:
    access = {"aws_iam_role.tenant", "aws_iam_policy.tenant", "aws_iam_role_policy_attachment.tenant",
              "aws_iam_role.service", "aws_iam_policy.service", "aws_iam_role_policy_attachment.service",
              "aws_cloudwatch_event_rule.uploads", "aws_cloudwatch_event_target.uploads"}
    assert access <= _tenant_resources(applied, DISABLED)
    role = applied.names.tenant_role(DISABLED)
    applied.set_enabled(DISABLED, False)

    outputs = _json(applied.mlops("apply"))  # no data destroyed: applied without any flag

    assert outputs["data_destroyed"] == []
    assert DISABLED not in outputs["names"]["tenants"] and DISABLED not in outputs["tenants"]
    assert set(outputs["disabled_tenants"]) == {DISABLED}
    assert outputs["disabled_tenants"][DISABLED]["bucket_arn"] == f"arn:aws:s3:::{applied.names.tenant_bucket(DISABLED)}"
    assert not access & _tenant_resources(applied, DISABLED)
    _assert_data_kept(applied, DISABLED)
    with pytest.raises(applied.client("iam").exceptions.NoSuchEntityException):
        applied.client("iam").get_role(RoleName=role)

    # Enabling it again creates its access resources and nothing else of it (planned only: an apply against
    # moto costs ~25 s of queue drift; the last test applies it along with its own change).
    applied.set_enabled(DISABLED, True)
    plan = _json(applied.mlops("plan"))
    mine = [c for c in plan["changes"] if c["component"] == f"tenant {DISABLED}"]
    # (two SageMaker roles of its own besides the job role: pipeline and inference, `aws_iam_*.service`)
    created = [c["address"].split(".", 2)[2].split("[")[0] for c in mine if c["action"] == "create"]
    assert sorted(set(created)) == sorted(access)
    # Besides: moto's known drift (the bucket notification's flag, docs/terraform.md), counted only on `local`.
    assert {c["action"] for c in mine} <= {"create", "update"} and plan["data_destroyed"] == []


def test_removing_a_tenant_is_refused_with_what_would_go_and_nothing_applied(applied: Environment) -> None:
    tenant_file = applied.tenant_file(REMOVED)
    saved = tenant_file.read_text(encoding="utf-8")
    serial = json.loads(applied.workspace().state_file.read_text(encoding="utf-8"))["serial"]
    tenant_file.unlink()
    try:
        plan = _json(applied.mlops("plan"))
        refused = applied.mlops("apply")
    finally:
        tenant_file.write_text(saved, encoding="utf-8")

    gone = {(loss["kind"], loss["name"], loss["action"], loss["contents"]) for loss in plan["data_destroyed"]}
    assert {loss["component"] for loss in plan["data_destroyed"]} == {f"tenant {REMOVED}"}
    assert ("S3 bucket", applied.names.tenant_bucket(REMOVED), "delete", "its objects") in gone
    assert ("model package group", applied.names.model_package_group(REMOVED, "churn"), "delete", "") in gone
    assert {kind for kind, *_ in gone} == {"S3 bucket", "KMS key", "model package group"}

    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]["message"]
    assert error.startswith("apply refused, nothing applied: the plan destroys 3 data resource(s)")
    assert applied.names.tenant_bucket(REMOVED) in error
    lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--allow-destroy-data" in lines[0]
    assert json.loads(applied.workspace().state_file.read_text(encoding="utf-8"))["serial"] == serial
    _assert_data_kept(applied, REMOVED)
    assert applied.client("iam").get_role(RoleName=applied.names.tenant_role(REMOVED))


def test_allow_destroy_data_lets_a_destroying_plan_through_and_lists_what_goes(applied: Environment) -> None:
    repository = applied.names.ecr_repository("house-prices")
    ecr = applied.client("ecr")
    platform = yaml.safe_load((applied.base / "platform.yaml").read_text(encoding="utf-8"))
    platform["models"] = ["churn"]
    (applied.base / "platform.yaml").write_text(yaml.safe_dump(platform, sort_keys=False), encoding="utf-8")

    result = applied.mlops("apply", "--allow-destroy-data")
    outputs = _json(result)

    assert [(x["component"], x["kind"], x["name"], x["contents"]) for x in outputs["data_destroyed"]] == [
        ("platform", "ECR repository", repository, "its images")]
    assert DISABLED in outputs["tenants"]  # enabled again by the first test: its role and rule came back alongside
    assert f"destroying platform: ECR repository {repository} (delete, with its images)" in result.stderr
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_repositories(repositoryNames=[repository])
    for tenant_id in (DISABLED, REMOVED):
        _assert_data_kept(applied, tenant_id)
