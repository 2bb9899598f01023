"""Starting one tenant's training execution: the single function the CLI and the trigger both call.

`start_for_request(request, token)` turns a `BuildRequest` (tenant, model, version...) into the pipeline's
parameters (`mlops.pipeline.parameters`) and starts the execution with the request's ClientRequestToken.
It never imports the SageMaker SDK (the trigger Lambda imports it); boto3 is imported inside functions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import MlopsError
from mlops.naming import Names
from mlops.pipeline import parameters as P
from mlops.requests import StartRejected, execution_description

#: The version a local run uses when no image was ever published (the local engine runs no image).
LOCAL_VERSION = "0.0.0"


@dataclass(frozen=True)
class StartedExecution:
    """What was started, and where to follow it."""

    arn: str
    pipeline: str
    display_name: str
    parameters: dict[str, str]
    notes: list[str] = field(default_factory=list)


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


def resolve_image(ecr: Any, names: Names, model: str, version: str | None, local: bool) -> tuple[str, str, str, list[str]]:
    """(version, image URI, image digest, notes) for a model: the given version, else the latest release in ECR."""
    from mlops.aws import ecr as ecr_adapter
    from mlops.versioning import scan_tags

    repository = names.ecr_repository(model)
    problem = None
    try:
        if version is None:
            latest = scan_tags(ecr_adapter.list_tags(ecr, repository)).latest_release
            version = str(latest) if latest else None
        digest = ecr_adapter.digest_of(ecr, repository, version) if version else None
    except MlopsError as exc:
        if not local:
            raise
        digest, problem = None, exc.message
    # A refusal for good (StartRejected, an MlopsError): no retry publishes the image; ECR's own errors stay temporary.
    if version is None and not local:
        raise StartRejected(f"no released image of {model} in ECR ({repository})", "publish one with `mlops image` or pass --version")
    if digest is None and not local:
        raise StartRejected(f"image {repository}:{version} is not in ECR", "publish it with `mlops image` first")
    notes = []
    if digest is None:
        version = version or LOCAL_VERSION
        notes.append(f"no image {repository}:{version} in ECR ({problem or 'not published'}); the local engine runs the scripts without it")
    return version, P.image_uri(names, model, version), digest or "unknown", notes


def start_for_request(  # pylint: disable=too-many-locals  # one straight line from request to execution reads best
        request: Any, client_request_token: str, *, session: Any = None, registry: Any = None,
        settings: Any = None) -> StartedExecution:
    """Start the tenant's execution for a BuildRequest."""
    import boto3

    from mlops.aws import sagemaker as adapter
    from mlops.config.tenants import load_from_settings
    from mlops.settings import Settings, local_engine_enabled

    settings = settings or Settings.from_env()
    registry = registry or load_from_settings(settings)
    session = session or boto3.session.Session()
    try:
        tenant = registry.check_model(request.tenant, request.model)
    except MlopsError as exc:  # a refusal for good: the trigger fails the request at once, no retries
        raise StartRejected(exc.message, exc.hint) from exc
    tier = tenant.effective_tier(registry.platform.tiers)
    names = registry.names(account_id(session))
    local = local_engine_enabled()
    extra = dict(request.parameters)
    if request.image_uri:
        version, image, digest, notes = request.version or LOCAL_VERSION, request.image_uri, request.image_digest or "unknown", []
    else:
        version, image, digest, notes = resolve_image(session.client("ecr"), names, request.model, request.version, local)
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
    return StartedExecution(arn=arn, pipeline=pipeline, display_name=request.execution_id, parameters=values, notes=notes)
