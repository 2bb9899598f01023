"""The serving functions: round trips in CSV and JSON, and clear errors for malformed requests."""

from __future__ import annotations

import json
import pytest

ROW = "12,70.5,800,2,0,month-to-month,fiber,card"


def test_csv_round_trip(served) -> None:
    module, model = served
    header = ",".join(module.FEATURES)
    body = module.output_fn(module.predict_fn(module.input_fn(f"{header}\n{ROW}\n{ROW}\n", "text/csv"), model), "text/csv")
    lines = body.splitlines()
    assert len(lines) == 2 and 0 <= float(lines[0].split(",")[0]) <= 1 and lines[0].split(",")[1] in ("0", "1")


def test_json_round_trip_with_bytes_and_a_missing_number(served) -> None:
    module, model = served
    row = dict(zip(module.FEATURES, [3, 99.0, None, 4, 1, "month-to-month", "fiber", "electronic-check"]))
    body = json.dumps({"instances": [row, row]}).encode()
    result = json.loads(module.output_fn(module.predict_fn(module.input_fn(body, "application/json; charset=utf-8"), model),
                                         "application/json"))
    assert len(result["predictions"]) == 2 and set(result["predictions"][0]) == {"churn_probability", "churned"}


@pytest.mark.parametrize(("body", "content_type", "message"), [
    ("1,2,3", "text/csv", "expected 8 columns"),
    ("abc,70.5,800,2,0,month-to-month,fiber,card", "text/csv", "column 'tenure_months': expected a number"),
    ("", "text/csv", "empty request body"),
    ("  \n", "application/json", "empty request body"),
    ("{not json", "application/json", "not valid JSON"),
    ('{"instances": [{"tenure_months": 3}]}', "application/json", "missing field"),
    ('{"instances": [{"tenure_months": true, "monthly_charges": 1, "total_charges": 1, "support_calls": 1, "senior": 0, '
     '"contract": "a", "internet_service": "b", "payment_method": "c"}]}', "application/json", "expected a number"),
    ("42", "application/json", "expected"),
    (ROW, "application/x-npy", "unsupported content type"),
])
def test_malformed_input_raises_value_error(served, body: str, content_type: str, message: str) -> None:
    module, _ = served
    with pytest.raises(ValueError, match=message):
        module.input_fn(body, content_type)


def test_unsupported_accept_type(served) -> None:
    module, model = served
    with pytest.raises(ValueError, match="unsupported accept"):
        module.output_fn(module.predict_fn(module.input_fn(ROW, "text/csv"), model), "application/xml")
