"""Preprocess (SageMaker processing step): a tenant's raw customer CSVs -> train/validation/test sets.

Reads every `*.csv` under `$MLOPS_PROCESSING_INPUT` (default `/opt/ml/processing/input/data`), keeps the
feature columns the model knows, normalises the label to 0/1, drops duplicates and unlabeled rows, and
writes a stratified 70/15/15 split as `train/`, `validation/` and `test/` under `$MLOPS_PROCESSING_OUTPUT`
(default `/opt/ml/processing/output`). The label is the first column of every output file, so the
training and evaluation steps find it without being told. Bad input ends the step with exit code 1 and
one line on stderr.

    python preprocess.py [--target churned] [--validation 0.15] [--test 0.15] [--seed 42]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "senior"]
CATEGORICAL = ["contract", "internet_service", "payment_method"]
ID_COLUMN = "customer_id"
LABELS = {"1": 1, "0": 0, "true": 1, "false": 0, "yes": 1, "no": 0, "1.0": 1, "0.0": 0}
MIN_ROWS = 40


class InputError(Exception):
    """The input data cannot be used; the message says why and what to fix."""


def read_raw(folder: Path) -> pd.DataFrame:
    """Every CSV file under `folder`, concatenated."""
    files = sorted(p for p in folder.rglob("*.csv") if p.is_file())
    if not files:
        raise InputError(f"no CSV files in {folder} (upload the tenant's data as .csv files)")
    frames = []
    for path in files:
        try:
            frames.append(pd.read_csv(path))
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"{path.name}: not a readable CSV file ({str(exc).splitlines()[0]})") from exc
    return pd.concat(frames, ignore_index=True)


def clean(raw: pd.DataFrame, target: str) -> pd.DataFrame:
    """The label first, then the features in a fixed order; unusable rows dropped."""
    if target not in raw.columns:
        raise InputError(f"target column '{target}' not in the input (columns: {', '.join(map(str, raw.columns))})")
    missing = [c for c in NUMERIC + CATEGORICAL if c not in raw.columns]
    if missing:
        raise InputError(f"feature column(s) missing from the input: {', '.join(missing)}")
    frame = raw.drop_duplicates(subset=[ID_COLUMN]) if ID_COLUMN in raw.columns else raw.drop_duplicates()
    labels = frame[target].astype("string").str.strip().str.lower().map(LABELS)
    data = pd.DataFrame({target: labels})
    for column in NUMERIC:
        data[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in CATEGORICAL:
        data[column] = frame[column].astype("string").str.strip().str.lower().fillna("unknown")
    data = data[data[target].notna()].astype({target: "int64"})
    if len(data) < MIN_ROWS:
        raise InputError(f"only {len(data)} labeled rows in the input; at least {MIN_ROWS} are needed")
    if data[target].nunique() < 2:
        raise InputError(f"target column '{target}' has a single class; churners and non-churners are both needed")
    return data.reset_index(drop=True)


def split(data: pd.DataFrame, target: str, validation: float, test: float, seed: int) -> dict[str, pd.DataFrame]:
    """Stratified train/validation/test sets: each class is shuffled and cut at the same shares.

    numpy rather than sklearn.model_selection keeps this step's start-up short.
    """
    rng = np.random.default_rng(seed)
    picked: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for _, rows in sorted(data.groupby(target).groups.items()):
        order = rng.permutation(np.asarray(rows))
        n_test, n_validation = max(1, round(len(order) * test)), max(1, round(len(order) * validation))
        picked["test"].extend(order[:n_test])
        picked["validation"].extend(order[n_test:n_test + n_validation])
        picked["train"].extend(order[n_test + n_validation:])
    return {name: data.loc[sorted(rows)] for name, rows in picked.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the step; 0 on success, 1 with a one-line reason on stderr for bad input."""
    parser = argparse.ArgumentParser(description="churn preprocessing step")
    parser.add_argument("--target", default="churned", help="label column (from mlops.yaml)")
    parser.add_argument("--validation", type=float, default=0.15, help="share of rows for validation")
    parser.add_argument("--test", type=float, default=0.15, help="share of rows for the test set")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    source = Path(os.environ.get("MLOPS_PROCESSING_INPUT", "/opt/ml/processing/input/data"))
    output = Path(os.environ.get("MLOPS_PROCESSING_OUTPUT", "/opt/ml/processing/output"))
    try:
        if not 0 < args.validation < 1 or not 0 < args.test < 1 or args.validation + args.test >= 1:
            raise InputError("--validation and --test must be shares between 0 and 1 that leave rows to train on")
        data = clean(read_raw(source), args.target)
        for name, part in split(data, args.target, args.validation, args.test, args.seed).items():
            (output / name).mkdir(parents=True, exist_ok=True)
            part.to_csv(output / name / f"{name}.csv", index=False)
    except InputError as exc:
        print(f"preprocess: {exc}", file=sys.stderr)
        return 1
    print(f"preprocess: {len(data)} rows, churn rate {data[args.target].mean():.3f} -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
