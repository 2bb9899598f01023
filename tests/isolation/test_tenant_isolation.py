"""Tenant isolation proven with IAM enforcement on: every tenant's job role against every other tenant's data.

The real tenant and CI modules are applied to a moto server (a small root of their own: no SQS, so the
apply takes seconds), then moto's IAM enforcement is switched on. With the credentials of tenant A's job role
(sts:AssumeRole in moto), for every ordered pair (A, B) among five tenants: reading, writing or listing B's
data and model artifacts, describing B's model package group, registering into it, describing B's model
package and B's pipelines and executions are all denied (moto implements no StopPipelineExecution or
ListPipelineExecutionSteps, so those are checked for denial only: moto decides on IAM before it looks for the
action).

Each of A's roles is then allowed what it exists for on A's own resources, one role at a time: the job role
reads its data and the model's code and writes run outputs; the pipeline role starts a job as A's job role,
reads the evaluation report and registers into A's group as PendingManualApproval; the inference role reads
A's model artifacts and inference code; each deploy role approves A's packages and reads the evaluation
report. No tenant role starts or lists pipeline executions, not even of its own pipeline: executions are
started by the platform's admission path (the trigger function).

moto ignores `Condition` blocks and never checks `iam:PassRole`, so what depends on them (the
PendingManualApproval condition, PassRole of the tenant's own job role only, the `s3:prefix` of code
listings, the ledger's leading keys) is proven by tests/iam with a real policy evaluator; here it is only
shown that the calls the roles exist for are not denied.

moto checks a role's trust policy on AssumeRole and cannot act as SageMaker, so after the apply (and
before enforcement) the tenant roles' trust is pointed at the test's IAM user; their permission policies,
the subject of the test, stay exactly as Terraform applied them.

The trust policy test reads every role of the applied state: a role trusting GitLab must pin `aud` and
`sub`, and deploy/infra must accept the default branch only.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops.naming import ENVIRONMENTS
from mlops.settings import Settings
from mlops.terraform import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.terraform]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "iso"
TENANTS = ["alpha", "bravo", "charlie", "delta", "echo"]
MODEL = "churn"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
DENIED = {"AccessDenied", "AccessDeniedException"}

ROOT_TF = """
variable "endpoint" {
  type = string
}

provider "aws" {
  region                      = "%(region)s"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {
    cloudwatchevents = var.endpoint
    iam              = var.endpoint
    kms              = var.endpoint
    s3               = var.endpoint
    sagemaker        = var.endpoint
    sts              = var.endpoint
  }
}

module "tenant" {
  source   = "./modules/tenant"
  for_each = toset(%(tenants)s)

  project              = "%(project)s"
  account_id           = "%(account)s"
  region               = "%(region)s"
  tenant_id            = each.key
  tier                 = "gold"
  models               = ["%(model)s"]
  uploads_queue_arn    = "arn:aws:sqs:%(region)s:%(account)s:%(project)s-uploads"
  artifacts_bucket_arn = "arn:aws:s3:::%(project)s-artifacts-%(account)s-%(region)s"
  ecr_repository_arns  = ["arn:aws:ecr:%(region)s:%(account)s:repository/%(project)s/%(model)s"]
  platform_kms_key_arn = "arn:aws:kms:%(region)s:%(account)s:key/platform"
  force_destroy        = true
  # moto evaluates bucket-policy conditions without the request's context: a conditional Deny denies all.
  bucket_policy_enabled = false
}

module "ci" {
  source = "./modules/ci"

  project    = "%(project)s"
  account_id = "%(account)s"
  region     = "%(region)s"
  gitlab     = { url = "https://gitlab.example.com", project_path = "platform/ml-ops", protected_tags = ["v*"] }
  platform = {
    artifacts_bucket_arn = "arn:aws:s3:::%(project)s-artifacts-%(account)s-%(region)s"
    kms_key_arn          = "arn:aws:kms:%(region)s:%(account)s:key/platform"
    ecr_repository_arns  = ["arn:aws:ecr:%(region)s:%(account)s:repository/%(project)s/%(model)s"]
    trigger_function_arn = "arn:aws:lambda:%(region)s:%(account)s:function:%(project)s-trigger"
    ledger_table_arn     = "arn:aws:dynamodb:%(region)s:%(account)s:table/%(project)s-ledger"
  }
  tenants = { for id, tenant in module.tenant : id => { models = ["%(model)s"], kms_key_arn = tenant.kms_key_arn } }
}

