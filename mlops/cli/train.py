"""`mlops pipeline definition|upsert` and `mlops train`: the model's pipeline and one tenant's execution of it.

`pipeline definition` prints the SageMaker pipeline definition JSON built from a model repo's mlops.yaml;
`pipeline upsert` uploads the repo's sources and creates or updates the pipeline. `train` starts one
tenant's execution (through `mlops.pipeline.start.start_for_request`, the function the trigger calls too)
and, with --wait, follows it step by step to its metrics and registered model package. Heavy modules
(boto3, the SageMaker SDK) are imported inside the commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, info, json_option
from mlops.errors import MlopsError

_repo_option = click.option("--repo", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                            envvar="MLOPS_MODEL_REPO", help="Model repository holding mlops.yaml [MLOPS_MODEL_REPO].")
_model_option = click.option("--model", help="Model name (default: the one in mlops.yaml; must match it).")


def _contract(repo: Path, model: str | None) -> Any:
    from mlops.config.contract import load_contract

    contract = load_contract(repo)
    if model and model != contract.model:
        raise MlopsError(f"--model {model} does not match model '{contract.model}' in {repo / 'mlops.yaml'}",
                         "pass the model repository of that model")
    return contract


def _definition(contract: Any, pipeline_name: str) -> str:
    from mlops.pipeline.builder import definition_json

    return definition_json(contract, pipeline_name=pipeline_name)


@click.group()
def pipeline() -> None:
    """The SageMaker pipeline of a model: one definition shared by every tenant."""


@pipeline.command("definition")
@_repo_option
@_model_option
@click.option("--name", "pipeline_name", help="Pipeline name (default: the platform's name for the model).")
def definition(repo: Path, model: str | None, pipeline_name: str | None) -> None:
    """Print the pipeline definition JSON (tenant values are parameters, never baked in)."""
    from mlops.naming import Names

    contract = _contract(repo, model)
    name = pipeline_name or Names(contract.project).pipeline(contract.model)
    click.echo(json.dumps(json.loads(_definition(contract, name)), indent=2))


def upload_sources(session: Any, names: Any, repo: Path, model: str) -> tuple[str, str]:
    """Upload the model repo's source bundle to the artifacts bucket; (code URI, digest)."""
    from mlops.aws import sagemaker as adapter
    from mlops.pipeline.source import bundle

    try:
        sources = bundle(repo)
    except ValueError as exc:
        raise MlopsError(str(exc)) from None
    code_uri = adapter.upload_source_bundle(session.client("s3"), bucket=names.artifacts_bucket(), model=model, bundle=sources)
    return code_uri, sources.digest


def upsert(session: Any, registry: Any, repo: Path, model: str | None) -> dict[str, Any]:
    """Build the definition, upload the sources and create or update the pipeline."""
    from mlops.aws import sagemaker as adapter
    from mlops.pipeline.start import account_id

    contract = _contract(repo, model)
    if contract.project != registry.platform.project:
        raise MlopsError(f"{repo / 'mlops.yaml'} belongs to project '{contract.project}', "
                         f"this platform is '{registry.platform.project}'", "fix `project` in mlops.yaml")
    if contract.model not in registry.platform.models:
        raise MlopsError(f"model '{contract.model}' is not in platform.yaml", f"known models: {', '.join(registry.platform.models)}")
    names = registry.names(account_id(session))
    name = names.pipeline(contract.model)
    code_uri, digest = upload_sources(session, names, repo, contract.model)
    adapter.write_code_pointer(session.client("s3"), bucket=names.artifacts_bucket(), model=contract.model,
                               code_uri=code_uri, digest=digest)
    role = f"arn:aws:iam::{names.account_id}:role/{names.service_role('sagemaker')}"
    arn, created = adapter.upsert_pipeline(
        session.client("sagemaker"), name=name, definition=_definition(contract, name), role_arn=role,
        description=f"{contract.model}: {contract.description}"[:3072],
        tags={"mlops:project": contract.project, "mlops:model": contract.model},
    )
    return {"pipeline": name, "pipeline_arn": arn, "created": created, "code_uri": code_uri, "model": contract.model}


@pipeline.command("upsert")
@_repo_option
@_model_option
@json_option
def upsert_command(repo: Path, model: str | None, as_json: bool) -> None:
    """Upload the model's sources and create or update its pipeline."""
    import boto3

    from mlops.config.tenants import load_from_settings

    data = upsert(boto3.session.Session(), load_from_settings(), repo, model)
    emit(data, as_json, lambda d: info(f"{'created' if d['created'] else 'updated'} pipeline {d['pipeline']} (code {d['code_uri']})"))


