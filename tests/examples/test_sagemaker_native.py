"""The SageMaker-native example (examples/home-value) through the local engine, and by hand.

Its scripts use SageMaker's contract only (`/opt/ml/...` paths, `SM_CHANNEL_TRAIN`, the model-quality
report, strict argument parsing). On in-process moto the engine trains and registers it for a tenant, the
gate judges a worse challenger against it, and the registered model serves through its inference
functions. A by-hand run of the same scripts (plain subprocesses, each with a folder of its own bound at
`/opt/ml`) gives the same figures as the platform.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from mlops.aws import endpoints
from mlops.aws import sagemaker as adapter
from mlops.config.contract import load_contract
from mlops.evaluation import metrics as report_metrics
from mlops.gate import decide
from mlops.local import container, engine
from mlops.naming import Names
from mlops.pipeline import parameters as P
from mlops.pipeline import source
from mlops.pipeline.builder import definition_json

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "home-value"
NAMES = Names("mlops-demo")
TENANT = "acme"
MODEL = "home-value"
RECORD_BUCKET = NAMES.artifacts_bucket()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not container.isolation().real_paths,
                       reason=f"the example's scripts need /opt/ml; no mount namespace here: {container.isolation().reason}"),
]


def _repo(tmp_path: Path, name: str, **hyperparameters: Any) -> Path:
    """A copy of the example, with hyperparameters changed in its mlops.yaml (a challenger's commit)."""
    repo = tmp_path / name
    shutil.copytree(EXAMPLE, repo)
    contract = yaml.safe_load((repo / "mlops.yaml").read_text(encoding="utf-8"))
    contract["hyperparameters"].update(hyperparameters)
    (repo / "mlops.yaml").write_text(yaml.safe_dump(contract), encoding="utf-8")
    return repo


def _train(session: Any, repo: Path, version: str, work: Path) -> dict[str, Any]:
    """Register the pipeline, start an execution for the tenant and run it with the local engine."""
    s3, sm = session.client("s3"), session.client("sagemaker")
    contract = load_contract(repo)
    name = NAMES.pipeline(TENANT, MODEL)
    adapter.upsert_pipeline(sm, name=name, definition=definition_json(contract, pipeline_name=name),
                            role_arn="arn:aws:iam::123456789012:role/mlops-demo-svc-sagemaker")
    code = adapter.upload_source_bundle(s3, bucket=RECORD_BUCKET, model=MODEL, bundle=source.bundle(repo))
    run = P.RunRequest(tenant=TENANT, tier="gold", model=MODEL, instance_type="ml.m5.large", instance_count=1, code_uri=code,
                       image_uri=P.image_uri(NAMES, MODEL, version), model_version=version,
                       image_digest="sha256:" + "b" * 64, git_commit="c" * 40)
    arn = adapter.start_pipeline_execution(sm, pipeline=name, parameters=P.execution_parameters(NAMES, run),
                                           display_name=f"{TENANT}-{version}", description="test", token=version.replace(".", "x") * 8)
    return engine.run_execution(arn, record_bucket=RECORD_BUCKET, work_dir=work, session=session)


def _by_hand(root: Path, script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """One script as a plain subprocess, `root` bound at /opt/ml in a mount namespace of its own."""
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(EXAMPLE / "code" / script), *args]
    wrapped = container._wrapped(container.isolation().kind, str(root), str(root), command)  # pylint: disable=protected-access
    done = subprocess.run(wrapped, capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})
    assert done.returncode == 0, f"{script}: {done.stderr}"
    return done.stdout