output "roles" {
  value = { for id, tenant in module.tenant : id => merge(
    { job = tenant.role_arn, pipeline = tenant.pipeline_role_arn, inference = tenant.inference_role_arn },
    { for env in %(environments)s : "deploy-${env}" => module.ci.deploy_role_arns["${env}-${id}"] },
  ) }
}
"""


class World:
    """The applied tenants: endpoint, Terraform state, and what each tenant owns."""

    def __init__(self, endpoint: str, state: dict[str, Any], roles: dict[str, dict[str, str]]):
        self.endpoint = endpoint
        self.state = state
        self.roles = roles  # tenant -> role kind (job, pipeline, inference, deploy-<environment>) -> ARN
        self.packages: dict[str, str] = {}
        self.executions: dict[str, str] = {}
        self.sessions: dict[tuple[str, str], boto3.Session] = {}

    def client(self, tenant: str, service: str, kind: str = "job") -> Any:
        """A client acting with the credentials of one of tenant's roles (its job role by default)."""
        return self.sessions[(tenant, kind)].client(service, endpoint_url=self.endpoint, region_name=REGION)

    @staticmethod
    def bucket(tenant: str) -> str:
        """The tenant's bucket (mlops.naming.Names.tenant_bucket)."""
        return f"{PROJECT}-tenant-{tenant}-{ACCOUNT}"

    @staticmethod
    def pipeline(tenant: str) -> str:
        """The tenant's pipeline of the model (mlops.naming.Names.pipeline)."""
        return f"{PROJECT}-{tenant}-{MODEL}"

    @staticmethod
    def group(tenant: str) -> str:
        """The tenant's model package group (mlops.naming.Names.model_package_group)."""
        return f"{PROJECT}-{tenant}-{MODEL}"


ARTIFACTS = f"{PROJECT}-artifacts-{ACCOUNT}-{REGION}"  # the platform's artifacts bucket (mlops.naming)
CODE = f"code/{MODEL}/1.0.0"  # a model version's source bundle in it
REPORT = f"runs/{MODEL}/exec1/evaluation/evaluation.json"  # an evaluation report in a tenant's bucket


def _apply(endpoint: str, base: Path) -> Workspace:
    source = base / "root"
    shutil.copytree(ROOT / "terraform" / "modules", source / "modules", ignore=shutil.ignore_patterns(".terraform*", "tests"))
    values = {"region": REGION, "tenants": json.dumps(TENANTS), "project": PROJECT, "account": ACCOUNT, "model": MODEL,
              "environments": json.dumps(list(ENVIRONMENTS))}
    (source / "main.tf").write_text(ROOT_TF % values, encoding="utf-8")
    env = {"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(base / "state")}
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        env["MLOPS_TF_PLUGIN_DIR"] = os.environ["MLOPS_TF_PLUGIN_DIR"]
    workspace = Workspace("isolation", Settings.from_env(env), source_dir=source)
    workspace.init()
    workspace.run("apply", auto_approve=_flagged(), parallelism=20, var={"endpoint": endpoint}, input=False)
    return workspace


def _flagged() -> Any:
    from python_terraform import IsFlagged

    return IsFlagged


def _seed(world: World, admin: boto3.Session) -> None:
    """Each tenant's data, a model artifact, a model package and a pipeline execution (before enforcement)."""
    s3, sagemaker = admin.client("s3"), admin.client("sagemaker")
    definition = json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []})
    s3.create_bucket(Bucket=ARTIFACTS)
    s3.put_object(Bucket=ARTIFACTS, Key=f"{CODE}/src/preprocess.py", Body=b"print('preprocess')\n")
    for tenant in TENANTS:
        sagemaker.create_pipeline(PipelineName=World.pipeline(tenant), PipelineDefinition=definition,
                                  RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-pipeline-{tenant}")
        s3.put_object(Bucket=World.bucket(tenant), Key=f"data/{MODEL}/train.csv", Body=b"x,y\n1,2\n")
        s3.put_object(Bucket=World.bucket(tenant), Key=f"models/{MODEL}/model.tar.gz", Body=b"model")
        s3.put_object(Bucket=World.bucket(tenant), Key=REPORT, Body=b'{"metrics": {}}')
        world.packages[tenant] = sagemaker.create_model_package(
            ModelPackageGroupName=World.group(tenant), ModelPackageDescription=tenant,
            InferenceSpecification={"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"]},
        )["ModelPackageArn"]
        world.executions[tenant] = sagemaker.start_pipeline_execution(
            PipelineName=World.pipeline(tenant), PipelineExecutionDisplayName=tenant,
        )["PipelineExecutionArn"]


