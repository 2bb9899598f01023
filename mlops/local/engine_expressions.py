"""The expression language of a SageMaker pipeline definition, evaluated the way SageMaker does.

A definition refers to run-time values with `{"Get": "Parameters.X"}`, `{"Get": "Execution.PipelineExecutionId"}`,
`{"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}`, `{"Std:Join": ...}` and `{"Std:JsonGet": ...}`
(a value read from a step's property file), and a condition step compares such values. This module resolves
them over plain data (parameter values, execution variables, each finished step's properties and a reader
for property files) and finds the step graph. Pure: no AWS, no files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_:-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class ExpressionError(Exception):
    """A value the definition refers to does not exist; the message says which and why."""


@dataclass
class Context:
    """What expressions are evaluated against."""

    parameters: dict[str, Any]
    execution: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (step name, property file name) -> the parsed JSON document of that property file
    read_property_file: Callable[[str, str], Any] = lambda step, name: None


def parameter_values(declared: list[dict[str, Any]], given: dict[str, str]) -> dict[str, Any]:
    """Typed values of every declared parameter: the execution's value, else the default."""
    values: dict[str, Any] = {}
    missing = []
    for param in declared:
        name, kind = param["Name"], param.get("Type", "String")
        if name in given:
            raw: Any = given[name]
        elif "DefaultValue" in param:
            raw = param["DefaultValue"]
        else:
            missing.append(name)
            continue
        values[name] = _typed(name, kind, raw)
    if missing:
        raise ExpressionError(f"pipeline parameter(s) without a value: {', '.join(missing)}")
    return values


def _typed(name: str, kind: str, raw: Any) -> Any:
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            return raw if isinstance(raw, bool) else str(raw).lower() == "true"
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"parameter {name} must be {kind}, got {raw!r}") from exc
    return str(raw)


