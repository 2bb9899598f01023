"""The one reader of evaluation.json (`mlops.evaluation`): SageMaker's model-quality formats, or a JSON path."""

from __future__ import annotations

import pytest

from mlops import evaluation
from mlops.config.contract import Metric

REGRESSION = {"regression_metrics": {"rmse": {"value": 3.5, "standard_deviation": 0.2}, "r2": {"value": "0.81"},
                                     "mae": {"value": None}}}
BINARY = {"binary_classification_metrics": {
    "auc": {"value": 0.91, "standard_deviation": 0.01}, "accuracy": {"value": 0.85},
    "confusion_matrix": {"0": {"0": 10, "1": 2}, "1": {"0": 1, "1": 7}},
    "receiver_operating_characteristic_curve": {"false_positive_rates": [0, 1], "true_positive_rates": [0, 1]}}}
MULTICLASS = {"multiclass_classification_metrics": {"weighted_f1": {"value": 0.7}, "accuracy": {"value": 0.72}}}
CUSTOM = {"scores": [{"name": "holdout", "rmse": 4.25}], "metrics": {"rmse": {"value": 9.0}}}


@pytest.mark.parametrize(("report", "metric", "path", "expected"), [
    pytest.param(REGRESSION, None, None, {"rmse": 3.5, "r2": 0.81}, id="regression-numbers-only"),
    pytest.param(BINARY, None, None, {"auc": 0.91, "accuracy": 0.85}, id="binary-without-matrix-and-curves"),
    pytest.param(MULTICLASS, None, None, {"weighted_f1": 0.7, "accuracy": 0.72}, id="multiclass"),
    pytest.param(CUSTOM, "rmse", "scores[0].rmse", {"rmse": 4.25}, id="other-shape-through-a-path"),
    pytest.param(CUSTOM, None, None, {}, id="other-shape-without-a-path-has-no-metrics"),
    pytest.param({**REGRESSION, **CUSTOM}, "rmse", "scores[0].rmse", {"rmse": 4.25, "r2": 0.81}, id="path-wins"),
    pytest.param(["not", "an", "object"], "rmse", "a.b", {}, id="not-an-object"),
])
def test_metrics(report: object, metric: str | None, path: str | None, expected: dict[str, float]) -> None:
    assert evaluation.metrics(report, metric=metric, path=path) == expected


@pytest.mark.parametrize(("name", "problem_type", "path", "expected"), [
    pytest.param("rmse", None, None, "regression_metrics.rmse.value", id="regression-by-name"),
    pytest.param("auc", None, None, "binary_classification_metrics.auc.value", id="binary-by-name"),
    pytest.param("weighted_f1", None, None, "multiclass_classification_metrics.weighted_f1.value", id="multiclass-by-name"),
    pytest.param("accuracy", "multiclass_classification", None, "multiclass_classification_metrics.accuracy.value",
                 id="ambiguous-name-with-problem-type"),
    pytest.param("score", None, "results['hold out'].score", "results['hold out'].score", id="explicit-path"),
])
def test_the_metric_path_the_pipeline_reads(name: str, problem_type: str | None, path: str | None, expected: str) -> None:
    metric = Metric(name=name, direction="maximize", threshold=0.5, problem_type=problem_type, path=path)
    assert metric.json_path == expected


@pytest.mark.parametrize(("fields", "message"), [
    pytest.param({"name": "accuracy"}, "is not in one SageMaker model-quality section alone", id="ambiguous"),
    pytest.param({"name": "gini"}, "set metric.problem_type", id="unknown-name"),
    pytest.param({"name": "rmse", "path": "a..b"}, "is not a JSON path", id="bad-path"),
])
def test_a_metric_the_report_cannot_be_read_for_is_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Metric(direction="minimize", threshold=1.0, **fields)
