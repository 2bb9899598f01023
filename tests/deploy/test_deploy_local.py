"""Deploying to the local AWS: real predictions through the inference script, blue/green with health checks,
rollback, reject, malformed input and tenant isolation, through the `mlops` CLI and boto3 alone.

The local AWS runs as a server with its endpoints stand-in (mlops.local.endpoints_api), as after `mlops
local up`; the CLI finds it through AWS_ENDPOINT_URL and makes the calls it makes on SageMaker.
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
GLOBEX = "mlops-demo-staging-globex-churn"


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
    assert f"endpoint {ENDPOINT}: Creating" in err and f"endpoint {ENDPOINT}: InService" in err
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]

    local_aws.register("acme", "churn", "2.0.0", {"auc": 0.85})
    code, out, err = mlops(capsys, "gate", "--tenant", "acme", "--model", "churn", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "deploy"
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn", "--strategy", "linear")
    assert code == 0, err
    assert "blue/green update 1.0.0 -> 2.0.0 (LINEAR, auto-rollback on alarms)" in err
    assert f"endpoint {ENDPOINT}: Updating" in err
    assert predictions(capsys, "acme", rows) == [2.0, 2.0]
    assert [(e["outcome"], e["version"]) for e in _log(tmp_path)] == [("deployed", "1.0.0"), ("deployed", "2.0.0")]

    code, out, err = mlops(capsys, "invoke", "--tenant", "acme", "--model", "churn", "--body", str(rows),
                           "--content-type", "application/json")
    assert code == 1 and out == ""
    assert err == "error: mlops-demo-staging-acme-churn rejected the input: unsupported content type 'application/json'; " \
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
    assert "rolled back:" in err and "model_fn failed" in err and f"1.0.0 keeps serving {ENDPOINT}" in err
    assert "rolled-back: mlops-demo-staging-acme-churn serves 1.0.0" in out
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]
    last = _log(tmp_path)[-1]
    assert (last["outcome"], last["version"], last["serving_version"]) == ("rolled-back", "2.0.0", "1.0.0")
    assert "health check" in last["reasons"][-1]
    assert local_aws.sm.describe_model_package(ModelPackageName=broken)["ModelApprovalStatus"] == "PendingManualApproval"
    code, out, _ = mlops(capsys, "gate", "--tenant", "acme", "--model", "churn", "--json")
    assert json.loads(out)["champion"]["version"] == "1.0.0", "the endpoint still serves the champion's config"


@pytest.mark.slow
def test_a_failed_first_deployment_is_replaced_by_the_next(local_aws: Any, capsys: pytest.CaptureFixture[str], rows: Path,
                                                          tmp_path: Path) -> None:
    local_aws.register("acme", "churn", "1.0.0", {"auc": 0.80}, broken=True)
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")
    assert code == 1 and f"endpoint {ENDPOINT}: Failed" in err
    assert "failed: mlops-demo-staging-acme-churn serves nothing" in out
    assert local_aws.sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "Failed"
    code, _, err = mlops(capsys, "invoke", "--tenant", "acme", "--model", "churn", "--body", str(rows))
    assert code == 1 and f"endpoint {ENDPOINT} does not exist or is not in service" in err

    local_aws.register("acme", "churn", "1.1.0", {"auc": 0.80})
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")
    assert code == 0, err
    assert "the endpoint is Failed" in err and "deleting it to create it again" in err
    assert "deployed: mlops-demo-staging-acme-churn serves 1.1.0" in out
    assert predictions(capsys, "acme", rows) == [1.0, 1.0]
    assert [(e["outcome"], e["version"]) for e in _log(tmp_path)] == [("failed", "1.0.0"), ("deployed", "1.1.0")]


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


def _as_tenant_role(url: str, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the CLI signs as a role tagged with `tenant` (as the tenant's deploy role is)."""
    import boto3

    iam, sts = boto3.client("iam", endpoint_url=url), boto3.client("sts", endpoint_url=url)
    role = f"mlops-demo-deploy-staging-{tenant}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}", Tags=[{"Key": "mlops:tenant", "Value": tenant}])
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName="deploy-job")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])


@pytest.mark.slow
def test_a_tenant_never_reaches_another_tenants_endpoint(local_aws: Any, deploy_moto: Any, capsys: pytest.CaptureFixture[str],
                                                         rows: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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

    # globex's endpoint made to point at acme's server: the server answers for its own endpoint and tenant only.
    endpoints = LocalEndpoints(deploy_moto.state_dir)
    acme = endpoints.live(ENDPOINT)
    assert acme is not None
    live_file = deploy_moto.state_dir / "endpoints" / GLOBEX / "live.json"
    tampered = json.loads(live_file.read_text(encoding="utf-8"))
    live_file.write_text(json.dumps({**tampered, "port": acme.port, "pid": acme.pid}), encoding="utf-8")
    code, _, err = mlops(capsys, "invoke", "--tenant", "globex", "--model", "churn", "--body", str(rows))
    assert code == 1 and f"not allowed to invoke {GLOBEX}: AccessDeniedException" in err
    live_file.write_text(json.dumps(tampered), encoding="utf-8")

    # A caller of globex (its deploy role) is refused acme's endpoint by the local AWS, as by IAM on AWS.
    _as_tenant_role(deploy_moto.url, "globex", monkeypatch)
    assert predictions(capsys, "globex", rows) == [22.0, 22.0]
    code, _, err = mlops(capsys, "invoke", "--tenant", "acme", "--model", "churn", "--body", str(rows))
    assert code == 1 and f"not allowed to invoke {ENDPOINT}: AccessDeniedException" in err


@pytest.mark.slow
def test_an_endpoint_whose_server_stopped_serves_again(local_aws: Any, deploy_moto: Any, capsys: pytest.CaptureFixture[str],
                                                      rows: Path) -> None:
    local_aws.register("acme", "churn", "1.0.0", {"auc": 0.80})
    assert mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")[0] == 0
    assert LocalEndpoints(deploy_moto.state_dir).stop_all() == [ENDPOINT]
    assert predictions(capsys, "acme", rows) == [1.0, 1.0], "started again, as SageMaker replaces a failed instance"
    code, out, err = mlops(capsys, "deploy", "--tenant", "acme", "--model", "churn")
    assert code == 0, err
    assert "unchanged: mlops-demo-staging-acme-churn serves 1.0.0" in out
