"""Scan adapter of the retraining check: gathers versions and timestamps for every tenant x model, cheaply.

Every source is read with list calls and paginators, never one call per tenant x model. The call budget
for T tenants, M platform models, N = tenant x models, P approved model packages:

| source | calls | why |
| --- | --- | --- |
| ledger state items (DynamoDB `Query` per shard) | 8 + ceil(N x ~250 B / 1 MB) | newest training, builds queued/running, newest upload |
| ECR `ListImages` per model repository | M x ceil(images / 1000) | the newest released image of each model |
| model registry `ListModelPackages` | ceil(P / 100) | one cross-group list (no group name), Approved only |
| drift (CloudWatch `GetMetricData`) | ceil(D / 500) | D = tenant x models with a drift threshold (one point each if trained earlier) |
| tenant data `ListObjectsV2` (opt-in `--data-from s3`) | T x ceil(objects / 1000) | one per tenant bucket: S3 has no cross-bucket list |

The ledger keeps one small state item per tenant x model (`mlops.aws.ledger`: `pk = STATE#<shard>`), written
by the trigger and the status path in the same places as the executions, so the check reads N small items
instead of the whole execution history (`--ledger history` still scans the history: for a ledger written
before state items existed, which is also what happens by itself when no state item is found). Every upload
reaches the trigger (S3 -> EventBridge -> SQS), which records it as the tenant x model's newest data, so the
default source of "new data" costs no S3 call; listing the tenant buckets is an explicit opt-in.

There is deliberately no `ListModelPackageGroups` + `ListModelPackages(ModelPackageGroupName=...)` (one call
per group, i.e. per tenant x model) and no `DescribeModelPackage` (per version): the ledger records the
image version every build trained with, and a single `ListModelPackages` without a group name lists the
approved versions of every group.

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

from mlops.aws import ecr, errors
from mlops.aws.dynamo import from_attrs
from mlops.aws.ledger import STATE_PREFIX, STATE_SHARDS
from mlops.errors import MlopsError
from mlops.naming import Names, model_package_group_prefix
from mlops.retrain import DriftReading, Execution, Inventory, Package, TenantInfo, TenantModel, last_trained
from mlops.statuses import ACTIVE_BUILD, SUCCEEDED

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
    "uploaded_at": "uploaded_at",
}
EXECUTION_SK = "EXEC"
#: GetMetricData accepts at most 500 queries per request.
METRIC_QUERIES_PER_CALL = 500


@dataclass
class ScanOptions:
    """What to read: `ledger` is `state` (the state items) or `history` (every execution); `data_from` is
    `ledger` (uploads the trigger recorded) or `s3` (list every tenant bucket: one call per tenant)."""

    ledger: str = "state"
    data_from: str = "ledger"
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
                decoded = from_attrs(raw)
                item = {key: decoded.get(attr) for key, attr in LEDGER_FIELDS.items()}
                if item["sk"] not in (None, EXECUTION_SK):
                    _keep_newest(uploads, item, parse_time(item["uploaded_at"]))  # a state item: an upload recorded
                    continue
                if not item["tenant"] or not item["model"]:
                    skipped += 1
                    continue
                executions.append(_execution(item))
                if item["source"] == "upload":
                    _keep_newest(uploads, item, parse_time(item["requested_at"]))
    except ClientError as exc:
        problems.append(f"ledger {table} could not be read ({errors.code(exc)}): live versions, ages and running builds are unknown")
    except BotoCoreError as exc:
        problems.append(f"ledger {table} could not be read ({exc}): live versions, ages and running builds are unknown")
    if skipped:
        problems.append(f"ledger {table}: {skipped} item(s) without tenant or model were ignored")
    return executions, uploads, problems


def _keep_newest(uploads: dict[TenantModel, datetime], item: Mapping[str, Any], when: datetime | None) -> None:
    if when is None or not item["tenant"] or not item["model"]:
        return
    key = (str(item["tenant"]), str(item["model"]))
    if key not in uploads or when > uploads[key]:
        uploads[key] = when


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


def scan_state(client: Any, table: str,
               page_size: int | None = None) -> tuple[list[Execution], dict[TenantModel, datetime], int, list[str]]:
    """The state item of every tenant x model (one paginated Query per shard): its newest training and its
    active builds as executions, its newest upload, and how many state items there were."""
    kwargs: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "pk = :pk"}
    if page_size:
        kwargs["PaginationConfig"] = {"PageSize": page_size}
    executions: list[Execution] = []
    uploads: dict[TenantModel, datetime] = {}
    seen = skipped = 0
    try:
        for shard in range(STATE_SHARDS):
            pages = client.get_paginator("query").paginate(**kwargs, ExpressionAttributeValues={":pk": {"S": f"{STATE_PREFIX}{shard}"}})
            for page in pages:
                for raw in page.get("Items", []):
                    seen += 1
                    item = from_attrs(raw)
                    if not item.get("tenant") or not item.get("model"):
                        skipped += len(item) > 2  # an item with only its key: a build ended before its state existed
                        continue
                    executions.extend(_state_executions(item))
                    when = parse_time(item.get("uploaded_at"))
                    if when is not None:
                        uploads[(str(item["tenant"]), str(item["model"]))] = when
    except (ClientError, BotoCoreError) as exc:
        return [], {}, 0, [f"ledger {table} could not be read ({errors.code(exc)}): live versions, ages and running builds are unknown"]
    problems = [f"ledger {table}: {skipped} state item(s) without tenant or model were ignored"] if skipped else []
    return executions, uploads, seen, problems


def _state_executions(item: Mapping[str, Any]) -> list[Execution]:
    tenant, model = str(item["tenant"]), str(item["model"])
    out = [Execution(tenant, model, str(eid), ACTIVE_BUILD) for eid in sorted(item.get("active") or [])]
    ended = parse_time(item.get("trained_ended_at"))
    if ended is not None:
        version = item.get("trained_version")
        out.append(Execution(tenant, model, str(item.get("trained_execution") or "(no id)"), SUCCEEDED,
                             parse_time(item.get("trained_started_at")) or ended, ended,
                             None if version is None else str(version), parse_time(item.get("trained_data_watermark"))))
    return out


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
    prefix = model_package_group_prefix(names)
    kwargs: dict[str, Any] = {"ModelApprovalStatus": "Approved", "ModelPackageType": "Versioned", "NameContains": prefix}
    if page_size:
        kwargs["PaginationConfig"] = {"PageSize": page_size}
    newest: dict[str, Package] = {}
    try:
        for page in client.get_paginator("list_model_packages").paginate(**kwargs):
            for summary in page.get("ModelPackageSummaryList", []):
                group = summary.get("ModelPackageGroupName")
                if not group or not group.startswith(prefix):
                    continue
                package = Package(group, summary.get("ModelPackageVersion"), summary.get("CreationTime"))
                if group not in newest or (package.version or 0) > (newest[group].version or 0):
                    newest[group] = package
    except (ClientError, BotoCoreError) as exc:
        return {}, [f"model registry could not be listed ({errors.code(exc)}); registry versions are not shown"]
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
        return tenant, newest, f"tenant {tenant}: bucket {bucket} could not be listed ({errors.code(exc)}); new data is not detected"
    return tenant, newest, None


# -- drift -----------------------------------------------------------------------------------------
@dataclass
class CloudWatchDrift:
    """A drift signal read from a CloudWatch metric that the monitoring writes per tenant and model.

    Default: namespace `<project>/Monitoring`, metric `DriftScore`, dimensions `Tenant` and `Model`; the
    maximum over the last `lookback` counts. All keys are fetched with `GetMetricData`, 500 queries per
    call (paginated), never one call per model. Point `namespace`/`metric` elsewhere (e.g. a Model
    Monitor metric republished per tenant) without touching the policy.

    Each query asks for as few data points as the policy can use: a model whose last training ended
    before the window (`trained`) gets the whole window as one period, since every reading in it counts
    and only the highest matters (one point instead of one per `period_seconds`); a model trained inside
    the window, or whose training is unknown, keeps hourly periods, because only readings after its
    training may count and the reading's time must say which.
    """

    client: Any
    namespace: str
    metric: str = "DriftScore"
    lookback: timedelta = timedelta(days=1)
    period_seconds: int = 3600
    problems: list[str] = field(default_factory=list)

    def read(self, keys: Sequence[TenantModel], now: datetime,
             trained: Mapping[TenantModel, datetime] | None = None) -> dict[TenantModel, DriftReading]:
        """The highest value of the last `lookback` per tenant x model that has data points."""
        readings: dict[TenantModel, DriftReading] = {}
        trained = trained or {}
        source = f"CloudWatch {self.namespace}/{self.metric}"
        start = now - self.lookback
        # CloudWatch periods are multiples of 60 s; a training before `settled` cannot share a period with a reading.
        window = max(60, math.ceil(self.lookback.total_seconds() / 60) * 60)
        settled = start - timedelta(seconds=self.period_seconds)
        whole = f"{source}, highest of the {self.lookback.total_seconds() / 3600:g} h from then"
        for first in range(0, len(keys), METRIC_QUERIES_PER_CALL):
            batch = list(keys[first:first + METRIC_QUERIES_PER_CALL])
            coarse = [key in trained and trained[key] < settled for key in batch]
            queries = [{
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {"Namespace": self.namespace, "MetricName": self.metric,
                               "Dimensions": [{"Name": "Tenant", "Value": tenant}, {"Name": "Model", "Value": model}]},
                    "Period": window if coarse[i] else self.period_seconds,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            } for i, (tenant, model) in enumerate(batch)]
            try:
                pages = self.client.get_paginator("get_metric_data").paginate(
                    MetricDataQueries=queries, StartTime=start, EndTime=now, ScanBy="TimestampDescending")
                for page in pages:
                    for result in page.get("MetricDataResults", []):
                        i = int(result["Id"][1:])
                        self._keep(readings, batch[i], result, whole if coarse[i] else source, trained.get(batch[i]))
            except (ClientError, BotoCoreError) as exc:
                self.problems.append(f"{source} could not be read ({errors.code(exc)}); the drift check is skipped")
                return readings
        return readings

    @staticmethod
    def _keep(readings: dict[TenantModel, DriftReading], key: TenantModel, result: Mapping[str, Any], source: str,
              trained: datetime | None) -> None:
        for when, value in zip(result.get("Timestamps", []), result.get("Values", [])):
            if trained is not None and when <= trained:
                continue  # measured on the model before the last training: never counts, and must not hide a later one
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
    table = names.ledger_table()
    executions: list[Execution] = []
    uploads: dict[TenantModel, datetime] = {}
    problems: list[str] = []
    fallback = None
    if options.ledger == "state":
        executions, uploads, seen, problems = scan_state(clients.dynamodb, table, options.page_size)
        if not seen and not problems:
            fallback = (f"ledger {table} has no retraining state items (written before they existed?): "
                        "the whole execution history was read instead")
    if options.ledger == "history" or fallback:
        executions, uploads, problems = scan_ledger(clients.dynamodb, table, options.page_size)
        problems = [fallback] + problems if fallback else problems
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
        inventory.drift = dict(drift.read(list(drift_keys), now, last_trained(executions)))
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