@pytest.fixture(scope="module")
def world(enforced_moto: Any, sagemaker_resources: None, s3_iam_actions: None,  # pylint: disable=unused-argument
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Five tenants applied, seeded, then IAM enforcement on and one session per tenant role."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    fresh_moto = enforced_moto.endpoint
    workspace = _apply(fresh_moto, tmp_path_factory.mktemp("isolation"))
    applied = World(fresh_moto, workspace.show_state(), workspace.outputs()["roles"])
    # Module-scoped: runs before the function-scoped fake credentials of tests/conftest.py, so it names its own.
    admin = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    _seed(applied, _Endpoint(admin, fresh_moto))
    iam = admin.client("iam", endpoint_url=fresh_moto)
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    # moto checks the trust policy on AssumeRole and cannot play SageMaker; the test's user stands in for
    # sagemaker.amazonaws.com. Only who may become the role changes: its permissions stay as applied.
    for role in (arn for kinds in applied.roles.values() for arn in kinds.values()):
        iam.update_assume_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                   "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/auditor"}}]}))
    enforced_moto.enforce(True)
    try:
        sts = boto3.client("sts", endpoint_url=fresh_moto, region_name=REGION, aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"], aws_session_token=None)
        for tenant, kinds in applied.roles.items():
            for kind, role in kinds.items():
                creds = sts.assume_role(RoleArn=role, RoleSessionName=f"{kind}-{tenant}")["Credentials"]
                applied.sessions[(tenant, kind)] = boto3.Session(
                    aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"], region_name=REGION)
        yield applied
    finally:
        enforced_moto.enforce(False)


class _Endpoint:
    """A session whose clients all go to the moto server."""

    def __init__(self, session: boto3.Session, endpoint: str):
        self._session, self._endpoint = session, endpoint

    def client(self, service: str) -> Any:
        """A client of `service` on the moto endpoint."""
        return self._session.client(service, endpoint_url=self._endpoint, region_name=REGION)


def _attempts(world: World, actor: str, owner: str) -> dict[str, Any]:
    """Every read and write of owner's things, made with actor's role: name -> zero-argument call."""
    s3, sagemaker = world.client(actor, "s3"), world.client(actor, "sagemaker")
    bucket = World.bucket(owner)
    spec = {"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
    return {
        "read data": lambda: s3.get_object(Bucket=bucket, Key=f"data/{MODEL}/train.csv"),
        "write data": lambda: s3.put_object(Bucket=bucket, Key=f"data/{MODEL}/new.csv", Body=b"1"),
        "delete data": lambda: s3.delete_object(Bucket=bucket, Key=f"data/{MODEL}/new.csv"),
        "list bucket": lambda: s3.list_objects_v2(Bucket=bucket),
        "read model artifact": lambda: s3.get_object(Bucket=bucket, Key=f"models/{MODEL}/model.tar.gz"),
        "write model artifact": lambda: s3.put_object(Bucket=bucket, Key=f"models/{MODEL}/other.tar.gz", Body=b"m"),
        "describe model package group": lambda: sagemaker.describe_model_package_group(ModelPackageGroupName=World.group(owner)),
        "register model package": lambda: sagemaker.create_model_package(ModelPackageGroupName=World.group(owner),
                                                                         InferenceSpecification=spec),
        "describe model package": lambda: sagemaker.describe_model_package(ModelPackageName=world.packages[owner]),
        "describe pipeline": lambda: sagemaker.describe_pipeline(PipelineName=World.pipeline(owner)),
        "start pipeline execution": lambda: sagemaker.start_pipeline_execution(PipelineName=World.pipeline(owner),
                                                                               PipelineExecutionDisplayName=f"by-{actor}"),
        "list pipeline executions": lambda: sagemaker.list_pipeline_executions(PipelineName=World.pipeline(owner)),
        "describe pipeline execution": lambda: sagemaker.describe_pipeline_execution(PipelineExecutionArn=world.executions[owner]),
        "read execution parameters": lambda: sagemaker.list_pipeline_parameters_for_execution(
            PipelineExecutionArn=world.executions[owner]),
    }


def _denial_only(world: World, actor: str, owner: str) -> dict[str, Any]:
    """Calls moto does not implement: it decides on IAM first, so a denial is real; an allow cannot be shown."""
    sagemaker = world.client(actor, "sagemaker")
    return {
        "stop pipeline execution": lambda: sagemaker.stop_pipeline_execution(PipelineExecutionArn=world.executions[owner],
                                                                             ClientRequestToken="t" * 32),
        "list execution steps": lambda: sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=world.executions[owner]),
    }


def _outcome(call: Any) -> str:
    try:
        call()
    except ClientError as error:
        code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
        # moto answers JSON-protocol services (SageMaker) with an XML AccessDenied body botocore cannot parse:
        # the code arrives as the HTTP status and the real code inside the message.
        if code == "403" and "<Code>AccessDenied</Code>" in message:
            code = "AccessDenied"
        return "denied" if code in DENIED else code
    return "allowed"


@pytest.mark.parametrize("actor,owner", list(itertools.permutations(TENANTS, 2)))
def test_a_tenant_role_is_denied_everything_of_another_tenant(world: World, actor: str, owner: str) -> None:
    attempts = {**_attempts(world, actor, owner), **_denial_only(world, actor, owner)}
    outcomes = {name: _outcome(call) for name, call in attempts.items()}
    assert outcomes == dict.fromkeys(outcomes, "denied")


def test_the_s3_denials_come_from_the_policy_not_from_the_action_name(world: World, enforced_moto: Any) -> None:
    """Granting alpha `s3:ListBucket` (the IAM action, not the API name) on bravo's bucket lets it list."""
    role = world.roles["alpha"]["job"].rsplit("/", 1)[1]
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                                     "Resource": f"arn:aws:s3:::{World.bucket('bravo')}"}]}
    listing = _attempts(world, "alpha", "bravo")["list bucket"]
    assert _outcome(listing) == "denied"
    iam = boto3.client("iam", endpoint_url=world.endpoint, region_name=REGION)
    enforced_moto.enforce(False)
    iam.put_role_policy(RoleName=role, PolicyName="grant-list", PolicyDocument=json.dumps(grant))
    enforced_moto.enforce(True)
    try:
        assert _outcome(listing) == "allowed"
    finally:
        enforced_moto.enforce(False)
        iam.delete_role_policy(RoleName=role, PolicyName="grant-list")
        enforced_moto.enforce(True)
    assert _outcome(listing) == "denied"


