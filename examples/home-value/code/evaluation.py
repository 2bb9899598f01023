"""Evaluation (SageMaker processing job): the model's errors on the test set, in SageMaker's model-quality format.

Reads /opt/ml/processing/model/model.tar.gz and /opt/ml/processing/test/*.csv (label first, no header) and
writes /opt/ml/processing/evaluation/evaluation.json:

    {"regression_metrics": {"rmse": {"value": ..., "standard_deviation": ...}, "mae": {...}, "r2": {...}}}
"""

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

MODEL = Path("/opt/ml/processing/model/model.tar.gz")
TEST = Path("/opt/ml/processing/test")
OUTPUT = Path("/opt/ml/processing/evaluation")


def main() -> int:
    """Score the model; exit 1 with one line on stderr when there is nothing to score."""
    argparse.ArgumentParser(description=__doc__.split("\n", 1)[0]).parse_args()
    files = sorted(TEST.glob("*.csv"))
    if not MODEL.is_file() or not files:
        print(f"evaluation: need {MODEL} and CSV files in {TEST}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(MODEL) as tar:
            tar.extractall(folder, filter="data")
        model = joblib.load(Path(folder) / "model.joblib")
    test = pd.concat([pd.read_csv(path, header=None) for path in files], ignore_index=True)
    truth = test.iloc[:, 0].to_numpy(dtype=float)
    error = truth - model.predict(test.iloc[:, 1:].to_numpy())
    total = float(np.sum(np.square(truth - truth.mean())))
    report = {"regression_metrics": {
        "rmse": {"value": float(np.sqrt(np.mean(np.square(error)))), "standard_deviation": float(np.std(error))},
        "mae": {"value": float(np.mean(np.abs(error))), "standard_deviation": float(np.std(np.abs(error)))},
        "r2": {"value": 1.0 - float(np.sum(np.square(error))) / total if total > 0 else 0.0},
    }}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "evaluation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"evaluation: rmse {report['regression_metrics']['rmse']['value']:.3f} on {len(test)} districts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
