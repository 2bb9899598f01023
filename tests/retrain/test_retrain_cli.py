"""`mlops retrain-check` end to end on in-process moto: table, JSON, Markdown report, dry run and --apply."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from mlops.cli import cli
from mlops.errors import MlopsError
from mlops.retrain import RetrainRequest, Submitted
from mlops.trigger_client import TriggerClient, TriggerRequester


class FakeTrigger:
    """A BuildRequester that records what it was asked to submit."""

    def __init__(self, fail_for: str | None = None):
        self.requests: list = []
        self.fail_for = fail_for

    def submit(self, requests):  # type: ignore[no-untyped-def]
        """Queue each request, or reject those of the one tenant told to fail."""
        self.requests += requests
        return [Submitted(r.tenant, r.model, "rejected", detail="trigger refused (try later)") if r.tenant == self.fail_for
                else Submitted(r.tenant, r.model, "queued", f"{r.tenant}-{r.model}-req") for r in requests]


@pytest.fixture
def registry(registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's registry (acme: churn + house-prices, gold; globex: churn, bronze, 14-day override)."""
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    return registry_dir


def _run(*args: str, obj: dict | None = None):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["retrain-check", *args], obj=obj)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_json_decisions_and_reasons(seeded, registry) -> None:  # pylint: disable=unused-argument
    result = _run("--json")
    data = json.loads(result.stdout)
    by_key = {(d["tenant"], d["model"]): d for d in data["decisions"]}
    assert by_key[("acme", "churn")]["action"] == "retrain"  # data uploaded after its training two days ago
    assert [r["code"] for r in by_key[("acme", "churn")]["reasons"]] == ["new-data"]
    assert by_key[("acme", "churn")]["package_version"] == 2
    assert [r["code"] for r in by_key[("acme", "house-prices")]["reasons"]] == ["max-age", "new-data"]
    assert by_key[("globex", "churn")]["action"] == "wait"
    assert by_key[("old-co", "churn")]["action"] == "skip"
    assert data["dry_run"] is True and not data["applied"]
    assert any("'latest'" in p for p in data["problems"])
    assert data["aws_calls"]["sts.GetCallerIdentity"] == 1


def test_table_and_markdown_report(seeded, registry, tmp_path: Path) -> None:  # pylint: disable=unused-argument
    report = tmp_path / "out" / "retrain.md"
    result = _run("--report", str(report))
    assert "Retraining check" in result.stdout and "house-prices" in result.stdout
    assert "dry run: 2 model(s) would be retrained" in result.stderr
    assert "problem: " in result.stderr and result.exit_code == 1  # a problem line is a failed check
    assert "AWS calls:" not in result.stderr  # a debug figure: only with --verbose
    assert "AWS calls:" in _run("--verbose").stderr
    text = report.read_text()
    assert "| acme | house-prices | 1.0.0 |" in text and "## Problems" in text


def test_apply_sends_requests_through_the_port(seeded, registry) -> None:  # pylint: disable=unused-argument
    trigger = FakeTrigger(fail_for="nobody")
    data = json.loads(_run("--apply", "--json", obj={"build_requester": trigger}).stdout)
    assert sorted((r.tenant, r.model) for r in trigger.requests) == [("acme", "churn"), ("acme", "house-prices")]
    assert {r.version for r in trigger.requests} == {"1.1.0", "1.0.0"}
    assert data["dry_run"] is False and len(data["applied"]) == 2
    assert {a["request"] for a in data["applied"]} == {"queued acme-churn-req", "queued acme-house-prices-req"}
    assert trigger.requests[0].reason.startswith("retrain-check: data uploaded")


def test_a_failed_request_is_reported(seeded, registry) -> None:  # pylint: disable=unused-argument
    data = json.loads(_run("--apply", "--json", "--model", "churn", obj={"build_requester": FakeTrigger(fail_for="acme")}).stdout)
    assert data["applied"] == [{"tenant": "acme", "model": "churn", "request": "rejected: trigger refused (try later)"}]
    assert any("the retraining request was rejected: trigger refused (try later)" in p for p in data["problems"])


