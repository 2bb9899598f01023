"""Scan adapter of the retraining check: gathers versions and timestamps for every tenant x model, cheaply.

Every source is read with list calls and paginators, never one call per tenant x model. The call budget
for T tenants, M platform models, N = tenant x models, P approved model packages, E ledger items:

| source | calls | why |
| --- | --- | --- |
| ledger (DynamoDB `Scan`, projected) | ceil(E x item size / 1 MB) | live version, last training, queued/running builds |
| ECR `ListImages` per model repository | M x ceil(images / 1000) | the newest released image of each model |
| model registry `ListModelPackages` | ceil(P / 100) | one cross-group list (no group name), Approved only |
| tenant data `ListObjectsV2` on `data/` | T x ceil(objects / 1000) | the newest data object per tenant x model (threads) |
| tenant data from the ledger (`--data-from ledger`) | 0 | requests the trigger made from uploads (`source = upload`) |
| drift (CloudWatch `GetMetricData`) | ceil(D / 500) | D = tenant x models with a drift threshold |

There is deliberately no `ListModelPackageGroups` + `ListModelPackages(ModelPackageGroupName=...)` (one call
per group, i.e. per tenant x model) and no `DescribeModelPackage` (per version): the ledger records the
image version every build trained with, and a single `ListModelPackages` without a group name lists the
approved versions of every group. S3 has no cross-bucket listing, so reading the tenant buckets costs one
call per tenant. Every upload already reaches the trigger (S3 -> EventBridge -> SQS), which records a build
with `source = upload`; `--data-from ledger` trusts that path and takes the newest such request as the
tenant's newest data, so an upload whose build failed is retried, for no call at all.

Where the local AWS (moto) does not paginate or filter (ECR `ListImages`, `GetMetricData`), the same code
still works; tests prove pagination with botocore `Stubber` multi-page responses. Nothing here decides:
`mlops.retrain` does. A source that cannot be read becomes a problem line, never a crash.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops.aws import ecr
from mlops.errors import MlopsError
from mlops.naming import Names
from mlops.retrain import DriftReading, Execution, Inventory, Package, TenantInfo, TenantModel

#: Ledger attributes the check reads (docs/trigger.md, item `pk = EXEC#<execution_id>`, `sk = EXEC`).
#: `data_watermark` (the newest data object a build read) is not written yet; when it is, new data is judged
#: against it instead of the build's start.
LEDGER_FIELDS = {
    "sk": "sk",
    "tenant": "tenant",
    "model": "model",
    "execution_id": "execution_id",
    "status": "status",
    "source": "source",
    "requested_at": "requested_at",
    "started_at": "started_at",
    "ended_at": "ended_at",
    "model_version": "version",
    "data_watermark": "data_watermark",
}
EXECUTION_SK = "EXEC"
#: GetMetricData accepts at most 500 queries per request.
METRIC_QUERIES_PER_CALL = 500


@dataclass
class ScanOptions:
    """What to read: `data_from` is `s3` (list tenant buckets) or `ledger` (upload-triggered requests)."""

    data_from: str = "s3"
    registry: bool = True
    page_size: int | None = None  # only for tests and the bench: smaller pages, more calls
    workers: int = 8  # threads listing tenant buckets (latency-bound against AWS)


@dataclass
class Clients:
    """The boto3 clients the scan uses (any may be None when its source is switched off)."""

    dynamodb: Any = None
    ecr: Any = None
    sagemaker: Any = None
    s3: Any = None


# -- the ledger ------------------------------------------------------------------------------------
def parse_time(value: Any) -> datetime | None:
    """A ledger timestamp: ISO 8601 text (`Z` or offset; naive means UTC) or epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float, Decimal)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _plain(attr: Mapping[str, Any] | None) -> Any:
    """One DynamoDB attribute value (low-level client shape) as plain Python."""
    if not attr:
        return None
    kind, value = next(iter(attr.items()))
    if kind == "N":
        return Decimal(value)
    if kind == "NULL":
        return None
    return value if kind in {"S", "BOOL"} else str(value)


