"""Inference (SageMaker serving contract) for the house-price model.

`input_fn` accepts `text/csv` (one house per line, the columns of COLUMNS in that order, optionally a
header line with those names) and `application/json` (`{"instances": [...]}` or a bare list, each house an
object with the COLUMNS fields or a list of their values; a single object also works). Every field is
required: this model does not impute. `output_fn` answers `application/json`
(`{"predictions": [{"price": 312000.0}, ...]}`) or `text/csv` (one price per line). Malformed requests
raise ValueError naming the row and field.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

COLUMNS = ("sqft", "bedrooms", "bathrooms", "age_years", "lot_size", "has_garage", "condition", "neighborhood")
TEXT_COLUMNS = frozenset({"neighborhood"})
CONTENT_TYPES = ("text/csv", "application/json")


def model_fn(model_dir: str):
    """The fitted regressor from the unpacked model archive."""
    about_file = Path(model_dir) / "metadata.json"
    if about_file.is_file():
        trained_on = tuple(json.loads(about_file.read_text(encoding="utf-8")).get("features", COLUMNS))
        if trained_on != COLUMNS:
            raise ValueError(f"model trained on {trained_on}, but this code serves {COLUMNS}")
    return joblib.load(Path(model_dir) / "model.joblib")


def _field(value: object, where: str, name: str) -> object:
    """One checked value: text for the neighbourhood, a finite number for everything else."""
    if name in TEXT_COLUMNS:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: '{name}' must be a non-empty text, got {value!r}")
        return value.strip().lower()
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{where}: '{name}' is required and must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: '{name}' must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{where}: '{name}' must be a finite number, got {value!r}")
    return number


def _house(values: object, index: int) -> list[object]:
    where = f"row {index}"
    if isinstance(values, dict):
        absent = [name for name in COLUMNS if name not in values]
        if absent:
            raise ValueError(f"{where}: missing field(s) {', '.join(absent)}")
        values = [values[name] for name in COLUMNS]
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{where}: expected an object or a list of {len(COLUMNS)} values, got {type(values).__name__}")
    if len(values) != len(COLUMNS):
        raise ValueError(f"{where}: expected {len(COLUMNS)} columns ({', '.join(COLUMNS)}), got {len(values)}")
    return [_field(value, where, name) for name, value in zip(COLUMNS, values)]


def input_fn(request_body, request_content_type):
    """Request body -> a frame with the COLUMNS; ValueError for anything malformed."""
    media = str(request_content_type or "").partition(";")[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise ValueError(f"unsupported content type {request_content_type!r}; use {' or '.join(CONTENT_TYPES)}")
    body = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else str(request_body or "")
    if not body.strip():
        raise ValueError("empty request body: send one house per line (CSV) or a JSON list of houses")
    if media == "text/csv":
        lines = [row for row in csv.reader(io.StringIO(body)) if any(cell.strip() for cell in row)]
        if tuple(cell.strip() for cell in lines[0]) == COLUMNS:
            lines = lines[1:]
        items: object = lines
    else:
        try:
            items = json.loads(body)
        except json.JSONDecodeError as exc:
            raise ValueError(f"request body is not JSON: {exc.msg} at position {exc.pos}") from None
        if isinstance(items, dict):
            items = items.get("instances", [items])
    if not isinstance(items, list) or not items:
        raise ValueError("no houses in the request: send a non-empty list")
    return pd.DataFrame([_house(item, i) for i, item in enumerate(items, start=1)], columns=list(COLUMNS))


def predict_fn(input_data, model):
    """Predicted sale prices."""
    return np.asarray(model.predict(input_data), dtype=float)


def output_fn(prediction, accept):
    """Prices as JSON (default) or one per line as CSV."""
    media = str(accept or "application/json").partition(";")[0].strip().lower()
    prices = [round(float(p), 2) for p in prediction]
    if media == "text/csv":
        return "\n".join(map(str, prices)) + "\n"
    if media in ("application/json", "*/*"):
        return json.dumps({"predictions": [{"price": p} for p in prices]})
    raise ValueError(f"unsupported accept type {accept!r}; use text/csv or application/json")
