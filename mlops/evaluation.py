"""The evaluation report (`evaluation.json`): the one reader of its metrics.

A model's evaluation step writes the report in one of SageMaker's model-quality formats, the shape Model
Monitor and the model registry use:

    {"regression_metrics": {"rmse": {"value": 3.1, "standard_deviation": 0.2}, "r2": {"value": 0.8}}}
    {"binary_classification_metrics": {"auc": {"value": 0.91}, "accuracy": {"value": 0.85}, ...}}
    {"multiclass_classification_metrics": {"accuracy": {"value": 0.7}, "weighted_f1": {"value": 0.68}, ...}}

or in any other shape, with the headline metric found through a JSON path declared in `mlops.yaml`
(`metric.path`). The pipeline's condition (`JsonGet` on the report), the deployment gate and the evaluation
report all read the report through this module: `metric_path` names where the headline metric is, `metrics`
reads every number a report holds. Pure: no AWS, no files.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: problem type (as `mlops.yaml` names it) -> the report section SageMaker's model-quality format uses.
SECTIONS = {
    "regression": "regression_metrics",
    "binary_classification": "binary_classification_metrics",
    "multiclass_classification": "multiclass_classification_metrics",
}

#: The metrics SageMaker's model-quality reports hold, per section: a metric name found in exactly one
#: section fixes the problem type by itself (`rmse` -> regression, `auc` -> binary classification).
KNOWN_METRICS = {
    "regression_metrics": frozenset({"mae", "mse", "rmse", "r2"}),
    "binary_classification_metrics": frozenset({
        "confusion_matrix", "recall", "precision", "accuracy", "recall_best_constant_classifier",
        "precision_best_constant_classifier", "accuracy_best_constant_classifier", "true_positive_rate",
        "true_negative_rate", "false_positive_rate", "false_negative_rate", "receiver_operating_characteristic_curve",
        "precision_recall_curve", "auc", "f0_5", "f1", "f2", "f0_5_best_constant_classifier",
        "f1_best_constant_classifier", "f2_best_constant_classifier"}),
    "multiclass_classification_metrics": frozenset({
        "confusion_matrix", "accuracy", "weighted_recall", "weighted_precision", "weighted_f0_5", "weighted_f1",
        "weighted_f2", "accuracy_best_constant_classifier", "weighted_recall_best_constant_classifier",
        "weighted_precision_best_constant_classifier", "weighted_f0_5_best_constant_classifier",
        "weighted_f1_best_constant_classifier", "weighted_f2_best_constant_classifier"}),
}

# The JSON paths a pipeline's JsonGet accepts: names with dots, [index] and ['quoted'] items.
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\['[^']+'\])*$")
_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']+)'\]")


class ReportError(ValueError):
    """The report or the way to read it is unusable; the message says which and how to fix it."""


def problem_type_of(metric: str) -> str | None:
    """The problem type a SageMaker metric name belongs to, or None when it is in no section or in several."""
    found = [problem for problem, section in SECTIONS.items() if metric in KNOWN_METRICS[section]]
    return found[0] if len(found) == 1 else None


def metric_path(metric: str, problem_type: str | None = None, path: str | None = None) -> str:
    """Where the headline metric is in the report: `path` as given, else `<section>.<metric>.value`."""
    if path:
        check_path(path)
        return path
    problem = problem_type or problem_type_of(metric)
    if problem is None:
        raise ReportError(f"metric '{metric}' is not in one SageMaker model-quality section alone: set metric.problem_type "
                          f"({', '.join(SECTIONS)}) or metric.path (the JSON path of its value in evaluation.json)")
    if problem not in SECTIONS:
        raise ReportError(f"problem type '{problem}' is not one of {', '.join(SECTIONS)}")
    return f"{SECTIONS[problem]}.{metric}.value"


def check_path(path: str) -> str:
    """A JSON path of the form JsonGet reads (`a.b[0].c`, `a['x y'].value`); ReportError otherwise."""
    if not _PATH.match(path):
        raise ReportError(f"'{path}' is not a JSON path like 'metrics.rmse.value' or 'scores[0].value'")
    return path


def value_at(report: Any, path: str) -> Any:
    """The value at a JSON path of the report, or None when the report has nothing there."""
    value = report
    for name, index, quoted in _TOKEN.findall(check_path(path)):
        if index:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        else:
            value = value.get(name or quoted) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def number(value: Any) -> float | None:
    """A finite float from a report value (numbers, or text holding one), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def metrics(report: Any, *, metric: str | None = None, path: str | None = None) -> dict[str, float]:
    """Every number of the report's model-quality sections, plus `metric` read at `path` when both are given.

    Entries that are not numbers (a confusion matrix, a ROC curve) are left out: they cannot be compared or
    graphed. A report that is not a JSON object has no metrics.
    """
    out: dict[str, float] = {}
    if not isinstance(report, dict):
        return out
    for section in SECTIONS.values():
        entries = report.get(section)
        for name, entry in (entries.items() if isinstance(entries, dict) else ()):
            value = number(entry.get("value") if isinstance(entry, dict) else None)
            if value is not None:
                out[str(name)] = value
    if metric and path:
        value = number(value_at(report, path))
        if value is not None:
            out[metric] = value
    return out