def scan_ledger(client: Any, table: str, page_size: int | None = None) -> tuple[list[Execution], dict[TenantModel, datetime], list[str]]:
    """Every execution in the ledger, and per tenant x model the newest request that came from a data
    upload (the trigger turns each upload into a build with `source = upload`): one paginated Scan."""
    names = {f"#{key}": attr for key, attr in LEDGER_FIELDS.items()}
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    if page_size:
        kwargs["PaginationConfig"] = {"PageSize": page_size}
    executions: list[Execution] = []
    uploads: dict[TenantModel, datetime] = {}
    problems: list[str] = []
    skipped = 0
    try:
        for page in client.get_paginator("scan").paginate(**kwargs):
            for raw in page.get("Items", []):
                item = {key: _plain(raw.get(attr)) for key, attr in LEDGER_FIELDS.items()}
                if item["sk"] not in (None, EXECUTION_SK):
                    continue  # another kind of item, should the ledger grow some
                if not item["tenant"] or not item["model"]:
                    skipped += 1
                    continue
                executions.append(_execution(item))
                when = parse_time(item["requested_at"])
                key = (str(item["tenant"]), str(item["model"]))
                if item["source"] == "upload" and when and (key not in uploads or when > uploads[key]):
                    uploads[key] = when
    except ClientError as exc:
        problems.append(f"ledger {table} could not be read ({_code(exc)}): live versions, ages and running builds are unknown")
    except BotoCoreError as exc:
        problems.append(f"ledger {table} could not be read ({exc}): live versions, ages and running builds are unknown")
    if skipped:
        problems.append(f"ledger {table}: {skipped} item(s) without tenant or model were ignored")
    return executions, uploads, problems


def _execution(item: Mapping[str, Any]) -> Execution:
    version = item["model_version"]
    return Execution(
        tenant=str(item["tenant"]),
        model=str(item["model"]),
        execution_id=str(item["execution_id"] or "(no id)"),
        status=str(item["status"] or "unknown"),
        started_at=parse_time(item["started_at"]) or parse_time(item["requested_at"]),
        ended_at=parse_time(item["ended_at"]),
        model_version=None if version is None else str(version),
        data_watermark=parse_time(item["data_watermark"]),
    )


