"""The definition's expression language, evaluated as SageMaker does (pure, no AWS)."""

from __future__ import annotations

import pytest

from mlops.local.engine_expressions import (Context, ExpressionError, evaluate_condition, execution_order, parameter_values,
                                            resolve, split_path)

REPORT = {"metrics": {"auc": {"value": 0.8}}, "folds": [{"auc": 0.7}]}


@pytest.fixture
def ctx() -> Context:
    """Values as they stand after Prep and Eval ran."""
    return Context(
        parameters={"Out": "s3://b/runs", "Count": 2},
        execution={"PipelineExecutionId": "abc123"},
        steps={"Prep": {"ProcessingOutputConfig": {"Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/t"}}]}}},
        read_property_file=lambda step, name: REPORT if (step, name) == ("Eval", "Report") else None,
    )


def _json_get(path: str) -> dict:
    return {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": path}}


@pytest.mark.parametrize(("expression", "expected"), [
    pytest.param({"Get": "Parameters.Out"}, "s3://b/runs", id="parameter"),
    pytest.param({"Get": "Execution.PipelineExecutionId"}, "abc123", id="execution-variable"),
    pytest.param({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}, "s3://b/t", id="step-property"),
    pytest.param({"Std:Join": {"On": "/", "Values": [{"Get": "Parameters.Out"}, {"Get": "Execution.PipelineExecutionId"}, "x"]}},
                 "s3://b/runs/abc123/x", id="join"),
    pytest.param({"Std:Join": {"On": "", "Values": ["n=", {"Get": "Parameters.Count"}, " ", True]}}, "n=2 true", id="join-renders"),
    pytest.param(_json_get("metrics.auc.value"), 0.8, id="json-get"),
    pytest.param(_json_get("folds[0].auc"), 0.7, id="json-get-index"),
    pytest.param({"A": [{"Get": "Parameters.Count"}]}, {"A": [2]}, id="nested"),
])
def test_resolve(ctx: Context, expression: dict, expected: object) -> None:
    assert resolve(expression, ctx) == expected


@pytest.mark.parametrize(("expression", "message"), [
    pytest.param({"Get": "Parameters.Nope"}, "undeclared parameter 'Nope'", id="unknown-parameter"),
    pytest.param({"Get": "Steps.Later.X"}, "step 'Later' has not run", id="step-not-run"),
    pytest.param(_json_get("metrics.rmse.value"), "has no value at 'metrics.rmse.value'", id="metric-missing"),
])
def test_resolve_errors_say_what_is_missing(ctx: Context, expression: dict, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(expression, ctx)


@pytest.mark.parametrize(("condition", "expected"), [
    pytest.param({"Type": "GreaterThanOrEqualTo", "LeftValue": _json_get("metrics.auc.value"), "RightValue": 0.8}, True, id="ge-equal"),
    pytest.param({"Type": "GreaterThanOrEqualTo", "LeftValue": _json_get("metrics.auc.value"), "RightValue": 0.81}, False, id="ge-below"),
    pytest.param({"Type": "LessThanOrEqualTo", "LeftValue": _json_get("metrics.auc.value"), "RightValue": 0.9}, True, id="le"),
    pytest.param({"Type": "Equals", "LeftValue": {"Get": "Parameters.Count"}, "RightValue": "2"}, True, id="equals-numeric-text"),
    pytest.param({"Type": "Not", "Expression": {"Type": "LessThan", "LeftValue": 1, "RightValue": 2}}, False, id="not"),
    pytest.param({"Type": "Or", "Conditions": [{"Type": "GreaterThan", "LeftValue": 1, "RightValue": 2},
                                               {"Type": "In", "QueryValue": 2, "Values": [1, 2]}]}, True, id="or-in"),
])
def test_conditions(ctx: Context, condition: dict, expected: bool) -> None:
    assert evaluate_condition(condition, ctx) is expected


def test_parameters_are_typed_and_defaulted() -> None:
    declared = [{"Name": "A", "Type": "String"}, {"Name": "N", "Type": "Integer", "DefaultValue": 1}, {"Name": "F", "Type": "Float"}]
    assert parameter_values(declared, {"A": "x", "F": "0.5"}) == {"A": "x", "N": 1, "F": 0.5}
    with pytest.raises(ExpressionError, match="without a value: A"):
        parameter_values(declared, {"F": "1"})


def test_split_path() -> None:
    assert split_path("Outputs['train'].S3Output.S3Uri") == ["Outputs", "train", "S3Output", "S3Uri"]
    assert split_path("a[0].b") == ["a", 0, "b"]


def test_execution_order_follows_references_and_nested_branches() -> None:
    steps = [
        {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [{"LeftValue": {"Get": "Steps.Eval.X"}}],
                                                             "IfSteps": [{"Name": "Reg", "Arguments": {"M": {"Get": "Steps.Train.Y"}}}]}},
        {"Name": "Eval", "Arguments": {"In": {"Get": "Steps.Train.Z"}}},
        {"Name": "Train", "Arguments": {}, "DependsOn": ["Prep"]},
        {"Name": "Prep", "Arguments": {}},
    ]
    assert [s["Name"] for s in execution_order(steps)] == ["Prep", "Train", "Eval", "Check"]
    with pytest.raises(ExpressionError, match="cycle"):
        execution_order([{"Name": "A", "DependsOn": ["B"]}, {"Name": "B", "DependsOn": ["A"]}])