def _by_hand_report(tmp_path: Path, data: Path, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """preprocessing -> train -> evaluation by hand, moving files between the steps as SageMaker does."""
    step = {name: tmp_path / "by-hand" / name for name in ("preprocessing", "train", "evaluation")}
    raw = step["preprocessing"] / "processing" / "input" / "data"
    raw.mkdir(parents=True)
    shutil.copy(data, raw / data.name)
    _by_hand(step["preprocessing"], "preprocessing.py")
    split = step["preprocessing"] / "processing" / "output"
    shutil.copytree(split / "train", step["train"] / "input" / "data" / "train")
    args = [part for key in sorted(hyperparameters) for part in (f"--{key}", str(hyperparameters[key]))]
    _by_hand(step["train"], "train.py", *args)
    model = step["evaluation"] / "processing" / "model"
    model.mkdir(parents=True)
    with tarfile.open(model / "model.tar.gz", "w:gz") as tar:
        tar.add(step["train"] / "model" / "model.joblib", arcname="model.joblib")
    shutil.copytree(split / "test", step["evaluation"] / "processing" / "test")
    _by_hand(step["evaluation"], "evaluation.py")
    return json.loads((step["evaluation"] / "processing" / "evaluation" / "evaluation.json").read_text(encoding="utf-8"))


def test_the_native_example_trains_registers_passes_the_gate_and_matches_a_by_hand_run(  # pylint: disable=too-many-locals  # one story
        aws: None, tmp_path: Path, datagen, capsys: pytest.CaptureFixture[str]) -> None:  # pylint: disable=unused-argument
    session = boto3.session.Session(region_name="us-east-1")
    s3, sm = session.client("s3"), session.client("sagemaker")
    for bucket in (RECORD_BUCKET, NAMES.tenant_bucket(TENANT)):
        s3.create_bucket(Bucket=bucket)
    group = NAMES.model_package_group(TENANT, MODEL)
    sm.create_model_package_group(ModelPackageGroupName=group)
    data = datagen.write(datagen.generate(MODEL, TENANT), tmp_path / "data" / "districts.csv")
    s3.upload_file(str(data), NAMES.tenant_bucket(TENANT), f"{NAMES.data_prefix(MODEL)}districts.csv")

    champion_repo = _repo(tmp_path, "champion")
    record = _train(session, champion_repo, "1.0.0", tmp_path / "work-1")
    assert record["PipelineExecutionStatus"] == "Succeeded", record.get("FailureReason")
    platform = record["PropertyFiles"]["Evaluate"]["EvaluationReport"]

    by_hand = _by_hand_report(tmp_path, data, load_contract(champion_repo).hyperparameters)
    assert report_metrics(by_hand) == report_metrics(platform)

    challenger_repo = _repo(tmp_path, "challenger", n_estimators=20, max_depth=1)
    second = _train(session, challenger_repo, "1.1.0", tmp_path / "work-2")
    assert second["PipelineExecutionStatus"] == "Succeeded", second.get("FailureReason")

    versions = endpoints.list_versions(sm, group)
    assert [v.version for v in versions] == ["1.0.0", "1.1.0"]
    champion, challenger = (v.candidate(endpoints.read_metrics(s3, v)) for v in versions)
    rule = endpoints.rule_from_metadata(versions[-1])
    assert rule is not None and rule.name == "rmse" and rule.direction == "minimize"
    first = decide(champion, None, rule)
    verdict = decide(challenger, champion, rule)
    assert first.deploy and first.outcome == "first-deployment"
    assert not verdict.deploy and verdict.outcome == "refuse", verdict.reasons

    # The registered model serves through the inference functions, as the endpoint loads it.
    described = versions[0].description
    served = tmp_path / "served"
    bucket, _, key = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"][5:].partition("/")
    s3.download_file(bucket, key, str(tmp_path / "model.tar.gz"))
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        tar.extractall(served, filter="data")
    sys.path.insert(0, str(EXAMPLE / "code"))
    try:
        import inference  # pylint: disable=import-outside-toplevel,import-error  # the example's own module
    finally:
        sys.path.remove(str(EXAMPLE / "code"))
    rows = json.dumps({"instances": [[5.0, 5.5, 20, 10.0, 1], [2.0, 4.0, 40, 60.0, 0]]})
    answer = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(rows, "application/json"),
                                                                 inference.model_fn(str(served))), "application/json"))
    high, low = answer["predictions"]
    assert high > low > 0

    with capsys.disabled():
        def figures(report: dict[str, Any]) -> str:
            return ", ".join(f"{name} {value:.6f}" for name, value in sorted(report_metrics(report).items()))

        print(f"\nhome-value/{TENANT}: platform: {figures(platform)}; by hand: {figures(by_hand)}; "
              f"challenger rmse {challenger.metrics['rmse']:.6f} refused")