_SPEC = {"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}


def _own_job_role(world: World, tenant: str) -> dict[str, Any]:
    """The job (step) role: the tenant's data, the model's code, its run outputs."""
    s3 = world.client(tenant, "s3", "job")
    bucket = World.bucket(tenant)
    return {
        "list data": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"data/{MODEL}/"),
        "read data": lambda: s3.get_object(Bucket=bucket, Key=f"data/{MODEL}/train.csv"),
        "write a run output": lambda: s3.put_object(Bucket=bucket, Key=f"runs/{MODEL}/exec1/train/model.tar.gz", Body=b"m"),
        "list the model's code": lambda: s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=f"{CODE}/src"),
        "read the model's code": lambda: s3.get_object(Bucket=ARTIFACTS, Key=f"{CODE}/src/preprocess.py"),
    }


def _own_pipeline_role(world: World, tenant: str) -> dict[str, Any]:
    """The pipeline role: start a job as the tenant's job role, read the evaluation report, register pending."""
    s3, sagemaker = world.client(tenant, "s3", "pipeline"), world.client(tenant, "sagemaker", "pipeline")
    job = {"AppSpecification": {"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PROJECT}/{MODEL}:1.0.0"},
           "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
           "RoleArn": world.roles[tenant]["job"], "Tags": [{"Key": "mlops:tenant", "Value": tenant}]}
    return {
        "start a job as its job role": lambda: sagemaker.create_processing_job(ProcessingJobName=f"pipelines-exec1-{tenant}", **job),
        "read the evaluation report": lambda: s3.get_object(Bucket=World.bucket(tenant), Key=REPORT),
        "register pending into its group": lambda: sagemaker.create_model_package(
            ModelPackageGroupName=World.group(tenant), ModelApprovalStatus="PendingManualApproval", InferenceSpecification=_SPEC),
    }


