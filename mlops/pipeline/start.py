"""Starting one tenant's training execution: the single function the CLI and the trigger both call.

`start_for_request(request, token)` turns a `BuildRequest` (tenant, model, version...) into the pipeline's
parameters (`mlops.pipeline.parameters`) and starts the execution with the request's ClientRequestToken.
It never imports the SageMaker SDK (the trigger Lambda imports it); boto3 is imported inside functions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from mlops.errors import MlopsError
from mlops.naming import Names
from mlops.pipeline import parameters as P
from mlops.requests import StartRejected, execution_description

#: The model version of a build whose image was given by URI without a version.
UNVERSIONED = "0.0.0"


@dataclass(frozen=True)
class StartedExecution:
    """What was started, and where to follow it."""

    arn: str
    pipeline: str
    display_name: str
    parameters: dict[str, str]


#: session -> its account: asked once per session (a trigger or status Lambda starts many executions with one)
_ACCOUNTS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def account_id(session: Any) -> str:
    """The account the credentials belong to (moto answers 123456789012), asked once per session."""
    account = _ACCOUNTS.get(session)
    if account is None:
        account = _ACCOUNTS[session] = str(session.client("sts").get_caller_identity()["Account"])
    return account


def pipeline_names(session: Any = None, registry: Any = None) -> Names:
    """The naming scheme of this platform in the current account."""
    import boto3

    from mlops.config.tenants import load_from_settings

    registry = registry or load_from_settings()
    return registry.names(account_id(session or boto3.session.Session()))


def resolve_image(ecr: Any, names: Names, model: str, version: str | None) -> tuple[str, str, str]:
    """(version, image URI, image digest) of a model: the given version, else the latest release in ECR.

    The image must be in ECR: a build of a version that was never published is refused for good (StartRejected:
    no retry publishes it); ECR's own errors stay temporary."""
    from mlops.aws import ecr as ecr_adapter
    from mlops.versioning import scan_tags

    repository = names.ecr_repository(model)
    if version is None:
        latest = scan_tags(ecr_adapter.list_tags(ecr, repository)).latest_release
        if latest is None:
            raise StartRejected(f"no released image of {model} in ECR ({repository})", "publish one with `mlops image` or pass --version")
        version = str(latest)
    digest = ecr_adapter.digest_of(ecr, repository, version)
    if digest is None:
        raise StartRejected(f"image {repository}:{version} is not in ECR", "publish it with `mlops image` first")
    return version, P.image_uri(names, model, version), digest


def start_for_request(  # pylint: disable=too-many-locals  # one straight line from request to execution reads best
        request: Any, client_request_token: str, *, session: Any = None, registry: Any = None,
        settings: Any = None) -> StartedExecution:
    """Start the tenant's execution for a BuildRequest."""
    import boto3

    from mlops.aws import sagemaker as adapter
    from mlops.config.tenants import load_from_settings
    from mlops.settings import Settings

    settings = settings or Settings.from_env()
    registry = registry or load_from_settings(settings)
    session = session or boto3.session.Session()
    try:
        tenant = registry.check_model(request.tenant, request.model)
    except MlopsError as exc:  # a refusal for good: the trigger fails the request at once, no retries
        raise StartRejected(exc.message, exc.hint) from exc
    tier = tenant.effective_tier(registry.platform.tiers)
    names = registry.names(account_id(session))
    extra = dict(request.parameters)
    if request.image_uri:  # an image given by URI (e.g. a SageMaker framework image): its version is the request's
        version, image, digest = request.version or UNVERSIONED, request.image_uri, request.image_digest or "unknown"
    else:
        version, image, digest = resolve_image(session.client("ecr"), names, request.model, request.version)
        digest = request.image_digest or digest
    s3 = session.client("s3")
    code_uri = extra.pop(P.CODE_URI, None) or adapter.read_code_pointer(s3, bucket=names.artifacts_bucket(), model=request.model)
    if not code_uri:
        raise StartRejected(f"no sources of {request.model} have been uploaded", "run `mlops pipeline upsert --repo <model repo>` first")
    run = P.RunRequest(
        tenant=tenant.id, tier=tenant.tier, model=request.model, instance_type=tier.instance_type,
        instance_count=tier.instance_count, code_uri=code_uri, image_uri=image, model_version=version, image_digest=digest,
        git_commit=request.git_commit or "unknown",
    )
    try:
        values = P.execution_parameters(names, run)
    except ValueError as exc:
        raise MlopsError(str(exc)) from None
    # Tenant-bound parameters come from the registry alone: a request naming another tenant's role, data,
    # group or an approval is refused (the pipeline role's IAM would refuse it too, mid-execution).
    bound = sorted(k for k in P.TENANT_BOUND & set(extra) if extra[k] != values[k])
    if bound:
        raise StartRejected(f"the request sets {', '.join(bound)}, which only the platform sets for tenant {tenant.id}",
                            "drop them: approval is the deploy job's, data and roles are the tenant's own")
    values.update({k: v for k, v in extra.items() if k in P.PARAMETERS})
    pipeline = names.pipeline(tenant.id, request.model)
    # the version trained: the request's, or the one resolved from ECR ("-" for a given image without a version)
    trained = request.version or (None if request.image_uri else version)
    description = execution_description(request.source, tenant.id, request.model, trained, request.reason)
    arn = adapter.start_pipeline_execution(session.client("sagemaker"), pipeline=pipeline, parameters=values,
                                           display_name=request.execution_id, description=description,
                                           token=client_request_token)
    return StartedExecution(arn=arn, pipeline=pipeline, display_name=request.execution_id, parameters=values)
