"""The retraining check with the real trigger on moto: the ledger the trigger writes is what the check reads,
`--apply` goes through the trigger client to the trigger's handler (`BuildService.submit`), and the build it
starts holds back the next check. In-process moto runs no function: the injected requester's Lambda client
calls the handler in this process."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from support.trigger_stack import MotoPipelineStarter, provision, subscriptions

from mlops import builds
from mlops.aws.ledger import Ledger
from mlops.aws.queues import Queues
from mlops.aws.slots import Slots
from mlops.cli import cli
from mlops.config.tenants import load_registry
from mlops.local import moto_patches
from mlops.requests import BuildRequest, PipelineStatusEvent
from mlops.trigger_client import TriggerClient, TriggerRequester

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def service(aws, registry_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # pylint: disable=unused-argument
    """The trigger's build service on moto for the repository's registry, installed as the current one."""
    undo_patches = moto_patches.atomic()  # moto atomic per call, as AWS is, for this test only
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
    undo_patches()


def _trained(service: builds.BuildService, tenant: str, model: str, days: float) -> str:
    """A CI build of version 1.0.0 that ended `days` ago, recorded by the trigger and the status path."""
    outcome = service.submit(BuildRequest(source="ci", tenant=tenant, model=model, version="1.0.0", git_commit="abcdef1"))
    ended = datetime.now(timezone.utc) - timedelta(days=days)
    started = (ended - timedelta(hours=1)).isoformat()
    service.record_status(PipelineStatusEvent(execution_id=outcome.execution_id, status="Succeeded", pipeline_execution_arn="arn:x",
                                              at=ended.isoformat(), started_at=started, ended_at=ended.isoformat()))
    return outcome.execution_id


class HandlerLambda:
    """A Lambda client whose `invoke` runs the trigger's handler in this process, with the installed service."""

    def invoke(self, FunctionName: str, Payload: bytes) -> dict:  # pylint: disable=invalid-name  # boto3's parameter names
        """Lambda Invoke, RequestResponse."""
        from mlops.local.lambda_runtime import LambdaContext, load_handler  # pylint: disable=import-outside-toplevel

        answer = load_handler(ROOT / "lambda", "trigger")(json.loads(Payload), LambdaContext(FunctionName))
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


def _through_the_trigger() -> dict:
    """The `obj` of a check whose --apply reaches the trigger's handler through the trigger client."""
    client = TriggerClient(HandlerLambda(), "mlops-demo-trigger")
    return {"build_requester": TriggerRequester(client, datetime.now(timezone.utc))}


def _check(*args: str, obj: dict | None = None) -> dict:
    result = CliRunner().invoke(cli, ["retrain-check", "--json", "--data-from", "ledger", *args], obj=obj)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return json.loads(result.stdout)


def test_stale_model_is_retrained_once_through_the_trigger(service) -> None:
    _trained(service, "globex", "churn", days=20)  # globex overrides max age to 14 days
    _trained(service, "acme", "churn", days=20)  # acme keeps the default 30
    _trained(service, "acme", "house-prices", days=1)

    first = _check("--apply", obj=_through_the_trigger())
    decisions = {(d["tenant"], d["model"]): d for d in first["decisions"]}
    assert decisions[("globex", "churn")]["action"] == "retrain"
    assert decisions[("globex", "churn")]["live_version"] == "1.0.0"
    assert decisions[("acme", "churn")]["action"] == "keep"
    (applied,) = first["applied"]
    assert applied["tenant"] == "globex" and applied["request"].split()[0] in {"started", "queued"}

    retrain = [i for i in service.ledger.scan(tenant="globex") if i.get("source") == "retrain"]
    assert len(retrain) == 1 and retrain[0]["version"] == "1.0.0" and "max age 14 days" in retrain[0]["reason"]

    second = _check("--apply", obj=_through_the_trigger())  # the same day: the build now holds it back
    globex = next(d for d in second["decisions"] if d["tenant"] == "globex")
    assert globex["action"] == "wait" and globex["reasons"][0]["code"] == "running"
    assert not second["applied"]


