"""`mlops gate`, `mlops deploy`, `mlops reject` and `mlops invoke`: the deploy stage's commands.

Wiring only: tenant and model are checked against the registry and every name comes from mlops.naming;
the gate is `mlops.gate`, the deployment is `mlops.deploys` over `mlops.aws.endpoints` (SageMaker and its runtime API through boto3,
the same calls against AWS and against the local AWS of `mlops local up`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, info, json_option, table
from mlops.errors import MlopsError
from mlops.naming import ENVIRONMENTS

_tenant = click.option("--tenant", "tenant_id", required=True, help="Tenant id from the registry.")
_model = click.option("--model", required=True, help="Model name from platform.yaml.")
_environment = click.option("--environment", type=click.Choice(ENVIRONMENTS), envvar="MLOPS_ENVIRONMENT", default="staging",
                            show_default=True,
                            help="Deployment environment: its own endpoint and, in CI, its own role [MLOPS_ENVIRONMENT].")
_repo = click.option("--repo", type=click.Path(path_type=Path), envvar="MLOPS_MODEL_REPO",
                     help="Model repository holding mlops.yaml (metric, direction, min_improvement) [MLOPS_MODEL_REPO].")
_OUTCOME_FAILS = {"refused", "rolled-back", "failed"}


def actor() -> str:
    """Who runs this: the GitLab user in CI, else the local user."""
    return os.environ.get("GITLAB_USER_LOGIN") or os.environ.get("USER") or "unknown"


class _Context:
    """Registry, target and the deployer for one tenant and model."""

    def __init__(self, tenant_id: str, model: str, environment: str):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        from mlops.aws.endpoints import JsonlDeploymentLog, LedgerDeploymentLog, Target
        from mlops.deploys import Deployer
        from mlops.config.tenants import load_from_settings
        from mlops.settings import Settings

        self.settings = Settings.from_env()
        registry = load_from_settings(self.settings)
        registry.check_model(tenant_id, model)  # before any AWS call: untrusted input is checked first
        session = boto3.session.Session(region_name=registry.platform.region)
        self.session = session
        try:
            account = session.client("sts").get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as exc:
            raise MlopsError(f"cannot reach AWS to find the account: {exc}",
                             "check credentials, or source the env file of mlops local up") from exc
        self.target = Target.from_registry(registry, tenant_id, model, account, environment)
        ledger = registry.names(account).ledger_table()
        dynamodb = session.client("dynamodb")
        if LedgerDeploymentLog.exists(dynamodb, ledger):
            self.log: Any = LedgerDeploymentLog(dynamodb, ledger)
            self.log_place = f"ledger table {ledger}"
        else:
            self.log = JsonlDeploymentLog(self.settings.state_dir / "deployments.jsonl")
            self.log_place = f"{self.log.path} (no ledger table {ledger} in this account)"
        self.deployer = Deployer(session.client("sagemaker"), session.client("s3"), session.client("cloudwatch"), self.log,
                                 progress=info)


def _rule(repo: Path | None, model: str) -> Any:
    if repo is None:
        return None
    from mlops.config.contract import load_contract
    from mlops.gate import MetricRule

    contract = load_contract(repo)
    if contract.model != model:
        raise MlopsError(f"{repo} holds model '{contract.model}', not '{model}'", "pass the repository of this model with --repo")
    return MetricRule.from_contract(contract.metric)


def _force(force: bool, reason: str | None) -> Any:
    if not force:
        if reason:
            raise MlopsError("--reason without --force", "add --force, or drop --reason")
        return None
    from mlops.gate import Force

    return Force(actor=actor(), reason=reason or "")


def _render_decision(data: dict[str, Any]) -> None:
    decision = data["decision"] if "decision" in data else data
    champion = decision.get("champion") or {}
    challenger = decision["challenger"]
    metric = decision["metric"]
    table(f"gate: {decision['outcome']} ({'deploy' if decision['deploy'] else 'do not deploy'})",
          ["", "version", metric, "package"],
          [["challenger", challenger["version"], challenger["metrics"].get(metric, "missing"), challenger.get("package_arn")],
           ["champion", champion.get("version", "none"), (champion.get("metrics") or {}).get(metric, "-") if champion else "-",
            champion.get("package_arn", "")]])
    for reason in decision["reasons"]:
        info(f"  - {reason}")


@click.command()
@_tenant
@_model
@click.option("--version", help="Challenger version (semantic version or package-N); default: the newest not rejected.")
@_environment
@_repo
@json_option
def gate(tenant_id: str, model: str, version: str | None, environment: str, repo: Path | None, as_json: bool) -> None:  # pylint: disable=too-many-arguments,too-many-positional-arguments  # CLI options
    """Compare a challenger model with the tenant's champion and decide; exit 1 when the gate refuses."""
    ctx = _Context(tenant_id, model, environment)
    _, _, decision = ctx.deployer.gate(ctx.target, _rule(repo, model), version)
    data = {"tenant": tenant_id, "model": model, "endpoint": ctx.target.endpoint, **decision.as_dict()}
    emit(data, as_json, _render_decision)
    if decision.outcome == "refuse":
        sys.exit(1)