def _own_inference_role(world: World, tenant: str) -> dict[str, Any]:
    """The inference role: the model artifacts and the inference code."""
    s3 = world.client(tenant, "s3", "inference")
    return {
        "read a model artifact": lambda: s3.get_object(Bucket=World.bucket(tenant), Key=f"models/{MODEL}/model.tar.gz"),
        "read the inference code": lambda: s3.get_object(Bucket=ARTIFACTS, Key=f"{CODE}/src/preprocess.py"),
    }


def _own_deploy_role(environment: str) -> Any:
    def attempts(world: World, tenant: str) -> dict[str, Any]:
        """A deploy role: the gate reads the tenant's versions and reports, the deploy approves."""
        kind = f"deploy-{environment}"
        s3, sagemaker = world.client(tenant, "s3", kind), world.client(tenant, "sagemaker", kind)
        return {
            "list its group's versions": lambda: sagemaker.list_model_packages(ModelPackageGroupName=World.group(tenant)),
            "describe a version": lambda: sagemaker.describe_model_package(ModelPackageName=world.packages[tenant]),
            "read the evaluation report": lambda: s3.get_object(Bucket=World.bucket(tenant), Key=REPORT),
            "approve a version": lambda: sagemaker.update_model_package(ModelPackageArn=world.packages[tenant],
                                                                        ModelApprovalStatus="Approved"),
        }
    return attempts


OWN_ACCESS = [pytest.param("job", _own_job_role, id="job-role"), pytest.param("pipeline", _own_pipeline_role, id="pipeline-role"),
              pytest.param("inference", _own_inference_role, id="inference-role")] + [
    pytest.param(f"deploy-{env}", _own_deploy_role(env), id=f"deploy-{env}-role") for env in ENVIRONMENTS]


@pytest.mark.parametrize("kind,attempts", OWN_ACCESS)
@pytest.mark.parametrize("tenant", TENANTS)
def test_each_tenant_role_may_do_what_it_exists_for_on_its_own_tenant(world: World, tenant: str, kind: str, attempts: Any) -> None:
    outcomes = {name: _outcome(call) for name, call in attempts(world, tenant).items()}
    assert outcomes == dict.fromkeys(outcomes, "allowed"), kind


