"""Evaluate (SageMaker processing step): score the trained churn model on the held-out test set.

Unpacks `model.tar.gz` from `$MLOPS_PROCESSING_MODEL` (default `/opt/ml/processing/model`), reads the test
CSVs in `$MLOPS_PROCESSING_TEST` (default `/opt/ml/processing/test`) and writes `evaluation.json` to
`$MLOPS_PROCESSING_EVALUATION` (default `/opt/ml/processing/evaluation`) in SageMaker's model-quality
format for binary classification, which the pipeline's condition reads:
`{"binary_classification_metrics": {"auc": {"value": ...}, "accuracy": {"value": ...}, ...}, "rows": n}`.

    python evaluate.py [--target churned]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score


class EvaluationError(Exception):
    """The model or the test data cannot be evaluated; the message says why."""


def unpack(model_folder: Path, into: Path) -> tuple[object, dict]:
    """The fitted pipeline and its metadata from model.tar.gz (a plain model folder also works)."""
    archive = model_folder / "model.tar.gz"
    if archive.is_file():
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(into, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise EvaluationError(f"{archive} is not a readable model archive ({exc})") from exc
        model_folder = into
    if not (model_folder / "model.joblib").is_file():
        raise EvaluationError(f"no model.tar.gz or model.joblib in {model_folder}")
    meta_file = model_folder / "metadata.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    return joblib.load(model_folder / "model.joblib"), meta


def read_test(folder: Path) -> pd.DataFrame:
    """Every test CSV, concatenated."""
    files = sorted(folder.rglob("*.csv")) if folder.is_dir() else []
    if not files:
        raise EvaluationError(f"no CSV files in the test folder {folder}")
    return pd.concat([pd.read_csv(path) for path in files], ignore_index=True)


def evaluate(pipeline, meta: dict, test: pd.DataFrame, target: str | None) -> dict:
    """The evaluation report."""
    label = target or meta.get("target") or str(test.columns[0])
    if label not in test.columns:
        raise EvaluationError(f"target column '{label}' not in the test data (columns: {', '.join(test.columns)})")
    features = meta.get("features") or [c for c in test.columns if c != label]
    absent = [c for c in features if c not in test.columns]
    if absent:
        raise EvaluationError(f"the test data lacks the model's feature column(s): {', '.join(absent)}")
    truth = test[label].astype(int)
    if truth.nunique() < 2:
        raise EvaluationError("the test set holds a single class, so AUC is undefined; give it more rows")
    scores = pipeline.predict_proba(test[features])[:, 1]
    predicted = (scores >= 0.5).astype(int)
    metrics = {
        "auc": roc_auc_score(truth, scores),
        "accuracy": accuracy_score(truth, predicted),
        "precision": precision_score(truth, predicted, zero_division=0),
        "recall": recall_score(truth, predicted, zero_division=0),
        "f1": f1_score(truth, predicted, zero_division=0),
        "log_loss": log_loss(truth, scores, labels=[0, 1]),
    }
    return {"binary_classification_metrics": {name: {"value": round(float(value), 6)} for name, value in metrics.items()},
            "rows": len(test), "positive_rate": round(float(truth.mean()), 6), "target": label,
            "model": meta.get("model", "churn"), "validation_auc": meta.get("validation_auc")}


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 with a one-line reason on stderr."""
    parser = argparse.ArgumentParser(description="churn evaluation step")
    parser.add_argument("--target", help="label column (default: the one the model was trained on)")
    args = parser.parse_args(argv)
    model_folder = Path(os.environ.get("MLOPS_PROCESSING_MODEL", "/opt/ml/processing/model"))
    test_folder = Path(os.environ.get("MLOPS_PROCESSING_TEST", "/opt/ml/processing/test"))
    out = Path(os.environ.get("MLOPS_PROCESSING_EVALUATION", "/opt/ml/processing/evaluation"))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            pipeline, meta = unpack(model_folder, Path(scratch))
        report = evaluate(pipeline, meta, read_test(test_folder), args.target)
    except (EvaluationError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        print(f"evaluate: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    scores = report["binary_classification_metrics"]
    print(f"evaluate: auc={scores['auc']['value']:.4f} accuracy={scores['accuracy']['value']:.4f} "
          f"on {report['rows']} rows -> {out / 'evaluation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
