"""`mlops retrain-check`: decide, for every tenant x model, whether to retrain, and why.

Wiring only: the registry and each model's `retraining` policy (`--contract`) feed the pure policy in
`mlops.retrain`; `mlops.aws.scan` gathers the ledger, ECR, the model registry, tenant data and drift with
list calls. A dry run is the default; `--apply` hands every "retrain" decision to the trigger through the
`BuildRequester` port (`source = retrain`, so the trigger's daily identity makes a second run on the same
day a no-op): the trigger Lambda, invoked with Lambda Invoke (`mlops.trigger_client.TriggerRequester`).
Tests may inject their own requester as `ctx.obj["build_requester"]`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, fmt_time, info, json_option, table, verbose_option
from mlops.errors import MlopsError


def _requester(ctx: click.Context, now: datetime, names: Any) -> Any:
    """The `BuildRequester`: the one injected (tests), else the trigger Lambda."""
    injected = (ctx.obj or {}).get("build_requester")
    if injected is not None:
        return injected
    import boto3

    from mlops.trigger_client import TriggerClient, TriggerRequester

    return TriggerRequester(TriggerClient.connect(boto3.session.Session(region_name=names.region), names), now)


def _policies(contracts: tuple[Path, ...]) -> dict[str, Any]:
    from mlops.config.contract import load_contract

    policies = {}
    for path in contracts:
        contract = load_contract(path)
        policies[contract.model] = contract.retraining
    return policies


def _render(report: Any) -> None:
    rows = []
    for d in report.decisions:
        text = "; ".join([r.text for r in d.reasons] + [f"! {p}" for p in d.problems]) or "up to date"
        version = d.live_version or ""
        if d.package_version is not None:
            version = f"{version} (v{d.package_version})".strip()
        rows.append([d.tenant, d.model, version, "" if d.age_days is None else f"{d.age_days:.1f}d", d.action, text])
    summary = ", ".join(f"{report.count(a)} {a}" for a in ("retrain", "keep", "wait", "skip"))
    table(f"Retraining check {fmt_time(report.now)}: {summary}",
          ["tenant", "model", "live version", "age", "decision", "reasons"], rows)
    for problem in report.problems:
        info(f"problem: {problem}")


def _connect(registry: Any) -> tuple[Any, Any, Any, Any]:
    """The clients (with a call counter on each) and the account's names."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops.aws.scan import CallCounter, Clients

    session = boto3.session.Session(region_name=registry.platform.region)
    clients = Clients(*(session.client(s) for s in ("dynamodb", "ecr", "sagemaker", "s3")))
    cloudwatch, sts = session.client("cloudwatch"), session.client("sts")
    counter = CallCounter().attach(clients.dynamodb, clients.ecr, clients.sagemaker, clients.s3, cloudwatch, sts)
    try:
        names = registry.names(sts.get_caller_identity()["Account"])
    except (BotoCoreError, ClientError) as exc:
        raise MlopsError(f"cannot reach AWS to find the account: {exc}",
                         "check credentials, or source the env file of mlops local up") from exc
    return clients, cloudwatch, counter, names


