"""Fixtures of the train stage: a tiny model repo, tenant resources on moto, and a registered pipeline.

The tests build what they need with boto3 (buckets, model package groups, tenant data), never with
Terraform, so they run whether or not `mlops local up` works on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from mlops.config.contract import load_contract
from mlops.naming import Names

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TINY_MODEL = HERE / "tiny_model"
NAMES = Names("mlops-demo")
TENANTS = ("acme", "globex")
MODELS = ("churn", "house-prices")


@pytest.fixture(scope="session")
def churn_definition() -> str:
    """The definition of the example churn model (built once: the SDK import takes seconds)."""
    from mlops.pipeline.builder import definition_json

    return definition_json(load_contract(ROOT / "examples" / "churn"), pipeline_name=NAMES.pipeline("churn"))


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the tiny model repo; keyword arguments change its mlops.yaml (metric=..., hyperparameters=...)."""

    def make(**changes: Any) -> Path:
        repo = tmp_path / f"tiny-{len(list(tmp_path.glob('tiny-*')))}"
        shutil.copytree(TINY_MODEL, repo)
        contract = yaml.safe_load((repo / "mlops.yaml").read_text(encoding="utf-8"))
        for key, value in changes.items():
            contract[key] = {**contract[key], **value} if isinstance(value, dict) and isinstance(contract.get(key), dict) else value
        (repo / "mlops.yaml").write_text(yaml.safe_dump(contract), encoding="utf-8")
        return repo

    return make


def provision(session: boto3.session.Session, tenants: tuple[str, ...] = TENANTS, models: tuple[str, ...] = MODELS) -> None:
    """What Terraform creates for the train stage: artifacts bucket, tenant buckets, model package groups."""
    s3, sm = session.client("s3"), session.client("sagemaker")
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


@pytest.fixture
def local_aws(aws: None) -> Iterator[LocalAws]:  # pylint: disable=unused-argument  # `aws` starts moto
    """In-process moto, provisioned."""
    session = boto3.session.Session(region_name="us-east-1")
    provision(session)
    yield LocalAws(session, session.client("s3"), session.client("sagemaker"))


@pytest.fixture
def server_env(moto_server: str, registry_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """The environment `mlops` sees after `mlops local up`: a moto server endpoint, the registry, a state dir."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MLOPS_LOCAL_ENGINE", raising=False)
    monkeypatch.delenv("CI_COMMIT_SHA", raising=False)
    session = boto3.session.Session(region_name="us-east-1")
    provision(session)
    return LocalAws(session, session.client("s3"), session.client("sagemaker"))
