"""The tenant isolation matrix: planned IAM, bucket and key policies evaluated with AWS's evaluation logic.

What Terraform plans for a root with several tenants is read from `terraform show -json`: every IAM role
(trust policy, inline and attached policies, permissions boundary, tags), every bucket policy and every KMS
key policy. A plan cannot show a policy that names an ARN only AWS assigns (a KMS key's id, an IAM policy's
ARN): the whole document is "known after apply". `plan_with_known_policies` therefore applies, to a local
moto server, only the policy resources the first plan cannot show (Terraform brings what they reference:
the keys, the policies their attachments and boundaries name, a function a CI policy names) and plans again;
in that second plan every policy document is known, and it is what is evaluated. KMS key ids are moto's.

Requests are built from the plan's `names` output (the naming module's names of each tenant) and the
planned resources, for every principal of tenant A (every role tagged `mlops:tenant = A` or named as one of
A's roles by the naming module) against every resource of tenant B, and evaluated in one Node process by
`simulate.mjs` (`@cloud-copilot/iam-simulate`, pinned in .ci/node). A request is what one AWS call asks:
principal, action, resource, request context (TLS, the KMS key named on an upload, `kms:ViaService` for
S3's use of a key, tags); the resource's policy (bucket policy, key policy) is evaluated with it.

This module is test support, not product code: the tests in this folder and bench/iam_matrix.py use it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / ".ci" / "node"
INSTALLER = ROOT / ".ci" / "gitlab-ci-local.sh"
SIMULATE = Path(__file__).resolve().with_name("simulate.mjs")
SIMULATOR_PACKAGE = NODE_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate" / "package.json"

#: The registry of the matrix: six tenants on all three tiers, both model sets, and a prefix pair (acme,
#: acme-eu: an ARN pattern `...acme*` written for one matches the other).
TENANTS: dict[str, dict[str, Any]] = {
    "acme": {"tier": "gold", "models": ["churn", "house-prices"]},
    "acme-eu": {"tier": "bronze", "models": ["churn"]},
    "globex": {"tier": "silver", "models": ["churn"]},
    "initech": {"tier": "gold", "models": ["house-prices"]},
    "umbrella": {"tier": "bronze", "models": ["churn", "house-prices"]},
    "hooli": {"tier": "silver", "models": ["churn"]},
}
SESSION = "iam-matrix"
PROJECT = "iam-matrix"

#: Policy-bearing resource types and the attributes whose values the evaluation needs.
POLICY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "aws_iam_role": ("assume_role_policy", "permissions_boundary", "managed_policy_arns"),
    "aws_iam_policy": ("policy", "arn"),
    "aws_iam_role_policy": ("policy", "role"),
    "aws_iam_role_policy_attachment": ("policy_arn", "role"),
    "aws_s3_bucket_policy": ("policy", "bucket"),
    "aws_kms_key": ("policy", "arn"),
    "aws_kms_key_policy": ("policy", "key_id"),
}

#: The key policy KMS gives a key created without one (the account administers it through IAM).
DEFAULT_KEY_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::{account}:root"},
    "Action": "kms:*", "Resource": "*"}]}


class SimulatorError(RuntimeError):
    """The simulator could not be installed or run, or could not evaluate a request."""


# -- the registry and the plan ------------------------------------------------------------------------

def write_registry(folder: Path, tenants: dict[str, dict[str, Any]] | None = None) -> Path:
    """The shipped platform.yaml under a project of its own (the matrix's resources never meet another test's in
    the moto of the same process) with the models the matrix names, and one tenant file per tenant in `folder`;
    returns `folder`."""
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    platform = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    platform.update(project=PROJECT, models=["churn", "house-prices"])
    (folder / "platform.yaml").write_text(yaml.safe_dump(platform, sort_keys=False), encoding="utf-8")
    for tenant_id, spec in (tenants or TENANTS).items():
        doc = {"id": tenant_id, "display_name": tenant_id, "tier": spec["tier"], "models": spec["models"],
               "tags": {"customer": tenant_id}}
        (folder / "tenants" / f"{tenant_id}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return folder


def _unknown_policy_addresses(plan: dict[str, Any]) -> list[str]:
    found = []
    for change in plan.get("resource_changes", []):
        attributes = POLICY_ATTRIBUTES.get(change["type"])
        if change["mode"] != "managed" or attributes is None or "delete" in change["change"]["actions"]:
            continue
        unknown = change["change"].get("after_unknown") or {}
        if any(unknown.get(name) is True for name in attributes):
            found.append(change["address"])
    return found


def plan_with_known_policies(base: Path, endpoint: str) -> tuple[dict[str, Any], dict[str, float]]:
    """The root's plan for the registry in `base` (platform.yaml, tenants/) with every policy document known.

    Plans once; applies to the moto server at `endpoint` only the policy resources whose documents (or ARNs)
    that plan leaves unknown, with `-target` (Terraform adds what they reference); plans again. Returns the
    second plan (`terraform show -json`) and the seconds of each phase.
    """
    from python_terraform import IsFlagged

    from mlops.packaging import build_packages
    from mlops.settings import Settings
    from mlops.terraform import Workspace

    env = {"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(base / "state"), "MLOPS_PLATFORM_FILE": str(base / "platform.yaml"),
           "MLOPS_TENANTS_DIR": str(base / "tenants")}
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        env["MLOPS_TF_PLUGIN_DIR"] = os.environ["MLOPS_TF_PLUGIN_DIR"]
    build_packages(ROOT, base / "build")
    workspace = Workspace("iam", Settings.from_env(env))
    variables = {"lambda_package_dir": str(base / "build"), "aws_endpoint_url": endpoint, "force_destroy": True}
    seconds: dict[str, float] = {}
    started = time.monotonic()
    plan = workspace.plan(variables)
    seconds["first plan"] = time.monotonic() - started
    targets = _unknown_policy_addresses(plan)
    if targets:
        started = time.monotonic()
        workspace.run("apply", auto_approve=IsFlagged, parallelism=20, endpoint=endpoint, target=targets,
                      what="apply of the policy resources", **workspace._var_options(variables))  # pylint: disable=protected-access  # the same -var-file a plan gets
        seconds["targeted apply"] = time.monotonic() - started
        started = time.monotonic()
        plan = workspace.plan(variables)
        seconds["second plan"] = time.monotonic() - started
    still = _unknown_policy_addresses(plan)
    if still:
        raise AssertionError(f"policies still unknown after applying what they reference: {still}")
    return plan, seconds


# -- what the plan holds -------------------------------------------------------------------------------

@dataclass
class Role:
    """One planned IAM role with everything IAM evaluates for it."""

    name: str
    arn: str
    address: str
    tags: dict[str, str]
    trust: dict[str, Any]
    identity: dict[str, dict[str, Any]] = field(default_factory=dict)  # policy id -> document
    boundary: dict[str, dict[str, Any]] = field(default_factory=dict)
    boundary_arn: str | None = None

    @property
    def session_arn(self) -> str:
        """The principal of a request made with the role's credentials."""
        account = self.arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.name}/{SESSION}"