def _run_check(tenant_id: str | None, model: str | None, now: datetime, policies: dict[str, Any],
               scan: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Scan AWS and apply the policy: the report (only the asked-for tenant/model) and the call counter."""
    from mlops.aws.scan import CloudWatchDrift, ScanOptions, gather
    from mlops.config.tenants import load_from_settings
    from mlops.naming import drift_namespace
    from mlops.retrain import TenantInfo, check

    registry = load_from_settings()
    if tenant_id is not None:
        registry.tenant(tenant_id)
    if model is not None and model not in registry.platform.models:
        raise MlopsError(f"unknown model '{model}'", f"platform models: {', '.join(registry.platform.models)}")
    clients, cloudwatch, counter, names = _connect(registry)
    tenants = [TenantInfo.from_registry(t) for t in registry.tenants.values()]
    # Only the asked-for tenants' buckets and metrics are read; every tenant still goes to the policy so
    # that their ledger records are not mistaken for leftovers of deleted tenants.
    scanned = [t for t in tenants if not tenant_id or t.id == tenant_id]
    models = [m for m in registry.platform.models if not model or m == model]
    drift_keys = [(t.id, m) for t in scanned for m in t.models
                  if m in models and policies.get(m) is not None and policies[m].drift_threshold is not None]
    drift = CloudWatchDrift(cloudwatch, scan["drift_namespace"] or drift_namespace(names), scan["drift_metric"])
    options = ScanOptions(ledger=scan["ledger"], data_from=scan["data_from"], registry=scan["registry"])
    inventory = gather(clients, names, scanned, models, options, drift=drift, drift_keys=drift_keys, now=now)
    report = check(tenants, registry.platform.models, inventory, policies, now, names)
    report.decisions = [d for d in report.decisions if (not tenant_id or d.tenant == tenant_id) and (not model or d.model == model)]
    return report, counter, names


def _apply(report: Any, requester: Any) -> dict[tuple[str, str], str]:
    """Send one request per decision to retrain; a refused request is a problem on the report, not a crash."""
    from mlops.retrain import requests_for

    requests = requests_for(report)
    applied = {}
    for done in requester.submit(requests) if requests else []:
        applied[(done.tenant, done.model)] = done.summary()
        if not done.accepted:
            report.problems.append(f"{done.tenant} x {done.model}: the retraining request was {done.summary()}")
    return applied


@click.command("retrain-check")
@click.option("--tenant", "tenant_id", help="Only this tenant.")
@click.option("--model", help="Only this model.")
@click.option("--now", "now_text", metavar="ISO", envvar="MLOPS_RETRAIN_NOW",
              help="Decide as if it were this moment (ISO 8601, UTC if no offset); a simulated clock for demos and tests.")
@click.option("--contract", "contracts", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A model repository or its mlops.yaml, for that model's retraining policy (repeat; default policy otherwise).")
@click.option("--data-from", type=click.Choice(["ledger", "s3"]), default="ledger", show_default=True,
              help="Newest tenant data from the uploads the trigger recorded (no S3 call), or by listing every tenant bucket "
                   "(one S3 call per tenant; catches data that bypassed the trigger).")
@click.option("--ledger", "ledger_read", type=click.Choice(["state", "history"]), default="state", show_default=True,
              help="Read the ledger's small per tenant x model state items, or scan the whole execution history.")
@click.option("--registry/--no-registry", "read_registry", default=True, show_default=True,
              help="Also list the approved model package versions (one cross-group list).")
@click.option("--drift-namespace", help="CloudWatch namespace of the drift metric [default: <project>/Monitoring].")
@click.option("--drift-metric", default="DriftScore", show_default=True, help="Drift metric name (dimensions Tenant, Model).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write a Markdown report here.")
@click.option("--apply", "apply_", is_flag=True, help="Send the retraining requests through the trigger (default: dry run).")
@verbose_option
@json_option
@click.pass_context
def retrain_check(  # pylint: disable=too-many-locals  # the CLI's options
        ctx: click.Context, tenant_id: str | None, model: str | None, now_text: str | None, contracts: tuple[Path, ...],
        data_from: str, ledger_read: str, read_registry: bool, drift_namespace: str | None, drift_metric: str,
        report_file: Path | None, apply_: bool, verbose: bool, as_json: bool) -> None:
    """Decide which tenant models need retraining, and why (dry run unless --apply).

    Exits 1 after its report when it found a problem (`problem:` lines: something it could not read or a request
    the trigger refused), so a scheduled pipeline shows it; the decisions it could make are still applied.
    """
    from mlops.aws.scan import parse_time
    from mlops.retrain import render_markdown

    now = parse_time(now_text) if now_text else datetime.now(timezone.utc)
    if now is None:
        raise MlopsError(f"--now '{now_text}' is not an ISO 8601 time", "e.g. 2026-06-01T06:00:00Z")
    scan = {"data_from": data_from, "ledger": ledger_read, "registry": read_registry,
            "drift_namespace": drift_namespace, "drift_metric": drift_metric}
    report, counter, names = _run_check(tenant_id, model, now, _policies(contracts), scan)
    applied = _apply(report, _requester(ctx, now, names)) if apply_ else {}
    if verbose:
        info(f"AWS calls: {counter.total} ({', '.join(f'{k} {v}' for k, v in sorted(counter.by_service().items()))})")
    if data_from == "s3" and verbose:
        info(f"--data-from s3 listed tenant buckets: {counter.calls.get('s3.ListObjectsV2', 0)} S3 call(s), one per tenant "
             "(the default, --data-from ledger, makes none)")
    if report_file:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(render_markdown(report, applied), encoding="utf-8")
        info(f"report written to {report_file}")
    data = report.to_dict() | {"applied": [{"tenant": t, "model": m, "request": r} for (t, m), r in applied.items()],
                               "dry_run": not apply_, "aws_calls": dict(counter.calls)}

    def render(_: Any) -> None:
        _render(report)
        if apply_:
            info(f"{len(applied)} retraining request(s) sent" + "".join(f"\n  {t}/{m} -> {r}" for (t, m), r in applied.items()))
        elif report.count("retrain"):
            info(f"dry run: {report.count('retrain')} model(s) would be retrained; run with --apply to request the builds")

    emit(data, as_json, render)
    if report.problems:
        raise SystemExit(1)