@click.command()
@_tenant
@_model
@click.option("--version", help="Version to deploy (semantic version or package-N); default: the newest not rejected.")
@click.option("--force", is_flag=True, help="Deploy even if the gate refuses (needs --reason; recorded with who forced it).")
@click.option("--reason", help="Why the gate is overridden (with --force).")
@click.option("--strategy", type=click.Choice(["canary", "linear", "all-at-once"]), default="canary", show_default=True,
              help="Blue/green traffic shifting on SageMaker.")
@_environment
@_repo
@json_option
def deploy(tenant_id: str, model: str, version: str | None, force: bool, reason: str | None, strategy: str,  # pylint: disable=too-many-arguments,too-many-positional-arguments  # CLI options
           environment: str, repo: Path | None, as_json: bool) -> None:
    """Deploy a tenant's model version to its endpoint of one environment (blue/green, rollback); exit 1 unless it serves."""
    forced = _force(force, reason)
    ctx = _Context(tenant_id, model, environment)
    result = ctx.deployer.deploy(ctx.target, _rule(repo, model), version, strategy, forced, actor())

    def render(data: dict[str, Any]) -> None:
        _render_decision(data)
        for line in data["reasons"][len(data["decision"]["reasons"]):]:
            info(f"  - {line}")
        click.echo(f"{data['outcome']}: {data['endpoint']} serves {data['serving_version'] or 'nothing'} "
                   f"(recorded in {ctx.log_place})")

    emit(result, as_json, render)
    if result["outcome"] in _OUTCOME_FAILS:
        sys.exit(1)


@click.command()
@_tenant
@_model
@click.option("--version", required=True, help="The version to reject (semantic version or package-N).")
@click.option("--reason", required=True, help="Why it is rejected, or with --revert why the rejection is taken back (recorded).")
@click.option("--revert", is_flag=True,
              help="Take a rejection back: the version gets the approval status it had before; nothing is deployed.")
@_environment
@json_option
def reject(tenant_id: str, model: str, version: str, reason: str, revert: bool, environment: str, as_json: bool) -> None:  # pylint: disable=too-many-arguments,too-many-positional-arguments  # CLI options
    """Reject a model version; if it is live in the environment, roll back to the previous approved one (--revert takes it back)."""
    ctx = _Context(tenant_id, model, environment)
    if revert:
        result = ctx.deployer.revert_rejection(ctx.target, version, reason, actor())
    else:
        result = ctx.deployer.reject(ctx.target, version, reason, actor())

    def render(data: dict[str, Any]) -> None:
        for line in data["reasons"]:
            info(f"  - {line}")
        what = "rejection reverted" if data["outcome"] == "reverted" else "rejected"
        click.echo(f"{data['outcome']}: {data['version']} {what}; {data['endpoint']} serves {data['serving_version'] or 'nothing'}")

    emit(result, as_json, render)


def _content_type(body: str, given: str | None) -> str:
    if given:
        return given
    return {".json": "application/json", ".csv": "text/csv"}.get(Path(body).suffix.lower(), "text/csv")


def _read_body(body: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if body == "-" else Path(body).read_bytes()
    except OSError as exc:
        raise MlopsError(f"cannot read the request body {body}: {exc.strerror}", "pass an existing file or - for stdin") from exc


def _send(region: str, endpoint: str, request: tuple[bytes, str, str]) -> tuple[bytes, str]:
    """(answer, its content type) of one request to `endpoint`, through SageMaker's runtime API."""
    import boto3

    from mlops.aws.endpoints import invoke_endpoint

    payload, kind, accept = request
    runtime = boto3.session.Session(region_name=region).client("sagemaker-runtime")
    return invoke_endpoint(runtime, endpoint, payload, kind, accept)


@click.command()
@_tenant
@_model
@click.option("--body", required=True, help="File with the request body ('-' for standard input).")
@click.option("--content-type", help="Request content type (default: from the file extension, else text/csv).")
@click.option("--accept", default="application/json", show_default=True, help="Response content type.")
@_environment
@json_option
def invoke(tenant_id: str, model: str, body: str, content_type: str | None, accept: str,  # pylint: disable=too-many-arguments,too-many-positional-arguments  # CLI options
           environment: str, as_json: bool) -> None:
    """Send rows to a tenant's endpoint and print the predictions."""
    from mlops.config.tenants import load_from_settings
    from mlops.settings import Settings

    settings = Settings.from_env()
    registry = load_from_settings(settings)
    tenant = registry.check_model(tenant_id, model)
    endpoint = registry.names().endpoint(tenant.id, model, environment)  # never a name from the caller
    request = (_read_body(body), _content_type(body, content_type), accept)
    answer, answer_type = _send(registry.platform.region, endpoint, request)
    text = answer.decode("utf-8", errors="replace")
    if as_json:
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        emit({"tenant": tenant.id, "model": model, "endpoint": endpoint, "content_type": answer_type, "response": parsed},
             True, lambda _d: None)
        return
    info(f"{endpoint} answered {answer_type or 'a response'}")
    click.echo(text.rstrip("\n"))
