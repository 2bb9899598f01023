"""Tiny evaluate: report the model's quality as its auc (or no metric at all when told to), in SageMaker's format."""

import argparse
import json
import os
import tarfile
from pathlib import Path

argparse.ArgumentParser().parse_args()  # strict: the contract gives this step no arguments
model_dir = Path(os.environ.get("MLOPS_PROCESSING_MODEL", "/opt/ml/processing/model"))
with tarfile.open(model_dir / "model.tar.gz") as tar:
    model = json.load(tar.extractfile("model.json"))
test = Path(os.environ.get("MLOPS_PROCESSING_TEST", "/opt/ml/processing/test"))
rows = sum(len(p.read_text(encoding="utf-8").splitlines()) - 1 for p in test.glob("*.csv"))
metrics = {} if model.get("omit_metric") else {"auc": {"value": model["quality"]}}
out = Path(os.environ.get("MLOPS_PROCESSING_EVALUATION", "/opt/ml/processing/evaluation"))
(out / "evaluation.json").write_text(json.dumps({"binary_classification_metrics": metrics, "rows": rows}), encoding="utf-8")
