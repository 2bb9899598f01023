"""The local pipeline engine's own cost per step, against running the same scripts by hand.

Runs the example churn model once through the engine (in-process moto, engine in this process) and once
by hand (the same three scripts as plain subprocesses on local folders, the way a data scientist would),
then prints per step: the scripts' own time, the engine's time and the overhead (S3 transfers, packing
model.tar.gz, record writes). Goal: engine within 1.5x of the scripts and under 1 s of overhead per step.

    .venv/bin/python bench/engine_overhead.py [--model churn|house-prices] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def by_hand(repo: Path, data: Path, work: Path, target: str, hps: dict[str, object]) -> dict[str, float]:
    """The three scripts as plain subprocesses with the contract's variables pointing at local folders."""
    env = dict(os.environ)
    times = {}
    out = work / "out"
    start = time.perf_counter()
    subprocess.run([sys.executable, str(repo / "src/preprocess.py"), "--target", target], check=True, capture_output=True,
                   env=env | {"MLOPS_PROCESSING_INPUT": str(data), "MLOPS_PROCESSING_OUTPUT": str(out)})
    times["Preprocess"] = time.perf_counter() - start
    model = work / "model"
    model.mkdir()
    start = time.perf_counter()
    subprocess.run([sys.executable, str(repo / "src/train.py")], check=True, capture_output=True,
                   env=env | {"SM_CHANNEL_TRAIN": str(out / "train"), "SM_CHANNEL_VALIDATION": str(out / "validation"),
                              "SM_MODEL_DIR": str(model), "SM_HPS": json.dumps(hps)})
    times["Train"] = time.perf_counter() - start
    packed = work / "packed"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
        for path in model.iterdir():
            tar.add(path, arcname=path.name)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(repo / "src/evaluate.py"), "--target", target], check=True, capture_output=True,
                   env=env | {"MLOPS_PROCESSING_MODEL": str(packed), "MLOPS_PROCESSING_TEST": str(out / "test"),
                              "MLOPS_PROCESSING_EVALUATION": str(work / "evaluation")})
    times["Evaluate"] = time.perf_counter() - start
    return times


def through_engine(repo: Path, data_file: Path, work: Path, model: str) -> dict[str, float]:
    """One execution through the engine on in-process moto; returns wall time per step."""
    import boto3
    from moto import mock_aws

    from mlops.aws import sagemaker as adapter
    from mlops.config.contract import load_contract
    from mlops.local import engine
    from mlops.naming import Names
    from mlops.pipeline import parameters as P
    from mlops.pipeline import source
    from mlops.pipeline.builder import definition_json

    names = Names("mlops-demo")
    definition = definition_json(load_contract(repo), pipeline_name=names.pipeline("acme", model))
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        s3, sm = session.client("s3"), session.client("sagemaker")
        for bucket in (names.artifacts_bucket(), names.tenant_bucket("acme")):
            s3.create_bucket(Bucket=bucket)
        sm.create_model_package_group(ModelPackageGroupName=names.model_package_group("acme", model))
        s3.upload_file(str(data_file), names.tenant_bucket("acme"), f"data/{model}/data.csv")
        adapter.upsert_pipeline(sm, name=names.pipeline("acme", model), definition=definition, role_arn="arn:aws:iam::123456789012:role/r")
        code = adapter.upload_source_bundle(s3, bucket=names.artifacts_bucket(), model=model, bundle=source.bundle(repo))
        run = P.RunRequest("acme", "gold", model, "ml.m5.large", 1, code, P.image_uri(names, model, "1.0.0"), "1.0.0")
        arn = adapter.start_pipeline_execution(sm, pipeline=names.pipeline("acme", model), parameters=P.execution_parameters(names, run),
                                               display_name="bench", description="bench", token="b" * 32)
        record = engine.run_execution(arn, record_bucket=names.artifacts_bucket(), work_dir=work, session=session)
    if record["PipelineExecutionStatus"] != "Succeeded":
        raise SystemExit(f"engine run failed: {record.get('FailureReason')}")
    return {s["StepName"]: _seconds(s) for s in record["Steps"]}


def _seconds(step: dict[str, str]) -> float:
    from datetime import datetime

    start, end = (datetime.fromisoformat(step[k].replace("Z", "+00:00")) for k in ("StartTime", "EndTime"))
    return (end - start).total_seconds()


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default="churn", choices=["churn", "house-prices"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from mlops.config.contract import load_contract

    repo = ROOT / "examples" / args.model
    contract = load_contract(repo)
    hand: dict[str, list[float]] = {}
    eng: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        subprocess.run([sys.executable, str(ROOT / "examples" / "datagen.py"), "--model", args.model, "--tenant", "acme",
                        "--out", str(data / "data.csv")], check=True, capture_output=True)
        for i in range(args.repeat):
            work = Path(tmp) / f"hand-{i}"
            work.mkdir()
            for step, seconds in by_hand(repo, data, work, str(contract.target), dict(contract.hyperparameters)).items():
                hand.setdefault(step, []).append(seconds)
            for step, seconds in through_engine(repo, data / "data.csv", Path(tmp) / f"engine-{i}", args.model).items():
                eng.setdefault(step, []).append(seconds)
            shutil.rmtree(work)
    print(f"engine overhead per step, model {args.model}, best of {args.repeat} (seconds)")
    print(f"{'step':<24}{'by hand':>10}{'engine':>10}{'overhead':>10}{'ratio':>8}")
    for step, times in eng.items():
        engine_best = min(times)
        hand_best = min(hand[step]) if step in hand else 0.0
        ratio = f"{engine_best / hand_best:.2f}x" if hand_best else "-"
        print(f"{step:<24}{hand_best:>10.3f}{engine_best:>10.3f}{engine_best - hand_best:>10.3f}{ratio:>8}")
    total_hand = sum(min(v) for v in hand.values())
    total_engine = sum(min(v) for v in eng.values())
    print(f"{'total':<24}{total_hand:>10.3f}{total_engine:>10.3f}{total_engine - total_hand:>10.3f}{total_engine / total_hand:>7.2f}x")


if __name__ == "__main__":
    main()
