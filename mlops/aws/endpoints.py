"""Endpoints adapter: model versions and their approval, per-version models and configs, alarms, the endpoint
calls of a blue/green rollout and their waits, the runtime's InvokeEndpoint, and the deployment log.

The use case that strings these together (gate, roll out, approve, reject, roll back) is `mlops.deploys`.
The local AWS of `mlops local up` answers the same calls (its endpoints are served by local model servers,
docs/local-aws.md); nothing here knows which AWS it talks to. Every AWS error the user can act on becomes an
`MlopsError`. Functions take boto3 clients.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from mlops import evaluation
from mlops.aws import errors
from mlops.errors import MlopsError
from mlops.gate import Candidate, MetricRule
from mlops.naming import iam_role_arn

VARIANT = "AllTraffic"
STRATEGIES = ("canary", "linear", "all-at-once")
TAG_PACKAGE = "mlops:model-package-arn"
TAG_VERSION = "mlops:model-version"
# How SageMaker shifts traffic per strategy; the waits give the alarms time to see the new fleet.
_CANARY = {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 300}
_LINEAR = {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}, "WaitIntervalInSeconds": 120}
_ALL_AT_ONCE = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
LATENCY_ALARM_MICROSECONDS = 1_000_000

Progress = Callable[[str], None]


def _aws_error(action: str, exc: ClientError) -> MlopsError:
    return errors.aws_error(action, exc, access_hint="check the deploy role's SageMaker/CloudWatch permissions")


# -- what we deploy ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One tenant's endpoint for one model in one environment, with everything a rollout needs (from the registry)."""

    tenant: str
    model: str
    environment: str
    endpoint: str
    package_group: str
    instance_type: str
    role_arn: str
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_registry(cls, registry: Any, tenant_id: str, model: str, account_id: str,  # pylint: disable=too-many-arguments,too-many-positional-arguments  # the target's coordinates
                      environment: str) -> "Target":
        """Check tenant and model against the registry; every name from mlops.naming. The models run as the
        tenant's inference role (never its job role), and the endpoint is the environment's own."""
        tenant = registry.check_model(tenant_id, model)
        names = registry.names(account_id)
        tier = tenant.effective_tier(registry.platform.tiers)
        return cls(
            tenant=tenant.id, model=model, environment=environment, endpoint=names.endpoint(tenant.id, model, environment),
            package_group=names.model_package_group(tenant.id, model), instance_type=tier.endpoint_instance_type,
            role_arn=iam_role_arn(names, names.inference_role(tenant.id)),
            tags={**tenant.cost_tags(registry.platform.project), "mlops:environment": environment},
        )

    def aws_tags(self, extra: dict[str, str] | None = None) -> list[dict[str, str]]:
        """Cost-allocation tags (plus `extra`) in the AWS list shape."""
        return [{"Key": k, "Value": v} for k, v in sorted({**self.tags, **(extra or {})}.items())]


@dataclass(frozen=True)
class ModelVersion:
    """A registered model package as deploy sees it."""

    arn: str
    version: str
    package_version: int
    status: str
    metadata: dict[str, str]
    description: dict[str, Any]

    def candidate(self, metrics: dict[str, float]) -> Candidate:
        """The gate's view of this version."""
        return Candidate(version=self.version, metrics=metrics, package_arn=self.arn)


def _model_version(desc: dict[str, Any]) -> ModelVersion:
    meta = dict(desc.get("CustomerMetadataProperties") or {})
    number = int(desc.get("ModelPackageVersion") or 0)
    return ModelVersion(
        arn=desc["ModelPackageArn"], package_version=number,
        version=meta.get("model_version") or meta.get("semantic_version") or f"package-{number}",
        status=desc.get("ModelApprovalStatus", "PendingManualApproval"), metadata=meta, description=desc,
    )


def list_versions(sm: Any, group: str) -> list[ModelVersion]:
    """Every version in a model package group, oldest first (sorted here: moto's server ignores SortBy)."""
    summaries: list[dict[str, Any]] = []
    try:
        for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
            summaries.extend(page.get("ModelPackageSummaryList", []))
        described = [sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]
    except ClientError as exc:
        raise _aws_error(f"list the model packages of {group}", exc) from exc
    return sorted((_model_version(d) for d in described), key=lambda v: v.package_version)