@dataclass
class Planned:
    """The plan's policies and names: roles, bucket and key policies, and each tenant's names."""

    account: str
    region: str
    project: str
    names: dict[str, Any]
    roles: dict[str, Role]
    bucket_policies: dict[str, dict[str, Any]]  # bucket name -> policy
    key_policies: dict[str, dict[str, Any]]  # key ARN -> policy
    key_tags: dict[str, dict[str, str]]  # key ARN -> tags
    bucket_keys: dict[str, str]  # bucket name -> default KMS key ARN
    tables: dict[str, str]  # table name -> ARN
    repositories: dict[str, str]  # ECR repository name -> ARN

    @property
    def tenants(self) -> list[str]:
        """Every tenant of the plan's `names` output."""
        return sorted(self.names["tenants"])

    def tenant_names(self, tenant: str) -> dict[str, Any]:
        """The naming module's names of one tenant."""
        return self.names["tenants"][tenant]

    def tenant_of(self, role: Role) -> str | None:
        """The tenant a role belongs to: its `mlops:tenant` tag, or a role name the naming module gives a tenant."""
        if role.tags.get("mlops:tenant") in self.names["tenants"]:
            return role.tags["mlops:tenant"]
        for tenant in self.tenants:
            if role.name in role_names(self.tenant_names(tenant)).values():
                return tenant
        return None

    def tenant_roles(self, tenant: str) -> list[Role]:
        """Every planned role of one tenant."""
        return [role for role in self.roles.values() if self.tenant_of(role) == tenant]

    def shared_roles(self) -> list[Role]:
        """Every planned role of no tenant (platform, CI)."""
        return [role for role in self.roles.values() if self.tenant_of(role) is None]

    def role_kind(self, role: Role) -> str:
        """The naming module's key of a tenant role (`role`, `pipeline_role`, `deploy_roles.staging`, ...)."""
        tenant = self.tenant_of(role)
        if tenant is None:
            return "shared"
        for kind, name in role_names(self.tenant_names(tenant)).items():
            if name == role.name:
                return kind
        return "other"

    def tenant_key(self, tenant: str) -> str:
        """The KMS key ARN of a tenant's bucket (its default encryption)."""
        return self.bucket_keys[self.tenant_names(tenant)["bucket"]]

    def resource_policy(self, resource: str) -> dict[str, Any] | None:
        """The resource-based policy IAM evaluates with a request on `resource` (bucket or key policy)."""
        if resource.startswith("arn:aws:s3:::"):
            return self.bucket_policies.get(resource[len("arn:aws:s3:::"):].split("/", 1)[0])
        if resource.startswith("arn:aws:kms:") and ":key/" in resource:
            return self.key_policies.get(resource)
        return None


