"""`mlops pipeline definition|upsert` and `mlops train`: the model's pipeline and one tenant's execution of it.

`pipeline definition` prints the SageMaker pipeline definition JSON built from a model repo's mlops.yaml;
`pipeline upsert` uploads the repo's sources and creates or updates the pipeline of each tenant that trains
the model (one pipeline per tenant and model, same definition: the use case is `mlops.pipeline.upsert`).
`train` asks the trigger Lambda for one tenant's build (a `BuildRequest`, source `ci`) with Lambda Invoke
(`mlops.trigger_client`). The trigger starts it at once or queues it for a tier slot; with --wait, `train`
waits for the start (the ledger item gets its execution ARN), follows the execution step by step to its
metrics and registered model package, and shows the ledger's final status. Heavy modules (boto3, the
SageMaker SDK) are imported inside the commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, fmt_number, fmt_seconds, info, json_option
from mlops.errors import MlopsError
from mlops.statuses import SM_EXECUTING, SM_FAILED, SM_SUCCEEDED, TERMINAL

_repo_option = click.option("--repo", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                            envvar="MLOPS_MODEL_REPO", help="Model repository holding mlops.yaml [MLOPS_MODEL_REPO].")
_model_option = click.option("--model", help="Model name (default: the one in mlops.yaml; must match it).")
#: How long `--wait` gives the status function to record the end in the ledger.
LEDGER_WAIT_SECONDS = 60.0


@click.group()
def pipeline() -> None:
    """The SageMaker pipelines of a model: one definition, one pipeline per tenant that trains it."""


@pipeline.command("definition")
@_repo_option
@_model_option
@click.option("--name", "pipeline_name",
              help="Pipeline name given to the SDK; it is not part of the definition (default: <project>-<model>).")
@json_option
def definition(repo: Path, model: str | None, pipeline_name: str | None, as_json: bool) -> None:
    """Print the pipeline definition JSON (tenant values are parameters, never baked in; JSON with or without --json)."""
    from mlops.naming import definition_name
    from mlops.pipeline.upsert import contract_of, definition as build_definition

    contract = contract_of(repo, model)
    name = pipeline_name or definition_name(contract.project, contract.model)
    emit(json.loads(build_definition(contract, name)), as_json, lambda data: click.echo(json.dumps(data, indent=2)))


def _render_upsert(data: dict[str, Any]) -> None:
    if not data["pipelines"]:
        info(f"sources of {data['model']} uploaded ({data['code_uri']}); no enabled tenant trains it, so no pipeline was written")
        return
    for item in data["pipelines"]:
        info(f"{'created' if item['created'] else 'updated'} pipeline {item['pipeline']} ({item['tenant']})")
    info(f"sources {data['code_uri']}")


@pipeline.command("upsert")
@_repo_option
@_model_option
@click.option("--tenant", "tenants", multiple=True,
              help="Only this tenant's pipeline (repeatable; default: every enabled tenant that trains the model).")
@json_option
def upsert_command(repo: Path, model: str | None, tenants: tuple[str, ...], as_json: bool) -> None:
    """Upload the model's sources and create or update its pipeline of every tenant that trains it.

    Each tenant has its own pipeline `<project>-<tenant>-<model>` with the same definition, so a tenant's
    role can be allowed its own executions by ARN (docs/security.md).
    """
    import boto3

    from mlops.config.tenants import load_from_settings
    from mlops.pipeline.upsert import upsert

    data = upsert(boto3.session.Session(), load_from_settings(), repo, model, tenants)
    emit(data, as_json, _render_upsert)


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
    if step.get("Seconds") is not None and state in (SM_SUCCEEDED, SM_FAILED):
        line += f" {fmt_seconds(step['Seconds'])}"
    if state == SM_SUCCEEDED and "Condition" in step.get("Metadata", {}):
        line += f" outcome {step['Metadata']['Condition']['Outcome']}"
    if state == SM_FAILED and step.get("FailureReason"):
        line += f" {step['FailureReason']}"
    info(line)


def _render(data: dict[str, Any]) -> None:
    info(f"execution {data['execution_arn']}: {data['status']}")
    if data.get("failure_reason"):
        info(f"  reason: {data['failure_reason']}")
    failed = [s for s in data.get("steps", []) if s.get("StepStatus") == SM_FAILED and s.get("StderrTail")]
    for step in failed:
        info(f"  last output of {step['StepName']} ({step.get('LogFile', '')}):")
        for line in step["StderrTail"].splitlines()[-10:]:
            info(f"    | {line}")
    if data.get("metrics"):
        info("  metrics: " + ", ".join(f"{k}={fmt_number(v)}" for k, v in data["metrics"].items()))
    if data.get("model_package_arn"):
        info(f"  registered model package: {data['model_package_arn']}")
    elif data.get("status") == SM_SUCCEEDED:
        info("  no model package was registered")
    ledger = data.get("ledger")
    if ledger:
        info(f"ledger: {ledger.get('execution_id') or data.get('execution_id')} {ledger.get('status') or 'missing'}"
             + (f" ({ledger['note']})" if ledger.get("note") else ""))


def _dedup_id() -> str:
    """What makes a CI or manual start distinct: the CI pipeline, else a fresh id (a person asked for a new run).

    Not the job: GitLab gives a retried job a new CI_JOB_ID, and a retry must find the build it started, not
    start a second one. With tenant, model and commit (in the request's identity), the pipeline is enough.
    """
    import uuid

    return os.environ.get("CI_PIPELINE_ID") or uuid.uuid4().hex


def _links() -> dict[str, str]:
    """CI pipeline, job and merge request URLs, from GitLab's predefined variables when present."""
    links = {"pipeline": os.environ.get("CI_PIPELINE_URL"), "job": os.environ.get("CI_JOB_URL")}
    if os.environ.get("CI_MERGE_REQUEST_IID") and os.environ.get("CI_PROJECT_URL"):
        links["merge_request"] = f"{os.environ['CI_PROJECT_URL']}/-/merge_requests/{os.environ['CI_MERGE_REQUEST_IID']}"
    return {k: v for k, v in links.items() if v}


def _image_digest() -> str | None:
    """The published image's digest when CI passes it on (`MLOPS_IMAGE_DIGEST`, sha256:...)."""
    digest = os.environ.get("MLOPS_IMAGE_DIGEST", "")
    return digest if digest.startswith("sha256:") and len(digest) == 71 else None


def _await_start(ledger: Any, execution_id: str, tier: str, timeout: float) -> dict[str, Any]:
    """Wait until a queued request is started (a handover or the dispatcher) and its `Executing` event recorded
    the execution ARN in its ledger item."""
    deadline, shown, item = time.monotonic() + timeout, 0.0, {}
    while time.monotonic() < deadline:
        item = ledger.get(execution_id) or {}
        if item.get("pipeline_execution_arn") or item.get("status") in TERMINAL:
            return item
        if time.monotonic() - shown > 60:
            info(f"{execution_id} queued for a {tier} slot ({item.get('status', 'not recorded yet')})")
            shown = time.monotonic()
        time.sleep(2)
    raise MlopsError(f"{execution_id} was not started within {timeout:.0f} s (ledger: {item.get('status', 'missing')})",
                     f"it stays queued; follow it with `mlops executions show {execution_id}`")


def _final_ledger(ledger: Any, execution_id: str, timeout: float) -> dict[str, Any]:
    """The ledger item once the status Lambda recorded the end (or as it is after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        item = ledger.get(execution_id) or {}
        if item.get("status") in TERMINAL or time.monotonic() >= deadline:
            return item
        time.sleep(1)


@click.command()
@click.option("--tenant", help="Tenant id from the registry.")
@_model_option
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path), envvar="MLOPS_MODEL_REPO",
              help="Model repository: its sources are uploaded and the pipeline updated before the start [MLOPS_MODEL_REPO].")
@click.option("--version", "version", help="Model (image) version; default: the latest release in ECR.")
@click.option("--wait", is_flag=True, help="Follow the execution step by step until it ends.")
@click.option("--follow", "follow_arn", help="Follow an execution that is already running (no start).")
@click.option("--timeout", type=float, default=3 * 3600, show_default=True, help="Seconds --wait waits.")
@json_option
def train(  # pylint: disable=too-many-locals,too-many-arguments,too-many-positional-arguments  # CLI options and wiring
        tenant: str | None, model: str | None, repo: Path | None, version: str | None,
        wait: bool, follow_arn: str | None, timeout: float, as_json: bool) -> None:
    """Ask the trigger for a tenant's training build (and with --wait, follow it to its model package)."""
    from mlops.requests import SEMVER_TAG

    if version is not None and not SEMVER_TAG.fullmatch(version):  # before any AWS call
        raise MlopsError(f"--version {version!r} is not a version as images are tagged", "use semver, e.g. 0.3.0 or 0.3.0-mr.4")
    import boto3

    from mlops.builds import ledger_from_env
    from mlops.config.tenants import load_from_settings
    from mlops.pipeline import progress
    from mlops.pipeline.start import pipeline_names

    session = boto3.session.Session()
    registry = load_from_settings()
    if not follow_arn:  # the tenant and model are checked before any AWS call
        if not tenant or not (model or repo):
            raise MlopsError("--tenant and --model (or --repo) are required to start an execution", "or pass --follow ARN")
        if model is not None:
            registry.check_model(tenant, model)
        else:
            registry.tenant(tenant)  # the model comes from --repo's mlops.yaml, checked when it is read
    names = pipeline_names(session, registry)
    ledger, execution_id, extra = ledger_from_env(), None, {}
    if follow_arn:
        arn = follow_arn
    else:
        request = _build_request(session, registry, tenant, model, repo, version)
        execution_id = request.execution_id
        arn, extra = _request_start(session, names, registry, request)
        if not wait:
            emit({"execution_arn": arn, "status": SM_EXECUTING if arn else "Queued", **extra}, as_json, lambda d: None)
            return
        if not arn:
            item = _await_start(ledger, execution_id, extra["tier"], timeout)
            arn = item.get("pipeline_execution_arn")
            if not arn:
                raise MlopsError(f"{execution_id} ended {item.get('status')} before it started: {item.get('failure_reason', '')}",
                                 f"see `mlops executions show {execution_id}`")
            info(f"started {arn} for tenant {tenant}")
    read = progress.reader(session, arn)

    # Step progress goes to stderr, so it shows in CI logs also when stdout carries --json for a script.
    final = progress.follow(read, _print_step, timeout=timeout)
    data = final.as_dict() | extra
    if execution_id:
        data["ledger"] = _ledger_result(ledger, execution_id, final)
    emit(data, as_json, _render)
    if final.status != SM_SUCCEEDED:
        raise SystemExit(1)


def _build_request(session: Any, registry: Any, tenant: str, model: str | None, repo: Path | None,  # pylint: disable=too-many-arguments,too-many-positional-arguments  # the CLI's options
                   version: str | None) -> Any:
    """The CI build request; with --repo, after uploading the sources and upserting the pipeline."""
    from mlops.pipeline.upsert import upsert
    from mlops.requests import BuildRequest

    parameters: dict[str, str] = {}
    commit = None
    if repo is not None:
        contract = upsert(session, registry, repo, model, [tenant])
        model = contract["model"]
        parameters["CodeUri"] = contract["code_uri"]
        commit = _git_commit(repo)
        written = contract["pipelines"][0]
        info(f"pipeline {written['pipeline']} {'created' if written['created'] else 'updated'}; sources {contract['code_uri']}")
    return BuildRequest(source="ci", tenant=tenant, model=str(model), version=version, git_commit=commit,
                        image_digest=_image_digest(), parameters=parameters, links=_links(), dedup_id=_dedup_id(),
                        reason="mlops train")


def _request_start(session: Any, names: Any, registry: Any, request: Any) -> tuple[str | None, dict[str, Any]]:
    """Submit to the trigger Lambda: (execution ARN if it started now, what to add to the output); a refusal is a
    one-line error."""
    from mlops.trigger_client import TriggerClient

    answer = TriggerClient.connect(session, names).submit(request)
    tier = registry.tenant(request.tenant).tier
    extra: dict[str, Any] = {"execution_id": request.execution_id, "trigger": answer.get("result"), "tier": tier}
    arn = answer.get("pipeline_execution_arn")
    if arn:
        values = _parameters(session, arn)
        extra["parameters"] = values
        info(f"{answer.get('result')}: {arn} for tenant {request.tenant} "
             f"({values.get('InstanceType', '?')}, version {values.get('ModelVersion', '?')})")
    else:
        info(f"{answer.get('result')}: {request.execution_id} queued for a {tier} slot")
    return arn, extra


def _parameters(session: Any, arn: str) -> dict[str, str]:
    """The parameters the execution was started with (what the trigger chose for the tenant)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = session.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    except (BotoCoreError, ClientError):
        return {}
    return {p["Name"]: p["Value"] for p in found.get("PipelineParameters", [])}


def _ledger_result(ledger: Any, execution_id: str, final: Any, timeout: float = LEDGER_WAIT_SECONDS) -> dict[str, Any]:
    """The ledger's view at the end (waiting up to `timeout` for the status Lambda to record it); the model
    package found while following is recorded on the item."""
    if final.model_package_arn:
        ledger.set_fields(execution_id, {"model_package_arn": final.model_package_arn}, only_if_missing="model_package_arn")
    item = _final_ledger(ledger, execution_id, timeout)
    result = {k: item.get(k) for k in ("execution_id", "status", "tier", "duration_seconds", "model_package_arn")}
    if item.get("status") not in TERMINAL:
        result["note"] = (f"the execution ended {final.status} but the ledger still shows {item.get('status') or 'nothing'} "
                          f"after {timeout:.0f} s: the status function has not recorded its end")
    return result
