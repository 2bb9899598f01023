"""The pipeline's parameters: their names, and their values for one tenant's execution.

Everything that differs between tenants or between runs of one model is a pipeline parameter, so one
registered definition serves every tenant. This module names the parameters (the builder declares them,
`execution_parameters` fills them in) and is pure: no boto3, no sagemaker.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops import naming
from mlops.naming import Names, ecr_image_uri, iam_role_arn

TENANT_ID = "TenantId"
TIER = "Tier"
INPUT_DATA_URI = "InputDataUri"
OUTPUT_URI = "OutputUri"
CODE_URI = "CodeUri"
INSTANCE_TYPE = "InstanceType"
INSTANCE_COUNT = "InstanceCount"
ROLE_ARN = "RoleArn"
IMAGE_URI = "ImageUri"
MODEL_PACKAGE_GROUP = "ModelPackageGroupName"
MODEL_VERSION = "ModelVersion"
APPROVAL_STATUS = "ModelApprovalStatus"
GIT_COMMIT = "GitCommit"
IMAGE_DIGEST = "ImageDigest"

#: Every parameter of the pipeline with its type; none has a tenant-specific default.
PARAMETERS: dict[str, str] = {
    TENANT_ID: "String",
    TIER: "String",
    INPUT_DATA_URI: "String",
    OUTPUT_URI: "String",
    CODE_URI: "String",
    INSTANCE_TYPE: "String",
    INSTANCE_COUNT: "Integer",
    ROLE_ARN: "String",
    IMAGE_URI: "String",
    MODEL_PACKAGE_GROUP: "String",
    MODEL_VERSION: "String",
    APPROVAL_STATUS: "String",
    GIT_COMMIT: "String",
    IMAGE_DIGEST: "String",
}

#: The only status a pipeline registers with: its role may create PendingManualApproval packages only
#: (sagemaker:ModelApprovalStatus); approving is the deploy job's.
PENDING_APPROVAL = "PendingManualApproval"

#: Parameters that tie an execution to its tenant: always computed here, never taken from a request.
TENANT_BOUND = frozenset({TENANT_ID, TIER, INPUT_DATA_URI, OUTPUT_URI, ROLE_ARN, MODEL_PACKAGE_GROUP, APPROVAL_STATUS})

#: Names of the bundle and of the unpacked sources under the code URI (see mlops.pipeline.source).
SOURCE_BUNDLE, SOURCE_FOLDER = naming.SOURCE_BUNDLE, naming.SOURCE_FOLDER  # the layout under a code URI


@dataclass(frozen=True)
class RunRequest:
    """What one execution needs to know, in the user's words."""

    tenant: str
    tier: str
    model: str
    instance_type: str
    instance_count: int
    code_uri: str
    image_uri: str
    model_version: str
    image_digest: str = "unknown"
    git_commit: str = "unknown"


def image_uri(names: Names, model: str, version: str) -> str:
    """The ECR image URI of a model's image at a version."""
    return ecr_image_uri(names, model, version)


def role_arn(names: Names, tenant: str) -> str:
    """The ARN of the IAM role a tenant's jobs run as (the steps' RoleArn parameter)."""
    return iam_role_arn(names, names.tenant_role(tenant))


def pipeline_role_arn(names: Names, tenant: str) -> str:
    """The ARN of the IAM role a tenant's pipelines run as (CreatePipeline's RoleArn)."""
    return iam_role_arn(names, names.pipeline_role(tenant))


def execution_parameters(names: Names, request: RunRequest) -> dict[str, str]:
    """The value of every pipeline parameter for one tenant's execution (names as in PARAMETERS)."""
    bucket = names.tenant_bucket(request.tenant)
    values = {
        TENANT_ID: request.tenant,
        TIER: request.tier,
        INPUT_DATA_URI: f"s3://{bucket}/{names.data_prefix(request.model)}",
        OUTPUT_URI: f"s3://{bucket}/{names.runs_prefix(request.model).rstrip('/')}",
        CODE_URI: request.code_uri.rstrip("/"),
        INSTANCE_TYPE: request.instance_type,
        INSTANCE_COUNT: str(request.instance_count),
        ROLE_ARN: role_arn(names, request.tenant),
        IMAGE_URI: request.image_uri,
        MODEL_PACKAGE_GROUP: names.model_package_group(request.tenant, request.model),
        MODEL_VERSION: request.model_version,
        APPROVAL_STATUS: PENDING_APPROVAL,
        GIT_COMMIT: request.git_commit,
        IMAGE_DIGEST: request.image_digest,
    }
    assert set(values) == set(PARAMETERS)
    return values