def role_names(names: dict[str, Any]) -> dict[str, str]:
    """The role names among a tenant's names: `role`, `pipeline_role`, `deploy_roles.<environment>`, ..."""
    found: dict[str, str] = {}
    for key, value in names.items():
        if key.endswith("role") and isinstance(value, str):
            found[key] = value
        elif key.endswith("roles") and isinstance(value, dict):
            found.update({f"{key}.{sub}": name for sub, name in value.items()})
    return found


def _resources(plan: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, address, planned values) of every managed resource the plan keeps, changes or creates."""
    for change in plan["resource_changes"]:
        if change["mode"] == "managed" and change["change"]["actions"] != ["delete"]:
            yield change["type"], change["address"], change["change"]["after"] or {}


def _document(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, str) or not value:
        raise AssertionError(f"{where}: no policy document in the plan ({value!r})")
    return json.loads(value)


def read_plan(plan: dict[str, Any]) -> Planned:  # pylint: disable=too-many-branches,too-many-locals  # one branch per resource type
    """Every role, bucket policy and key policy of a plan whose policies are all known."""
    outputs = {name: change.get("after") for name, change in plan["output_changes"].items()}
    account, region = outputs["account_id"], outputs["region"]
    names = outputs["names"]
    project = names["platform"]["ledger_table"].rsplit("-ledger", 1)[0]
    roles: dict[str, Role] = {}
    managed: dict[str, tuple[str, dict[str, Any]]] = {}  # policy ARN -> (name, document)
    inline: list[tuple[str, str, dict[str, Any]]] = []
    attachments: list[tuple[str, str]] = []
    planned = Planned(account, region, project, names, roles, {}, {}, {}, {}, {}, {})
    for kind, address, values in _resources(plan):
        if kind == "aws_iam_role":
            arn = values.get("arn") or f"arn:aws:iam::{account}:role{values.get('path') or '/'}{values['name']}"
            roles[values["name"]] = Role(values["name"], arn, address, values.get("tags") or {},
                                         _document(values.get("assume_role_policy"), address),
                                         boundary_arn=values.get("permissions_boundary") or None)
            for block in values.get("inline_policy") or []:
                if block.get("policy"):
                    inline.append((values["name"], f"{address}/{block['name']}", json.loads(block["policy"])))
            attachments.extend((values["name"], arn) for arn in values.get("managed_policy_arns") or [])
        elif kind == "aws_iam_policy":
            managed[values["arn"]] = (address, _document(values.get("policy"), address))
        elif kind == "aws_iam_role_policy":
            inline.append((values["role"].split(":")[0], address, _document(values.get("policy"), address)))
        elif kind == "aws_iam_role_policy_attachment":
            attachments.append((values["role"], values["policy_arn"]))
        elif kind == "aws_s3_bucket_policy":
            planned.bucket_policies[values["bucket"]] = _document(values.get("policy"), address)
        elif kind == "aws_kms_key":
            policy = values.get("policy")
            planned.key_policies[values["arn"]] = json.loads(policy) if policy else \
                json.loads(json.dumps(DEFAULT_KEY_POLICY).replace("{account}", account))
            planned.key_tags[values["arn"]] = values.get("tags") or {}
        elif kind == "aws_kms_key_policy":
            planned.key_policies[values["key_id"]] = _document(values.get("policy"), address)
        elif kind == "aws_s3_bucket_server_side_encryption_configuration":
            for rule in values.get("rule") or []:
                for default in rule.get("apply_server_side_encryption_by_default") or []:
                    if default.get("kms_master_key_id"):
                        planned.bucket_keys[values["bucket"]] = default["kms_master_key_id"]
        elif kind == "aws_dynamodb_table":
            planned.tables[values["name"]] = values.get("arn") or f"arn:aws:dynamodb:{region}:{account}:table/{values['name']}"
        elif kind == "aws_ecr_repository":
            planned.repositories[values["name"]] = values.get("arn") or f"arn:aws:ecr:{region}:{account}:repository/{values['name']}"
    # A key policy set by aws_kms_key_policy names the key by id or ARN: keep ARNs only.
    planned.key_policies = {next((arn for arn in planned.key_tags if arn == key or arn.endswith("/" + key)), key): policy
                            for key, policy in planned.key_policies.items()}
    for role_name, policy_id, document in inline:
        roles[role_name].identity[policy_id] = document
    for role_name, arn in attachments:
        if arn not in managed:
            raise AssertionError(f"role {role_name}: attached policy {arn} is not in the plan (an AWS managed policy?): "
                                 "the matrix cannot evaluate what it cannot read")
        roles[role_name].identity[managed[arn][0]] = managed[arn][1]
    for role in roles.values():
        if role.boundary_arn:
            if role.boundary_arn not in managed:
                raise AssertionError(f"role {role.name}: permissions boundary {role.boundary_arn} is not in the plan")
            role.boundary = {f"{managed[role.boundary_arn][0]} (boundary)": managed[role.boundary_arn][1]}
    return planned


# -- requests -------------------------------------------------------------------------------------------

FAMILIES = ("data", "model", "key", "registry", "execution", "role", "endpoint", "ledger", "image")


@dataclass(frozen=True)
class Request:
    """One AWS call as IAM sees it."""

    family: str
    action: str
    resource: str
    context: tuple[tuple[str, Any], ...] = ()
    environment: str = ""  # the deployment environment of an endpoint request

    @property
    def label(self) -> str:
        """`action resource` for messages."""
        return f"{self.action} {self.resource}"


def _ctx(**values: Any) -> tuple[tuple[str, Any], ...]:
    """A request context as a hashable value (lists become tuples; JSON turns them back into arrays)."""
    return tuple(sorted((key, tuple(value) if isinstance(value, list) else value) for key, value in values.items()))


def tenant_requests(planned: Planned, tenant: str) -> list[Request]:  # pylint: disable=too-many-locals  # one per resource kind
    """Every data, model, key, registry, execution, role, endpoint, ledger and image request on one tenant's
    resources, each with the request context a client of that resource sends."""
    names = planned.tenant_names(tenant)
    arn = f"arn:aws:sagemaker:{planned.region}:{planned.account}"
    bucket = f"arn:aws:s3:::{names['bucket']}"
    key = planned.tenant_key(tenant)
    tag = {"aws:ResourceTag/mlops:tenant": tenant}
    models = sorted(names["model_package_groups"])
    upload = {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": key}
    requests: list[Request] = [Request("data", "s3:ListBucket", bucket, _ctx(**{"s3:prefix": "data/"})),
                               Request("model", "s3:ListBucket", bucket, _ctx(**{"s3:prefix": "runs/"}))]
    for model in models:
        for family, prefix in (("data", f"data/{model}/"), ("model", f"runs/{model}/"), ("model", f"models/{model}/")):
            obj = f"{bucket}/{prefix}{'train.csv' if family == 'data' else 'exec-1/evaluation/evaluation.json'}"
            requests += [Request(family, "s3:GetObject", obj), Request(family, "s3:PutObject", obj, _ctx(**upload)),
                         Request(family, "s3:DeleteObject", obj)]
    via_s3 = {"kms:ViaService": f"s3.{planned.region}.amazonaws.com", "kms:CallerAccount": planned.account,
              "kms:EncryptionContext:aws:s3:arn": bucket}
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        requests += [Request("key", action, key, _ctx(**via_s3, **tag)), Request("key", action, key, _ctx(**tag))]
    for model, group in sorted(names["model_package_groups"].items()):
        package = f"{arn}:model-package/{group}/1"
        requests += [
            Request("registry", "sagemaker:DescribeModelPackageGroup", f"{arn}:model-package-group/{group}", _ctx(**tag)),
            Request("registry", "sagemaker:CreateModelPackage", package,
                    _ctx(**{"sagemaker:ModelApprovalStatus": "PendingManualApproval"})),
            Request("registry", "sagemaker:DescribeModelPackage", package, _ctx(**tag)),
            Request("registry", "sagemaker:UpdateModelPackage", package, _ctx(**{"sagemaker:ModelApprovalStatus": "Approved"}, **tag)),
        ]
        pipeline = f"{arn}:pipeline/{names['pipelines'][model]}"
        requests += [Request("execution", action, pipeline, _ctx(**tag))
                     for action in ("sagemaker:StartPipelineExecution", "sagemaker:DescribePipeline")]
        requests += [Request("execution", action, f"{pipeline}/execution/exec1", _ctx(**tag))
                     for action in ("sagemaker:DescribePipelineExecution", "sagemaker:StopPipelineExecution")]
    for kind in ("training", "processing"):
        job = f"{arn}:{kind}-job/pipelines-exec1-{kind}-{tenant}"
        title = kind.title()
        requests += [
            Request("execution", f"sagemaker:Create{title}Job", job,
                    _ctx(**{"aws:RequestTag/mlops:tenant": tenant, "aws:TagKeys": ["mlops:tenant"]})),
            Request("execution", f"sagemaker:Describe{title}Job", job, _ctx(**tag)),
            Request("execution", f"sagemaker:Stop{title}Job", job, _ctx(**tag)),
        ]
    for role_name in sorted(role_names(names).values()):
        requests.append(Request("role", "iam:PassRole", f"arn:aws:iam::{planned.account}:role/{role_name}",
                                _ctx(**{"iam:PassedToService": "sagemaker.amazonaws.com"})))
    for key_name, endpoints in sorted(names.items()):
        if key_name.endswith("endpoints"):
            environment = key_name[:-len("endpoints")].rstrip("_")
            for endpoint in sorted(endpoints.values()):
                resource = f"{arn}:endpoint/{endpoint}"
                requests += [Request("endpoint", action, resource, _ctx(**tag), environment) for action in (
                    "sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint")]
                requests.append(Request("endpoint", "sagemaker:CreateEndpoint", resource,
                                        _ctx(**{"aws:RequestTag/mlops:tenant": tenant, "aws:TagKeys": ["mlops:tenant"]}), environment))
    # Ledger items: deployments are keyed by endpoint (`DEPLOY#<endpoint>`), executions by id (`EXEC#<id>`, no
    # tenant in the key: any access to them from a tenant principal reaches every tenant's).
    leading = [f"DEPLOY#{endpoint}" for k, endpoints in sorted(names.items()) if k.endswith("endpoints")
               for endpoint in sorted(endpoints.values())] + [f"EXEC#{tenant}-exec1"]
    for table in sorted(planned.tables.values()):
        for item in leading:
            requests += [Request("ledger", action, table, _ctx(**{"dynamodb:LeadingKeys": [item]}))
                         for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query")]
    for model in models:
        repository = planned.repositories.get(f"{planned.project}/{model}")
        if repository:
            requests += [Request("image", action, repository) for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")]
    return requests


#: Cross-tenant allows that are intended: the model images are the platform's, shared by every tenant that
#: trains or serves that model (the issue's audit lists them as the only intended cross-tenant allows).
INTENDED_FAMILIES = frozenset({"image"})


# -- evaluation -----------------------------------------------------------------------------------------

def node_binary() -> Path:
    """The Node 22 that .ci/node pins (the machine's node may be older)."""
    return NODE_DIR / "node_modules" / ".bin" / "node"


def install_simulator() -> str:
    """Install .ci/node from its lock (as .ci/gitlab-ci-local.sh does for CI) and return the simulator's version.

    Raises SimulatorError with npm's message when it cannot be installed: the tests fail on it, never skip.
    """
    if not shutil.which("npm"):
        raise SimulatorError("npm is missing: the IAM matrix needs npm to install .ci/node (apt-get install npm)")
    done = subprocess.run([str(INSTALLER), "--install-only"], capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0 or not SIMULATOR_PACKAGE.is_file() or not node_binary().exists():
        raise SimulatorError(f"could not install .ci/node (npm ci from .ci/node/package-lock.json): {done.stderr.strip()[-1500:]}")
    return json.loads(SIMULATOR_PACKAGE.read_text(encoding="utf-8"))["version"]


@dataclass(frozen=True)
class Evaluation:
    """One request by one principal, and the simulator's decision."""

    principal: str  # role name
    tenant: str | None  # the principal's tenant
    target: str  # the tenant whose resource it is
    request: Request
    decision: str

    @property
    def allowed(self) -> bool:
        """The request would succeed."""
        return self.decision == "Allowed"


class Batch:
    """Requests gathered for one run of the simulator: policies once by id, requests referring to them."""

    def __init__(self, planned: Planned):
        self.planned = planned
        self.policies: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []
        self.meta: list[tuple[Role, str, Request]] = []
        self._ids: dict[int, str] = {}

    def _policy_id(self, name: str, document: dict[str, Any]) -> str:
        key = id(document)
        if key not in self._ids:
            policy_id = f"p{len(self._ids)}:{name}"
            self._ids[key] = policy_id
            self.policies[policy_id] = document
        return self._ids[key]

    def add(self, role: Role, target: str, request: Request) -> None:
        """Queue `request` made with `role`'s credentials on tenant `target`'s resource."""
        planned = self.planned
        context = {"aws:SecureTransport": "true", "aws:PrincipalArn": role.arn, "aws:PrincipalAccount": planned.account,
                   "aws:ResourceAccount": planned.account, "aws:RequestedRegion": planned.region,
                   **{f"aws:PrincipalTag/{k}": v for k, v in role.tags.items()}, **dict(request.context)}
        resource_policy = planned.resource_policy(request.resource)
        self.requests.append({
            "principal": role.session_arn, "action": request.action, "resource": request.resource, "account": planned.account,
            "identity": [self._policy_id(name, doc) for name, doc in role.identity.items()],
            "boundary": [self._policy_id(name, doc) for name, doc in role.boundary.items()],
            "resourcePolicy": self._policy_id(request.resource.split("/")[0], resource_policy) if resource_policy else None,
            "context": context,
        })
        self.meta.append((role, target, request))

    def run(self) -> tuple[list[Evaluation], float]:
        """Evaluate every queued request in one Node process; returns the evaluations and the simulator's seconds.

        Raises SimulatorError on any request the simulator could not evaluate (never counted as a denial).
        """
        payload = json.dumps({"policies": self.policies, "requests": self.requests})
        done = subprocess.run([str(node_binary()), str(SIMULATE)], input=payload, capture_output=True, text=True, check=False,
                              timeout=900)
        if done.returncode != 0:
            raise SimulatorError(f"simulate.mjs failed: {done.stderr.strip()[-2000:]}")
        answer = json.loads(done.stdout)
        if answer["errors"]:
            first = sorted(answer["errors"].items(), key=lambda item: int(item[0]))[:5]
            described = "; ".join(f"{self.meta[int(i)][0].name} {self.meta[int(i)][2].label}: {message[:300]}" for i, message in first)
            raise SimulatorError(f"{len(answer['errors'])} request(s) could not be evaluated: {described}")
        evaluations = [Evaluation(role.name, self.planned.tenant_of(role), target, request, decision)
                       for (role, target, request), decision in zip(self.meta, answer["decisions"], strict=True)]
        return evaluations, answer["seconds"]


# -- the matrix -----------------------------------------------------------------------------------------

@dataclass
class Matrix:
    """The evaluated matrix and its figures."""

    planned: Planned
    evaluations: list[Evaluation]
    seconds: float

    @property
    def cross(self) -> list[Evaluation]:
        """Evaluations of a tenant principal on another tenant's resources."""
        return [e for e in self.evaluations if e.tenant is not None and e.tenant != e.target]

    @property
    def cross_allows(self) -> list[Evaluation]:
        """Cross-tenant allows that are not intended (INTENDED_FAMILIES): must be none."""
        return [e for e in self.cross if e.allowed and e.request.family not in INTENDED_FAMILIES]

    @property
    def intended_allows(self) -> list[Evaluation]:
        """Cross-tenant allows of the intended kind (shared model images)."""
        return [e for e in self.cross if e.allowed and e.request.family in INTENDED_FAMILIES]

    @property
    def own_allows(self) -> list[Evaluation]:
        """Allowed requests of a tenant principal on its own tenant's resources."""
        return [e for e in self.evaluations if e.tenant is not None and e.tenant == e.target and e.allowed]

    def shared_allows(self) -> dict[str, dict[str, set[str]]]:
        """Shared (platform, CI) role -> action -> the tenants whose resource it may use that way."""
        found: dict[str, dict[str, set[str]]] = {}
        for e in self.evaluations:
            if e.tenant is None and e.allowed:
                found.setdefault(e.principal, {}).setdefault(e.request.action, set()).add(e.target)
        return found

    def figures(self) -> dict[str, Any]:
        """The matrix's figures, as the issue asks for them."""
        tenants = self.planned.tenants
        actions = {e.request.action for e in self.evaluations}
        return {
            "tenants": len(tenants),
            "ordered pairs": len(tenants) * (len(tenants) - 1),
            "tenant principals": sum(len(self.planned.tenant_roles(t)) for t in tenants),
            "shared principals": len(self.planned.shared_roles()),
            "actions": len(actions),
            "requests evaluated": len(self.evaluations),
            "cross-tenant requests": len(self.cross),
            "cross-tenant allows": len(self.cross_allows),
            "intended cross-tenant allows (shared images)": len(self.intended_allows),
            "own-access allows": len(self.own_allows),
            "simulator seconds": round(self.seconds, 2),
        }


def evaluate_matrix(planned: Planned, principals: Iterable[Role] | None = None) -> Matrix:
    """Every principal (default: every planned role) × every tenant × every request on that tenant's resources."""
    batch = Batch(planned)
    per_tenant = {tenant: tenant_requests(planned, tenant) for tenant in planned.tenants}
    for role in principals if principals is not None else planned.roles.values():
        for tenant, requests in per_tenant.items():
            for request in requests:
                batch.add(role, tenant, request)
    evaluations, seconds = batch.run()
    return Matrix(planned, evaluations, seconds)


def evaluate_unique(planned: Planned, pairs: Iterable[tuple[Role, str, Request]]) -> tuple[dict[tuple[str, Request], str], float]:
    """Decisions of (role, target tenant, request) triples, each distinct (role, request) evaluated once."""
    batch = Batch(planned)
    seen: set[tuple[str, Request]] = set()
    for role, target, request in pairs:
        if (role.name, request) not in seen:
            seen.add((role.name, request))
            batch.add(role, target, request)
    evaluations, seconds = batch.run()
    return {(e.principal, e.request): e.decision for e in evaluations}, seconds


def widened(role: Role, exact: str, pattern: str) -> Role:
    """A copy of `role` whose identity policies name `pattern` wherever they named `exact` (a widened ARN)."""
    copied = copy.deepcopy(role)
    changed = False
    for policy_id, document in copied.identity.items():
        text = json.dumps(document)
        widened_text = re.sub(re.escape(exact) + r'(?=["/])', pattern, text)
        changed |= widened_text != text
        copied.identity[policy_id] = json.loads(widened_text)
    if copied.boundary:
        copied.boundary = {k: json.loads(re.sub(re.escape(exact) + r'(?=["/])', pattern, json.dumps(v)))
                           for k, v in copied.boundary.items()}
    if not changed:
        raise AssertionError(f"{role.name}: no identity policy names {exact}: nothing to widen")
    return copied


# -- what a pipeline definition asks of its roles -------------------------------------------------------

#: Parameters an execution request carries that name a tenant's resources (mlops.pipeline.parameters).
TENANT_PARAMETERS = ("RoleArn", "InputDataUri", "OutputUri", "ModelPackageGroupName", "TenantId")
_STEP_OUTPUT = re.compile(r"^Steps\.([^.]+)\.ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri$")
_MODEL_ARTIFACTS = re.compile(r"^Steps\.([^.]+)\.ModelArtifacts\.S3ModelArtifacts$")
_JOB_KINDS = {"Processing": "processing", "Training": "training"}


@dataclass(frozen=True)
class StepRequest:
    """A request one pipeline step makes: as the pipeline role (`pipeline`) or as the role passed to the job (`job`)."""

    step: str
    principal: str  # "pipeline" or "job"
    request: Request


def _steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        arguments = step.get("Arguments")
        if isinstance(arguments, dict):
            yield from _steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))


