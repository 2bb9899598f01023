"""Helpers of the retraining tests: clocks, ledger executions and items, and a moto scenario (plain functions)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3

from mlops.aws.dynamo import from_attrs
from mlops.aws.ledger import Ledger, state_key
from mlops.aws.scan import Clients
from mlops.naming import Names
from mlops.requests import BuildRequest
from mlops.retrain import Execution

REGION = "us-east-1"
#: The policy tables' clock: fixed, so ages and request keys are exact.
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
#: The moto scenarios' clock: S3 and the registry stamp objects with the real time, so the ledger does too.
SEED_NOW = datetime.now(timezone.utc).replace(microsecond=0)


def ago(days: float) -> datetime:
    """A moment `days` before NOW."""
    return NOW - timedelta(days=days)


def execution(tenant: str = "acme", model: str = "churn", days: float = 3, version: str | None = "1.2.0",
              status: str = "Succeeded", execution_id: str = "ex-1", watermark: datetime | None = None) -> Execution:
    """A ledger execution that started `days` ago and, when finished, took an hour."""
    start = ago(days)
    ended = start + timedelta(hours=1) if status.lower() in {"succeeded", "failed", "stopped"} else None
    return Execution(tenant, model, execution_id, status, start, ended, version, watermark)


def clients_of_moto() -> Clients:
    """boto3 clients of the scan (moto must be on)."""
    return Clients(*(boto3.client(s, region_name=REGION) for s in ("dynamodb", "ecr", "sagemaker", "s3")))


def ledger_item(tenant: str, model: str, execution_id: str, status: str, days: float, version: str | None,
                 source: str = "ci") -> dict:
    """A ledger item as docs/trigger.md describes it, in the low-level client shape."""
    start = SEED_NOW - timedelta(days=days)
    item = {"pk": {"S": f"EXEC#{execution_id}"}, "sk": {"S": "EXEC"}, "execution_id": {"S": execution_id},
            "tenant": {"S": tenant}, "model": {"S": model}, "status": {"S": status}, "source": {"S": source},
            "requested_at": {"S": start.isoformat()}, "started_at": {"S": start.isoformat()}}
    if status in {"SUCCEEDED", "FAILED"}:
        item["ended_at"] = {"S": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
    if version is not None:
        item["version"] = {"S": version}
    return item


def write_state(client, table: str, items: list[dict], uploads: dict[str, list[str]]) -> None:  # type: ignore[no-untyped-def]
    """The state items the trigger and the status path write for these executions and uploads, through the
    ledger's own writers: the successes, the active builds, an upload now per tenant x model listed, and a
    broken state item (no tenant)."""
    ledger = Ledger(client, table)
    for item in map(from_attrs, items):
        if item.get("status") == "SUCCEEDED":
            ledger.record_trained(item)
        elif item.get("tenant"):
            ledger.write(ledger.state_request_item(BuildRequest(source="ci", tenant=item["tenant"], model=item["model"],
                                                                dedup_id=item["execution_id"])))
    for tenant, models in uploads.items():
        for model in models:
            ledger.record_upload(BuildRequest(source="upload", tenant=tenant, model=model, requested_at=SEED_NOW.isoformat(),
                                              data_uri=f"s3://bucket/data/{model}/new.csv"))
    client.put_item(TableName=table, Item={**state_key("junk", "x"), "active": {"SS": ["junk-x-1"]}})


def seed(names: Names) -> Clients:
    """acme x churn fresh, acme x house-prices stale, globex x churn running, old-co left over, odd ECR tags."""
    clients = clients_of_moto()
    table = names.ledger_table()
    clients.dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])
    items = [
        ledger_item("acme", "churn", "acme-churn-1", "SUCCEEDED", 2, "1.1.0"),
        ledger_item("acme", "house-prices", "acme-hp-1", "SUCCEEDED", 45, "1.0.0"),
        ledger_item("globex", "churn", "globex-churn-1", "SUCCEEDED", 30, None),
        ledger_item("globex", "churn", "globex-churn-2", "EXECUTING", 0.1, "1.1.0", source="upload"),
        ledger_item("old-co", "churn", "old-co-churn-1", "SUCCEEDED", 200, "0.9.0"),
        {"pk": {"S": "EXEC#junk"}, "sk": {"S": "EXEC"}, "status": {"S": "QUEUED"}},
    ]
    for item in items:
        clients.dynamodb.put_item(TableName=table, Item=item)
    write_state(clients.dynamodb, table, items, {"acme": ["churn", "house-prices"], "globex": ["churn"]})
    config = {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "application/vnd.docker.container.image.v1+json"}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": config, "layers": []})
    for model, tags in {"churn": ["1.0.0", "1.1.0", "latest", "1.2.0-mr.3.1"], "house-prices": ["1.0.0"]}.items():
        clients.ecr.create_repository(repositoryName=names.ecr_repository(model))
        for tag in tags:
            clients.ecr.put_image(repositoryName=names.ecr_repository(model), imageManifest=manifest, imageTag=tag)
    uploads = {"acme": ["data/churn/a.csv", "data/house-prices/b.csv", "data/readme.txt"], "globex": ["data/churn/c.csv"]}
    for tenant, keys in uploads.items():
        clients.s3.create_bucket(Bucket=names.tenant_bucket(tenant))
        for key in keys:
            clients.s3.put_object(Bucket=names.tenant_bucket(tenant), Key=key, Body=b"x")
    for tenant, model in [("acme", "churn"), ("old-co", "churn")]:
        group = names.model_package_group(tenant, model)
        clients.sagemaker.create_model_package_group(ModelPackageGroupName=group)
        for _ in range(2):
            clients.sagemaker.create_model_package(
                ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                InferenceSpecification={"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"],
                                        "SupportedResponseMIMETypes": ["text/csv"]})
    return clients
