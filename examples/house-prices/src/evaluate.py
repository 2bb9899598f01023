"""Evaluate (SageMaker processing step): errors of the price model on the held-out sales.

Model: `model.tar.gz` in `$MLOPS_PROCESSING_MODEL` (default `/opt/ml/processing/model`). Test sales: CSV
files in `$MLOPS_PROCESSING_TEST` (default `/opt/ml/processing/test`). Report: `evaluation.json` in
`$MLOPS_PROCESSING_EVALUATION` (default `/opt/ml/processing/evaluation`), e.g.
`{"regression_metrics": {"rmse": {"value": 23100.5}, "mae": {...}, "r2": {...}, "mape": {...}}, "rows": 76}`
(SageMaker's model-quality format for regression); the pipeline's condition reads
`regression_metrics.rmse.value` (lower is better).

    python evaluate.py [--target price]
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
import numpy as np
import pandas as pd


def give_up(reason: str) -> None:
    """One line on stderr, exit code 1."""
    sys.stderr.write(f"evaluate: {reason}\n")
    sys.exit(1)


def load_model(source: Path) -> tuple[object, dict]:
    """Unpack model.tar.gz into a scratch folder and load the estimator and its metadata."""
    archive = source / "model.tar.gz"
    if not archive.is_file():
        give_up(f"no model.tar.gz in {source}")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            with tarfile.open(archive, "r:gz") as bundle:
                bundle.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError) as exc:
            give_up(f"cannot unpack {archive}: {exc}")
        folder = Path(scratch)
        if not (folder / "model.joblib").is_file():
            give_up(f"{archive} holds no model.joblib")
        about = folder / "metadata.json"
        return joblib.load(folder / "model.joblib"), (json.loads(about.read_text(encoding="utf-8")) if about.is_file() else {})


def scores(truth: np.ndarray, guess: np.ndarray) -> dict[str, float]:
    """Regression errors in the price's own unit, plus R^2 and the mean absolute percentage error."""
    error = guess - truth
    total = np.sum(np.square(truth - truth.mean()))
    return {
        "rmse": float(np.sqrt(np.mean(np.square(error)))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(1 - np.sum(np.square(error)) / total) if total > 0 else 0.0,
        "mape": float(np.mean(np.abs(error) / np.abs(truth))),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the step."""
    parser = argparse.ArgumentParser(description="house-prices evaluation step")
    parser.add_argument("--target", default=None, help="label column (default: the one the model was trained on)")
    options = parser.parse_args(argv)
    model, about = load_model(Path(os.environ.get("MLOPS_PROCESSING_MODEL", "/opt/ml/processing/model")))
    folder = Path(os.environ.get("MLOPS_PROCESSING_TEST", "/opt/ml/processing/test"))
    paths = sorted(folder.glob("**/*.csv")) if folder.is_dir() else []
    if not paths:
        give_up(f"no CSV files in the test folder {folder}")
    sales = pd.concat(map(pd.read_csv, paths), ignore_index=True)
    label = options.target or about.get("target", "price")
    if label not in sales.columns:
        give_up(f"target column '{label}' not in the test data")
    features = about.get("features") or [c for c in sales.columns if c != label]
    lacking = [c for c in features if c not in sales.columns]
    if lacking or sales.empty:
        give_up(f"the test data lacks rows or the feature column(s): {', '.join(lacking) or '-'}")
    try:
        guess = model.predict(sales[features])
    except ValueError as exc:
        give_up(f"the model cannot score the test data: {str(exc).splitlines()[0]}")
    result = scores(sales[label].to_numpy(dtype=float), np.asarray(guess, dtype=float))
    report = {"regression_metrics": {name: {"value": round(value, 6)} for name, value in result.items()},
              "rows": int(len(sales)), "target": label, "model": about.get("model", "house-prices"),
              "validation_rmse": about.get("validation_rmse")}
    out = Path(os.environ.get("MLOPS_PROCESSING_EVALUATION", "/opt/ml/processing/evaluation"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"evaluate: rmse={result['rmse']:,.0f} r2={result['r2']:.3f} on {len(sales)} sales -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
