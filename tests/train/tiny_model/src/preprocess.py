"""Tiny preprocess: split the raw CSV rows into train/validation/test folders."""

import argparse
import os
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--target", required=True)
args = parser.parse_args()
source = Path(os.environ.get("MLOPS_PROCESSING_INPUT", "/opt/ml/processing/input/data"))
out = Path(os.environ.get("MLOPS_PROCESSING_OUTPUT", "/opt/ml/processing/output"))
files = sorted(source.rglob("*.csv"))
if not files:
    sys.exit(f"no CSV files in {source}")
header, *rows = files[0].read_text(encoding="utf-8").splitlines()
if args.target not in header.split(","):
    sys.exit(f"label column '{args.target}' is not in {files[0].name}")
for i, split in enumerate(("train", "validation", "test")):
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.csv").write_text("\n".join([header, *rows[i::3]]) + "\n", encoding="utf-8")
print(f"split {len(rows)} rows")