def test_filters_simulated_clock_and_contract_policy(seeded, registry, tmp_path: Path) -> None:  # pylint: disable=unused-argument
    contract = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "churn" / "mlops.yaml").read_text())
    contract["retraining"] = {"max_age_days": 1, "on_new_data": False}
    (tmp_path / "mlops.yaml").write_text(yaml.safe_dump(contract))
    for name in ("preprocess", "train", "evaluate", "inference"):
        (tmp_path / contract["entry_points"][name]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / contract["entry_points"][name]).touch()
    if contract.get("requirements"):
        (tmp_path / contract["requirements"]).touch()
    data = json.loads(_run("--json", "--tenant", "acme", "--model", "churn", "--contract", str(tmp_path)).stdout)
    (decision,) = data["decisions"]
    assert [r["code"] for r in decision["reasons"]] == ["max-age"]
    assert "(mlops.yaml)" in decision["reasons"][0]["text"]


def test_data_from_the_ledger_lists_no_bucket(seeded, registry) -> None:  # pylint: disable=unused-argument
    data = json.loads(_run("--json", "--data-from", "ledger").stdout)
    assert not any(k.startswith("s3.") for k in data["aws_calls"])


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--tenant", "nobody"], "unknown tenant 'nobody'", id="unknown-tenant"),
    pytest.param(["--model", "nope"], "unknown model 'nope'", id="unknown-model"),
    pytest.param(["--now", "yesterday"], "is not an ISO 8601 time", id="bad-clock"),
])
def test_bad_input_is_one_line(aws, registry, args, message) -> None:  # pylint: disable=unused-argument
    with pytest.raises(MlopsError, match=message):
        _run(*args)


def _payload(document: object) -> dict:
    body = json.dumps(document).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}


def test_the_trigger_requester_batches_requests_in_one_invocation() -> None:
    client = boto3.client("lambda", region_name="us-east-1")
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    with Stubber(client) as stub:
        stub.add_response("invoke", _payload({"results": [{"result": "started", "execution_id": "acme-churn-1"},
                                                          {"result": "rejected", "detail": "unknown model"}]}),
                          {"FunctionName": "mlops-demo-trigger", "Payload": ANY})
        stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded")
        stub.add_response("invoke", _payload({"results": [{"result": "error", "detail": "DynamoDB throttled (send it again)"}]}),
                          {"FunctionName": "mlops-demo-trigger", "Payload": ANY})
        trigger = TriggerRequester(TriggerClient(client, "mlops-demo-trigger"), now)
        trigger.batch = 2
        requests = [RetrainRequest("acme", m, "1.0.0", ("max-age",), "retrain-check: old", "k")
                    for m in ("churn", "nope", "house-prices", "x", "y")]
        done = trigger.submit(requests)
    assert [(d.model, d.result) for d in done] == [("churn", "started"), ("nope", "rejected"), ("house-prices", "failed"),
                                                   ("x", "failed"), ("y", "failed")]
    assert (done[2].detail or "").startswith("cannot invoke the trigger mlops-demo-trigger: TooManyRequestsException: Rate exceeded")
    assert done[4].detail == "DynamoDB throttled (send it again)" and not done[4].accepted  # not recorded: a failure


@pytest.mark.parametrize(("answer", "message"), [
    pytest.param({"FunctionError": "Unhandled", "document": {"errorType": "KeyError", "errorMessage": "'requests'"}},
                 "the trigger mlops-demo-trigger failed: KeyError: 'requests'", id="function-error"),
    pytest.param({"document": {"results": []}}, "the trigger mlops-demo-trigger gave an unexpected answer", id="too-few-results"),
    pytest.param({"document": "null"}, "the trigger mlops-demo-trigger gave an unexpected answer", id="not-an-object"),
])
def test_a_failed_invocation_is_one_line(answer: dict, message: str) -> None:
    client = boto3.client("lambda", region_name="us-east-1")
    response = _payload(answer["document"])
    if "FunctionError" in answer:
        response["FunctionError"] = answer["FunctionError"]
    with Stubber(client) as stub, pytest.raises(MlopsError) as caught:
        stub.add_response("invoke", response, {"FunctionName": "mlops-demo-trigger", "Payload": ANY})
        TriggerClient(client, "mlops-demo-trigger").invoke([{"source": "ci"}])
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.one_line() and "/aws/lambda/mlops-demo-trigger" in (caught.value.hint or "")


def test_access_denied_names_the_permission() -> None:
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stub, pytest.raises(MlopsError) as caught:
        stub.add_client_error("invoke", "AccessDeniedException", "not authorized to perform lambda:InvokeFunction")
        TriggerClient(client, "mlops-demo-trigger").invoke([{"source": "ci"}])
    assert caught.value.message == "not allowed to invoke the trigger mlops-demo-trigger: AccessDeniedException"
    assert "lambda:InvokeFunction" in (caught.value.hint or "")