class _Resolver:
    """Pipeline expressions (`Get`, `Std:Join`) evaluated with one execution's parameter values."""

    def __init__(self, definition: dict[str, Any], values: dict[str, str]):
        self.steps = {step["Name"]: step for step in _steps(definition["Steps"])}
        self.values = values

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and "Get" in value:
            return self.get(value["Get"])
        if isinstance(value, dict) and "Std:JsonGet" in value:  # a value read from a property file (read below)
            return "0.5"
        if isinstance(value, dict) and "Std:Join" in value:
            join = value["Std:Join"]
            return join["On"].join(str(self(part)) for part in join["Values"])
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value

    def get(self, path: str) -> Any:
        """The value of a `Get` path: a parameter, an execution variable, or a step's output location."""
        if path.startswith("Parameters."):
            return self.values[path.split(".", 1)[1]]
        if path.startswith("Execution."):
            return "exec1"
        if match := _STEP_OUTPUT.match(path):
            outputs = self.steps[match[1]]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
            return self(next(o for o in outputs if o["OutputName"] == match[2])["S3Output"]["S3Uri"])
        if match := _MODEL_ARTIFACTS.match(path):
            output = self(self.steps[match[1]]["Arguments"]["OutputDataConfig"]["S3OutputPath"])
            return f"{output}/pipelines-exec1-{match[1].lower()}/output/model.tar.gz"
        raise AssertionError(f"pipeline expression {path!r} is not understood by the IAM check: extend _Resolver")


