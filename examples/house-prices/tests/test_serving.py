"""model_fn/input_fn/predict_fn/output_fn of the price model."""

from __future__ import annotations

import json

import pytest

HOUSE = {"sqft": 1800, "bedrooms": 3, "bathrooms": 2, "age_years": 15, "lot_size": 5000, "has_garage": 1,
         "condition": 4, "neighborhood": "centre"}


def test_json_in_csv_out(serving) -> None:
    module, model = serving
    frame = module.input_fn(json.dumps({"instances": [HOUSE, list(HOUSE.values())]}), "application/json")
    lines = module.output_fn(module.predict_fn(frame, model), "text/csv").splitlines()
    assert len(lines) == 2 and lines[0] == lines[1] and 100_000 < float(lines[0]) < 1_000_000


def test_csv_with_header_in_json_out(serving) -> None:
    module, model = serving
    body = ",".join(module.COLUMNS) + "\n" + ",".join(map(str, HOUSE.values())) + "\n"
    answer = json.loads(module.output_fn(module.predict_fn(module.input_fn(body.encode(), "text/csv"), model), None))
    assert list(answer) == ["predictions"] and answer["predictions"][0]["price"] > 0


@pytest.mark.parametrize(("body", "kind", "expected"), [
    ("1800,3,2", "text/csv", "expected 8 columns"),
    ("big,3,2,15,5000,1,4,centre", "text/csv", "'sqft' must be a number"),
    ("1800,3,2,,5000,1,4,centre", "text/csv", "'age_years' is required"),
    ("", "text/csv", "empty request body"),
    ("[]", "application/json", "no houses"),
    ('[{"sqft": 1800}]', "application/json", "missing field"),
    ("{oops", "application/json", "not JSON"),
    ("1800,3,2,15,5000,1,4,centre", "application/xml", "unsupported content type"),
])
def test_malformed_requests(serving, body: str, kind: str, expected: str) -> None:
    module, _ = serving
    with pytest.raises(ValueError, match=expected):
        module.input_fn(body, kind)
