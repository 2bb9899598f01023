"""Shared helpers of the train-stage tests: names, provisioning with boto3, the trigger function, tenant data uploads."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from support.lambda_functions import deploy_function, function_zip, publish_image

from mlops.naming import Names

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TINY_MODEL = HERE / "tiny_model"
NAMES = Names("mlops-demo")
TENANTS = ("acme", "globex")
MODELS = ("churn", "house-prices")


#: The version of the image each model has in ECR (what the trigger starts when no --version is given).
RELEASED = "1.0.0"


def provision(session: boto3.session.Session, tenants: tuple[str, ...] = TENANTS, models: tuple[str, ...] = MODELS) -> None:
    """What Terraform creates for the train stage: artifacts bucket, tenant buckets, model package groups, and a
    released image of each model in ECR."""
    s3, sm = session.client("s3"), session.client("sagemaker")
    for model in models:
        publish_image(session.client("ecr"), NAMES, model, RELEASED)
    for bucket in (NAMES.artifacts_bucket(), *(NAMES.tenant_bucket(t) for t in tenants)):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    existing = {g["ModelPackageGroupName"] for g in sm.list_model_package_groups(MaxResults=100)["ModelPackageGroupSummaryList"]}
    for tenant in tenants:
        for model in models:
            group = NAMES.model_package_group(tenant, model)
            if group not in existing:
                sm.create_model_package_group(ModelPackageGroupName=group)


def deploy_trigger(session: boto3.session.Session, registry_dir: Path) -> str:
    """The trigger function with the environment Terraform gives it (terraform/modules/platform)."""
    environment = {"MLOPS_PROJECT": NAMES.project, "MLOPS_ROOT": "/var/task/registry",
                   "MLOPS_LEDGER_TABLE": NAMES.ledger_table(), "MLOPS_SLOTS_TABLE": NAMES.slots_table(),
                   "MLOPS_ARTIFACTS_BUCKET": NAMES.artifacts_bucket()}
    return deploy_function(session, NAMES, NAMES.lambda_function("trigger"), function_zip(registry_dir), environment)


def upload_tiny_data(s3: Any, tenant: str, model: str = "churn", rows: int = 30) -> None:
    """A small labelled CSV in the tenant's data prefix."""
    body = "x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(rows))
    s3.put_object(Bucket=NAMES.tenant_bucket(tenant), Key=f"{NAMES.data_prefix(model)}data.csv", Body=body.encode())


def upload_example_data(s3: Any, tenant: str, model: str, folder: Path) -> None:
    """The example's synthetic data of one tenant (examples/datagen.py), in the tenant's data prefix."""
    target = folder / f"{tenant}-{model}.csv"
    subprocess.run([sys.executable, str(ROOT / "examples" / "datagen.py"), "--model", model, "--tenant", tenant, "--out", str(target)],
                   check=True, capture_output=True)
    s3.upload_file(str(target), NAMES.tenant_bucket(tenant), f"{NAMES.data_prefix(model)}data.csv")


@dataclass
class LocalAws:
    """In-process moto with the train stage's resources."""

    session: boto3.session.Session
    s3: Any
    sm: Any
