"""Preprocessing (SageMaker processing job): raw district CSVs -> train and test sets.

Reads every CSV under /opt/ml/processing/input/data (a header naming `value` and the feature columns),
drops rows with missing values and writes /opt/ml/processing/output/train/train.csv and
/opt/ml/processing/output/test/test.csv without a header, the label in the first column (the layout
SageMaker's built-in algorithms and examples use).

    python preprocessing.py [--test-size 0.2] [--seed 7]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

INPUT = Path("/opt/ml/processing/input/data")
OUTPUT = Path("/opt/ml/processing/output")
LABEL = "value"
FEATURES = ["median_income", "rooms", "house_age", "distance_km", "coastal"]


def main() -> int:
    """Split the districts; exit 1 with one line on stderr when the input cannot be used."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    files = sorted(INPUT.rglob("*.csv"))
    if not files:
        print(f"preprocessing: no CSV files in {INPUT}", file=sys.stderr)
        return 1
    frame = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    missing = [column for column in [LABEL, *FEATURES] if column not in frame.columns]
    if missing:
        print(f"preprocessing: column(s) missing from the input: {', '.join(missing)}", file=sys.stderr)
        return 1
    frame = frame[[LABEL, *FEATURES]].dropna()
    order = np.random.default_rng(args.seed).permutation(len(frame))
    cut = int(round(len(frame) * args.test_size))
    for name, rows in (("test", order[:cut]), ("train", order[cut:])):
        folder = OUTPUT / name
        folder.mkdir(parents=True, exist_ok=True)
        frame.iloc[np.sort(rows)].to_csv(folder / f"{name}.csv", header=False, index=False)
    print(f"preprocessing: {len(frame) - cut} train and {cut} test districts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
