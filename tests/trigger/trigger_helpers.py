"""Helpers of the trigger tests: a registry writer, the Stack of resources on moto, request builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from support.trigger_stack import MotoPipelineStarter

from mlops.aws.build_store import DynamoBuildStore
from mlops.aws.queues import Queues
from mlops.builds import BuildService, DispatchSettings
from mlops.config.tenants import Registry
from mlops.naming import Names
from mlops.requests import BuildRequest

TIERS = {"gold": (3, 10), "silver": (2, 5), "bronze": (1, 1)}


def write_registry(root: Path, tenants: dict[str, str], overrides: dict[str, dict] | None = None) -> Path:
    """platform.yaml with three tiers (limits 3/2/1) and one file per tenant (id -> tier)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(yaml.safe_dump({
        "project": "trig", "region": "us-east-1", "models": ["churn", "house-prices"],
        "tiers": {name: {"instance_type": "ml.m5.large", "max_concurrent_builds": limit, "priority": prio}
                  for name, (limit, prio) in TIERS.items()}}))
    (root / "tenants").mkdir(exist_ok=True)
    for tenant, tier in tenants.items():
        data = {"id": tenant, "display_name": tenant.title(), "tier": tier, "models": ["churn", "house-prices"],
                "tags": {"customer": tenant}}
        if overrides and tenant in overrides:
            data["overrides"] = overrides[tenant]
        (root / "tenants" / f"{tenant}.yaml").write_text(yaml.safe_dump(data))
    return root


@dataclass
class Stack:
    """The trigger's resources on moto and the clients to reach them."""

    registry: Registry
    names: Names
    dynamodb: Any
    sqs: Any
    sagemaker: Any
    starter: MotoPipelineStarter
    urls: dict[str, str]
    services: list[BuildService] = field(default_factory=list)

    def service(self, lease_seconds: int = 60, direct_start: bool = True,
                account_quota: int | None = None, tier_lease_ms: int = 20_000, handover: bool = True,
                **kwargs: Any) -> BuildService:
        """A service with its own clients (as each Lambda container has)."""
        import boto3

        names = self.names
        store = DynamoBuildStore.of(boto3.client("dynamodb"), names.ledger_table(), names.slots_table(), account_quota)
        service = BuildService(
            registry=self.registry, store=store, queues=Queues(boto3.client("sqs")), start=self.starter,
            find=getattr(self.starter, "find", None),
            settings=DispatchSettings(lease_seconds=lease_seconds, tier_lease_ms=tier_lease_ms, handover=handover),
            direct_start=direct_start, **kwargs)
        self.services.append(service)
        return service

    def queue_depth(self, queue: str) -> int:
        """Visible + in-flight messages of a queue."""
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.urls[queue], AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def dlq_messages(self, queue: str) -> list[dict[str, Any]]:
        """Everything in a queue's DLQ, with message attributes."""
        url = self.urls[Names.dead_letter_queue(queue)]
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                             VisibilityTimeout=300).get("Messages", [])
            if not batch:
                return found
            found.extend(batch)


def request(tenant: str, n: int = 0, model: str = "churn", **extra: Any) -> BuildRequest:
    """A CI build request, distinct per `n`."""
    return BuildRequest(source="ci", tenant=tenant, model=model, version=f"1.0.{n}", git_commit=f"{n:07x}abc",
                        reason=f"commit {n}", **extra)


LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambda"


def upload_event(names: Names, tenant: str, model: str, key: str | None = None, etag: str = "abc123") -> dict[str, Any]:
    """An EventBridge `Object Created` event for a tenant bucket, as S3 sends it."""
    key = key if key is not None else f"data/{model}/upload.csv"
    return {"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3", "account": names.account_id,
            "time": "2026-01-01T00:00:00Z", "region": names.region, "resources": [],
            "detail": {"version": "0", "bucket": {"name": names.tenant_bucket(tenant)},
                       "object": {"key": key, "size": 10, "etag": etag, "sequencer": "0001"},
                       "request-id": "r", "requester": "123456789012", "reason": "PutObject"}}
