"""The Terraform root applied to a moto server with 20 generated tenants, then one tenant more.

One apply is shared by every test of this module (SQS queues take ~25 s each against moto). The tests
prove that Terraform and mlops.naming agree on every name, that each tenant gets what the design says
with its cost tags, and that adding a tenant file adds only that tenant's resources.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from tf_helpers import is_known_drift, write_tenants

from mlops.config.tenants import load_registry
from mlops.naming import ENVIRONMENTS, Names
from mlops.packaging import build_packages
from mlops.settings import Settings
from mlops.terraform import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.terraform]

ROOT = Path(__file__).resolve().parents[2]
TENANTS = 20

# resource type -> the attribute holding its AWS name
_NAME_ATTRIBUTE = {
    "aws_s3_bucket": "bucket",
    "aws_ecr_repository": "name",
    "aws_dynamodb_table": "name",
    "aws_sqs_queue": "name",
    "aws_sns_topic": "name",
    "aws_iam_role": "name",
    "aws_cloudwatch_log_group": "name",
    "aws_lambda_function": "function_name",
    "aws_cloudwatch_event_rule": "name",
    "aws_sagemaker_model_package_group": "model_package_group_name",
}


class Applied:
    """One applied environment: its workspace, variables, outputs, state and the apply time."""

    def __init__(self, workspace: Workspace, variables: dict[str, Any], registry_dir: Path, seconds: float):
        self.workspace = workspace
        self.variables = variables
        self.registry_dir = registry_dir
        self.seconds = seconds
        self.outputs = workspace.outputs()
        self.state = workspace.show_state()

    def resources(self) -> list[dict[str, Any]]:
        """Every managed resource of the state, modules included."""
        found: list[dict[str, Any]] = []

        def walk(module: dict[str, Any]) -> None:
            found.extend(r for r in module.get("resources", []) if r["mode"] == "managed")
            for child in module.get("child_modules", []):
                walk(child)

        walk(self.state["values"]["root_module"])
        return found


@pytest.fixture(scope="module")
def applied(fresh_moto: str, terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Applied:  # pylint: disable=unused-argument
    """The platform and 20 generated tenants applied once to a fresh moto server."""
    base = tmp_path_factory.mktemp("tf20")
    shutil.copy(ROOT / "platform.yaml", base / "platform.yaml")
    write_tenants(base / "tenants", TENANTS)
    env = {"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(base / "state"), "MLOPS_PLATFORM_FILE": str(base / "platform.yaml"),
           "MLOPS_TENANTS_DIR": str(base / "tenants")}
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        env["MLOPS_TF_PLUGIN_DIR"] = os.environ["MLOPS_TF_PLUGIN_DIR"]
    settings = Settings.from_env(env)
    build_packages(ROOT, base / "build")
    variables = {"lambda_package_dir": str(base / "build"), "aws_endpoint_url": fresh_moto, "force_destroy": True}
    workspace = Workspace("tf20", settings)
    started = time.monotonic()
    workspace.apply(variables, parallelism=20)
    seconds = time.monotonic() - started
    print(f"\napply of the platform and {TENANTS} tenants: {seconds:.1f} s")
    return Applied(workspace, variables, base, seconds)


def _names(applied: Applied) -> tuple[Names, Any]:
    registry = load_registry(applied.registry_dir / "platform.yaml", applied.registry_dir / "tenants")
    return registry.names(applied.outputs["account_id"]), registry


def test_outputs_match_the_naming_module_for_platform_and_every_tenant(applied: Applied) -> None:
    names, registry = _names(applied)
    platform = registry.platform
    assert applied.outputs["names"]["platform"] == names.platform_names(platform.models, list(platform.tiers))
    assert sorted(applied.outputs["names"]["tenants"]) == sorted(registry.tenants)
    for tenant_id, tenant in registry.tenants.items():
        assert applied.outputs["names"]["tenants"][tenant_id] == names.tenant_names(tenant_id, tenant.models)


def test_every_named_resource_in_the_state_is_a_name_from_mlops_naming(applied: Applied) -> None:
    names, registry = _names(applied)
    platform = registry.platform
    queues = [names.tier_queue(t) for t in platform.tiers] + [names.events_queue("uploads"), names.events_queue("status")]
    functions = ["trigger", "dispatcher", "status"]
    expected = {
        "aws_s3_bucket": {names.artifacts_bucket()} | {names.tenant_bucket(t) for t in registry.tenants},
        "aws_ecr_repository": {names.ecr_repository(m) for m in platform.models},
        "aws_dynamodb_table": {names.ledger_table(), names.slots_table()},
        "aws_sqs_queue": set(queues) | {names.dead_letter_queue(q) for q in queues},
        "aws_sns_topic": {names.notifications_topic()},
        "aws_iam_role": {names.service_role("lambda")}
        | {role(t) for t in registry.tenants for role in (names.tenant_role, names.pipeline_role, names.inference_role)}
        | {names.deploy_role(env, t) for env in ENVIRONMENTS for t in registry.tenants}
        | {names.ci_role(p) for p in ("build", "train", "infra")},
        "aws_cloudwatch_log_group": {names.log_group(f) for f in functions},
        "aws_lambda_function": {names.lambda_function(f) for f in functions},
        # No dispatch-schedule rule on the local AWS: the local runtime runs the dispatcher (platform module).
        "aws_cloudwatch_event_rule": {names.platform_rule("pipeline-status")} | {names.tenant_upload_rule(t) for t in registry.tenants},
        "aws_sagemaker_model_package_group": {
            names.model_package_group(t, m) for t, tenant in registry.tenants.items() for m in tenant.models
        },
    }
    found: dict[str, set[str]] = {kind: set() for kind in expected}
    for resource in applied.resources():
        if resource["type"] in _NAME_ATTRIBUTE:
            found[resource["type"]].add(resource["values"][_NAME_ATTRIBUTE[resource["type"]]])
    assert found == expected


def test_tenants_get_bucket_rule_role_and_groups_with_cost_tags(applied: Applied) -> None:
    names, registry = _names(applied)
    kwargs = {"endpoint_url": applied.variables["aws_endpoint_url"], "region_name": registry.platform.region}
    s3, events, sagemaker = (boto3.client(s, **kwargs) for s in ("s3", "events", "sagemaker"))
    for tenant_id in ("tenant-01", "tenant-20"):
        tenant = registry.tenant(tenant_id)
        bucket = names.tenant_bucket(tenant_id)
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        assert tags == tenant.cost_tags(registry.platform.project)
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
        rule = events.describe_rule(Name=names.tenant_upload_rule(tenant_id))
        assert bucket in rule["EventPattern"] and "data/" in rule["EventPattern"]
        targets = events.list_targets_by_rule(Rule=names.tenant_upload_rule(tenant_id))["Targets"]
        assert [t["Arn"].rsplit(":", 1)[-1] for t in targets] == [names.events_queue("uploads")]
        for model in tenant.models:
            group = sagemaker.describe_model_package_group(ModelPackageGroupName=names.model_package_group(tenant_id, model))
            assert group["ModelPackageGroupStatus"] == "Completed"
    assert tenant.cost_tags(registry.platform.project) == applied.outputs["tenants"]["tenant-20"]["tags"]


def test_platform_repositories_are_immutable_and_scanned(applied: Applied) -> None:
    names, registry = _names(applied)
    ecr = boto3.client("ecr", endpoint_url=applied.variables["aws_endpoint_url"], region_name=registry.platform.region)
    repos = ecr.describe_repositories(repositoryNames=[names.ecr_repository(m) for m in registry.platform.models])["repositories"]
    assert {r["imageTagMutability"] for r in repos} == {"IMMUTABLE"}
    assert {r["imageScanningConfiguration"]["scanOnPush"] for r in repos} == {True}


def test_adding_a_tenant_adds_only_that_tenants_resources(applied: Applied) -> None:
    new_id = write_tenants(applied.registry_dir / "tenants", 1, start=TENANTS + 1)[0]
    plan = applied.workspace.plan(applied.variables)
    changes = [c for c in plan["resource_changes"] if c["change"]["actions"] not in (["no-op"], ["read"])]
    drift = [c for c in changes if is_known_drift(c)]
    others = [c for c in changes if not is_known_drift(c)]
    assert others, "the new tenant's resources are missing from the plan"
    # The CI module gains the tenant's deploy roles and lets train pass its pipeline role (an in-place update).
    ci = [c for c in others if c["module_address"] == "module.ci[0]"]
    assert {c["address"] for c in ci if c["change"]["actions"] == ["create"]} == {
        f'module.ci[0].{kind}.deploy["{env}-{new_id}"]' for kind in ("aws_iam_role", "aws_iam_role_policy") for env in ENVIRONMENTS}
    assert {c["address"] for c in ci if c["change"]["actions"] != ["create"]} <= {"module.ci[0].aws_iam_role_policy.train"}
    others = [c for c in others if c not in ci]
    assert {c["module_address"] for c in others} == {f'module.tenant["{new_id}"]'}, [c["address"] for c in others]
    assert {tuple(c["change"]["actions"]) for c in others} == {("create",)}
    assert {c["type"] for c in others} >= {"aws_s3_bucket", "aws_iam_role", "aws_sagemaker_model_package_group",
                                           "aws_cloudwatch_event_rule", "aws_cloudwatch_event_target"}
    print(f"\nknown drift in the plan: {sorted(c['address'] for c in drift)}")

    outputs = applied.workspace.apply(applied.variables, parallelism=20)
    assert new_id in outputs["names"]["tenants"]
    s3 = boto3.client("s3", endpoint_url=applied.variables["aws_endpoint_url"], region_name="us-east-1")
    s3.head_bucket(Bucket=outputs["names"]["tenants"][new_id]["bucket"])
