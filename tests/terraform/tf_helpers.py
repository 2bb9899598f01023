"""Helpers of the Terraform tests: the known moto drift (from mlops.plans) and generated tenant files."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlops.plans import KNOWN_MOTO_DRIFT as KNOWN_DRIFT
from mlops.plans import changed_attributes, is_known_drift

__all__ = ["KNOWN_DRIFT", "changed_attributes", "is_known_drift", "write_tenants"]


def write_tenants(folder: Path, count: int, start: int = 1) -> list[str]:
    """Write `count` tenant files (alternating tiers and model sets); return their ids."""
    folder.mkdir(parents=True, exist_ok=True)
    tiers = ["bronze", "silver", "gold"]
    ids = []
    for number in range(start, start + count):
        tenant_id = f"tenant-{number:02d}"
        models = ["churn"] if number % 2 else ["churn", "house-prices"]
        doc = {
            "id": tenant_id,
            "display_name": f"Generated tenant {number}",
            "tier": tiers[number % len(tiers)],
            "models": models,
            "tags": {"cost-center": f"cc-{9000 + number}", "customer": tenant_id},
        }
        (folder / f"{tenant_id}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        ids.append(tenant_id)
    return ids
