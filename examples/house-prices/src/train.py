"""Train (SageMaker training step): a ridge regression of sale prices, fitted on the log of the price.

Reads the `train` and optional `validation` channels (`$SM_CHANNEL_TRAIN`, `$SM_CHANNEL_VALIDATION`,
defaults `/opt/ml/input/data/<channel>`): CSV files with a header, the label in the first column (or the
column named by the `target` hyperparameter). Hyperparameters: `$SM_HPS` (JSON), else
`$SM_INPUT_CONFIG_DIR/hyperparameters.json` (default `/opt/ml/input/config`) whose values SageMaker passes
as strings. Writes `model.joblib` and `metadata.json` to `$SM_MODEL_DIR` (default `/opt/ml/model`) and
prints `validation:rmse=...` for SageMaker metric definitions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

# name -> (default, type); SageMaker hands every value over as a string.
PARAMS: dict[str, tuple[object, type]] = {"alpha": (1.0, float), "log_target": (True, bool), "log_area": (True, bool)}
SKEWED = ("sqft", "lot_size")  # areas: the price follows their logarithm


def stop(reason: str) -> None:
    """One line on stderr (and SageMaker's failure file when it exists), exit code 1."""
    sys.stderr.write(f"train: {reason}\n")
    failure_dir = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    if failure_dir.is_dir():
        (failure_dir / "failure").write_text(reason, encoding="utf-8")
    sys.exit(1)


def coerce(name: str, value: object, kind: type) -> object:
    """A hyperparameter as its type, from JSON or from SageMaker's strings."""
    if isinstance(value, str):
        text = value.strip()
        if kind is bool and text.lower() in ("true", "false", "1", "0"):
            return text.lower() in ("true", "1")
        try:
            value = json.loads(text)
        except ValueError:
            stop(f"hyperparameter {name}={value!r} is not a {kind.__name__}")
    if kind is bool and isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    stop(f"hyperparameter {name}={value!r} is not a {kind.__name__}")
    return None


def read_params() -> dict[str, object]:
    """Defaults, overridden by SM_HPS or the hyperparameters file; unknown names are kept as given."""
    text = os.environ.get("SM_HPS") or ""
    origin = "SM_HPS"
    if not text:
        origin = str(Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")) / "hyperparameters.json")
        text = Path(origin).read_text(encoding="utf-8") if Path(origin).is_file() else "{}"
    try:
        given = json.loads(text)
    except ValueError:
        given = None
    if not isinstance(given, dict):
        stop(f"{origin} does not hold a JSON object of hyperparameters")
    params = {name: coerce(name, given.get(name, default), kind) for name, (default, kind) in PARAMS.items()}
    if params["alpha"] < 0:
        stop(f"hyperparameter alpha must be >= 0, got {params['alpha']}")
    params["target"] = given.get("target")
    return params


def channel(name: str) -> pd.DataFrame | None:
    """A channel's CSV files as one frame, None when the channel is empty or absent."""
    root = Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", f"/opt/ml/input/data/{name}"))
    paths = sorted(root.glob("**/*.csv")) if root.is_dir() else []
    return pd.concat(map(pd.read_csv, paths), ignore_index=True) if paths else None


def make_model(numbers: list[str], categories: list[str], params: dict[str, object]) -> Pipeline | TransformedTargetRegressor:
    """Scale numbers (log of the areas first), one-hot encode categories, ridge regression."""
    logged = [c for c in numbers if params["log_area"] and c in SKEWED]
    columns = ColumnTransformer([
        ("areas", Pipeline([("log", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
                            ("scale", StandardScaler())]), logged),
        ("numbers", StandardScaler(), [c for c in numbers if c not in logged]),
        ("categories", OneHotEncoder(handle_unknown="ignore"), categories),
    ])
    pipeline = Pipeline([("columns", columns), ("ridge", Ridge(alpha=params["alpha"]))])
    if params["log_target"]:
        return TransformedTargetRegressor(regressor=pipeline, func=np.log, inverse_func=np.exp)
    return pipeline


def main() -> int:
    """Run the step."""
    params = read_params()
    sales = channel("train")
    if sales is None:
        stop("no CSV files in the train channel " + os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    label = str(params["target"] or sales.columns[0])
    if label not in sales.columns:
        stop(f"target column '{label}' not in the train channel")
    inputs = sales.drop(columns=label)
    numbers = [c for c in inputs.columns if pd.api.types.is_numeric_dtype(inputs[c])]
    categories = [c for c in inputs.columns if c not in numbers]
    if inputs[numbers].isna().any().any():
        stop("the train channel has missing or non-numeric values in: "
             + ", ".join(c for c in numbers if inputs[c].isna().any()))
    if (sales[label] <= 0).any() and params["log_target"]:
        stop(f"log_target needs positive values of '{label}'")
    model = make_model(numbers, categories, params).fit(inputs, sales[label])
    info = {"model": "house-prices", "target": label, "features": list(inputs.columns), "numeric": numbers,
            "categorical": categories, "hyperparameters": {k: params[k] for k in PARAMS},
            "train_rows": len(sales), "sklearn_version": sklearn.__version__}
    holdout = channel("validation")
    if holdout is not None:
        error = holdout[label] - model.predict(holdout[info["features"]])
        info["validation_rmse"] = float(np.sqrt(np.mean(np.square(error))))
        print(f"validation:rmse={info['validation_rmse']:.2f};")
    out = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "metadata.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    print(f"train: ridge on {len(sales)} sales -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