def resolve_version(versions: list[ModelVersion], group: str, version: str | None, allow_rejected: bool = False) -> ModelVersion:
    """The version asked for (semantic version, `package-N` or N), or the newest one not rejected."""
    if not versions:
        raise MlopsError(f"model package group {group} has no model versions", "train and register one first (mlops train)")
    if version is None:
        usable = [v for v in versions if v.status != "Rejected"]
        if not usable:
            raise MlopsError(f"every version in {group} is rejected", "train a new version")
        return usable[-1]
    wanted = version.removeprefix("v")
    for item in reversed(versions):
        if wanted in (item.version.removeprefix("v"), f"package-{item.package_version}", str(item.package_version)):
            if item.status == "Rejected" and not allow_rejected:
                raise MlopsError(f"version {item.version} of {group} was rejected", "deploy another version")
            return item
    known = ", ".join(v.version for v in versions[-8:])
    raise MlopsError(f"no version {version} in {group}", f"recent versions: {known}")


def read_metrics(s3: Any, item: ModelVersion) -> dict[str, float]:
    """Evaluation metrics: the evaluation.json the package references, then its metadata on top.

    Metadata: `metric.<name>` = value, or `metric_name` + `metric_value` (what the pipeline registers).
    """
    metrics: dict[str, float] = {}
    report_uri = (item.description.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}) or {}).get("S3Uri")
    if report_uri:
        metrics.update(evaluation.metrics(_read_report(s3, report_uri), metric=item.metadata.get("metric_name"),
                                          path=item.metadata.get("metric_path")))
    pairs = [(key.split(".", 1)[1], value) for key, value in item.metadata.items() if key.startswith("metric.") and key.count(".") == 1]
    if item.metadata.get("metric_name") and item.metadata.get("metric_value") not in (None, ""):
        pairs.append((item.metadata["metric_name"], item.metadata["metric_value"]))
    for name, value in pairs:
        try:
            metrics[name] = float(value)
        except ValueError:
            continue
    return metrics


def _read_report(s3: Any, uri: str) -> Any:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        raise _aws_error(f"read the evaluation report {uri}", exc) from exc
    except ValueError as exc:
        raise MlopsError(f"the evaluation report {uri} is not JSON", "re-run the evaluation step") from exc


def rule_from_metadata(item: ModelVersion) -> MetricRule | None:
    """The metric rule the package was registered under (`metric_name`, `metric_direction`, ...), if recorded."""
    meta = item.metadata
    if not meta.get("metric_name") or meta.get("metric_direction") not in ("maximize", "minimize"):
        return None
    threshold = meta.get("metric_threshold")
    return MetricRule(name=meta["metric_name"], direction=meta["metric_direction"],  # type: ignore[arg-type]
                      min_improvement=float(meta.get("metric_min_improvement") or 0.0),
                      threshold=float(threshold) if threshold not in (None, "") else None)


# -- the deployment log (ledger port) ---------------------------------------------------------------

@dataclass
class DeploymentEvent:  # pylint: disable=too-many-instance-attributes  # one flat ledger record
    """One thing that happened to an endpoint: deployed, refused, rolled back, rejected, forced."""

    kind: str  # deploy | reject | rollback | revert-rejection
    outcome: str  # deployed | rolled-back | refused | unchanged | failed | rejected | reverted
    tenant: str
    model: str
    endpoint: str
    version: str
    package_arn: str
    previous_version: str | None = None
    reasons: list[str] = field(default_factory=list)
    actor: str | None = None
    forced: bool = False
    forced_reason: str | None = None
    strategy: str | None = None
    serving_version: str | None = None
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="microseconds"))


class DeploymentLog(Protocol):
    """Where deployments are recorded: the execution ledger (mlops.aws.ledger) or a local file."""

    def record(self, event: DeploymentEvent) -> None:
        """Store one event; must not raise for a duplicate."""


