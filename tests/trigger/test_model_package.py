"""Every succeeded build records its registered model package in the ledger, whatever started it.

The CI path (`mlops train --wait`) follows its execution and writes the package it sees; an upload or the
retraining check starts builds nobody follows, so the status handler asks the `model_package` port on the
Succeeded event: ListPipelineExecutionSteps (the RegisterModel step's metadata), which the local AWS answers
too (tests/local/test_pipelines_api.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber
from trigger_helpers import Stack, upload_event

from mlops.pipeline.progress import model_package_port
from mlops.requests import parse_status_event, status_event
from mlops.statuses import SUCCEEDED
from mlops.uploads import parse_upload_event

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/trig-globex-churn/3"


def _upload(stack: Stack, key: str = "data/churn/2026/01.csv") -> Any:
    names = stack.names
    return parse_upload_event(upload_event(names, "globex", "churn", key), names.project, names.region,
                              list(stack.registry.tenants))


def _event(execution_id: str, arn: str, status: str = "Succeeded") -> Any:
    return parse_status_event(json.dumps(status_event(execution_id, status, arn, started_at="2026-01-01T00:00:00Z",
                                                      ended_at="2026-01-01T00:10:00Z")))


def _stubbed_port(steps: list[dict[str, Any]], arn: str) -> tuple[Any, Stubber]:
    import boto3

    sagemaker = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(sagemaker)
    stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, {"PipelineExecutionArn": arn})
    return model_package_port(sagemaker=sagemaker), stub


def test_an_upload_started_build_gets_the_package_its_execution_registered(stack: Stack) -> None:
    asked: list[str] = []
    service = stack.service(model_package=lambda arn: asked.append(arn) or PACKAGE)
    started = service.submit(_upload(stack))
    assert started.result == "started" and service.ledger.get(started.execution_id)["source"] == "upload"
    arn = started.pipeline_execution_arn

    assert service.record_status(_event(started.execution_id, arn)).result == "applied"
    assert service.record_status(_event(started.execution_id, arn)).result == "stale"  # the duplicate changes nothing
    assert asked == [arn]
    item = service.ledger.get(started.execution_id)
    assert (item["status"], item["model_package_arn"]) == (SUCCEEDED, PACKAGE)
    assert service.slots.read_tier("silver", 2).inflight == 0


def test_a_failed_build_asks_for_no_package(stack: Stack) -> None:
    asked: list[str] = []
    service = stack.service(model_package=lambda arn: asked.append(arn) or PACKAGE)
    started = service.submit(_upload(stack))
    assert service.record_status(_event(started.execution_id, started.pipeline_execution_arn, "Failed")).result == "applied"
    assert not asked
    assert "model_package_arn" not in service.ledger.get(started.execution_id)


def test_a_port_that_fails_costs_the_package_not_the_status_or_the_slot(stack: Stack) -> None:
    def broken(arn: str) -> str:
        raise RuntimeError(f"throttled while listing the steps of {arn}")

    service = stack.service(model_package=broken)
    started = service.submit(_upload(stack))
    assert service.record_status(_event(started.execution_id, started.pipeline_execution_arn)).result == "applied"
    item = service.ledger.get(started.execution_id)
    assert item["status"] == SUCCEEDED and "model_package_arn" not in item
    assert service.slots.read_tier("silver", 2).inflight == 0


@pytest.mark.parametrize("steps, expected", [
    pytest.param([{"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": "arn:job"}}},
                  {"StepName": "Register", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": PACKAGE}}}],
                 PACKAGE, id="registered"),
    pytest.param([{"StepName": "Gate", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "False"}}}],
                 None, id="gate-refused-nothing-registered"),
])
def test_the_port_reads_the_register_step_of_the_execution(steps: list[dict[str, Any]], expected: str | None) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/trig-globex-churn/execution/abc123"
    port, stub = _stubbed_port(steps, arn)
    with stub:
        assert port(arn) == expected
        stub.assert_no_pending_responses()
