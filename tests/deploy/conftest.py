"""Fixtures for the deploy stage: tiny trained models registered as model packages in moto.

Each model version is a scikit-learn `DummyRegressor` fitted to predict a constant, so a prediction says
which version answered. Packages are registered the way the training pipeline registers them: a
`model.tar.gz` and the inference source in the tenant's bucket, `model_version` and `metric.<name>`
metadata, and the evaluation report referenced from ModelMetrics.
"""

from __future__ import annotations

import io
import json
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.archives import tar_gz_of

from mlops.config.tenants import load_registry

ROOT = Path(__file__).resolve().parents[2]

ACCOUNT = "123456789012"
IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/mlops-demo/churn:1.0.0"

INFERENCE = textwrap.dedent('''
    """A two-column model behind the SageMaker serving contract."""
    import json
    from pathlib import Path

    import joblib


    def model_fn(model_dir):
        return joblib.load(Path(model_dir) / "model.joblib")


    def input_fn(body, content_type):
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if content_type != "text/csv":
            raise ValueError(f"unsupported content type '{content_type}'; send text/csv")
        rows = []
        for i, line in enumerate(text.strip().splitlines(), start=1):
            cells = line.split(",")
            if len(cells) != 2:
                raise ValueError(f"row {i}: expected 2 columns, got {len(cells)}")
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                raise ValueError(f"row {i}: expected numbers, got {line!r}") from None
        return rows


    def predict_fn(data, model):
        return [float(p) for p in model.predict(data)]


    def output_fn(prediction, accept):
        return json.dumps({"predictions": prediction})
''')


def model_bytes(constant: float) -> bytes:
    """A fitted model predicting `constant`, serialised with joblib."""
    import joblib
    from sklearn.dummy import DummyRegressor

    model = DummyRegressor(strategy="constant", constant=constant).fit([[0.0, 0.0], [1.0, 1.0]], [constant, constant])
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


@dataclass
class Packages:
    """Registers model versions for one tenant and model in moto."""

    sm: Any
    s3: Any
    registry: Any
    registered: list[str] = field(default_factory=list)

    def group(self, tenant: str, model: str) -> str:
        """The tenant's model package group."""
        return self.registry.names(ACCOUNT).model_package_group(tenant, model)

    def bucket(self, tenant: str) -> str:
        """The tenant's bucket, created on first use."""
        name = self.registry.names(ACCOUNT).tenant_bucket(tenant)
        try:
            self.s3.create_bucket(Bucket=name)
        except self.s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    def register(self, tenant: str, model: str, version: str, metrics: dict[str, float] | None = None, *,
                 constant: float | None = None, broken: bool = False, code: str = "submit-dir",
                 in_metadata: bool = True, in_report: bool = True, extra_metadata: dict[str, str] | None = None) -> str:
        """Register one version; `code` says where the inference source travels (submit-dir, source-uri, model-tar)."""
        group = self.group(tenant, model)
        try:
            self.sm.create_model_package_group(ModelPackageGroupName=group)
        except self.sm.exceptions.ClientError:
            pass
        bucket = self.bucket(tenant)
        prefix = f"models/{model}/{version}"
        files = {} if broken else {"model.joblib": model_bytes(constant if constant is not None else float(version.split(".")[0]))}
        if code == "model-tar":
            files["code/inference.py"] = INFERENCE.encode()
        self.s3.put_object(Bucket=bucket, Key=f"{prefix}/model.tar.gz", Body=tar_gz_of(files))
        env: dict[str, str] = {}
        # The keys the pipeline's RegisterModel step writes (mlops/pipeline/builder.py).
        meta = {"semantic_version": version, "tenant": tenant, "git_commit": "abc1234", "image_digest": "sha256:00"}
        if code == "submit-dir":
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}/sourcedir.tar.gz", Body=tar_gz_of({"src/inference.py": INFERENCE.encode()}))
            env = {"SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/{prefix}/sourcedir.tar.gz", "SAGEMAKER_PROGRAM": "src/inference.py"}
        elif code == "source-uri":
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}/source.tar.gz", Body=tar_gz_of({"src/inference.py": INFERENCE.encode()}))
            meta["source_uri"] = f"s3://{bucket}/{prefix}/source.tar.gz"
        metrics = metrics or {}
        if in_metadata:
            meta.update({f"metric.{k}": str(v) for k, v in metrics.items()})
        if in_metadata and "auc" in metrics:  # the rule as the pipeline records it
            meta.update({"metric_name": "auc", "metric_direction": "maximize", "metric_threshold": "0.7",
                         "metric_value": str(metrics["auc"])})
        meta.update(extra_metadata or {})
        kwargs: dict[str, Any] = {}
        if in_report:
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}/evaluation.json",
                               Body=json.dumps({"binary_classification_metrics": {k: {"value": v} for k, v in metrics.items()}}).encode())
            kwargs["ModelMetrics"] = {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                                      "S3Uri": f"s3://{bucket}/{prefix}/evaluation.json"}}}
        container = {"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{prefix}/model.tar.gz"}
        if env:
            container["Environment"] = env
        arn = self.sm.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval", CustomerMetadataProperties=meta,
            InferenceSpecification={"Containers": [container], "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["application/json"]},
            **kwargs,
        )["ModelPackageArn"]
        self.registered.append(arn)
        return arn


@pytest.fixture
def registry() -> Any:
    """The repository's own registry: project mlops-demo, tenants acme (gold) and globex (bronze)."""
    return load_registry(ROOT / "platform.yaml", ROOT / "tenants")


@pytest.fixture
def packages(aws: None, registry: Any) -> Packages:  # pylint: disable=unused-argument  # aws turns moto on
    """Model package registration against in-process moto."""
    import boto3

    return Packages(boto3.client("sagemaker"), boto3.client("s3"), registry)


@dataclass(frozen=True)
class Server:
    """The local AWS server of a test module: its URL and the state dir of its endpoint servers."""

    url: str
    state_dir: Path


@pytest.fixture(scope="module")
def deploy_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A local AWS server of this module's own, as `mlops local up` runs it (endpoints served by local model
    servers), reset per test, so resets never touch other areas' state."""
    from mlops.local.server import ThreadedServer

    state_dir = tmp_path_factory.mktemp("aws-state")
    with ThreadedServer(endpoints={"state_dir": state_dir}) as url:
        yield Server(url, state_dir)


def _reset(url: str) -> None:
    """moto's reset; the endpoints stand-in stops every endpoint's server with it."""
    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30):
        pass


@pytest.fixture
def local_aws(deploy_moto: Server, registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Packages]:
    """The local AWS as `mlops local up` leaves it: AWS_ENDPOINT_URL names it, the CLI has a state dir of its own."""
    import boto3

    _reset(deploy_moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", deploy_moto.url)
    monkeypatch.setenv("MLOPS_ROOT", str(ROOT))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GITLAB_USER_LOGIN", "alice")
    yield Packages(boto3.client("sagemaker", endpoint_url=deploy_moto.url), boto3.client("s3", endpoint_url=deploy_moto.url),
                   registry)
    _reset(deploy_moto.url)
