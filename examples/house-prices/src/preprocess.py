"""Preprocess (SageMaker processing step): raw house sales -> train/validation/test CSV sets.

Input: every `*.csv` under `$MLOPS_PROCESSING_INPUT` (default `/opt/ml/processing/input/data`), one sale per
row. Output: `train/`, `validation/`, `test/` folders under `$MLOPS_PROCESSING_OUTPUT` (default
`/opt/ml/processing/output`), each with one CSV whose first column is the sale price (the label) followed
by the features in a fixed order. Sales without a positive price or with a missing feature are dropped; a sale listed twice counts
once. Bad input ends the step with exit code 1 and one line on stderr.

    python preprocess.py [--target price] [--seed 11]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = {
    "sqft": "number", "bedrooms": "number", "bathrooms": "number", "age_years": "number",
    "lot_size": "number", "has_garage": "number", "condition": "number", "neighborhood": "category",
}
SHARES = {"train": 0.70, "validation": 0.15, "test": 0.15}


def fail(reason: str) -> None:
    """Stop the step: one line on stderr, exit code 1."""
    sys.stderr.write(f"preprocess: {reason}\n")
    sys.exit(1)


def load(folder: Path) -> pd.DataFrame:
    """All sales files, concatenated."""
    paths = [p for p in sorted(folder.glob("**/*.csv")) if p.is_file()] if folder.is_dir() else []
    if not paths:
        fail(f"no CSV files in {folder}; upload the tenant's sales as .csv files")
    parts = []
    for path in paths:
        try:
            parts.append(pd.read_csv(path))
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            fail(f"cannot read {path.name} as CSV: {str(exc).splitlines()[0]}")
    return pd.concat(parts, ignore_index=True)


def tidy(sales: pd.DataFrame, target: str) -> pd.DataFrame:
    """Label first, features after; numbers coerced, categories lower-cased, unusable sales dropped."""
    if target not in sales.columns:
        fail(f"target column '{target}' not in the input; it has: {', '.join(map(str, sales.columns))}")
    absent = sorted(set(FEATURES) - set(sales.columns))
    if absent:
        fail(f"feature column(s) missing from the input: {', '.join(absent)}")
    if "house_id" in sales.columns:
        sales = sales.drop_duplicates(subset="house_id")
    table = pd.DataFrame({target: pd.to_numeric(sales[target], errors="coerce")})
    for name, kind in FEATURES.items():
        column = sales[name]
        table[name] = pd.to_numeric(column, errors="coerce") if kind == "number" else column.astype("string").str.strip().str.lower()
    # The model does not impute: a sale with a missing or unreadable feature is left out.
    table = table[table[target] > 0].dropna().reset_index(drop=True)
    if len(table) < 30:
        fail(f"only {len(table)} sales with a positive '{target}'; at least 30 are needed")
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the step."""
    parser = argparse.ArgumentParser(description="house-prices preprocessing step")
    parser.add_argument("--target", default="price", help="label column (from mlops.yaml)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the random split")
    options = parser.parse_args(argv)
    table = tidy(load(Path(os.environ.get("MLOPS_PROCESSING_INPUT", "/opt/ml/processing/input/data"))), options.target)
    order = np.random.default_rng(options.seed).permutation(len(table))
    bounds = np.cumsum([0] + [round(share * len(table)) for share in SHARES.values()])
    bounds[-1] = len(table)
    root = Path(os.environ.get("MLOPS_PROCESSING_OUTPUT", "/opt/ml/processing/output"))
    for (name, _), start, stop in zip(SHARES.items(), bounds[:-1], bounds[1:]):
        (root / name).mkdir(parents=True, exist_ok=True)
        table.iloc[order[start:stop]].to_csv(root / name / f"{name}.csv", index=False)
    print(f"preprocess: {len(table)} sales, median {options.target} {table[options.target].median():,.0f} -> {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
