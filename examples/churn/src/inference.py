"""Inference (SageMaker serving contract): model_fn, input_fn, predict_fn, output_fn for the churn model.

Requests are `text/csv` (one customer per line, the feature columns in the order of FEATURES, an optional
header line naming them) or `application/json` (`{"instances": [{...}, ...]}`, a list of objects or of
lists, or one object). Missing numbers may be left empty (CSV) or null (JSON); the model imputes them.
Responses are `application/json` (`{"predictions": [{"churn_probability": p, "churned": 0|1}, ...]}`) or
`text/csv` (`probability,label` per line). Malformed input raises ValueError with a message that says
which row and column is wrong, which the endpoint returns as a client error.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import joblib
import pandas as pd

NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "senior"]
CATEGORICAL = ["contract", "internet_service", "payment_method"]
FEATURES = NUMERIC + CATEGORICAL
THRESHOLD = 0.5


def model_fn(model_dir: str) -> dict:
    """Load the fitted pipeline and its metadata from the unpacked model.tar.gz."""
    folder = Path(model_dir)
    meta_file = folder / "metadata.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    if meta.get("features", FEATURES) != FEATURES:
        raise ValueError(f"the model was trained on {meta['features']}, this inference code expects {FEATURES}")
    return {"pipeline": joblib.load(folder / "model.joblib"), "meta": meta}


def _number(value: object, row: int, column: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"row {row}, column '{column}': expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"row {row}, column '{column}': expected a number, got {value!r}") from None
    if math.isinf(number):
        raise ValueError(f"row {row}, column '{column}': expected a finite number, got {value!r}")
    return number


def _record(values: list[object], row: int) -> dict[str, object]:
    if len(values) != len(FEATURES):
        raise ValueError(f"row {row}: expected {len(FEATURES)} columns ({', '.join(FEATURES)}), got {len(values)}")
    record: dict[str, object] = {}
    for column, value in zip(FEATURES, values):
        if column in NUMERIC:
            record[column] = _number(value, row, column)
        else:
            record[column] = "unknown" if value is None or str(value).strip() == "" else str(value).strip().lower()
    return record


def _from_csv(text: str) -> list[dict[str, object]]:
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    if rows and [cell.strip() for cell in rows[0]] == FEATURES:
        rows = rows[1:]
    return [_record(list(r), i) for i, r in enumerate(rows, start=1)]


def _from_json(text: str) -> list[dict[str, object]]:
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the body is not valid JSON ({exc})") from None
    if isinstance(payload, dict):
        payload = payload["instances"] if "instances" in payload else [payload]
    if not isinstance(payload, list):
        raise ValueError('expected {"instances": [...]}, a list of rows or one object')
    records = []
    for i, item in enumerate(payload, start=1):
        if isinstance(item, dict):
            missing = [c for c in FEATURES if c not in item]
            if missing:
                raise ValueError(f"row {i}: missing field(s) {', '.join(missing)}")
            item = [item[c] for c in FEATURES]
        elif not isinstance(item, list):
            raise ValueError(f"row {i}: expected an object or a list of {len(FEATURES)} values")
        records.append(_record(item, i))
    return records


def input_fn(request_body: str | bytes, request_content_type: str) -> pd.DataFrame:
    """Parse a request into a frame with the FEATURES columns; ValueError on malformed input."""
    text = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    kind = (request_content_type or "").split(";")[0].strip().lower()
    if kind not in ("text/csv", "application/json"):
        raise ValueError(f"unsupported content type '{request_content_type}'; send text/csv or application/json")
    if not text or not text.strip():
        raise ValueError("empty request body; send at least one row")
    records = _from_csv(text) if kind == "text/csv" else _from_json(text)
    if not records:
        raise ValueError("no rows in the request body")
    return pd.DataFrame.from_records(records, columns=FEATURES).astype({c: "float64" for c in NUMERIC})


def predict_fn(input_data: pd.DataFrame, model: dict) -> list[dict[str, object]]:
    """Churn probability and label per row."""
    scores = model["pipeline"].predict_proba(input_data[FEATURES])[:, 1]
    return [{"churn_probability": round(float(p), 6), "churned": int(p >= THRESHOLD)} for p in scores]


def output_fn(prediction: list[dict[str, object]], accept: str | None) -> str:
    """Serialise predictions as JSON (default) or CSV."""
    kind = (accept or "application/json").split(";")[0].strip().lower()
    if kind in ("application/json", "*/*", ""):
        return json.dumps({"predictions": prediction})
    if kind == "text/csv":
        return "".join(f"{p['churn_probability']},{p['churned']}\n" for p in prediction)
    raise ValueError(f"unsupported accept type '{accept}'; ask for application/json or text/csv")
