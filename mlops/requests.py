"""Build requests: one typed model for every way a build is asked for, and its idempotency key.

A build is asked for by a CI job (`mlops train`), by a tenant's data upload (S3 → EventBridge → SQS) or by
the daily retraining check. Each is parsed into a `BuildRequest` (an upload event by `mlops.uploads`),
checked against the tenant registry, and given a digest that identifies it: the same request delivered three
times has the same digest, so the same `execution_id` (the ledger key and the pipeline execution's display
name) and the same `ClientRequestToken`. Anything that cannot become a valid request raises `RejectedRequest`
with a reason a person can act on; rejected requests are never retried.

Pure: no boto3, no AWS calls. The pipeline start is a port (`StartExecution`) whose real implementation,
StartPipelineExecution with per-tenant PipelineParameters, lives in `mlops.aws.sagemaker`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.errors import MlopsError
from mlops.naming import MODEL_MAX, SLUG, TENANT_MAX
from mlops.statuses import SageMakerStatus

Source = Literal["ci", "upload", "retrain"]

class RejectedRequest(MlopsError):
    """A request that can never succeed as sent (malformed, unknown tenant or model). Not retried."""

    exit_code = 2


#: A version as images are tagged: semver, with an optional pre-release and no build metadata (an ECR tag
#: has no `+`). Anything else, `../x` included, is refused before it reaches a ledger or a pipeline.
SEMVER_TAG = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")


#: The build request schema this release writes and reads. A release that changes the fields raises it; an
#: older Lambda that meets a newer request leaves it for a newer one (`NewerRequest`), so the Lambdas of two
#: releases can run side by side while a deploy rolls out.
REQUEST_SCHEMA = 1


class NewerRequest(MlopsError):
    """A request written by a newer release: not this release's to read, never rejected for it. Left where it is
    (a queue message becomes visible again, a backlog item stays) until a Lambda of the newer release takes it."""


class BuildRequest(BaseModel):
    """A request to run one tenant's training pipeline for one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(default=REQUEST_SCHEMA, ge=1, le=REQUEST_SCHEMA,
                                description="the request schema (REQUEST_SCHEMA of the release that wrote it)")
    source: Source
    tenant: str = Field(min_length=2, max_length=TENANT_MAX, pattern=SLUG.pattern)
    model: str = Field(min_length=2, max_length=MODEL_MAX, pattern=SLUG.pattern)
    version: str | None = Field(default=None, max_length=128, pattern=SEMVER_TAG.pattern,
                                description="image version (semver, as tagged in ECR); None = the latest published")
    git_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,40}$")
    image_uri: str | None = Field(default=None, max_length=512)
    image_digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    data_uri: str | None = Field(default=None, max_length=1024, pattern=r"^s3://")
    reason: str = Field(default="", max_length=512)
    parameters: dict[str, str] = Field(default_factory=dict, description="extra pipeline parameters")
    links: dict[str, str] = Field(default_factory=dict, description="CI pipeline, job, merge request URLs")
    requested_at: str = Field(default_factory=lambda: utc_now(), description="ISO-8601 UTC")  # pylint: disable=unnecessary-lambda  # utc_now is defined below
    dedup_id: str | None = Field(
        default=None, max_length=128,
        description="what makes this request distinct from an identical earlier one (e.g. a manual rebuild)",
    )

    @property
    def digest(self) -> str:
        """sha256 of what identifies the request: equal for every delivery of the same request."""
        return request_digest(self)

    @property
    def execution_id(self) -> str:
        """Ledger key and pipeline execution display name: `<tenant>-<model>-<12 hex>` (≤ 62 characters)."""
        return f"{self.tenant}-{self.model}-{self.digest[:12]}"

    @property
    def client_request_token(self) -> str:
        """StartPipelineExecution's ClientRequestToken (32-128 characters): the digest."""
        return self.digest

    def to_message(self) -> str:
        """The request as a queue message body."""
        return self.model_dump_json(exclude_none=True)


#: The port to the pipeline: start one execution and return its ARN. The real one is
#: StartPipelineExecution in mlops.aws.sagemaker with `PipelineExecutionDisplayName=request.execution_id`.
StartExecution = Callable[[BuildRequest, str], str]


