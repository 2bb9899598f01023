"""Training cost per tenant, model and month, from ledger items and a price table.

Cost of one execution = instance price per hour × instance count × duration. The duration is the ledger's
`duration_seconds` (SageMaker's start to end); a running execution counts up to `now`. Prices are
on-demand list prices per hour for a region, built in for the instance types the tiers use, and can be
overridden (a YAML/JSON mapping of instance type to price, e.g. negotiated or another region). An
instance type without a price is reported, never guessed.

Pure: plain ledger items in, plain rows out; no boto3.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

#: SageMaker training on-demand prices, USD per instance-hour, us-east-1 (list prices; override as needed).
DEFAULT_PRICES: dict[str, float] = {
    "ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.m5.2xlarge": 0.461, "ml.m5.4xlarge": 0.922,
    "ml.c5.xlarge": 0.204, "ml.c5.2xlarge": 0.408, "ml.g4dn.xlarge": 0.736, "ml.g5.xlarge": 1.408,
    "ml.p3.2xlarge": 3.825, "ml.t3.medium": 0.05,
}


@dataclass
class CostRow:
    """Cost of one tenant's model in one month."""

    tenant: str
    model: str
    month: str
    executions: int = 0
    hours: float = 0.0
    cost: float = 0.0
    instance_types: set[str] = field(default_factory=set)


@dataclass
class CostReport:
    """Rows, totals per tenant, and what could not be priced."""

    rows: list[CostRow]
    per_tenant: dict[str, float]
    unpriced: dict[str, int]
    currency: str = "USD"

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"currency": self.currency,
                "rows": [{"tenant": r.tenant, "model": r.model, "month": r.month, "executions": r.executions,
                          "instance_hours": round(r.hours, 4), "cost": round(r.cost, 4),
                          "instance_types": sorted(r.instance_types)} for r in self.rows],
                "per_tenant": {t: round(c, 4) for t, c in sorted(self.per_tenant.items())},
                "unpriced_instance_types": dict(sorted(self.unpriced.items()))}


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def duration_hours(item: dict[str, Any], now: datetime | None = None) -> float:
    """Instance-time of one execution in hours (0 when it never started)."""
    if item.get("duration_seconds") is not None:
        return max(0.0, float(item["duration_seconds"])) / 3600
    started = item.get("started_at")
    if not started:
        return 0.0
    end = _parse(item["ended_at"]) if item.get("ended_at") else (now or datetime.now(timezone.utc))
    return max(0.0, (end - _parse(started)).total_seconds()) / 3600


def cost_report(items: list[dict[str, Any]], prices: dict[str, float] | None = None, month: str | None = None,
                now: datetime | None = None) -> CostReport:
    """Aggregate ledger items per tenant, model and month (of `started_at`, else `requested_at`)."""
    table = {**DEFAULT_PRICES, **(prices or {})}
    rows: dict[tuple[str, str, str], CostRow] = {}
    unpriced: dict[str, int] = defaultdict(int)
    for item in items:
        when = item.get("started_at") or item.get("requested_at") or ""
        item_month = when[:7]
        if month and item_month != month:
            continue
        hours = duration_hours(item, now) * int(item.get("instance_count") or 1)
        key = (item.get("tenant", "?"), item.get("model", "?"), item_month)
        row = rows.setdefault(key, CostRow(*key))
        row.executions += 1
        row.hours += hours
        instance = item.get("instance_type") or "unknown"
        row.instance_types.add(instance)
        if instance in table:
            row.cost += hours * table[instance]
        elif hours > 0:
            unpriced[instance] += 1
    per_tenant: dict[str, float] = defaultdict(float)
    for row in rows.values():
        per_tenant[row.tenant] += row.cost
    return CostReport(rows=sorted(rows.values(), key=lambda r: (r.month, r.tenant, r.model)),
                      per_tenant=dict(per_tenant), unpriced=dict(unpriced))
