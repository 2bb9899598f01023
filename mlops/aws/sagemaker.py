"""Thin adapter over the SageMaker (and S3, for the pipeline's code) APIs the training stage uses.

Every function takes a boto3 client and plain data, and turns AWS errors into `MlopsError` with what to
do. No decisions live here (they are in `mlops.pipeline.parameters`, which this module does not import), and nothing here imports the
SageMaker SDK: the trigger Lambda will call `start_execution` too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from mlops.aws import errors
from mlops.errors import MlopsError
from mlops.naming import SOURCE_BUNDLE, SOURCE_FOLDER, code_pointer_key, code_prefix
from mlops.requests import StartRejected


def upsert_pipeline(sm: Any, *, name: str, definition: str, role_arn: str, description: str = "",
                    tags: dict[str, str] | None = None) -> tuple[str, bool]:
    """Create the pipeline or update its definition; returns (pipeline ARN, created?)."""
    try:
        arn = sm.create_pipeline(
            PipelineName=name, PipelineDefinition=definition, PipelineDescription=description, RoleArn=role_arn,
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )["PipelineArn"]
        return arn, True
    except ClientError as exc:
        exists = errors.code(exc) == "ResourceInUse" or "already exists" in errors.message(exc)
        if not exists:
            raise MlopsError(f"cannot create pipeline {name}: {errors.describe(exc)}", "check the role and the definition") from exc
    try:
        arn = sm.update_pipeline(PipelineName=name, PipelineDefinition=definition, PipelineDescription=description,
                                 RoleArn=role_arn)["PipelineArn"]
    except ClientError as exc:
        raise MlopsError(f"cannot update pipeline {name}: {errors.describe(exc)}", "check the role and the definition") from exc
    return arn, False


def upload_source_bundle(s3: Any, *, bucket: str, model: str, bundle: Any) -> str:
    """Upload a model's sources (a `mlops.pipeline.source.SourceBundle`: its archive and its unpacked files) under a
    content-addressed prefix; returns the code URI."""
    prefix = code_prefix(model, bundle.short_digest)
    try:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{SOURCE_BUNDLE}", Body=bundle.archive, ContentType="application/gzip")
        for rel, data in bundle.files.items():
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{SOURCE_FOLDER}/{rel}", Body=data)
    except ClientError as exc:
        raise MlopsError(f"cannot upload the model sources to s3://{bucket}/{prefix}: {errors.describe(exc)}",
                         "check that the artifacts bucket exists (mlops local up, or the platform Terraform)") from exc
    return f"s3://{bucket}/{prefix}"


def client_request_token(*parts: str) -> str:
    """A StartPipelineExecution token derived from the request, so a retried start starts nothing new."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:64]


#: StartPipelineExecution errors that the same call can never get past (SageMaker API reference, "Errors":
#: ResourceNotFound, plus the common ValidationException and AccessDeniedException): the request fails at once.
#: Everything else (ThrottlingException, ResourceLimitExceeded, ConflictException, 5xx) is temporary.
START_REFUSED = frozenset({"ValidationException", "ResourceNotFound", "AccessDeniedException"})


def start_pipeline_execution(sm: Any, *, pipeline: str, parameters: dict[str, str], display_name: str, description: str,
                    token: str) -> str:
    """Start one execution of a pipeline with the given parameter values; returns its ARN."""
    try:
        return sm.start_pipeline_execution(
            PipelineName=pipeline, PipelineExecutionDisplayName=display_name[:82], PipelineExecutionDescription=description[:3072],
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()], ClientRequestToken=token,
        )["PipelineExecutionArn"]
    except ClientError as exc:
        code = errors.code(exc)
        if code in START_REFUSED:
            hint = ("register it first with `mlops pipeline upsert`" if code == "ResourceNotFound"
                    else "check the request's parameters and the role's permissions")
            raise StartRejected(f"SageMaker refused to start pipeline {pipeline}: {errors.describe(exc)}", hint) from exc
        raise MlopsError(f"cannot start pipeline {pipeline} now: {errors.describe(exc)}",
                         "a temporary error: the start is retried") from exc


def find_execution_by_display_name(sm: Any, *, pipeline: str, display_name: str) -> str | None:
    """The ARN of an execution of `pipeline` with this display name, if one was started."""
    try:
        pages = sm.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline)
        for page in pages:
            for summary in page.get("PipelineExecutionSummaries", []):
                if summary.get("PipelineExecutionDisplayName") == display_name:
                    return str(summary["PipelineExecutionArn"])
    except ClientError as exc:
        raise MlopsError(f"cannot list the executions of {pipeline}: {errors.describe(exc)}") from exc
    return None


def write_code_pointer(s3: Any, *, bucket: str, model: str, code_uri: str, digest: str) -> None:
    """Remember the code URI of a model's latest upserted sources (what a start without one uses)."""
    try:
        s3.put_object(Bucket=bucket, Key=code_pointer_key(model), ContentType="application/json",
                      Body=json.dumps({"code_uri": code_uri, "digest": digest}).encode())
    except ClientError as exc:
        raise MlopsError(f"cannot write s3://{bucket}/{code_pointer_key(model)}: {errors.describe(exc)}") from exc


def read_code_pointer(s3: Any, *, bucket: str, model: str) -> str | None:
    """The code URI written by the last `mlops pipeline upsert` of a model, if any."""
    document = read_json_object(s3, f"s3://{bucket}/{code_pointer_key(model)}")
    return str(document["code_uri"]) if isinstance(document, dict) and document.get("code_uri") else None


def describe_execution(sm: Any, execution_arn: str) -> dict[str, Any]:
    """DescribePipelineExecution."""
    try:
        return sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    except ClientError as exc:
        raise MlopsError(f"cannot describe execution {execution_arn}: {errors.describe(exc)}") from exc


def list_execution_steps(sm: Any, execution_arn: str) -> list[dict[str, Any]]:
    """ListPipelineExecutionSteps, oldest first (SageMaker lists newest first)."""
    try:
        pages = sm.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=execution_arn)
        steps = [step for page in pages for step in page.get("PipelineExecutionSteps", [])]
    except ClientError as exc:
        raise MlopsError(f"cannot list the steps of {execution_arn}: {errors.describe(exc)}") from exc
    return sorted(steps, key=lambda step: str(step.get("StartTime", "")))


def describe_model_package(sm: Any, arn: str) -> dict[str, Any]:
    """DescribeModelPackage."""
    try:
        return sm.describe_model_package(ModelPackageName=arn)
    except ClientError as exc:
        raise MlopsError(f"cannot describe model package {arn}: {errors.describe(exc)}") from exc


def list_model_packages(sm: Any, group: str) -> list[dict[str, Any]]:
    """Every model package of a group, newest version last."""
    try:
        pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        packages = [p for page in pages for p in page.get("ModelPackageSummaryList", [])]
    except ClientError as exc:
        raise MlopsError(f"cannot list model packages of {group}: {errors.describe(exc)}") from exc
    return sorted(packages, key=lambda p: p.get("ModelPackageVersion", 0))


def read_json_object(s3: Any, uri: str) -> Any:
    """A JSON document from S3 (e.g. the evaluation report a model package points at), or None."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError):
        return None
