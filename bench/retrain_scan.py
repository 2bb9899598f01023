"""Bench: the retraining check over 10,000 tenant x models (1,000 tenants x 10 models) on in-process moto.

Prints the AWS calls the scan makes, per service and operation (counted with a botocore event hook),
against the goal of at most ceil(N/100) plus a small constant per service, and the wall time of the scan
and of the policy, for the default (the ledger's per tenant x model state items, uploads as the trigger
recorded them), for the opt-in `--data-from s3` (one bucket listing per tenant) and for `--ledger history`
(the whole execution history, as before state items existed). Seeding goes straight into moto's backends
where the API would take minutes (tens of thousands of objects); it is not timed. The data set carries the
bad data the check must survive: a model trained without a version, tags that are not semver, tenants
without any trained model, and a deleted tenant with models left.

Per service it prints the calls, the seconds spent in them and moto's share of those. By default moto runs
with `moto_patches.reads_linear` (mlops/local/moto_patches.py), the DynamoDB read fix the local AWS runs
with; `--stock-moto` measures without it.

    .venv/bin/python bench/retrain_scan.py [--tenants 1000] [--models 10] [--history 1] [--drift-models 1]
                                           [--mode default|s3|history ...] [--stock-moto]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import time
from datetime import datetime, timedelta, timezone

for _key, _value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}.items():
    os.environ.setdefault(_key, _value)

# pylint: disable=wrong-import-position  # fake credentials first, before boto3 and moto exist
import boto3
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.botocore_stubber import BotocoreStubber
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends

from mlops.aws.ledger import state_key
from mlops.aws.scan import CallCounter, Clients, CloudWatchDrift, ScanOptions, gather
from mlops.local import moto_patches
from mlops.naming import Names
from mlops.retrain import TenantInfo, check

REGION = "us-east-1"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
STATUSES = ["SUCCEEDED"] * 90 + ["FAILED"] * 5 + ["EXECUTING"] * 3 + ["QUEUED"] * 2
# One thread: in-process the GIL gains nothing from the bucket-listing pool, and the clocks stay exact.
MODES = {"default": ScanOptions(workers=1), "s3": ScanOptions(data_from="s3", workers=1),
         "history": ScanOptions(ledger="history", workers=1)}


def _client(service: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name=REGION)


# pylint: disable-next=too-many-locals  # one pass seeds every source, so they stay consistent with each other
def seed(names: Names, tenants: list[TenantInfo], models: list[str], history: int, drift_models: int) -> None:
    """Ledger, ECR, model registry, tenant buckets and drift metrics for every tenant x model."""
    rng = random.Random(7)
    ddb = _client("dynamodb")
    ddb.create_table(TableName=names.ledger_table(), BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
    table = boto3.resource("dynamodb", region_name=REGION).Table(names.ledger_table())
    s3 = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
    # a deleted tenant whose builds, package group and bucket are still there
    owners = [*((t.id, t.models) for t in tenants), ("gone-co", tuple(models[:2]))]
    with table.batch_writer() as batch:
        for n, (tenant, tenant_models) in enumerate(owners):
            s3.create_bucket(names.tenant_bucket(tenant), REGION)
            if n % 97 == 5:
                continue  # a tenant in the registry without any trained model (and without data)
            for model in tenant_models:
                succeeded = False
                last: dict[bool, dict] = {}  # the newest successful execution, and the newest other one
                for h in range(history):
                    days = rng.uniform(0, 60) + 30 * (history - 1 - h)
                    status = "SUCCEEDED" if h < history - 1 else rng.choice(STATUSES)
                    start = NOW - timedelta(days=days)
                    item = {"pk": f"EXEC#{tenant}-{model}-{h}", "sk": "EXEC", "execution_id": f"{tenant}-{model}-{h}",
                            "tenant": tenant, "model": model, "status": status, "source": rng.choice(["ci", "upload", "retrain"]),
                            "requested_at": start.isoformat(), "started_at": start.isoformat(),
                            "version": f"1.{rng.randint(0, 3)}.0" if (n, h) != (3, 0) else "",  # one without a version
                            "tier": "gold", "image_uri": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{names.ecr_repository(model)}:1.0.0",
                            "reason": "bench", "history": [{"status": status, "at": start.isoformat(), "source": "bench"}]}
                    if status in {"SUCCEEDED", "FAILED"}:
                        item["ended_at"] = (start + timedelta(hours=1)).isoformat()
                    batch.put_item(Item=item)
                    succeeded = succeeded or status == "SUCCEEDED"
                    last[status == "SUCCEEDED"] = item
                # moto keeps naive UTC; an upload of the last three months, as S3 has it and as the trigger recorded it
                uploaded = NOW - timedelta(days=rng.uniform(0, 90))
                s3.put_object(names.tenant_bucket(tenant), f"data/{model}/part-{n}.csv", b"x").last_modified = \
                    uploaded.replace(tzinfo=None)
                batch.put_item(Item=_state_item(tenant, model, last, uploaded))
                group = names.model_package_group(tenant, model)
                backend.create_model_package_group(group, "bench")
                if succeeded:  # a build registers its model version only when it succeeds
                    _package(backend, group)
    _images(names, models)
    cloudwatch = _client("cloudwatch")
    keys = [(t.id, m) for t in tenants for m in t.models[:drift_models]]
    for start in range(0, len(keys), 1000):
        cloudwatch.put_metric_data(Namespace=f"{names.project}/Monitoring", MetricData=[
            {"MetricName": "DriftScore", "Dimensions": [{"Name": "Tenant", "Value": t}, {"Name": "Model", "Value": m}],
             "Timestamp": NOW - timedelta(hours=1), "Value": rng.random()} for t, m in keys[start:start + 1000]])


def _state_item(tenant: str, model: str, last: dict[bool, dict], uploaded: datetime) -> dict:
    """The state item the trigger and the status path keep for a tenant x model (`mlops.aws.ledger`)."""
    key = state_key(tenant, model)
    item = {"pk": key["pk"]["S"], "sk": key["sk"]["S"], "tenant": tenant, "model": model, "uploaded_at": uploaded.isoformat()}
    if True in last:
        trained = last[True]
        item |= {"trained_execution": trained["execution_id"], "trained_ended_at": trained["ended_at"],
                 "trained_started_at": trained["started_at"]}
        if trained["version"]:
            item["trained_version"] = trained["version"]
    other = last.get(False)
    if other and other["status"] in {"EXECUTING", "QUEUED"}:
        item["active"] = {other["execution_id"]}
    return item


def _images(names: Names, models: list[str]) -> None:
    """Release, pre-release and not-semver tags in every model's repository."""
    ecr = _client("ecr")
    config = {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "application/vnd.docker.container.image.v1+json"}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": config, "layers": []})
    for model in models:
        ecr.create_repository(repositoryName=names.ecr_repository(model))
        for tag in ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0-mr.1.1", "latest", "1.5"]:
            ecr.put_image(repositoryName=names.ecr_repository(model), imageManifest=manifest, imageTag=tag)