def _git_commit(repo: Path) -> str | None:
    """The model repo's commit: $CI_COMMIT_SHA in CI, else `git rev-parse HEAD` when it is a git checkout."""
    if os.environ.get("CI_COMMIT_SHA"):
        return os.environ["CI_COMMIT_SHA"]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def _print_step(_status: Any, step: dict[str, Any]) -> None:
    state = step.get("StepStatus", "")
    line = f"  {step['StepName']:<24} {state:<10}"
    if step.get("Seconds") is not None and state in ("Succeeded", "Failed"):
        line += f" {step['Seconds']:.1f} s"
    if state == "Succeeded" and "Condition" in step.get("Metadata", {}):
        line += f" outcome {step['Metadata']['Condition']['Outcome']}"
    if state == "Failed" and step.get("FailureReason"):
        line += f" {step['FailureReason']}"
    info(line)


def _render(data: dict[str, Any]) -> None:
    info(f"execution {data['execution_arn']}: {data['status']}")
    if data.get("failure_reason"):
        info(f"  reason: {data['failure_reason']}")
    failed = [s for s in data.get("steps", []) if s.get("StepStatus") == "Failed" and s.get("StderrTail")]
    for step in failed:
        info(f"  last output of {step['StepName']} ({step.get('LogFile', '')}):")
        for line in step["StderrTail"].splitlines()[-10:]:
            info(f"    | {line}")
    if data.get("metrics"):
        info("  metrics: " + ", ".join(f"{k}={v}" for k, v in data["metrics"].items()))
    if data.get("model_package_arn"):
        info(f"  registered model package: {data['model_package_arn']}")
    elif data.get("status") == "Succeeded":
        info("  no model package was registered")


def _dedup_id() -> str:
    """What makes a CI or manual start distinct: the CI job, else a fresh id (a person asked for a new run)."""
    import uuid

    return os.environ.get("CI_JOB_ID") or os.environ.get("CI_PIPELINE_ID") or uuid.uuid4().hex


@click.command()
@click.option("--tenant", help="Tenant id from the registry.")
@_model_option
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path), envvar="MLOPS_MODEL_REPO",
              help="Model repository: its sources are uploaded and the pipeline updated before the start [MLOPS_MODEL_REPO].")
@click.option("--version", "version", help="Model (image) version; default: the latest release in ECR.")
@click.option("--approval-status", type=click.Choice(["PendingManualApproval", "Approved", "Rejected"]),
              default="PendingManualApproval", show_default=True, help="Approval status of the registered model package.")
@click.option("--wait", is_flag=True, help="Follow the execution step by step until it ends.")
@click.option("--follow", "follow_arn", help="Follow an execution that is already running (no start).")
@click.option("--timeout", type=float, default=3 * 3600, show_default=True, help="Seconds --wait waits.")
@json_option
def train(  # pylint: disable=too-many-locals  # the command wires start and follow in one place
        tenant: str | None, model: str | None, repo: Path | None, version: str | None, approval_status: str,
          wait: bool, follow_arn: str | None, timeout: float, as_json: bool) -> None:
    """Start a tenant's training pipeline execution (and with --wait, follow it to its model package)."""
    import boto3

    from mlops.config.tenants import load_from_settings
    from mlops.local.engine import local_engine_enabled
    from mlops.pipeline import progress
    from mlops.pipeline.start import pipeline_names, start_for_request
    from mlops.requests import BuildRequest

    session = boto3.session.Session()
    registry = load_from_settings()
    local = local_engine_enabled()
    if follow_arn:
        arn, record_bucket = follow_arn, pipeline_names(session, registry).artifacts_bucket()
    else:
        if not tenant or not (model or repo):
            raise MlopsError("--tenant and --model (or --repo) are required to start an execution", "or pass --follow ARN")
        parameters = {"ModelApprovalStatus": approval_status}
        commit = None
        if repo is not None:
            contract = upsert(session, registry, repo, model)
            model = contract["model"]
            parameters["CodeUri"] = contract["code_uri"]
            commit = _git_commit(repo)
            action = "created" if contract["created"] else "updated"
            info(f"pipeline {contract['pipeline']} {action}; sources {contract['code_uri']}")
        request = BuildRequest(source="ci", tenant=tenant, model=str(model), version=version, git_commit=commit,
                               parameters=parameters, dedup_id=_dedup_id(), reason="mlops train")
        started = start_for_request(request, request.client_request_token, session=session, registry=registry)
        for note in started.notes:
            info(f"note: {note}")
        info(f"started {started.arn} for tenant {tenant} "
             f"({started.parameters['InstanceType']}, version {started.parameters['ModelVersion']})")
        arn, record_bucket = started.arn, started.record_bucket
        if not wait:
            emit({"execution_arn": arn, "status": "Executing", "parameters": started.parameters}, as_json, lambda d: None)
            return
    sm, s3 = session.client("sagemaker"), session.client("s3")
    begun = time.time()

    def read() -> Any:
        return progress.local_status(s3, record_bucket, arn, begun) if local else progress.aws_status(sm, s3, arn)

    # Step progress goes to stderr, so it shows in CI logs also when stdout carries --json for a script.
    final = progress.follow(read, _print_step, timeout=timeout)
    emit(final.as_dict(), as_json, _render)
    if final.status != "Succeeded":
        raise SystemExit(1)