def _pass_role_resources(state: dict[str, Any], role_name: str) -> list[str]:
    """The resources of every iam:PassRole statement in the applied policies of one role."""
    policies: dict[str, dict[str, Any]] = {}
    attached: list[str] = []

    def walk(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            values = resource["values"]
            if resource["type"] == "aws_iam_policy":
                policies[values["arn"]] = json.loads(values["policy"])
            elif resource["type"] == "aws_iam_role_policy_attachment" and values["role"] == role_name:
                attached.append(values["policy_arn"])
        for child in module.get("child_modules", []):
            walk(child)

    walk(state["values"]["root_module"])
    assert attached, f"no policy attached to {role_name}"
    found = []
    for arn in attached:
        for statement in policies[arn]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "iam:PassRole" in actions:
                found += statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return found


@pytest.mark.parametrize("tenant", TENANTS)
def test_the_pipeline_role_passes_its_tenant_s_job_role_only(world: World, tenant: str) -> None:
    """moto never checks iam:PassRole: the applied policy must name the tenant's job role alone (tests/iam evaluates it)."""
    assert _pass_role_resources(world.state, world.roles[tenant]["pipeline"].rsplit("/", 1)[1]) == [world.roles[tenant]["job"]]


@pytest.mark.parametrize("tenant", TENANTS)
def test_no_tenant_role_starts_or_lists_executions_not_even_of_its_own_pipeline(world: World, tenant: str) -> None:
    """Executions are started by the platform's admission path only (the trigger function), never by a tenant role."""
    outcomes = {}
    for kind in world.roles[tenant]:
        sagemaker = world.client(tenant, "sagemaker", kind)
        outcomes[f"{kind}: start"] = _outcome(lambda sm=sagemaker, name=f"by-{kind}": sm.start_pipeline_execution(
            PipelineName=World.pipeline(tenant), PipelineExecutionDisplayName=name))
        outcomes[f"{kind}: list"] = _outcome(lambda sm=sagemaker: sm.list_pipeline_executions(PipelineName=World.pipeline(tenant)))
    assert outcomes == dict.fromkeys(outcomes, "denied")


def _roles(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            if resource["type"] == "aws_iam_role":
                found[resource["values"]["name"]] = json.loads(resource["values"]["assume_role_policy"])
        for child in module.get("child_modules", []):
            walk(child)

    walk(state["values"]["root_module"])
    return found


def trust_problems(roles: dict[str, dict[str, Any]], project_path: str, default_branch: str) -> list[str]:
    """What is wrong with the trust policies of roles that GitLab may assume (empty: nothing)."""
    problems = []
    for name, policy in roles.items():
        for statement in policy["Statement"]:
            federated = statement.get("Principal", {}).get("Federated")
            if not federated:
                continue
            issuer = federated.split(":oidc-provider/", 1)[1]
            conditions = statement.get("Condition", {})
            aud = [v for test in conditions.values() for k, v in test.items() if k == f"{issuer}:aud"]
            subs = [v for test in conditions.values() for k, v in test.items() if k == f"{issuer}:sub"]
            subs = [s for value in subs for s in (value if isinstance(value, list) else [value])]
            if not aud or any("*" in a for a in aud):
                problems.append(f"{name}: no exact audience condition")
            if not subs:
                problems.append(f"{name}: no sub condition")
            for sub in subs:
                if not sub.startswith(f"project_path:{project_path}:ref_type:"):
                    problems.append(f"{name}: sub {sub!r} is not pinned to {project_path}")
            default_sub = f"project_path:{project_path}:ref_type:branch:ref:{default_branch}"
            if name.endswith("-ci-infra") and subs != [default_sub]:
                problems.append(f"{name}: infra must accept the default branch only, not {subs}")
            environment = next((env for env in ENVIRONMENTS if f"-deploy-{env}-" in name), None)
            if environment and subs != [f"{default_sub}:environment_protected:true:deployment_tier:{environment}"]:
                problems.append(f"{name}: deploy must accept the default branch and a protected {environment} environment only, not {subs}")
    return problems


def test_every_gitlab_role_pins_audience_and_subject_and_deploy_infra_only_the_default_branch(world: World) -> None:
    roles = _roles(world.state)
    gitlab_roles = {name for name, p in roles.items() if any("Federated" in s.get("Principal", {}) for s in p["Statement"])}
    assert gitlab_roles == ({f"{PROJECT}-ci-{purpose}" for purpose in ("build", "train", "infra")}
                            | {f"{PROJECT}-deploy-{env}-{tenant}" for env in ENVIRONMENTS for tenant in TENANTS})
    problems = trust_problems(roles, "platform/ml-ops", "main")
    assert not problems, problems


def _trust(sub: Any, aud: Any = "mlops-deploy") -> dict[str, Any]:
    condition: dict[str, Any] = {}
    if aud is not None:
        condition["StringEquals"] = {"gitlab.com:aud": aud}
    if sub is not None:
        condition["StringLike"] = {"gitlab.com:sub": sub}
    return {"Statement": [{"Principal": {"Federated": "arn:aws:iam::1:oidc-provider/gitlab.com"}, "Condition": condition}]}


@pytest.mark.parametrize("policy,problem", [
    pytest.param(_trust("project_path:p/ml-ops:ref_type:branch:ref:main", aud=None), "no exact audience", id="no-audience"),
    pytest.param(_trust(None), "no sub condition", id="no-sub"),
    pytest.param(_trust("project_path:p/ml-ops:ref_type:branch:ref:*"), "protected staging environment only", id="any-branch"),
    pytest.param(_trust("project_path:p/ml-ops:ref_type:branch:ref:main"), "protected staging environment only", id="no-environment"),
    pytest.param(_trust("project_path:p/ml-ops:ref_type:branch:ref:main:environment_protected:true:deployment_tier:production"),
                 "protected staging environment only", id="other-tier"),
    pytest.param(_trust("project_path:p/*:ref_type:branch:ref:main"), "not pinned", id="any-project"),
])
def test_the_trust_check_catches_what_it_must(policy: dict[str, Any], problem: str) -> None:
    problems = trust_problems({"x-deploy-staging-acme": policy}, "p/ml-ops", "main")
    assert any(problem in p for p in problems), problems
