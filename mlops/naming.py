"""Every AWS resource name, from one place, with AWS's length and character rules enforced.

Terraform computes the same names in `terraform/modules/naming` (plain string templates); a test applies
the Terraform root and compares every name with this module, so the two cannot drift apart. Names are
built from the project name (`platform.yaml`), the tenant id, the model name, the tier and, for globally
unique S3 buckets, the account id and region. This module is pure: no AWS calls, no boto3.

Layout inside a tenant's bucket: `data/<model>/...` is where the tenant uploads training data (the upload
rule watches that prefix); `runs/<model>/<execution>/...` holds pipeline outputs; `models/<model>/...` holds
model artifacts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlops.errors import NamingError

#: project, tenant ids, model names and tiers: lowercase words joined by single hyphens.
SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SLUG_HINT = "use lowercase letters, digits and single hyphens, starting with a letter"
PROJECT_MAX = 20
MODEL_MAX = 24
TENANT_MAX = 24
#: Deployment environments: each has its own endpoints and its own deploy role per tenant.
ENVIRONMENTS = ("staging", "production")

# (max length, pattern) per kind of resource, from the AWS API references.
_S3_BUCKET = (63, re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"))
_SAGEMAKER = (63, re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"))
_PIPELINE = (256, re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$"))
_ECR = (256, re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"))
_SQS = (80, re.compile(r"^[a-zA-Z0-9_-]{1,80}$"))
_DYNAMODB = (255, re.compile(r"^[a-zA-Z0-9_.-]{3,255}$"))
_IAM_ROLE = (64, re.compile(r"^[\w+=,.@-]{1,64}$"))
_LAMBDA = (64, re.compile(r"^[a-zA-Z0-9_-]{1,64}$"))
_SNS = (256, re.compile(r"^[a-zA-Z0-9_-]{1,256}$"))
_EVENT_RULE = (64, re.compile(r"^[.\-_A-Za-z0-9]{1,64}$"))
_LOG_GROUP = (512, re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$"))


def _check(kind: str, name: str, rule: tuple[int, re.Pattern[str]]) -> str:
    limit, pattern = rule
    if len(name) > limit:
        raise NamingError(
            f"{kind} name '{name}' is {len(name)} characters, AWS allows {limit}",
            "shorten the project name, tenant id or model name",
        )
    if not pattern.match(name):
        raise NamingError(f"{kind} name '{name}' has characters AWS does not allow", SLUG_HINT)
    return name


def check_slug(kind: str, value: str, max_length: int) -> str:
    """Check a project, tenant, model or tier identifier; return it unchanged."""
    if not isinstance(value, str) or not SLUG.match(value):
        raise NamingError(f"{kind} '{value}' is not a valid identifier", SLUG_HINT)
    if len(value) > max_length:
        raise NamingError(
            f"{kind} '{value}' is {len(value)} characters, at most {max_length} are allowed",
            f"shorten the {kind}",
        )
    return value


def check_environment(environment: str) -> str:
    """Check a deployment environment (one of ENVIRONMENTS); return it unchanged."""
    if environment not in ENVIRONMENTS:
        raise NamingError(f"environment '{environment}' is not one of {', '.join(ENVIRONMENTS)}",
                          f"use {' or '.join(ENVIRONMENTS)}")
    return environment


@dataclass(frozen=True)
class Names:  # pylint: disable=too-many-public-methods  # one method per kind of resource is the point
    """Resource names for one project in one account and region.

    >>> n = Names(project="acme-ml", account_id="123456789012", region="eu-west-1")
    >>> n.ecr_repository("churn")
    'acme-ml/churn'
    """

    project: str
    account_id: str = "123456789012"
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        check_slug("project", self.project, PROJECT_MAX)
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise NamingError(f"account id '{self.account_id}' is not 12 digits", "check the AWS account id")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            raise NamingError(f"region '{self.region}' is not an AWS region name", "e.g. eu-west-1")

    # -- platform (shared by all tenants) -----------------------------------------------------------
    def artifacts_bucket(self) -> str:
        """S3 bucket for shared build artifacts (model source bundles, pipeline code, Lambda zips)."""
        return _check("S3 bucket", f"{self.project}-artifacts-{self.account_id}-{self.region}", _S3_BUCKET)

    def ecr_repository(self, model: str) -> str:
        """ECR repository holding the training/inference image of one model."""
        check_slug("model", model, MODEL_MAX)
        return _check("ECR repository", f"{self.project}/{model}", _ECR)

    def ledger_table(self) -> str:
        """DynamoDB table: one item per pipeline execution."""
        return _check("DynamoDB table", f"{self.project}-ledger", _DYNAMODB)

    def slots_table(self) -> str:
        """DynamoDB table: tier counters and one slot item per running execution."""
        return _check("DynamoDB table", f"{self.project}-tier-slots", _DYNAMODB)

    def tier_queue(self, tier: str) -> str:
        """SQS queue of build requests waiting for a slot in a tier."""
        check_slug("tier", tier, 16)
        return _check("SQS queue", f"{self.project}-requests-{tier}", _SQS)

    def events_queue(self, purpose: str) -> str:
        """SQS queue fed by EventBridge (`uploads` for tenant data, `status` for pipeline status)."""
        check_slug("queue purpose", purpose, 16)
        return _check("SQS queue", f"{self.project}-{purpose}", _SQS)

    @staticmethod
    def dead_letter_queue(queue: str) -> str:
        """The DLQ that belongs to a queue."""
        return _check("SQS queue", f"{queue}-dlq", _SQS)

    def notifications_topic(self) -> str:
        """SNS topic for build and deployment notifications."""
        return _check("SNS topic", f"{self.project}-notifications", _SNS)

    def lambda_function(self, function: str) -> str:
        """Lambda function (`trigger`, `dispatcher`, `status`)."""
        check_slug("function", function, 24)
        return _check("Lambda function", f"{self.project}-{function}", _LAMBDA)

    def lambda_layer(self) -> str:
        """Lambda layer holding the functions' third-party libraries (mlops.packaging)."""
        return _check("Lambda layer", f"{self.project}-lambda-deps", _LAMBDA)

    def log_group(self, function: str) -> str:
        """CloudWatch log group of a Lambda function."""
        return lambda_log_group(self.lambda_function(function))

    def ci_role(self, purpose: str) -> str:
        """IAM role that GitLab CI assumes with its OIDC token (`build`, `train`, `infra`; deploys: `deploy_role`)."""
        check_slug("purpose", purpose, 16)
        return _check("IAM role", f"{self.project}-ci-{purpose}", _IAM_ROLE)

    def service_role(self, purpose: str) -> str:
        """IAM role of a platform service (`lambda`); SageMaker runs as each tenant's own roles."""
        check_slug("purpose", purpose, 16)
        return _check("IAM role", f"{self.project}-svc-{purpose}", _IAM_ROLE)

    def platform_rule(self, purpose: str) -> str:
        """EventBridge rule of the platform (`pipeline-status`: SageMaker pipeline status changes)."""
        check_slug("rule purpose", purpose, 24)
        return _check("EventBridge rule", f"{self.project}-{purpose}", _EVENT_RULE)

    # -- per tenant ---------------------------------------------------------------------------------
    def tenant_bucket(self, tenant: str) -> str:
        """S3 bucket holding one tenant's data, pipeline outputs and model artifacts."""
        check_slug("tenant", tenant, TENANT_MAX)
        return _check("S3 bucket", f"{self.project}-tenant-{tenant}-{self.account_id}", _S3_BUCKET)

    # The tenant's roles differ in the word after the project (`tenant`, `pipeline`, `inference`, `deploy`), not
    # in a suffix: `<project>-tenant-acme-inference` could otherwise be tenant acme's inference role and tenant
    # acme-inference's job role at once.
    def tenant_role(self, tenant: str) -> str:
        """IAM role the tenant's SageMaker jobs (processing, training) run as: the pipeline's step role."""
        check_slug("tenant", tenant, TENANT_MAX)
        return _check("IAM role", f"{self.project}-tenant-{tenant}", _IAM_ROLE)

    def pipeline_role(self, tenant: str) -> str:
        """IAM role the tenant's pipelines run as (their RoleArn): starts the jobs as `tenant_role`, registers."""
        check_slug("tenant", tenant, TENANT_MAX)
        return _check("IAM role", f"{self.project}-pipeline-{tenant}", _IAM_ROLE)

    def inference_role(self, tenant: str) -> str:
        """IAM role the tenant's SageMaker models (endpoints) run as."""
        check_slug("tenant", tenant, TENANT_MAX)
        return _check("IAM role", f"{self.project}-inference-{tenant}", _IAM_ROLE)

    def deploy_role(self, environment: str, tenant: str) -> str:
        """IAM role GitLab CI's deploy jobs of one environment assume for one tenant."""
        check_environment(environment)
        check_slug("tenant", tenant, TENANT_MAX)
        return _check("IAM role", f"{self.project}-deploy-{environment}-{tenant}", _IAM_ROLE)

    def tenant_upload_rule(self, tenant: str) -> str:
        """EventBridge rule on the tenant's data uploads."""
        check_slug("tenant", tenant, TENANT_MAX)
        return _check("EventBridge rule", f"{self.project}-{tenant}-uploads", _EVENT_RULE)

    def model_package_group(self, tenant: str, model: str) -> str:
        """SageMaker model package group of one tenant's models of one kind."""
        check_slug("tenant", tenant, TENANT_MAX)
        check_slug("model", model, MODEL_MAX)
        return _check("model package group", f"{self.project}-{tenant}-{model}", _SAGEMAKER)

    def pipeline(self, tenant: str, model: str) -> str:
        """SageMaker pipeline of one tenant's model: one per tenant, so execution ARNs name the tenant.

        Every tenant's pipeline of a model has the same definition (`mlops pipeline upsert` writes them all);
        the name is what lets the tenant role's policy allow its own executions by static ARN.
        """
        check_slug("tenant", tenant, TENANT_MAX)
        check_slug("model", model, MODEL_MAX)
        return _check("SageMaker pipeline", f"{self.project}-{tenant}-{model}", _PIPELINE)

    def endpoint(self, tenant: str, model: str, environment: str) -> str:
        """SageMaker endpoint serving one tenant's model in one environment (staging and production never share one)."""
        check_environment(environment)
        check_slug("tenant", tenant, TENANT_MAX)
        check_slug("model", model, MODEL_MAX)
        return _check("SageMaker endpoint", f"{self.project}-{environment}-{tenant}-{model}", _SAGEMAKER)

    @staticmethod
    def data_prefix(model: str) -> str:
        """Key prefix of a model's training data in the tenant bucket."""
        return f"data/{model}/"

    @staticmethod
    def runs_prefix(model: str) -> str:
        """Key prefix of pipeline outputs in the tenant bucket."""
        return f"runs/{model}/"

    def tenant_names(self, tenant: str, models: list[str]) -> dict[str, object]:
        """Every name that belongs to one tenant, as Terraform's tenant module outputs them."""
        return {
            "bucket": self.tenant_bucket(tenant),
            "role": self.tenant_role(tenant),
            "pipeline_role": self.pipeline_role(tenant),
            "inference_role": self.inference_role(tenant),
            "deploy_roles": {env: self.deploy_role(env, tenant) for env in ENVIRONMENTS},
            "upload_rule": self.tenant_upload_rule(tenant),
            "model_package_groups": {m: self.model_package_group(tenant, m) for m in models},
            "pipelines": {m: self.pipeline(tenant, m) for m in models},
            **{f"{env}_endpoints": {m: self.endpoint(tenant, m, env) for m in models} for env in ENVIRONMENTS},
        }

    def platform_names(self, models: list[str], tiers: list[str]) -> dict[str, object]:
        """Every name of the shared platform, as Terraform's platform module outputs them."""
        return {
            "artifacts_bucket": self.artifacts_bucket(),
            "ecr_repositories": {m: self.ecr_repository(m) for m in models},
            "ledger_table": self.ledger_table(),
            "slots_table": self.slots_table(),
            "tier_queues": {t: self.tier_queue(t) for t in tiers},
            "uploads_queue": self.events_queue("uploads"),
            "status_queue": self.events_queue("status"),
            "notifications_topic": self.notifications_topic(),
            "functions": {f: self.lambda_function(f) for f in ("trigger", "dispatcher", "status")},
            "lambda_layer": self.lambda_layer(),
        }