def _upload(service: builds.BuildService, tenant: str, key: str, at: datetime) -> dict:
    """One S3 upload event through the trigger Lambda's handler, as the uploads queue delivers it."""
    from mlops.local.lambda_runtime import LambdaContext, load_handler, sqs_event  # pylint: disable=import-outside-toplevel

    names = service.names
    event = {"version": "0", "id": key, "detail-type": "Object Created", "source": "aws.s3", "account": names.account_id,
             "time": at.isoformat().replace("+00:00", "Z"), "region": names.region, "resources": [],
             "detail": {"bucket": {"name": names.tenant_bucket(tenant)}, "object": {"key": key, "etag": key, "sequencer": "1"}}}
    arn = f"arn:aws:sqs:{names.region}:{names.account_id}:{names.events_queue('uploads')}"
    builds.use_service(lambda: (service, builds.HandlerConfig()))
    handler = load_handler(Path(__file__).resolve().parents[2] / "lambda", "trigger")
    return handler(sqs_event([{"MessageId": key, "ReceiptHandle": key, "Body": json.dumps(event)}], arn), LambdaContext("trigger"))


def _state(service: builds.BuildService, tenant: str, model: str) -> dict:
    from mlops.aws.dynamo import from_attrs  # pylint: disable=import-outside-toplevel
    from mlops.aws.ledger import state_key  # pylint: disable=import-outside-toplevel

    item = service.ledger.client.get_item(TableName=service.ledger.table, Key=state_key(tenant, model)).get("Item")
    return from_attrs(item or {})


@pytest.fixture
def globex_scheduled(registry_dir: Path) -> None:
    """globex's uploads wait for the daily check (`retrain_on_upload: scheduled`); acme keeps the default."""
    path = registry_dir / "tenants" / "globex.yaml"
    path.write_text(path.read_text() + "retrain_on_upload: scheduled\n")


def test_the_state_item_follows_uploads_builds_and_their_end(globex_scheduled, service) -> None:  # pylint: disable=unused-argument
    now = datetime.now(timezone.utc)
    assert _upload(service, "acme", "data/churn/a.csv", now - timedelta(hours=2)) == {"batchItemFailures": []}
    (build,) = service.ledger.scan(tenant="acme")
    state = _state(service, "acme", "churn")
    assert state["active"] == [build["execution_id"]] and state["uploaded_at"].startswith((now - timedelta(hours=2)).isoformat()[:16])
    assert "trained_ended_at" not in state
    assert _check()["decisions"][0]["action"] == "wait"  # acme x churn: its upload's build is running

    ended = now - timedelta(hours=1)
    service.record_status(PipelineStatusEvent(execution_id=build["execution_id"], status="Succeeded", pipeline_execution_arn="arn:x",
                                              at=ended.isoformat(), started_at=(ended - timedelta(minutes=30)).isoformat(),
                                              ended_at=ended.isoformat()))
    state = _state(service, "acme", "churn")
    assert "active" not in state  # the set's last member was deleted with the terminal status
    assert state["trained_execution"] == build["execution_id"] and state["trained_ended_at"].startswith(ended.isoformat()[:19])

    older = PipelineStatusEvent(execution_id=build["execution_id"], status="Succeeded", pipeline_execution_arn="arn:x",
                                at=ended.isoformat(), ended_at=(ended - timedelta(days=3)).isoformat())
    assert service.record_status(older).result == "stale" and _state(service, "acme", "churn") == state  # redelivered: no change


def test_a_scheduled_tenant_upload_is_recorded_and_the_check_starts_it_as_new_data(globex_scheduled, service) -> None:  # pylint: disable=unused-argument
    trained = _trained(service, "globex", "churn", days=2)
    later = datetime.now(timezone.utc) - timedelta(hours=1)
    assert _upload(service, "globex", "data/churn/b.csv", later) == {"batchItemFailures": []}
    assert [i["execution_id"] for i in service.ledger.scan(tenant="globex")] == [trained]  # recorded, no build started
    assert _state(service, "globex", "churn")["uploaded_at"].startswith(later.isoformat()[:16])

    first = _check("--apply", "--tenant", "globex", obj=_through_the_trigger())
    (decision,) = first["decisions"]
    assert decision["action"] == "retrain" and [r["code"] for r in decision["reasons"]] == ["new-data"]
    assert first["applied"][0]["request"].split()[0] in {"started", "queued"}
    assert len(service.ledger.scan(tenant="globex")) == 2
    assert not [c for c in first["aws_calls"] if c.startswith("s3.")]