# -- images, registry, data ------------------------------------------------------------------------
def scan_images(client: Any, names: Names, models: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The tags of each model's ECR repository (`ListImages`, tagged only, paginated): M calls for M models."""
    images: dict[str, list[str]] = {}
    problems = []
    for model in models:
        repository = names.ecr_repository(model)
        try:
            images[model] = ecr.list_tags(client, repository)
        except MlopsError as exc:
            problems.append(f"ECR {repository}: {exc.one_line()}; the new-image check is skipped for {model}")
    return images, problems


def scan_packages(client: Any, names: Names, page_size: int | None = None) -> tuple[dict[str, Package], list[str]]:
    """The newest approved version of every model package group of the project: one cross-group list."""
    kwargs: dict[str, Any] = {"ModelApprovalStatus": "Approved", "ModelPackageType": "Versioned", "NameContains": f"{names.project}-"}
    if page_size:
        kwargs["PaginationConfig"] = {"PageSize": page_size}
    newest: dict[str, Package] = {}
    try:
        for page in client.get_paginator("list_model_packages").paginate(**kwargs):
            for summary in page.get("ModelPackageSummaryList", []):
                group = summary.get("ModelPackageGroupName")
                if not group or not group.startswith(f"{names.project}-"):
                    continue
                package = Package(group, summary.get("ModelPackageVersion"), summary.get("CreationTime"))
                if group not in newest or (package.version or 0) > (newest[group].version or 0):
                    newest[group] = package
    except (ClientError, BotoCoreError) as exc:
        return {}, [f"model registry could not be listed ({_code(exc)}); registry versions are not shown"]
    return newest, []


def scan_tenant_data(client: Any, names: Names, tenants: Iterable[str], page_size: int | None = None,
                     workers: int = 1) -> tuple[dict[TenantModel, datetime], list[str]]:
    """The newest object under `data/<model>/` of every tenant bucket: one paginated ListObjectsV2 per tenant.

    With `workers` > 1 the buckets are listed from a thread pool: against AWS the cost of one call per
    tenant is latency (tens of milliseconds each), which threads overlap; boto3 clients are thread-safe.
    """
    newest: dict[TenantModel, datetime] = {}
    problems = []
    tenants = list(tenants)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for tenant, found, problem in pool.map(lambda t: _newest_in_bucket(client, names, t, page_size), tenants):
            newest.update({(tenant, model): when for model, when in found.items()})
            if problem:
                problems.append(problem)
    return newest, problems


def _newest_in_bucket(client: Any, names: Names, tenant: str, page_size: int | None) -> tuple[str, dict[str, datetime], str | None]:
    bucket = names.tenant_bucket(tenant)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": "data/"}
    if page_size:
        kwargs["PaginationConfig"] = {"PageSize": page_size}
    newest: dict[str, datetime] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                parts = obj["Key"].split("/", 2)
                if len(parts) < 3 or not parts[2]:
                    continue  # a folder marker or an object directly under data/
                when = obj["LastModified"]
                if parts[1] not in newest or when > newest[parts[1]]:
                    newest[parts[1]] = when
    except (ClientError, BotoCoreError) as exc:
        return tenant, newest, f"tenant {tenant}: bucket {bucket} could not be listed ({_code(exc)}); new data is not detected"
    return tenant, newest, None


# -- drift -----------------------------------------------------------------------------------------
@dataclass
class CloudWatchDrift:
    """A drift signal read from a CloudWatch metric that the monitoring writes per tenant and model.

    Default: namespace `<project>/Monitoring`, metric `DriftScore`, dimensions `Tenant` and `Model`; the
    maximum over the last `lookback` counts. All keys are fetched with `GetMetricData`, 500 queries per
    call (paginated), never one call per model. Point `namespace`/`metric` elsewhere (e.g. a Model
    Monitor metric republished per tenant) without touching the policy.
    """

    client: Any
    namespace: str
    metric: str = "DriftScore"
    lookback: timedelta = timedelta(days=1)
    period_seconds: int = 3600
    problems: list[str] = field(default_factory=list)

    def read(self, keys: Sequence[TenantModel], now: datetime) -> dict[TenantModel, DriftReading]:
        """The highest value of the last `lookback` per tenant x model that has data points."""
        readings: dict[TenantModel, DriftReading] = {}
        source = f"CloudWatch {self.namespace}/{self.metric}"
        for start in range(0, len(keys), METRIC_QUERIES_PER_CALL):
            batch = list(keys[start:start + METRIC_QUERIES_PER_CALL])
            queries = [{
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {"Namespace": self.namespace, "MetricName": self.metric,
                               "Dimensions": [{"Name": "Tenant", "Value": tenant}, {"Name": "Model", "Value": model}]},
                    "Period": self.period_seconds,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            } for i, (tenant, model) in enumerate(batch)]
            try:
                pages = self.client.get_paginator("get_metric_data").paginate(
                    MetricDataQueries=queries, StartTime=now - self.lookback, EndTime=now, ScanBy="TimestampDescending")
                for page in pages:
                    for result in page.get("MetricDataResults", []):
                        self._keep(readings, batch[int(result["Id"][1:])], result, source)
            except (ClientError, BotoCoreError) as exc:
                self.problems.append(f"{source} could not be read ({_code(exc)}); the drift check is skipped")
                return readings
        return readings

    @staticmethod
    def _keep(readings: dict[TenantModel, DriftReading], key: TenantModel, result: Mapping[str, Any], source: str) -> None:
        for when, value in zip(result.get("Timestamps", []), result.get("Values", [])):
            if key not in readings or value > readings[key].value:
                readings[key] = DriftReading(float(value), when, source)


# -- everything ------------------------------------------------------------------------------------
def gather(
    clients: Clients,
    names: Names,
    tenants: Sequence[TenantInfo],
    models: Sequence[str],
    options: ScanOptions | None = None,
    drift: Any = None,
    drift_keys: Sequence[TenantModel] = (),
    now: datetime | None = None,
) -> Inventory:
    """Read every source into one `Inventory` for `mlops.retrain.check`."""
    options = options or ScanOptions()
    now = now or datetime.now(timezone.utc)
    inventory = Inventory()
    executions, uploads, problems = scan_ledger(clients.dynamodb, names.ledger_table(), options.page_size)
    inventory.executions, inventory.problems = executions, problems
    inventory.images, problems = scan_images(clients.ecr, names, models)
    inventory.problems += problems
    if options.registry and clients.sagemaker is not None:
        inventory.packages, problems = scan_packages(clients.sagemaker, names, options.page_size)
        inventory.problems += problems
    if options.data_from == "ledger":
        inventory.data = uploads
    else:
        # Only buckets of tenants the registry knows exist; data a deleted tenant left is its bucket's business.
        inventory.data, problems = scan_tenant_data(clients.s3, names, [t.id for t in tenants if t.enabled],
                                                    options.page_size, options.workers)
        inventory.problems += problems
    if drift is not None and drift_keys:
        inventory.drift = dict(drift.read(list(drift_keys), now))
        inventory.problems += list(getattr(drift, "problems", []))
    return inventory


@dataclass
class CallCounter:
    """Counts the AWS API calls made through the clients it is attached to (a botocore event hook)."""

    calls: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, *clients: Any) -> "CallCounter":
        """Count every call of these clients from now on."""
        for client in clients:
            if client is not None:
                client.meta.events.register("before-call.*.*", self._count)
        return self

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:  # the tenant buckets are listed from several threads
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def by_service(self) -> dict[str, int]:
        """Calls per service."""
        out: Counter = Counter()
        for key, count in self.calls.items():
            out[key.split(".", 1)[0]] += count
        return dict(out)

    @property
    def total(self) -> int:
        """All calls."""
        return sum(self.calls.values())


def budget(models: int) -> int:
    """The goal per service for `models` tenant x models: ceil(N/100) calls (plus a small constant)."""
    return math.ceil(models / 100)


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__
