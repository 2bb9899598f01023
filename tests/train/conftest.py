"""Fixtures of the train stage: a tiny model repo, tenant resources on moto, and a registered pipeline.

The tests build what they need with boto3 (buckets, model package groups, tenant data, the trigger
function and its tables and queues), never with Terraform, so they run whether or not `mlops local up` works
on this machine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from support.trigger_stack import provision as provision_trigger
from train_helpers import NAMES, ROOT, TINY_MODEL, LocalAws, deploy_trigger, provision

from mlops import builds
from mlops.config.contract import load_contract
from mlops.config.tenants import load_registry
from mlops.local.lambda_runtime import EventSourceMapping, LocalLambdaRuntime, load_handler


@pytest.fixture(scope="session")
def churn_definition() -> str:
    """The definition of the example churn model (built once: the SDK import takes seconds)."""
    from mlops.pipeline.builder import definition_json

    return definition_json(load_contract(ROOT / "examples" / "churn"), pipeline_name=NAMES.pipeline("acme", "churn"))


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Callable[..., Path]:
    """A copy of the tiny model repo; keyword arguments change its mlops.yaml (metric=..., hyperparameters=...)."""

    def make(**changes: Any) -> Path:
        repo = tmp_path / f"tiny-{len(list(tmp_path.glob('tiny-*')))}"
        shutil.copytree(TINY_MODEL, repo)
        contract = yaml.safe_load((repo / "mlops.yaml").read_text(encoding="utf-8"))
        for key, value in changes.items():
            contract[key] = {**contract[key], **value} if isinstance(value, dict) and isinstance(contract.get(key), dict) else value
        (repo / "mlops.yaml").write_text(yaml.safe_dump(contract), encoding="utf-8")
        return repo

    return make


@pytest.fixture
def local_aws(aws: None) -> Iterator[LocalAws]:  # pylint: disable=unused-argument  # `aws` starts moto
    """In-process moto, provisioned."""
    session = boto3.session.Session(region_name="us-east-1")
    provision(session)
    yield LocalAws(session, session.client("s3"), session.client("sagemaker"))


def _route_status_events(session: boto3.session.Session) -> None:
    """What Terraform routes to the status queue: SageMaker's pipeline status changes (the engine puts them)."""
    sqs, events = session.client("sqs"), session.client("events")
    url = sqs.get_queue_url(QueueName=NAMES.events_queue("status"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"]}
    events.put_rule(Name=NAMES.platform_rule("pipeline-status"), EventPattern=json.dumps(pattern))
    events.put_targets(Rule=NAMES.platform_rule("pipeline-status"), Targets=[{"Id": "status-queue", "Arn": arn}])


@pytest.fixture
def server_env(moto_server: str, registry_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """The environment `mlops` sees after `mlops local up`: a moto server endpoint, the registry, a state dir,
    the trigger function with its tables and queues (`mlops train` invokes it), and the status queue's
    consumer, as the local Lambda runtime of `mlops local up` runs it, so the ledger records each end."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CI_COMMIT_SHA", raising=False)
    session = boto3.session.Session(region_name="us-east-1")
    provision(session)
    # `mlops train` goes through the trigger: its ledger, slot table and queues (no pipelines: train upserts them).
    registry = load_registry(registry_dir / "platform.yaml", registry_dir / "tenants")
    dynamodb = session.client("dynamodb")
    if registry.names().ledger_table() not in dynamodb.list_tables()["TableNames"]:  # the server lives for the session
        provision_trigger(dynamodb, session.client("sqs"), session.client("sagemaker"), registry.names(),
                          list(registry.platform.tiers), {})
    deploy_trigger(session, registry_dir)
    _route_status_events(session)
    # A build a test left running holds its tier slot: every test starts with free tiers.
    slots = registry.names().slots_table()
    for item in dynamodb.scan(TableName=slots, ProjectionExpression="pk, sk").get("Items", []):
        dynamodb.delete_item(TableName=slots, Key=item)
    builds.use_service(None)  # the status handler builds its service from this test's environment
    status = EventSourceMapping(session.client("sqs"), NAMES.events_queue("status"), load_handler(ROOT / "lambda", "status"), "status")
    runtime = LocalLambdaRuntime(mappings=[status])
    runtime.start()
    try:
        yield LocalAws(session, session.client("s3"), session.client("sagemaker"))
    finally:
        runtime.stop()
        builds.use_service(None)