class JsonlDeploymentLog:
    """A deployment log in a JSON-lines file (the local state dir), until the ledger records deployments."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def record(self, event: DeploymentEvent) -> None:
        """Append one event."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(event), sort_keys=True) + "\n")

    def events(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Every event, oldest first (only one endpoint's with `endpoint`)."""
        if not self.path.is_file():
            return []
        rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [r for r in rows if endpoint is None or r["endpoint"] == endpoint]


class LedgerDeploymentLog:
    """Deployment events in the execution ledger table, next to the executions.

    Items: `pk = DEPLOY#<endpoint>`, `sk = <at>#<kind>#<version>`; the ledger's execution scans filter on
    `sk = EXEC`, so they never see these. A put is conditional on the item not existing, so a record is
    never overwritten.
    """

    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table

    @staticmethod
    def exists(client: Any, table: str) -> bool:
        """Whether the ledger table is there to record into."""
        try:
            client.describe_table(TableName=table)
        except ClientError as exc:
            if errors.is_not_found(exc):
                return False
            raise _aws_error(f"describe the ledger table {table}", exc) from exc
        return True

    def record(self, event: DeploymentEvent) -> None:
        """Put one event (once)."""
        from mlops.aws.dynamo import to_attrs

        item = {"pk": f"DEPLOY#{event.endpoint}", "sk": f"{event.at}#{event.kind}#{event.version}", **asdict(event)}
        try:
            self.client.put_item(TableName=self.table, Item=to_attrs(item), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not errors.is_condition_failed(exc):
                raise _aws_error(f"record the deployment of {event.endpoint} in the ledger", exc) from exc

    def events(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """One endpoint's events, oldest first (every endpoint's without `endpoint`)."""
        from mlops.aws.dynamo import from_attrs

        if endpoint is None:
            params: dict[str, Any] = {"TableName": self.table, "FilterExpression": "begins_with(pk, :p)",
                                      "ExpressionAttributeValues": {":p": {"S": "DEPLOY#"}}}
            pages = self.client.get_paginator("scan").paginate(**params)
        else:
            params = {"TableName": self.table, "KeyConditionExpression": "pk = :p",
                      "ExpressionAttributeValues": {":p": {"S": f"DEPLOY#{endpoint}"}}}
            pages = self.client.get_paginator("query").paginate(**params)
        try:
            rows = [from_attrs(i) for page in pages for i in page.get("Items", [])]
        except ClientError as exc:
            raise _aws_error("read deployments from the ledger", exc) from exc
        rows.sort(key=lambda r: (r["at"], r["sk"]))
        for row in rows:
            row.pop("pk", None)
            row.pop("sk", None)
            row.setdefault("reasons", [])
            row.setdefault("previous_version", None)
            row.setdefault("serving_version", None)
        return rows


# -- AWS building blocks ----------------------------------------------------------------------------

def set_approval(sm: Any, item: ModelVersion, status: str, note: str) -> None:
    """Approve or reject a package. Its metadata is passed back: moto's UpdateModelPackage drops what is not."""
    kwargs: dict[str, Any] = {"ModelPackageArn": item.arn, "ModelApprovalStatus": status, "ApprovalDescription": note[:1024]}
    if item.metadata:
        kwargs["CustomerMetadataProperties"] = item.metadata
    try:
        sm.update_model_package(**kwargs)
    except ClientError as exc:
        raise _aws_error(f"mark {item.version} {status}", exc) from exc


def version_resource_name(target: Target, item: ModelVersion) -> str:
    """Model and endpoint config name of one version on one endpoint (<= 63 characters, idempotent)."""
    digest = hashlib.sha256(f"{item.arn}|{target.instance_type}|{target.role_arn}".encode()).hexdigest()[:8]
    suffix = f"-{item.package_version}-{digest}"
    return f"{target.endpoint[:63 - len(suffix)].rstrip('-')}{suffix}"


def ensure_model_and_config(sm: Any, target: Target, item: ModelVersion) -> str:
    """A SageMaker model and endpoint config for this version (reused when they exist); the config name."""
    name = version_resource_name(target, item)
    tags = target.aws_tags({TAG_PACKAGE: item.arn, TAG_VERSION: item.version})
    try:
        try:
            sm.describe_model(ModelName=name)
        except ClientError as exc:
            if not errors.is_not_found(exc):
                raise
            sm.create_model(ModelName=name, ExecutionRoleArn=target.role_arn,
                            Containers=[{"ModelPackageName": item.arn}], Tags=tags)
        try:
            sm.describe_endpoint_config(EndpointConfigName=name)
        except ClientError as exc:
            if not errors.is_not_found(exc):
                raise
            sm.create_endpoint_config(
                EndpointConfigName=name, Tags=tags,
                ProductionVariants=[{"VariantName": VARIANT, "ModelName": name, "InstanceType": target.instance_type,
                                     "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}],
            )
    except ClientError as exc:
        raise _aws_error(f"create the model and endpoint config {name}", exc) from exc
    return name


def alarm_names(endpoint: str) -> list[str]:
    """The CloudWatch alarms that roll a deployment of `endpoint` back."""
    return [f"{endpoint}-invocation-5xx", f"{endpoint}-model-latency"]


def ensure_alarms(cw: Any, target: Target) -> list[str]:
    """Put the endpoint's rollback alarms (idempotent): any 5XX from the model, or a slow model."""
    five_xx, latency = alarm_names(target.endpoint)
    common = {"Namespace": "AWS/SageMaker", "Period": 60, "TreatMissingData": "notBreaching",
              "Dimensions": [{"Name": "EndpointName", "Value": target.endpoint}, {"Name": "VariantName", "Value": VARIANT}],
              "Tags": target.aws_tags()}
    try:
        cw.put_metric_alarm(AlarmName=five_xx, MetricName="Invocation5XXErrors", Statistic="Sum", Threshold=1.0,
                            ComparisonOperator="GreaterThanOrEqualToThreshold", EvaluationPeriods=1,
                            AlarmDescription=f"any invocation 5XX on {target.endpoint} rolls a deployment back", **common)
        cw.put_metric_alarm(AlarmName=latency, MetricName="ModelLatency", Statistic="Average",
                            Threshold=float(LATENCY_ALARM_MICROSECONDS), ComparisonOperator="GreaterThanThreshold",
                            EvaluationPeriods=2, AlarmDescription=f"model latency of {target.endpoint} above 1 s rolls back", **common)
    except ClientError as exc:
        raise _aws_error(f"put the rollback alarms of {target.endpoint}", exc) from exc
    return [five_xx, latency]


def deployment_config(strategy: str, alarms: list[str]) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig: blue/green with the strategy's traffic routing and auto-rollback."""
    routing = {"canary": _CANARY, "linear": _LINEAR, "all-at-once": _ALL_AT_ONCE}.get(strategy)
    if routing is None:
        raise MlopsError(f"unknown strategy '{strategy}'", f"use one of: {', '.join(STRATEGIES)}")
    return {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": dict(routing), "TerminationWaitInSeconds": 300,
                                  "MaximumExecutionTimeoutInSeconds": 3600},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarms]},
    }


def describe_endpoint(sm: Any, endpoint: str) -> dict[str, Any] | None:
    """The endpoint, or None when it does not exist."""
    try:
        return sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if errors.is_not_found(exc):
            return None
        raise _aws_error(f"describe endpoint {endpoint}", exc) from exc


def serving_package_arn(sm: Any, endpoint: dict[str, Any]) -> str | None:
    """The model package behind an endpoint, from its endpoint config's tags."""
    try:
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        tags = sm.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags", [])
    except ClientError as exc:
        raise _aws_error(f"read the endpoint config of {endpoint['EndpointName']}", exc) from exc
    return next((t["Value"] for t in tags if t["Key"] == TAG_PACKAGE), None)


def _pause(elapsed: float, poll: float) -> float:
    """How long to wait before the next look: a quarter of the time waited so far, from 0.5 s up to `poll`
    (an endpoint that is ready in seconds is seen in seconds; one that takes minutes is asked every `poll`)."""
    return min(poll, max(0.5, elapsed / 4))


def wait_in_service(sm: Any, endpoint: str, progress: Progress, timeout: float = 3600, poll: float = 15) -> dict[str, Any]:
    """Poll until the endpoint leaves Creating/Updating/RollingBack; print each status change."""
    start, last = time.monotonic(), None
    while True:
        desc = describe_endpoint(sm, endpoint)
        if desc is None:
            raise MlopsError(f"endpoint {endpoint} disappeared while waiting for it", "check the SageMaker console")
        status = desc["EndpointStatus"]
        if status != last:
            progress(f"  endpoint {endpoint}: {status} ({time.monotonic() - start:.0f}s)")
            last = status
        if status not in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
            return desc
        if time.monotonic() - start > timeout:
            raise MlopsError(f"endpoint {endpoint} still {status} after {timeout:.0f}s",
                             "watch it in the console; nothing was rolled back by mlops")
        time.sleep(_pause(time.monotonic() - start, poll))


def wait_deleted(sm: Any, endpoint: str, timeout: float = 900, poll: float = 15) -> None:
    """Poll until the endpoint is gone (DeleteEndpoint returns while it is still Deleting)."""
    start = time.monotonic()
    while describe_endpoint(sm, endpoint) is not None:
        if time.monotonic() - start > timeout:
            raise MlopsError(f"endpoint {endpoint} still exists {timeout:.0f}s after its deletion", "check the SageMaker console")
        time.sleep(_pause(time.monotonic() - start, poll))


def recreate_failed(sm: Any, endpoint: str, desc: dict[str, Any] | None, progress: Progress, poll: float = 15) -> dict[str, Any] | None:
    """A Failed endpoint is deleted (SageMaker updates no Failed endpoint) and None returned; any other is returned as is."""
    if desc is None or desc["EndpointStatus"] != "Failed":
        return desc
    progress(f"{endpoint}: the endpoint is Failed ({desc.get('FailureReason') or 'no reason given'}); deleting it to create it again")
    try:
        sm.delete_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        raise _aws_error(f"delete the failed endpoint {endpoint}", exc) from exc
    wait_deleted(sm, endpoint, poll=poll)
    return None


def start_rollout(sm: Any, target: Target, config: str, deployment: dict[str, Any] | None) -> None:
    """CreateEndpoint on `config` (deployment None), or UpdateEndpoint to it with the blue/green `deployment`."""
    try:
        if deployment is None:
            sm.create_endpoint(EndpointName=target.endpoint, EndpointConfigName=config, Tags=target.aws_tags())
        else:
            sm.update_endpoint(EndpointName=target.endpoint, EndpointConfigName=config, DeploymentConfig=deployment,
                               RetainAllVariantProperties=False)
    except NotImplementedError as exc:  # in-process moto raises this for operations it lacks
        raise _no_update_endpoint() from exc
    except ClientError as exc:
        if errors.code(exc) in {"500", "InternalFailure", "NotImplemented"}:
            raise _no_update_endpoint() from exc
        raise _aws_error(f"roll {config} out to {target.endpoint}", exc) from exc


def _no_update_endpoint() -> MlopsError:
    return MlopsError(
        "this AWS endpoint does not implement UpdateEndpoint (a bare moto answers HTTP 500)",
        "deploy to AWS, or to the local AWS of `mlops local up` (source its env file), whose server implements it",
    )


def invoke_endpoint(runtime: Any, endpoint: str, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    """Call a SageMaker endpoint through the runtime API; a model error becomes one readable line.

    SageMaker answers a model's own error as `ModelError` with the container's status and answer
    (`OriginalStatusCode`, `OriginalMessage`): a 4xx is the input's fault, anything else the model's.
    """
    try:
        response = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type, Accept=accept)
    except ClientError as exc:
        if errors.code(exc) == "ModelError":
            original = " ".join(str(exc.response.get("OriginalMessage") or errors.message(exc)).split())[:500]
            status = int(exc.response.get("OriginalStatusCode") or 0)
            if 400 <= status < 500:
                raise MlopsError(f"{endpoint} rejected the input: {original}", "fix the request body") from exc
            raise MlopsError(f"{endpoint} failed to answer: {original}",
                             f"see the endpoint's log group /aws/sagemaker/Endpoints/{endpoint} in CloudWatch Logs") from exc
        if errors.is_not_found(exc):
            raise MlopsError(f"endpoint {endpoint} does not exist or is not in service",
                             "deploy it first with mlops deploy") from exc
        raise _aws_error(f"invoke {endpoint}", exc) from exc
    return response["Body"].read(), response.get("ContentType", "")
