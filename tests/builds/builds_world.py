"""The build use cases over the in-memory ports: a registry, the fakes, and a `World` that builds services on them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fakes import FakeBuildStore, FakeNotifier, FakePipelines, FakeQueues, SteppingClock

from mlops.builds import BuildService, DispatchSettings
from mlops.config.tenants import Registry, load_registry
from mlops.requests import BuildRequest, execution_description, parse_status_event, status_event

#: tier -> (limit, priority)
TIERS = {"gold": (3, 10), "silver": (2, 5), "bronze": (1, 1)}
TENANTS = {"acme": "gold", "initech": "gold", "globex": "silver", "umbrella": "bronze"}


def write_registry(root: Path, tenants: dict[str, str], overrides: dict[str, dict[str, Any]] | None = None) -> Registry:
    """platform.yaml with three tiers (limits 3/2/1) and one file per tenant (id -> tier); the loaded registry."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "platform.yaml").write_text(yaml.safe_dump({
        "project": "fast", "region": "us-east-1", "models": ["churn", "house-prices"],
        "tiers": {name: {"instance_type": "ml.m5.large", "max_concurrent_builds": limit, "priority": prio}
                  for name, (limit, prio) in TIERS.items()}}))
    (root / "tenants").mkdir(exist_ok=True)
    for tenant, tier in tenants.items():
        data: dict[str, Any] = {"id": tenant, "display_name": tenant.title(), "tier": tier, "models": ["churn", "house-prices"]}
        data |= (overrides or {}).get(tenant, {})
        (root / "tenants" / f"{tenant}.yaml").write_text(yaml.safe_dump(data))
    return load_registry(root / "platform.yaml", root / "tenants")


def request(tenant: str, n: int = 0, model: str = "churn", **extra: Any) -> BuildRequest:
    """A CI build request, distinct per `n`."""
    return BuildRequest(source="ci", tenant=tenant, model=model, version=f"1.0.{n}", git_commit=f"{n:07x}abc",
                        reason=f"commit {n}", requested_at=f"2026-01-01T00:00:{n % 60:02d}+00:00", **extra)


def event(execution_id: str, status: str, at: str = "2026-01-01T01:00:00+00:00", version: str | None = "1.4.0") -> Any:
    """A SageMaker status-change event for an execution of ours (its description names the version)."""
    tenant = execution_id.split("-")[0]
    ended = at if status not in ("Executing", "Stopping") else None
    description = execution_description("ci", tenant, "churn", version) if version else None
    return parse_status_event(json.dumps(status_event(execution_id, status, FakePipelines.arn(execution_id), at=at,
                                                      started_at="2026-01-01T00:30:00+00:00", ended_at=ended,
                                                      description=description)))


@dataclass
class World:
    """A registry, one store, one set of queues, one pipeline, one notifier and one clock that services share."""

    registry: Registry
    store: Any = field(default_factory=FakeBuildStore)
    queues: Any = field(default_factory=FakeQueues)
    pipelines: FakePipelines = field(default_factory=FakePipelines)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    clock: SteppingClock = field(default_factory=SteppingClock)

    def service(self, *, direct_start: bool = True, handover: bool = True, lease_seconds: int = 60,
                tier_lease_ms: int = 20_000, **kwargs: Any) -> BuildService:
        """A service over the world (as each Lambda container builds its own)."""
        kwargs.setdefault("notifier", self.notifier)
        return BuildService(registry=self.registry, store=self.store, queues=self.queues, start=self.pipelines,
                            find=self.pipelines.find, status_of=self.pipelines.status,
                            settings=DispatchSettings(lease_seconds=lease_seconds, tier_lease_ms=tier_lease_ms, handover=handover,
                                                      **kwargs.pop("settings", {})),
                            clock=self.clock, direct_start=direct_start, **kwargs)

    def status(self, execution_id: str) -> str | None:
        """An execution's status in the store."""
        return (self.store.execution(execution_id) or {}).get("status")

    def tier(self, tier: str) -> Any:
        """A tier's counts, tenants and slots."""
        return self.store.tier_state(tier, TIERS[tier][0])


def upload_body(registry: Registry, tenant: str, key: str, etag: str = "abc123", bucket: str | None = None) -> str:
    """The body of an uploads-queue message: an EventBridge `Object Created` event of a tenant's bucket, as S3 sends it."""
    names = registry.names()
    return json.dumps({
        "version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3", "account": names.account_id,
        "time": "2026-01-01T00:00:00Z", "region": names.region, "resources": [],
        "detail": {"bucket": {"name": bucket or names.tenant_bucket(tenant)},
                   "object": {"key": key, "size": 10, "etag": etag, "sequencer": "0001"}}})