def _package(backend, group: str) -> None:  # type: ignore[no-untyped-def]
    """One approved version, straight into moto (its CreateModelPackage scans every package: quadratic)."""
    from moto.sagemaker.models import ModelPackage  # pylint: disable=import-outside-toplevel

    package = ModelPackage(
        model_package_name=group, model_package_group_name=group, model_package_version=1, model_package_description=None,
        inference_specification=None, source_algorithm_specification=None, validation_specification=None,
        certify_for_marketplace=False, model_approval_status="Approved", metadata_properties=None, model_metrics=None,
        approval_description=None, customer_metadata_properties=None, drift_check_baselines=None, domain="", task="",
        sample_payload_url="", additional_inference_specifications=[], client_token="",
        region_name=REGION, account_id=DEFAULT_ACCOUNT_ID, model_package_type="Versioned",
    )
    backend.model_packages[package.arn] = package


class MotoClock:
    """Time moto spends emulating AWS (its request handler), per service, to tell it apart from the check's own."""

    seconds: dict[str, float] = {}

    @classmethod
    def install(cls) -> None:
        """Wrap moto's in-process request handler (bench only: the project's code is not touched)."""
        original = BotocoreStubber.__call__

        def timed(self, event_name, *args, **kwargs):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return original(self, event_name, *args, **kwargs)
            finally:
                service = event_name.split(".")[1]  # before-send.<service>.<operation>
                cls.seconds[service] = cls.seconds.get(service, 0.0) + time.perf_counter() - started

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign]


