"""Local endpoints: real predictions through the inference script, blue/green with health checks,
rollback, reject, malformed input and tenant isolation, through the `mlops` CLI against a moto server.

The model servers are separate processes, so these tests run the local AWS as a moto server (the CLI
finds it through AWS_ENDPOINT_URL on loopback, as after `mlops local up`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.aws.endpoints import JsonlDeploymentLog, list_versions
from mlops.cli import main
from mlops.errors import MlopsError
from mlops.local.serving import LocalEndpoints, prepare_version

ENDPOINT = "mlops-demo-staging-acme-churn"


def mlops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def predictions(capsys: pytest.CaptureFixture[str], tenant: str, body: Path, model: str = "churn") -> list[float]:
    """The predictions `mlops invoke --json` prints for a tenant."""
    code, out, err = mlops(capsys, "invoke", "--tenant", tenant, "--model", model, "--body", str(body), "--json")
    assert code == 0, err
    return json.loads(out)["response"]["predictions"]


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    """Two rows of two numbers."""
    path = tmp_path / "rows.csv"
    path.write_text("0.5,1.5\n2.0,3.0\n", encoding="utf-8")
    return path


def _log(tmp_path: Path) -> list[dict[str, Any]]:
    return JsonlDeploymentLog(tmp_path / "state" / "deployments.jsonl").events(ENDPOINT)


@pytest.mark.parametrize("code", ["submit-dir", "source-uri", "model-tar"])
def test_prepare_finds_the_inference_code_wherever_the_package_carries_it(packages: Any, tmp_path: Path, code: str) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8}, code=code)
    item = list_versions(packages.sm, packages.group("acme", "churn"))[0]
    prepared = prepare_version(packages.s3, item.description, tmp_path / "v1")
    assert prepared.program.name == "inference.py" and (prepared.model_dir / "model.joblib").is_file()


def test_prepare_without_inference_code_says_what_is_missing(packages: Any, tmp_path: Path) -> None:
    packages.register("acme", "churn", "1.0.0", {"auc": 0.8}, code="none")
    item = list_versions(packages.sm, packages.group("acme", "churn"))[0]
    with pytest.raises(MlopsError, match="carries no inference module"):
        prepare_version(packages.s3, item.description, tmp_path / "v1")


@pytest.mark.slow
def test_deploy_invoke_and_blue_green_upgrade(local_aws: Any, capsys: pytest.CaptureFixture[str], rows: Path, tmp_path: Path) -> None:
    local_aws.register("acme", "churn", "1.0.0", {"auc": 0.80})
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")
    assert code == 0, err
    assert "deployed: mlops-demo-staging-acme-churn serves 1.0.0" in out
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]

    local_aws.register("acme", "churn", "2.0.0", {"auc": 0.85})
    code, out, err = mlops(capsys, "gate", "--tenant", "acme", "--model", "churn", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "deploy"
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn", "--strategy", "linear")
    assert code == 0, err
    assert "the local runtime performs the blue/green switch itself" in err
    assert "blue 1.0.0 stopped" in err
    assert predictions(capsys, "acme", rows) == [2.0, 2.0]
    assert [(e["outcome"], e["version"]) for e in _log(tmp_path)] == [("deployed", "1.0.0"), ("deployed", "2.0.0")]

    code, out, err = mlops(capsys, "invoke", "--tenant", "acme", "--model", "churn", "--body", str(rows),
                           "--content-type", "application/json")
    assert code == 1 and out == ""
    assert err == "error: mlops-demo-staging-acme-churn (2.0.0) rejected the input: unsupported content type 'application/json'; " \
                  "send text/csv (fix the request body)\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("1.0,abc\n", encoding="utf-8")
    code, out, err = mlops(capsys, "invoke", "--tenant", "acme", "--model", "churn", "--body", str(bad))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "rejected the input: row 1: expected numbers, got '1.0,abc'" in err


@pytest.mark.slow
def test_failed_health_check_leaves_the_previous_version_serving(local_aws: Any, capsys: pytest.CaptureFixture[str], rows: Path,
                                                               tmp_path: Path) -> None:
    local_aws.register("acme", "churn", "1.0.0", {"auc": 0.80})
    assert mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")[0] == 0
    broken = local_aws.register("acme", "churn", "2.0.0", {"auc": 0.95}, broken=True)
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")
    assert code == 1
    assert "UNHEALTHY" in err and "model_fn failed" in err
    assert "rolled-back: mlops-demo-staging-acme-churn serves 1.0.0" in out
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]
    last = _log(tmp_path)[-1]
    assert (last["outcome"], last["version"], last["serving_version"]) == ("rolled-back", "2.0.0", "1.0.0")
    assert "health check failed" in last["reasons"][-1]
    assert local_aws.sm.describe_model_package(ModelPackageName=broken)["ModelApprovalStatus"] == "PendingManualApproval"
    code, out, _ = mlops(capsys, "gate", "--tenant", "acme", "--model", "churn", "--json")
    assert json.loads(out)["champion"]["version"] == "1.0.0", "the local AWS endpoint still points at the champion"


@pytest.mark.slow
def test_rejecting_the_live_version_restores_the_previous_approved(local_aws: Any, capsys: pytest.CaptureFixture[str], rows: Path,
                                                                  tmp_path: Path) -> None:
    local_aws.register("acme", "churn", "1.0.0", {"auc": 0.80})
    assert mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")[0] == 0
    local_aws.register("acme", "churn", "2.0.0", {"auc": 0.70})
    code, _, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")
    assert code == 1 and "worse than the champion" in err
    code, _, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn", "--force", "--reason", "needs the new column")
    assert code == 0, err
    assert predictions(capsys, "acme", rows) == [2.0, 2.0]
    code, out, err = mlops(capsys, "reject", "--tenant", "acme", "--model", "churn", "--version", "2.0.0", "--reason", "drifted in prod")
    assert code == 0, err
    assert "rolled-back: 2.0.0 rejected; mlops-demo-staging-acme-churn serves 1.0.0" in out
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]
    events = [(e["kind"], e["outcome"], e["version"], e["actor"], e["forced"]) for e in _log(tmp_path)]
    assert events == [("deploy", "deployed", "1.0.0", "alice", False), ("deploy", "refused", "2.0.0", "alice", False),
                      ("deploy", "deployed", "2.0.0", "alice", True), ("reject", "rolled-back", "2.0.0", "alice", False),
                      ("rollback", "deployed", "1.0.0", "alice", False)]
    # Taken back: 2.0.0 is Approved again (as before its rejection) and deployable; nothing moved yet.
    code, out, err = mlops(capsys, "reject", "--tenant", "acme", "--model", "churn", "--version", "2.0.0", "--revert",
                           "--reason", "the drift was a broken feed")
    assert code == 0, err
    assert "reverted: 2.0.0 rejection reverted; mlops-demo-staging-acme-churn serves 1.0.0" in out
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]


@pytest.mark.slow
def test_a_tenant_never_reaches_another_tenants_endpoint(local_aws: Any, capsys: pytest.CaptureFixture[str], rows: Path,
                                                         tmp_path: Path) -> None:
    local_aws.register("acme", "churn", "1.0.0", {"auc": 0.80}, constant=11.0)
    local_aws.register("globex", "churn", "1.0.0", {"auc": 0.80}, constant=22.0)
    assert mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")[0] == 0
    assert mlops(capsys, "deploy", "--tenant", "globex", "--model", "churn")[0] == 0
    assert predictions(capsys, "acme", rows) == [11.0, 11.0]
    assert predictions(capsys, "globex", rows) == [22.0, 22.0]

    code, _, err = mlops(capsys, "invoke", "--tenant", "globex", "--model", "house-prices", "--body", str(rows))
    assert code == 1 and "tenant 'globex' does not train model 'house-prices'" in err
    code, _, err = mlops(capsys, "invoke", "--tenant", "initech", "--model", "churn", "--body", str(rows))
    assert code == 1 and "unknown tenant 'initech'" in err

    endpoints = LocalEndpoints(tmp_path / "state")
    acme = endpoints.live(ENDPOINT)
    assert acme is not None
    live_file = tmp_path / "state" / "endpoints" / "mlops-demo-staging-globex-churn" / "live.json"
    tampered = json.loads(live_file.read_text(encoding="utf-8"))
    live_file.write_text(json.dumps({**tampered, "port": acme.port}), encoding="utf-8")  # globex's entry now points at acme's server
    code, _, err = mlops(capsys, "invoke", "--tenant", "globex", "--model", "churn", "--body", str(rows))
    assert code == 1 and "refused the request: this server serves endpoint mlops-demo-staging-acme-churn of its own tenant only" in err
    live_file.write_text(json.dumps({**tampered, "tenant": "acme"}), encoding="utf-8")
    code, _, err = mlops(capsys, "invoke", "--tenant", "globex", "--model", "churn", "--body", str(rows))
    assert code == 1 and "does not belong to tenant globex" in err


@pytest.mark.slow
def test_deploying_the_champion_again_restarts_a_stopped_local_server(local_aws: Any, capsys: pytest.CaptureFixture[str], rows: Path,
                                                                     tmp_path: Path) -> None:
    local_aws.register("acme", "churn", "1.0.0", {"auc": 0.80})
    assert mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")[0] == 0
    assert LocalEndpoints(tmp_path / "state").stop_all() == [ENDPOINT]
    code, _, err = mlops(capsys, "invoke", "--tenant", "acme", "--model", "churn", "--body", str(rows))
    assert code == 1 and "is not deployed locally" in err
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")
    assert code == 0, err
    assert "unchanged: mlops-demo-staging-acme-churn serves 1.0.0" in out and "restarting it" in err
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]
