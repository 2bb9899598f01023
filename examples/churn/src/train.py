"""Train (SageMaker training step): a gradient-boosted churn classifier in a scikit-learn Pipeline.

Channels: `$SM_CHANNEL_TRAIN` (default `/opt/ml/input/data/train`) and, optionally,
`$SM_CHANNEL_VALIDATION` (default `/opt/ml/input/data/validation`), CSV files with a header whose first
column is the label (what the preprocess step writes), unless the `target` hyperparameter names it.
Hyperparameters come from `$SM_HPS` (JSON) or else `$SM_INPUT_CONFIG_DIR/hyperparameters.json` (default
`/opt/ml/input/config`), where SageMaker passes every value as a string. The fitted pipeline and a
`metadata.json` describing its inputs go to `$SM_MODEL_DIR` (default `/opt/ml/model`); SageMaker packs
that folder as model.tar.gz. The validation AUC is printed as `validation:auc=...` for metric definitions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import joblib
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

DEFAULTS: dict[str, int | float | str] = {"n_estimators": 120, "max_depth": 3, "learning_rate": 0.1,
                                          "subsample": 1.0, "random_state": 0}
INTEGERS = ("n_estimators", "max_depth", "random_state")


class TrainingError(Exception):
    """Training cannot go on; the message says why and what to fix."""


def parse_value(value: object) -> object:
    """SageMaker's hyperparameters.json holds strings ("100", "0.1", "true"): read them as JSON."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def hyperparameters() -> dict[str, object]:
    """The defaults overridden by `$SM_HPS`, or else by the hyperparameters file."""
    raw = os.environ.get("SM_HPS")
    source = "SM_HPS"
    if not raw:
        path = Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")) / "hyperparameters.json"
        raw, source = (path.read_text(encoding="utf-8"), str(path)) if path.is_file() else ("{}", "defaults")
    try:
        given = json.loads(raw)
    except ValueError as exc:
        raise TrainingError(f"{source} is not valid JSON ({exc})") from exc
    if not isinstance(given, dict):
        raise TrainingError(f"{source} must be a JSON object of hyperparameters")
    params: dict[str, object] = dict(DEFAULTS)
    params.update({key: parse_value(value) for key, value in given.items()})
    for key in DEFAULTS:
        value = params[key]
        wanted = int if key in INTEGERS else float
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (wanted is int and value != int(value)):
            raise TrainingError(f"hyperparameter {key} must be {'an integer' if wanted is int else 'a number'}, got {value!r}")
        params[key] = wanted(value)
    if params["n_estimators"] < 1 or params["max_depth"] < 1 or not 0 < params["learning_rate"] <= 1:
        raise TrainingError("hyperparameters need n_estimators >= 1, max_depth >= 1 and 0 < learning_rate <= 1")
    if not 0 < params["subsample"] <= 1:
        raise TrainingError(f"hyperparameter subsample must be in (0, 1], got {params['subsample']}")
    return params


def read_channel(name: str, required: bool) -> pd.DataFrame | None:
    """All CSV files of a training channel, or None for an absent optional channel."""
    folder = Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", f"/opt/ml/input/data/{name}"))
    files = sorted(folder.rglob("*.csv")) if folder.is_dir() else []
    if not files:
        if required:
            raise TrainingError(f"no CSV files in the {name} channel {folder}")
        return None
    try:
        return pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise TrainingError(f"the {name} channel holds an unreadable CSV file ({str(exc).splitlines()[0]})") from exc


def build(numeric: list[str], categorical: list[str], params: dict[str, object]) -> Pipeline:
    """Impute and scale numbers, one-hot encode categories, then gradient boosting."""
    features = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="unknown"),
                                      OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    model = GradientBoostingClassifier(**{key: params[key] for key in DEFAULTS})
    return Pipeline([("features", features), ("model", model)])


def train(train_set: pd.DataFrame, validation: pd.DataFrame | None, params: dict[str, object]) -> tuple[Pipeline, dict]:
    """Fit the pipeline; return it with the metadata the evaluation and inference steps rely on."""
    target = str(params.get("target") or train_set.columns[0])
    if target not in train_set.columns:
        raise TrainingError(f"target column '{target}' not in the train channel (columns: {', '.join(train_set.columns)})")
    x, y = train_set.drop(columns=[target]), train_set[target]
    if y.nunique() != 2:
        raise TrainingError(f"target column '{target}' must hold exactly two classes, found {y.nunique()}")
    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    categorical = [c for c in x.columns if c not in numeric]
    pipeline = build(numeric, categorical, params).fit(x, y)
    meta: dict = {"model": "churn", "target": target, "features": list(x.columns), "numeric": numeric,
                  "categorical": categorical, "classes": [int(c) for c in pipeline.classes_],
                  "hyperparameters": {k: params[k] for k in DEFAULTS}, "train_rows": len(x),
                  "sklearn_version": sklearn.__version__}
    if validation is not None:
        if target not in validation.columns or set(validation.columns) != set(train_set.columns):
            raise TrainingError("the validation channel does not have the train channel's columns")
        scores = pipeline.predict_proba(validation[meta["features"]])[:, 1]
        meta["validation_auc"] = float(roc_auc_score(validation[target], scores))
    return pipeline, meta


def main() -> int:
    """Run the step; 0 on success, 1 with a one-line reason on stderr (and in the failure file)."""
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    try:
        params = hyperparameters()
        pipeline, meta = train(read_channel("train", True), read_channel("validation", False), params)
    except TrainingError as exc:
        print(f"train: {exc}", file=sys.stderr)
        output = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
        if output.is_dir():  # SageMaker shows this file as the job's FailureReason
            (output / "failure").write_text(str(exc), encoding="utf-8")
        return 1
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, model_dir / "model.joblib")
    (model_dir / "metadata.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if "validation_auc" in meta:
        print(f"validation:auc={meta['validation_auc']:.4f};")
    print(f"train: {meta['train_rows']} rows, model written to {model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