class CallClock:
    """Time spent inside AWS calls per service (request, moto's emulation, response parsing)."""

    def __init__(self, *clients) -> None:  # type: ignore[no-untyped-def]
        self.seconds: dict[str, float] = {}
        self._started = 0.0
        for client in clients:
            client.meta.events.register("before-call.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)

    def _before(self, **_) -> None:  # type: ignore[no-untyped-def]
        self._started = time.perf_counter()

    def _after(self, model, **_) -> None:  # type: ignore[no-untyped-def]
        service = model.service_model.service_name
        self.seconds[service] = self.seconds.get(service, 0.0) + time.perf_counter() - self._started


def run(names: Names, tenants: list[TenantInfo], models: list[str], options: ScanOptions, drift_models: int) -> None:
    """One check, timed and counted."""
    clients = Clients(_client("dynamodb"), _client("ecr"), _client("sagemaker"), _client("s3"))
    cloudwatch = _client("cloudwatch")
    counter = CallCounter().attach(clients.dynamodb, clients.ecr, clients.sagemaker, clients.s3, cloudwatch)
    clock = CallClock(clients.dynamodb, clients.ecr, clients.sagemaker, clients.s3, cloudwatch)
    drift_keys = [(t.id, m) for t in tenants for m in t.models[:drift_models]]
    MotoClock.seconds = {}
    started = time.perf_counter()
    drift = CloudWatchDrift(cloudwatch, f"{names.project}/Monitoring")
    inventory = gather(clients, names, tenants, models, options, drift, drift_keys, NOW)
    scanned = time.perf_counter()
    report = check(tenants, models, inventory, {}, NOW, names)
    decided = time.perf_counter()
    n = sum(len(t.models) for t in tenants)
    print(f"\n== --ledger {options.ledger} --data-from {options.data_from}: N = {n} tenant x models, {len(tenants)} tenants, "
          f"{len(models)} models, {len(inventory.executions)} ledger executions, {len(drift_keys)} drift keys")
    _services(counter, clock, n)
    total, moto = decided - started, sum(MotoClock.seconds.values())
    print(f"total AWS calls {counter.total}; wall time in-process {total:.2f} s (goal < 5 s) = scan {scanned - started:.2f} s "
          f"+ policy {decided - scanned:.2f} s; moto emulating AWS {moto:.2f} s, the check itself "
          f"(botocore + scan + policy) {total - moto:.2f} s")
    summary = report.to_dict()["summary"]
    print(f"decisions {summary}; problems reported: {len(report.problems)} on the report, "
          f"{sum(1 for d in report.decisions if d.problems)} on decisions")
    for problem in report.problems[:3]:
        print(f"  e.g. {problem}")
    orphans = [d for d in report.decisions if d.reasons and d.reasons[0].code == "orphan"]
    print(f"  leftovers of deleted tenants: {len(orphans)}, e.g. {orphans[0].reasons[0].text if orphans else '-'}")


def _services(counter: CallCounter, clock: CallClock, n: int) -> None:
    """Per service: calls against the goal, seconds in its calls and moto's share of them."""
    print(f"{'service':<12}{'calls':>7}{'goal ceil(N/100)+c':>22}{'in calls':>10}{'of it moto':>11}  operations")
    for service, calls in sorted(counter.by_service().items()):
        ops = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(counter.calls.items()) if k.startswith(service + "."))
        verdict = "ok" if calls <= math.ceil(n / 100) + 10 else "OVER"
        print(f"{service:<12}{calls:>7}{math.ceil(n / 100):>18} +c {verdict:<4}{clock.seconds.get(service, 0):>7.2f} s"
              f"{MotoClock.seconds.get(service, 0.0):>9.2f} s  {ops}")


def main() -> None:
    """Seed once, then run the check with each data source."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--models", type=int, default=10, help="platform models; every tenant trains all of them")
    parser.add_argument("--history", type=int, default=1, help="ledger executions per tenant x model")
    parser.add_argument("--drift-models", type=int, default=1, help="models per tenant with a drift threshold")
    parser.add_argument("--mode", action="append", choices=sorted(MODES), help="which check(s) to run (default: all three)")
    parser.add_argument("--stock-moto", action="store_true",
                        help="without moto_patches.reads_linear, the DynamoDB read fix the local AWS runs with")
    args = parser.parse_args()
    names = Names(project="bench")
    models = [f"model-{i}" for i in range(args.models)]
    tenants = [TenantInfo(f"tenant-{i:04d}", tuple(models), True, 14 if i % 10 == 0 else None) for i in range(args.tenants)]
    if not args.stock_moto:
        moto_patches.reads_linear()  # for the bench's life
    print("moto: " + ("stock" if args.stock_moto else "with moto_patches.reads_linear (mlops/local/moto_patches.py), as the local AWS"))
    with mock_aws():
        MotoClock.install()
        started = time.perf_counter()
        seed(names, tenants, models, args.history, args.drift_models)
        print(f"seeded in {time.perf_counter() - started:.1f} s (not part of the figures)")
        # The seeded store plays AWS's storage, which is not in the checking process's heap (nor, locally, in
        # the moto server's other process): collect the seeding's garbage now and keep the store out of the
        # collector's later passes, so the check is not billed for walking millions of seeded objects.
        gc.collect()
        gc.freeze()
        for mode in args.mode or list(MODES):
            run(names, tenants, models, MODES[mode], args.drift_models)


if __name__ == "__main__":
    main()