# -- ARNs and URIs: built from the names above, never by hand elsewhere ------------------------------------
def iam_role_arn(names: Names, role: str) -> str:
    """The ARN of an IAM role of this account (`role`: a name from `Names`, e.g. `names.tenant_role(t)`)."""
    _check("IAM role", role, _IAM_ROLE)
    return f"arn:aws:iam::{names.account_id}:role/{role}"


def ecr_image_uri(names: Names, model: str, tag: str) -> str:
    """The URI of a model's image at a tag in this account's ECR (`<account>.dkr.ecr.<region>.amazonaws.com/...`)."""
    return f"{names.account_id}.dkr.ecr.{names.region}.amazonaws.com/{names.ecr_repository(model)}:{tag}"


#: SageMaker job kinds (as pipeline steps name them) and the resource type in their ARNs.
_SAGEMAKER_JOBS = {"ProcessingJob": "processing-job", "TrainingJob": "training-job", "TransformJob": "transform-job"}


def sagemaker_job_arn(region: str, account_id: str, kind: str, name: str) -> str:
    """The ARN of a SageMaker job (`kind`: ProcessingJob, TrainingJob or TransformJob) named `name` (SageMaker's name)."""
    if kind not in _SAGEMAKER_JOBS:
        raise NamingError(f"'{kind}' is not a SageMaker job kind", f"use one of {', '.join(_SAGEMAKER_JOBS)}")
    return f"arn:aws:sagemaker:{region}:{account_id}:{_SAGEMAKER_JOBS[kind]}/{name}"


