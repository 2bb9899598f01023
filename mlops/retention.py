"""Data is kept unless the user says otherwise: which changes of a Terraform plan destroy data.

A plan destroys data when it deletes or replaces a resource that holds some: an S3 bucket (with its
objects when `force_destroy` is on), a KMS key (whatever it encrypted becomes unreadable once the deletion
window ends), a SageMaker model package group (the registered model versions), a DynamoDB table (the
ledger, the tier slots) or an ECR repository (the images, with `force_delete`). Everything else the
Terraform root creates is rebuilt from the configuration alone (roles, policies, rules, functions), or
holds messages and logs that expire by themselves (queues, log groups), and is not counted.

`data_losses` reads the plan as `terraform show -json` prints it; `refuse_data_loss` is the decision
`mlops infra apply` takes before applying that very plan. Pure: no Terraform run, no AWS call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlops.errors import MlopsError
from mlops.plans import component

#: The flag of `mlops infra apply` that lets a plan destroy data.
ALLOW_FLAG = "--allow-destroy-data"

#: Resource type -> (what it is in the user's words, the attribute holding its name, the attribute that makes
#: Terraform empty it first, or "").
DATA_RESOURCES: dict[str, tuple[str, str, str]] = {
    "aws_s3_bucket": ("S3 bucket", "bucket", "force_destroy"),
    "aws_kms_key": ("KMS key", "key_id", ""),
    "aws_sagemaker_model_package_group": ("model package group", "model_package_group_name", ""),
    "aws_dynamodb_table": ("DynamoDB table", "name", ""),
    "aws_ecr_repository": ("ECR repository", "name", "force_delete"),
}
#: What goes with a resource that Terraform empties before deleting it.
_CONTENTS = {"aws_s3_bucket": "its objects", "aws_ecr_repository": "its images"}
#: Losses named in the one-line refusal; `mlops infra plan` lists them all.
_NAMED = 6


@dataclass(frozen=True)
class DataLoss:
    """One data resource a plan deletes or replaces."""

    address: str
    component: str  # `platform`, `tenant <id>`, as mlops.plans.component says
    kind: str  # `S3 bucket`, `KMS key`, ...
    name: str
    action: str  # `delete` or `replace`
    contents: str  # `its objects` when they go with it, else ""

    def describe(self) -> str:
        """`tenant acme: S3 bucket mlops-tenant-acme-1 (replace, with its objects)`."""
        details = ", ".join(part for part in (self.action, f"with {self.contents}" if self.contents else "") if part)
        return f"{self.component}: {self.kind} {self.name} ({details})"

    def as_dict(self) -> dict[str, str]:
        """Plain data for --json."""
        return asdict(self)


def data_losses(plan: dict[str, Any]) -> list[DataLoss]:
    """Every data resource the plan deletes or replaces, in the plan's order."""
    losses = []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if "delete" not in actions or change.get("mode", "managed") != "managed" or change["type"] not in DATA_RESOURCES:
            continue
        kind, name_attribute, empties_attribute = DATA_RESOURCES[change["type"]]
        before = change["change"].get("before") or {}
        emptied = bool(empties_attribute and before.get(empties_attribute))
        losses.append(DataLoss(
            address=change["address"],
            component=component(change["address"]),
            kind=kind,
            name=str(before.get(name_attribute) or change["address"]),
            action="replace" if "create" in actions else "delete",
            contents=_CONTENTS.get(change["type"], "") if emptied else "",
        ))
    return losses


def refuse_data_loss(losses: list[DataLoss], allowed: bool) -> None:
    """Raise unless the plan destroys no data or the user allowed it: one line naming what would go."""
    if not losses or allowed:
        return
    named = "; ".join(loss.describe() for loss in losses[:_NAMED])
    more = f"; and {len(losses) - _NAMED} more" if len(losses) > _NAMED else ""
    raise MlopsError(
        f"apply refused, nothing applied: the plan destroys {len(losses)} data resource(s): {named}{more}",
        f"`mlops infra plan` lists them; to destroy them, run `mlops infra apply {ALLOW_FLAG}`",
    )
