"""Training (SageMaker script mode): a gradient-boosted regressor of district home values.

SageMaker passes the hyperparameters as arguments and the folders as SM_* variables; the model goes to
SM_MODEL_DIR (/opt/ml/model), which SageMaker packs as model.tar.gz.

    python train.py --n_estimators 150 --max_depth 3 --learning_rate 0.1
"""

import argparse
import os
import sys
from pathlib import Path

import joblib
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor


def main() -> int:
    """Fit on every CSV of the train channel (label first, no header)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n_estimators", type=int, default=150)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args = parser.parse_args()
    files = sorted(Path(args.train).glob("*.csv"))
    if not files:
        print(f"train: no CSV files in the train channel {args.train}", file=sys.stderr)
        return 1
    data = pd.concat([pd.read_csv(path, header=None) for path in files], ignore_index=True)
    model = GradientBoostingRegressor(n_estimators=args.n_estimators, max_depth=args.max_depth,
                                      learning_rate=args.learning_rate, random_state=0)
    model.fit(data.iloc[:, 1:].to_numpy(), data.iloc[:, 0].to_numpy())
    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(args.model_dir) / "model.joblib")
    print(f"train: {len(data)} districts, {args.n_estimators} trees of depth {args.max_depth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
