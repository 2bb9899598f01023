"""Fixtures for Terraform tests: a Terraform binary, a fresh moto server per module, generated tenants.

Terraform installs `hashicorp/aws` from the mirror named by MLOPS_TF_PLUGIN_DIR when it is set (the
Makefile finds it); otherwise it downloads the provider as usual. Without a `terraform` binary these
tests are skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

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


@pytest.fixture(scope="module")
def terraform_bin() -> str:
    """The terraform binary, or skip."""
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not installed")
    return path


@pytest.fixture(scope="module")
def fresh_moto() -> Iterator[str]:
    """A moto server of this test module only (Terraform state and moto state start empty together)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request is noise here
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
