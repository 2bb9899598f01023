"""The retraining check with the real trigger on moto: the ledger the trigger writes is what the check reads,
`--apply` goes through `BuildService.submit`, and the build it starts holds back the next check."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from mlops import builds
from mlops.aws.ledger import Ledger
from mlops.aws.queues import Queues
from mlops.aws.slots import Slots
from mlops.cli import cli
from mlops.config.tenants import load_registry
from mlops.local.lambda_runtime import make_moto_dynamodb_atomic
from mlops.local.trigger_stack import MotoPipelineStarter, provision, subscriptions
from mlops.requests import BuildRequest, PipelineStatusEvent


@pytest.fixture
def service(aws, registry_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # pylint: disable=unused-argument
    """The trigger's build service on moto for the repository's registry, installed as the current one."""
    make_moto_dynamodb_atomic()
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    registry = load_registry(registry_dir / "platform.yaml", registry_dir / "tenants")
    names = registry.names()
    dynamodb, sqs, sagemaker = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("sagemaker")
    provision(dynamodb, sqs, sagemaker, names, list(registry.platform.tiers), subscriptions(registry))
    ecr = boto3.client("ecr")
    config = {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "application/vnd.docker.container.image.v1+json"}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": config, "layers": []})
    for model in registry.platform.models:
        ecr.create_repository(repositoryName=names.ecr_repository(model))
        ecr.put_image(repositoryName=names.ecr_repository(model), imageManifest=manifest, imageTag="1.0.0")
    built = builds.BuildService(registry=registry, ledger=Ledger(dynamodb, names.ledger_table()),
                                slots=Slots(dynamodb, names.slots_table()), queues=Queues(sqs),
                                start=MotoPipelineStarter(sagemaker, names))
    builds.use_service(lambda: (built, None))
    yield built
    builds.use_service(None)


def _trained(service: builds.BuildService, tenant: str, model: str, days: float) -> str:
    """A CI build of version 1.0.0 that ended `days` ago, recorded by the trigger and the status path."""
    outcome = service.submit(BuildRequest(source="ci", tenant=tenant, model=model, version="1.0.0", git_commit="abcdef1"))
    ended = datetime.now(timezone.utc) - timedelta(days=days)
    started = (ended - timedelta(hours=1)).isoformat()
    service.record_status(PipelineStatusEvent(execution_id=outcome.execution_id, status="Succeeded", pipeline_execution_arn="arn:x",
                                              at=ended.isoformat(), started_at=started, ended_at=ended.isoformat()))
    return outcome.execution_id


def _check(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["retrain-check", "--json", "--data-from", "ledger", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return json.loads(result.stdout)


def test_stale_model_is_retrained_once_through_the_trigger(service) -> None:
    _trained(service, "globex", "churn", days=20)  # globex overrides max age to 14 days
    _trained(service, "acme", "churn", days=20)  # acme keeps the default 30
    _trained(service, "acme", "house-prices", days=1)

    first = _check("--apply", "--trigger", "in-process")
    decisions = {(d["tenant"], d["model"]): d for d in first["decisions"]}
    assert decisions[("globex", "churn")]["action"] == "retrain"
    assert decisions[("globex", "churn")]["live_version"] == "1.0.0"
    assert decisions[("acme", "churn")]["action"] == "keep"
    (applied,) = first["applied"]
    assert applied["tenant"] == "globex" and applied["request"].split()[0] in {"started", "queued"}

    retrain = [i for i in service.ledger.scan(tenant="globex") if i.get("source") == "retrain"]
    assert len(retrain) == 1 and retrain[0]["version"] == "1.0.0" and "max age 14 days" in retrain[0]["reason"]

    second = _check("--apply", "--trigger", "in-process")  # the same day: the build now holds it back
    globex = next(d for d in second["decisions"] if d["tenant"] == "globex")
    assert globex["action"] == "wait" and globex["reasons"][0]["code"] == "running"
    assert not second["applied"]
