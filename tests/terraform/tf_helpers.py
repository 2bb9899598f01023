"""Helpers of the Terraform tests: the known moto drift and generated tenant files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: In-place updates a second plan shows because moto reads some attributes back differently
#: (docs/terraform.md lists them): resource type -> attributes that may differ.
KNOWN_DRIFT = {
    "aws_sqs_queue": {"redrive_policy"},
    "aws_s3_bucket_notification": {"eventbridge"},
    "aws_lambda_function": {"dead_letter_config"},
}


def changed_attributes(change: dict[str, Any]) -> set[str]:
    """Top-level attributes whose planned value differs from the current one."""
    before, after = change["change"].get("before") or {}, change["change"].get("after") or {}
    unknown = change["change"].get("after_unknown") or {}
    return {key for key in set(before) | set(after) if before.get(key) != after.get(key) or unknown.get(key) is True}


def is_known_drift(change: dict[str, Any]) -> bool:
    """True for an in-place update that only touches attributes moto reads back differently."""
    if change["change"]["actions"] != ["update"]:
        return False
    allowed = KNOWN_DRIFT.get(change["type"], set())
    return bool(allowed) and changed_attributes(change) <= allowed


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