def utc_now() -> str:
    """Now, ISO-8601 UTC with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _identity(request: BuildRequest) -> dict[str, Any]:
    """The fields that make two deliveries 'the same request' for each source.

    A CI job retried by GitLab, an S3 event delivered twice, or the retraining check run twice on one day
    must not start a second build; a new commit, a new object or a new day must.
    """
    base: dict[str, Any] = {"source": request.source, "tenant": request.tenant, "model": request.model,
                            "dedup_id": request.dedup_id}
    if request.source == "ci":
        return base | {"version": request.version, "git_commit": request.git_commit, "image_digest": request.image_digest}
    if request.source == "upload":
        return base | {"data_uri": request.data_uri, "etag": request.parameters.get("DataETag"),
                       "sequencer": request.parameters.get("DataSequencer")}
    return base | {"day": request.requested_at[:10], "version": request.version}


def request_digest(request: BuildRequest) -> str:
    """sha256 hex of a request's identity (see `_identity`)."""
    canonical = json.dumps(_identity(request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "request"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_request(data: Any) -> BuildRequest:
    """A build request from a plain mapping (CI, retraining check, a tier-queue message)."""
    if not isinstance(data, dict):
        raise RejectedRequest(f"a build request must be a JSON object, got {type(data).__name__}",
                              "send {source, tenant, model, ...}")
    version = data.get("schema_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > REQUEST_SCHEMA:
        raise NewerRequest(f"build request of schema {version}, this release reads up to {REQUEST_SCHEMA}",
                           "left for a Lambda of the newer release (finish rolling out the deploy)")
    try:
        return BuildRequest.model_validate(data)
    except ValidationError as exc:
        raise RejectedRequest(f"malformed build request: {_errors(exc)}", "see docs/trigger.md for the fields") from exc


def parse_json(body: str) -> Any:
    """JSON from a message body; malformed JSON is a rejection, not a crash."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise RejectedRequest(f"message body is not JSON: {exc}", "send a JSON build request or an EventBridge event") from exc


def json_object(value: Any, what: str) -> dict[str, Any]:
    """`value` when it is a JSON object ({} when absent); a rejection naming `what` otherwise, so one malformed
    record is that record's permanent failure and never an error of the whole batch."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RejectedRequest(f"malformed event: {what} is a {type(value).__name__}, not an object",
                              "check the EventBridge rule's input")
    return value


def check_registry(request: BuildRequest, registry: Any) -> Any:
    """The request's tenant after checking tenant, model and parameters against the registry.

    `registry` is a `mlops.config.tenants.Registry`; an unknown or disabled tenant, or a model the tenant
    does not train, is a rejection with the registry's own hint.
    """
    if request.model not in registry.platform.models:
        raise RejectedRequest(f"unknown model '{request.model}'", f"platform models: {', '.join(registry.platform.models)}")
    try:
        tenant = registry.check_model(request.tenant, request.model)
    except MlopsError as exc:
        raise RejectedRequest(exc.message, exc.hint) from exc
    for key in request.parameters:
        if not key.replace("_", "a").isalnum() or not key[:1].isalpha():
            raise RejectedRequest(f"pipeline parameter name '{key}' is not a valid name", "letters, digits and _ only")
    return tenant


class StartRejected(MlopsError):
    """Raised by a `StartExecution` port when SageMaker refuses the start for good (validation, missing
    pipeline): the request is marked FAILED and its slot given back. Any other exception is transient."""


#: detail-type of SageMaker's pipeline execution status-change events.
PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"


class PipelineStatusEvent(BaseModel):
    """The part of a SageMaker pipeline status-change event the ledger needs."""

    model_config = ConfigDict(frozen=True)

    execution_id: str = Field(min_length=1, max_length=82, description="the execution's display name")
    status: SageMakerStatus
    pipeline_execution_arn: str = Field(min_length=1)
    at: str = Field(description="event time, ISO-8601")
    started_at: str | None = None
    ended_at: str | None = None
    #: the execution's description, as the start port wrote it (`execution_description`), if any
    description: str | None = None


def execution_description(source: str, tenant: str, model: str, version: str | None, reason: str | None = None) -> str:
    """The PipelineExecutionDescription every start writes: `<source>: <tenant> <model> <version> (<reason>)`.

    People read it in Studio; the status handler reads the version back from the status-change events, which
    carry the description, so that it can record a training without reading the ledger.
    """
    return (f"{source}: {tenant} {model} {version or '-'}" + (f" ({reason})" if reason else ""))[:3072]


_DESCRIPTION = re.compile(r"^(?P<source>[a-z]+): (?P<tenant>\S+) (?P<model>\S+) (?P<version>\S+)(?: \(|$)")


def parse_execution_description(text: str | None) -> dict[str, str | None] | None:
    """(source, tenant, model, version) from an `execution_description`; None for any other text."""
    match = _DESCRIPTION.match(text or "")
    if match is None:
        return None
    fields: dict[str, str | None] = dict(match.groupdict())
    fields["version"] = None if fields["version"] == "-" else fields["version"]
    return fields


def parse_status_event(body: str) -> PipelineStatusEvent:
    """A status-change event from a status-queue message body (EventBridge envelope)."""
    event = parse_json(body)
    if not isinstance(event, dict) or event.get("detail-type") != PIPELINE_STATUS_CHANGE:
        kind = event.get("detail-type") if isinstance(event, dict) else type(event).__name__
        raise RejectedRequest(f"not a pipeline status-change event: {kind!r}",
                              f"the status queue only takes '{PIPELINE_STATUS_CHANGE}' events")
    detail = json_object(event.get("detail"), "detail")
    try:
        return PipelineStatusEvent(
            execution_id=detail.get("pipelineExecutionDisplayName") or "",
            status=detail.get("currentPipelineExecutionStatus"),
            pipeline_execution_arn=detail.get("pipelineExecutionArn") or "",
            at=event.get("time") or utc_now(),
            started_at=detail.get("executionStartTime"),
            ended_at=detail.get("executionEndTime"),
            description=detail.get("pipelineExecutionDescription"),
        )
    except ValidationError as exc:
        raise RejectedRequest(f"malformed status event: {_errors(exc)}", "check the EventBridge rule") from exc


def status_event(execution_id: str, status: str, arn: str, at: str | None = None,
                 started_at: str | None = None, ended_at: str | None = None, description: str | None = None) -> dict[str, Any]:
    """A status-change event shaped the way SageMaker sends it (for the local pipeline engine and tests)."""
    detail: dict[str, Any] = {"pipelineExecutionDisplayName": execution_id, "currentPipelineExecutionStatus": status,
                              "pipelineExecutionArn": arn, "pipelineArn": arn.split("/execution/")[0]}
    if started_at:
        detail["executionStartTime"] = started_at
    if ended_at:
        detail["executionEndTime"] = ended_at
    if description:
        detail["pipelineExecutionDescription"] = description
    return {"version": "0", "id": hashlib.sha256(f"{arn}{status}{at}".encode()).hexdigest()[:32],
            "detail-type": PIPELINE_STATUS_CHANGE, "source": "aws.sagemaker", "time": at or utc_now(), "detail": detail}