def _s3(planned: Planned, family: str, action: str, uri: str, read: bool, listing: bool = True) -> list[Request]:
    """The S3 and KMS requests of reading (`read`; `listing`: a prefix is listed first) or writing a URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    obj = f"{bucket_arn}/{key}" if key.endswith((".gz", ".json", ".csv")) else f"{bucket_arn}/{key.rstrip('/')}/part-0"
    kms_key = planned.bucket_keys.get(bucket)
    requests = []
    if read:
        requests += [Request(family, "s3:ListBucket", bucket_arn, _ctx(**{"s3:prefix": key}))] if listing else []
        requests.append(Request(family, action, obj))
    else:
        upload = {"s3:x-amz-server-side-encryption": "aws:kms",
                  **({"s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key} if kms_key else {})}
        requests.append(Request(family, action, obj, _ctx(**upload)))
    if kms_key:
        via_s3 = _ctx(**{"kms:ViaService": f"s3.{planned.region}.amazonaws.com", "kms:CallerAccount": planned.account,
                         "kms:EncryptionContext:aws:s3:arn": bucket_arn})
        requests += [Request("key", kms_action, kms_key, via_s3) for kms_action in (("kms:Decrypt",) if read else ("kms:GenerateDataKey",))]
    return requests


def _image(planned: Planned, uri: str) -> list[Request]:
    repository = uri.split(".amazonaws.com/", 1)[1].split(":")[0].split("@")[0]
    arn = planned.repositories.get(repository, f"arn:aws:ecr:{planned.region}:{planned.account}:repository/{repository}")
    return [Request("image", action, arn) for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")]


def pipeline_requests(planned: Planned, definition: dict[str, Any], values: dict[str, str]) -> list[StepRequest]:  # pylint: disable=too-many-locals
    """Every request the steps of `definition` make for one execution with parameter `values`.

    From the step types (SageMaker's "IAM access management" of Pipelines): a processing or training step
    passes its RoleArn to SageMaker and creates, tags and describes its job as the pipeline role; the job, as
    the passed role, reads its inputs and image and writes its outputs; a property file (JsonGet) is read by
    the pipeline role; RegisterModel creates a model package as the pipeline role.
    """
    resolve = _Resolver(definition, values)
    arn = f"arn:aws:sagemaker:{planned.region}:{planned.account}"
    found: list[StepRequest] = []
    for step in _steps(definition["Steps"]):
        name, kind = step["Name"], step["Type"]
        arguments = resolve(step.get("Arguments", {}))
        if kind in _JOB_KINDS:
            job_kind = _JOB_KINDS[kind]
            job = f"{arn}:{job_kind}-job/pipelines-exec1-{name.lower()}"
            tags = {tag["Key"]: tag["Value"] for tag in arguments.get("Tags", [])}
            request_tags = {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": sorted(tags)}
            resource_tags = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
            title = job_kind.title()
            pipeline = [
                Request("role", "iam:PassRole", arguments["RoleArn"], _ctx(**{"iam:PassedToService": "sagemaker.amazonaws.com"})),
                Request("execution", f"sagemaker:Create{title}Job", job, _ctx(**request_tags)),
                Request("execution", "sagemaker:AddTags", job, _ctx(**request_tags)),
                Request("execution", f"sagemaker:Describe{title}Job", job, _ctx(**resource_tags)),
            ]
            job_side: list[Request] = []
            if kind == "Processing":
                job_side += _image(planned, arguments["AppSpecification"]["ImageUri"])
                for item in arguments.get("ProcessingInputs", []):  # an S3Prefix input is listed, then read
                    job_side += _s3(planned, "data", "s3:GetObject", item["S3Input"]["S3Uri"], read=True,
                                    listing=item["S3Input"].get("S3DataType") == "S3Prefix")
                for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
                    job_side += _s3(planned, "model", "s3:PutObject", item["S3Output"]["S3Uri"], read=False)
            else:
                job_side += _image(planned, arguments["AlgorithmSpecification"]["TrainingImage"])
                for channel in arguments.get("InputDataConfig", []):
                    source = channel["DataSource"]["S3DataSource"]
                    job_side += _s3(planned, "data", "s3:GetObject", source["S3Uri"], read=True,
                                    listing=source.get("S3DataType") == "S3Prefix")
                code = arguments.get("HyperParameters", {}).get("sagemaker_submit_directory")
                if code:  # the training toolkit downloads the one source bundle
                    job_side += _s3(planned, "data", "s3:GetObject", json.loads(code) if code.startswith('"') else code, read=True,
                                    listing=False)
                output = arguments["OutputDataConfig"]["S3OutputPath"]
                job_side += _s3(planned, "model", "s3:PutObject", f"{output}/pipelines-exec1-{name.lower()}/output/model.tar.gz",
                                read=False)
            for report in step.get("PropertyFiles", []):
                outputs = arguments["ProcessingOutputConfig"]["Outputs"]
                uri = next(o for o in outputs if o["OutputName"] == report["OutputName"])["S3Output"]["S3Uri"]
                pipeline += _s3(planned, "model", "s3:GetObject", f"{uri}/{report['FilePath']}", read=True, listing=False)
            found += [StepRequest(name, "pipeline", r) for r in pipeline] + [StepRequest(name, "job", r) for r in job_side]
        elif kind == "RegisterModel":
            group = arguments["ModelPackageGroupName"]
            found.append(StepRequest(name, "pipeline", Request(
                "registry", "sagemaker:CreateModelPackage", f"{arn}:model-package/{group}/1",
                _ctx(**{"sagemaker:ModelApprovalStatus": arguments.get("ModelApprovalStatus", "PendingManualApproval")}))))
        elif kind not in ("Condition", "Fail"):
            raise AssertionError(f"step type {kind} ({name}) is not known to the IAM check: add what it asks of IAM")
    return found
