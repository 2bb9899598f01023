"""Reading a Terraform plan (`terraform show -json`): what changes, who owns it, and moto's known drift.

Pure: a plan is a dict; nothing here runs Terraform or calls AWS. `mlops.terraform` runs Terraform,
`mlops.retention` decides which changes destroy data, and `mlops infra` / `mlops local plan` print the summary.
"""

from __future__ import annotations

import re
from typing import Any


def resource_changes(plan: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(address, actions) of every resource the plan would change, no-ops left out."""
    return [
        (change["address"], tuple(change["change"]["actions"]))
        for change in plan.get("resource_changes", [])
        if tuple(change["change"]["actions"]) not in (("no-op",), ("read",))
    ]


#: In-place updates a second plan against moto shows because moto reads some attributes back differently
#: (docs/terraform.md lists them): resource type -> attributes that may differ.
KNOWN_MOTO_DRIFT = {
    "aws_sqs_queue": frozenset({"redrive_policy"}),
    "aws_s3_bucket_notification": frozenset({"eventbridge"}),
    "aws_lambda_function": frozenset({"dead_letter_config"}),
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
    allowed = KNOWN_MOTO_DRIFT.get(change["type"], frozenset())
    return bool(allowed) and changed_attributes(change) <= allowed


_TENANT_MODULE = re.compile(r'^module\.tenant\["([^"]+)"\]')


def component(address: str) -> str:
    """Who a resource belongs to, in the user's words: `platform`, `tenant <id>`, `ci` or `root`."""
    tenant = _TENANT_MODULE.match(address)
    if tenant:
        return f"tenant {tenant.group(1)}"
    if address.startswith("module."):
        return address.split(".", 2)[1].split("[", 1)[0]
    return "root"


def _action(actions: tuple[str, ...]) -> str:
    return "replace" if set(actions) == {"delete", "create"} else "/".join(actions)


def summarise(plan: dict[str, Any], local: bool) -> dict[str, Any]:
    """A plan in a few numbers: changes by component and action, totals, and (on moto) the known drift apart."""
    by_component: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    drift: list[str] = []
    changes: list[dict[str, Any]] = []
    for change in plan.get("resource_changes", []):
        actions = tuple(change["change"]["actions"])
        if actions in (("no-op",), ("read",)):
            continue
        if local and is_known_drift(change):
            drift.append(change["address"])
            continue
        action, owner = _action(actions), component(change["address"])
        by_component.setdefault(owner, {})
        by_component[owner][action] = by_component[owner].get(action, 0) + 1
        totals[action] = totals.get(action, 0) + 1
        changes.append({"address": change["address"], "component": owner, "action": action})
    return {"by_component": dict(sorted(by_component.items())), "totals": totals, "known_drift": drift, "changes": changes}
