"""Which changes of a plan destroy data (mlops.retention), on hand-written plan JSON: no Terraform, no AWS."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.errors import MlopsError
from mlops.retention import ALLOW_FLAG, DATA_RESOURCES, data_losses, refuse_data_loss


def change(address: str, kind: str, actions: list[str], before: dict[str, Any] | None = None, mode: str = "managed") -> dict[str, Any]:
    """One entry of a plan's `resource_changes`."""
    return {"address": address, "mode": mode, "type": kind, "change": {"actions": actions, "before": before, "after": None}}


BUCKET = 'module.tenant["acme"].aws_s3_bucket.tenant'


@pytest.mark.parametrize(("entry", "expected"), [
    pytest.param(change(BUCKET, "aws_s3_bucket", ["delete"], {"bucket": "b-acme", "force_destroy": True}),
                 ("tenant acme", "S3 bucket", "b-acme", "delete", "its objects"), id="bucket-deleted-with-its-objects"),
    pytest.param(change(BUCKET, "aws_s3_bucket", ["delete", "create"], {"bucket": "b-acme", "force_destroy": False}),
                 ("tenant acme", "S3 bucket", "b-acme", "replace", ""), id="bucket-replaced"),
    pytest.param(change(BUCKET, "aws_s3_bucket", ["create", "delete"], {"bucket": "b-acme"}),
                 ("tenant acme", "S3 bucket", "b-acme", "replace", ""), id="bucket-replaced-create-first"),
    pytest.param(change('module.tenant["acme"].aws_kms_key.tenant', "aws_kms_key", ["delete"], {"key_id": "k-1"}),
                 ("tenant acme", "KMS key", "k-1", "delete", ""), id="tenant-key"),
    pytest.param(change('module.tenant["acme"].aws_sagemaker_model_package_group.model["churn"]', "aws_sagemaker_model_package_group",
                        ["delete"], {"model_package_group_name": "p-acme-churn"}),
                 ("tenant acme", "model package group", "p-acme-churn", "delete", ""), id="model-package-group"),
    pytest.param(change("module.platform.aws_dynamodb_table.ledger", "aws_dynamodb_table", ["delete"], {"name": "p-ledger"}),
                 ("platform", "DynamoDB table", "p-ledger", "delete", ""), id="ledger"),
    pytest.param(change('module.platform.aws_ecr_repository.model["churn"]', "aws_ecr_repository", ["delete"],
                        {"name": "p/churn", "force_delete": True}),
                 ("platform", "ECR repository", "p/churn", "delete", "its images"), id="repository-with-its-images"),
])
def test_a_deleted_or_replaced_data_resource_is_a_loss(entry: dict[str, Any], expected: tuple[str, ...]) -> None:
    losses = data_losses({"resource_changes": [entry]})
    assert [(x.component, x.kind, x.name, x.action, x.contents) for x in losses] == [expected]
    assert losses[0].address == entry["address"]


@pytest.mark.parametrize("entry", [
    pytest.param(change(BUCKET, "aws_s3_bucket", ["create"]), id="created"),
    pytest.param(change(BUCKET, "aws_s3_bucket", ["update"], {"bucket": "b"}), id="updated-in-place"),
    pytest.param(change(BUCKET, "aws_s3_bucket", ["no-op"], {"bucket": "b"}), id="unchanged"),
    pytest.param(change(BUCKET, "aws_s3_bucket", ["forget"], {"bucket": "b"}), id="forgotten-by-a-removed-block"),
    pytest.param(change('module.tenant["acme"].aws_iam_role.tenant[0]', "aws_iam_role", ["delete"], {"name": "r"}), id="role"),
    pytest.param(change('module.tenant["acme"].aws_kms_alias.tenant', "aws_kms_alias", ["delete"], {"name": "alias/a"}), id="key-alias"),
    pytest.param(change('module.platform.aws_sqs_queue.queue["gold"]', "aws_sqs_queue", ["delete"], {"name": "q"}), id="queue"),
    pytest.param(change("data.aws_s3_bucket.x", "aws_s3_bucket", ["read"], mode="data"), id="data-source"),
])
def test_other_changes_lose_no_data(entry: dict[str, Any]) -> None:
    assert not data_losses({"resource_changes": [entry]})


def test_the_guarded_types_are_the_data_resources_of_the_terraform_root() -> None:
    assert sorted(DATA_RESOURCES) == ["aws_dynamodb_table", "aws_ecr_repository", "aws_kms_key", "aws_s3_bucket",
                                      "aws_sagemaker_model_package_group"]
    assert not data_losses({}) and not data_losses({"resource_changes": []})


def test_a_plan_that_destroys_data_is_refused_in_one_line_naming_it_and_the_flag() -> None:
    losses = data_losses({"resource_changes": [
        change(BUCKET, "aws_s3_bucket", ["delete"], {"bucket": "b-acme", "force_destroy": True}),
        change('module.tenant["acme"].aws_kms_key.tenant', "aws_kms_key", ["delete"], {"key_id": "k-1"}),
    ]})
    with pytest.raises(MlopsError) as refused:
        refuse_data_loss(losses, allowed=False)
    line = refused.value.one_line()
    assert "\n" not in line
    assert "nothing applied" in line and "2 data resource(s)" in line
    assert "tenant acme: S3 bucket b-acme (delete, with its objects)" in line and "KMS key k-1" in line
    assert f"mlops infra apply {ALLOW_FLAG}" in line
    refuse_data_loss(losses, allowed=True)  # the flag lets it through
    refuse_data_loss([], allowed=False)  # nothing to lose, nothing to refuse


def test_a_long_refusal_names_the_first_losses_and_counts_the_rest() -> None:
    plan = {"resource_changes": [change(f'module.tenant["t{n}"].aws_kms_key.tenant', "aws_kms_key", ["delete"], {"key_id": f"k{n}"})
                                 for n in range(20)]}
    with pytest.raises(MlopsError, match=r"destroys 20 data resource\(s\): .*k5 \(delete\); and 14 more$"):
        refuse_data_loss(data_losses(plan), allowed=False)
