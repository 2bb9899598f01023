"""Inference (SageMaker serving contract): model_fn, input_fn, predict_fn, output_fn.

Requests are `text/csv` (one district per line: median_income, rooms, house_age, distance_km, coastal) or
`application/json` (`{"instances": [[...], ...]}` or a list of such rows); answers are
`{"predictions": [value, ...]}` (home values in thousands). A malformed request raises ValueError.
"""

import io
import json
from pathlib import Path

import joblib
import numpy as np

FEATURES = ("median_income", "rooms", "house_age", "distance_km", "coastal")


def model_fn(model_dir):
    """The fitted regressor from the unpacked model.tar.gz."""
    return joblib.load(Path(model_dir) / "model.joblib")


def input_fn(request_body, request_content_type):
    """Rows of FEATURES as a float matrix."""
    if isinstance(request_body, (bytes, bytearray)):
        request_body = request_body.decode("utf-8")
    if request_content_type == "text/csv":
        rows = [line.split(",") for line in request_body.strip().splitlines() if line.strip()]
    elif request_content_type == "application/json":
        data = json.loads(request_body or "null")
        rows = data.get("instances") if isinstance(data, dict) else data
    else:
        raise ValueError(f"content type {request_content_type} is not supported (text/csv, application/json)")
    if not isinstance(rows, list) or not rows or any(not isinstance(row, list) or len(row) != len(FEATURES) for row in rows):
        raise ValueError(f"each row needs {len(FEATURES)} values: {', '.join(FEATURES)}")
    try:
        matrix = np.array(rows, dtype=float)
    except ValueError as exc:
        raise ValueError(f"every value must be a number ({exc})") from None
    if not np.isfinite(matrix).all():
        raise ValueError("every value must be a finite number")
    return matrix


def predict_fn(input_data, model):
    """Home values in thousands, one per row."""
    return model.predict(input_data)


def output_fn(prediction, accept):
    """`{"predictions": [...]}` as JSON, or one value per line as CSV."""
    values = [round(float(value), 3) for value in prediction]
    if accept == "text/csv":
        buffer = io.StringIO()
        buffer.write("\n".join(str(value) for value in values) + "\n")
        return buffer.getvalue()
    return json.dumps({"predictions": values})