def lambda_function_arn(region: str, account_id: str, function_name: str) -> str:
    """The ARN of a Lambda function (`function_name`: a full name, e.g. `names.lambda_function("trigger")`)."""
    return f"arn:aws:lambda:{region}:{account_id}:function:{_check('Lambda function', function_name, _LAMBDA)}"


def model_package_group_prefix(names: Names) -> str:
    """What every model package group of this project starts with (`<project>-`): the scan's filter."""
    return f"{names.project}-"


# -- the artifacts bucket's layout of a model's sources ----------------------------------------------------
#: The training jobs' `sagemaker_submit_directory` (script mode) under a code URI.
SOURCE_BUNDLE = "sourcedir.tar.gz"
#: The same sources unpacked under a code URI, for processing jobs (a processing input is a plain prefix).
SOURCE_FOLDER = "src"


def code_prefix(model: str, digest: str) -> str:
    """The key prefix of one upload of a model's sources, content-addressed by the bundle's short digest."""
    return f"code/{model}/{digest}"


def code_pointer_key(model: str) -> str:
    """The key of the pointer to a model's latest upserted sources (what a start without a code URI uses)."""
    return f"code/{model}/current.json"


def lambda_log_group(function_name: str) -> str:
    """The CloudWatch log group Lambda writes a function's logs to (`function_name`: the full name)."""
    return _check("log group", f"/aws/lambda/{function_name}", _LOG_GROUP)


def drift_namespace(names: Names) -> str:
    """The CloudWatch namespace the retraining check reads drift metrics from by default (`<project>/Monitoring`)."""
    return f"{names.project}/Monitoring"


def definition_name(project: str, model: str) -> str:
    """The name a printed pipeline definition carries when no tenant is given (`<project>-<model>`); each tenant's
    registered pipeline is `Names.pipeline`."""
    return f"{project}-{model}"