def split_path(path: str) -> list[str | int]:
    """`Outputs['train'].S3Output.S3Uri` -> ['Outputs', 'train', 'S3Output', 'S3Uri']; `a[0]` -> ['a', 0]."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot read the property path '{path}'")
        name, index, quoted, dquoted = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(name if name is not None else quoted if quoted is not None else dquoted)
        pos = match.end()
    return parts


def walk(document: Any, parts: list[str | int], what: str) -> Any:
    """Follow a split path through dicts and lists; a named item of a list matches its `*Name` key."""
    value = document
    for i, part in enumerate(parts):
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, str):
            named = [item for item in value if isinstance(item, dict) and part in
                     (item.get("OutputName"), item.get("InputName"), item.get("ChannelName"), item.get("MetricName"), item.get("Name"))]
            if not named:
                raise ExpressionError(f"{what} has no '{_render(parts[:i + 1])}'")
            value = named[0]
        else:
            raise ExpressionError(f"{what} has no '{_render(parts[:i + 1])}'")
    return value


def _render(parts: list[str | int]) -> str:
    return ".".join(str(p) for p in parts)


def resolve(value: Any, ctx: Context) -> Any:
    """Evaluate every expression inside `value` (recursively); plain values come back unchanged."""
    if isinstance(value, list):
        return [resolve(item, ctx) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return _get(value["Get"], ctx)
    if set(value) == {"Std:Join"}:
        spec = value["Std:Join"]
        return str(spec.get("On", "")).join(to_text(resolve(item, ctx)) for item in spec.get("Values", []))
    if set(value) == {"Std:JsonGet"}:
        return _json_get(value["Std:JsonGet"], ctx)
    return {key: resolve(item, ctx) for key, item in value.items()}


def to_text(value: Any) -> str:
    """How SageMaker renders a value inside Std:Join (JSON for booleans and containers)."""
    if isinstance(value, (bool, dict, list)):
        return json.dumps(value)
    return str(value)


def _get(path: str, ctx: Context) -> Any:
    root, _, rest = path.partition(".")
    if root == "Parameters":
        if rest not in ctx.parameters:
            raise ExpressionError(f"the definition refers to an undeclared parameter '{rest}'")
        return ctx.parameters[rest]
    if root == "Execution":
        if rest not in ctx.execution:
            raise ExpressionError(f"unknown execution variable '{rest}'")
        return ctx.execution[rest]
    if root == "Steps":
        step, _, prop = rest.partition(".")
        if prop.startswith("PropertyFiles."):
            return {"PropertyFile": (step, prop.split(".", 1)[1])}
        if step not in ctx.steps:
            raise ExpressionError(f"step '{step}' has not run, so '{path}' has no value")
        return walk(ctx.steps[step], split_path(prop), f"step {step}")
    raise ExpressionError(f"cannot evaluate '{path}'")


def _json_get(spec: dict[str, Any], ctx: Context) -> Any:
    ref = resolve(spec.get("PropertyFile"), ctx)
    if not (isinstance(ref, dict) and "PropertyFile" in ref):
        raise ExpressionError("Std:JsonGet needs a property file reference")
    step, name = ref["PropertyFile"]
    document = ctx.read_property_file(step, name)
    path = spec.get("Path", "")
    parts = split_path(path)
    try:
        return walk(document, parts, f"property file {name} of step {step}")
    except ExpressionError:
        raise ExpressionError(f"property file {name} of step {step} has no value at '{path}'") from None


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def evaluate_condition(condition: dict[str, Any], ctx: Context) -> bool:
    """One condition of a ConditionStep (comparisons, In, Not, Or)."""
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left, right = resolve(condition["LeftValue"], ctx), resolve(condition["RightValue"], ctx)
        left, right = _comparable(left, right)
        try:
            return _COMPARISONS[kind](left, right)
        except TypeError as exc:
            raise ExpressionError(f"cannot compare {left!r} with {right!r} ({kind})") from exc
    if kind == "In":
        return resolve(condition["QueryValue"], ctx) in resolve(condition["Values"], ctx)
    if kind == "Not":
        return not evaluate_condition(condition["Expression"], ctx)
    if kind == "Or":
        return any(evaluate_condition(item, ctx) for item in condition["Conditions"])
    raise ExpressionError(f"unsupported condition type '{kind}'")


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Numbers read from JSON may arrive as text; compare them as numbers, as SageMaker does."""
    if isinstance(left, (int, float)) and isinstance(right, str) or isinstance(right, (int, float)) and isinstance(left, str):
        try:
            return float(left), float(right)
        except ValueError:
            return left, right
    return left, right


def step_references(value: Any) -> Iterator[str]:
    """Names of the steps an expression tree refers to."""
    if isinstance(value, list):
        for item in value:
            yield from step_references(item)
    elif isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            yield get.split(".")[1]
        for item in value.values():
            yield from step_references(item)


def execution_order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level steps in an order that respects data references and DependsOn (Kahn, stable)."""
    by_name = {step["Name"]: step for step in steps}
    nested = {inner["Name"]: step["Name"] for step in steps if step.get("Type") == "Condition"
              for branch in ("IfSteps", "ElseSteps") for inner in step.get("Arguments", {}).get(branch, [])}
    needs: dict[str, set[str]] = {}
    for step in steps:
        refs = set(step_references(step.get("Arguments", {}))) | set(step.get("DependsOn", []))
        refs |= set(step_references(step.get("PropertyFiles", [])))
        needs[step["Name"]] = {nested.get(ref, ref) for ref in refs if nested.get(ref, ref) != step["Name"]}
        unknown = [ref for ref in needs[step["Name"]] if ref not in by_name]
        if unknown:
            raise ExpressionError(f"step {step['Name']} refers to unknown step(s) {', '.join(unknown)}")
    order: list[dict[str, Any]] = []
    done: set[str] = set()
    while len(order) < len(steps):
        ready = [step for step in steps if step["Name"] not in done and needs[step["Name"]] <= done]
        if not ready:
            raise ExpressionError("the steps depend on each other in a cycle")
        order.append(ready[0])
        done.add(ready[0]["Name"])
    return order
