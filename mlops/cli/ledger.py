"""`mlops executions list|show` and `mlops cost report`: read the execution ledger.

The ledger is the DynamoDB table `Names.ledger_table()` (or `MLOPS_LEDGER_TABLE`), read through its one reader
(`mlops.aws.ledger.Ledger.records` and `record`, as `mlops.builds.ledger_from_env` opens it); locally it lives
in the embedded AWS (`mlops local up` writes the endpoint into the environment).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, fmt_cost, fmt_number, fmt_seconds, fmt_time, info, json_option, table
from mlops.errors import MlopsError
from mlops.statuses import FAILED, LEDGER, REJECTED


def _ledger() -> Any:
    from mlops.builds import ledger_from_env

    return ledger_from_env()


@click.group()
def executions() -> None:
    """Pipeline executions recorded in the ledger: what ran, for whom, from what, and how it ended (a failed one with
    its failing step, reason and log tail), and the tenant uploads the trigger refused (status REJECTED)."""


#: What `executions list` shows of a failure (the whole reason and log tail: `executions show`).
_REASON_CHARS = 120


def _failure_text(item: dict[str, Any]) -> str:
    """`<step>: <reason>` of a failed execution or a rejected upload, on one line, shortened."""
    reason = " ".join(str(item.get("failure_reason") or "").split())
    text = f"{item['failed_step']}: {reason}" if item.get("failed_step") else reason
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 1] + "…"


@executions.command("list")
@click.option("--tenant", help="Only this tenant.")
@click.option("--model", help="Only this model.")
@click.option("--status", type=click.Choice([*LEDGER, REJECTED]),
              help="Only executions in this status (REJECTED: uploads the trigger refused).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest first, at most this many.")
@json_option
def list_executions(tenant: str | None, model: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List executions and refused uploads, newest request first; a failed one with its failing step and reason."""
    items = _ledger().records(tenant=tenant, model=model, status=status, limit=limit)
    rows = [{k: item.get(k) for k in ("execution_id", "tenant", "model", "version", "source", "status", "tier",
                                      "requested_at", "duration_seconds", "failed_step", "failure_reason")} for item in items]

    def render(data: list[dict[str, Any]]) -> None:
        if not data:
            info("no executions recorded")
            return
        table(f"{len(data)} execution(s)", ["execution", "tenant", "model", "version", "source", "status", "requested (UTC)",
                                            "duration", "failure"],
              [[r["execution_id"], r["tenant"], r["model"], r["version"], r["source"], r["status"], fmt_time(r["requested_at"]),
                fmt_seconds(r["duration_seconds"]), _failure_text(r)] for r in data])
        if any(r["status"] in (FAILED, REJECTED) for r in data):
            info("the whole reason and the log tail: `mlops executions show EXECUTION`")

    emit(rows, as_json, render)


def _live_failure(item: dict[str, Any]) -> dict[str, Any] | None:
    """A failed execution's step, reason and log tail read now, as `mlops train --wait` reads them (for an item
    whose status event recorded none); None when it cannot be read."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops.pipeline import progress

    try:
        status = progress.reader(boto3.session.Session(), item["pipeline_execution_arn"])()
    except (MlopsError, BotoCoreError, ClientError):
        return None
    return progress.failure(status)


@executions.command("show")
@click.argument("execution_id")
@json_option
def show_execution(execution_id: str, as_json: bool) -> None:
    """Everything the ledger knows about one execution (or refused upload), with its status history; a failed one
    with its failing step, reason and the last lines of that step's log."""
    item = _ledger().record(execution_id)
    if item is None:
        raise MlopsError(f"no execution '{execution_id}' in the ledger", "list them with `mlops executions list`")
    item.pop("request", None)
    if item.get("status") == FAILED and item.get("pipeline_execution_arn") and not item.get("failed_step"):
        found = _live_failure(item) or {}
        item |= {k: v for k, v in {"failed_step": found.get("step"), "failure_reason": item.get("failure_reason") or found.get("reason"),
                                   "failure_log": found.get("log"), "log_tail": found.get("log_tail")}.items() if v}

    def render(data: dict[str, Any]) -> None:
        data = dict(data)
        history = data.pop("history", [])
        tail = data.pop("log_tail", None)
        table(f"execution {execution_id}", ["field", "value"], [[k, _value(k, v)] for k, v in sorted(data.items())])
        table("status history", ["status", "at (UTC)", "by", "detail"],
              [[h.get("status"), fmt_time(h.get("at")), h.get("source"), h.get("detail")] for h in history])
        if data.get("failure_reason"):
            info(f"failed{' in step ' + data['failed_step'] if data.get('failed_step') else ''}: {data['failure_reason']}")
        if tail:
            info(f"last lines of {data.get('failure_log') or 'its log'}:")
            for line in str(tail).splitlines()[-20:]:
                info(f"  | {line}")

    emit(item, as_json, render)


def _value(key: str, value: Any) -> Any:
    """One field of `executions show` for people: times in the one format, figures rounded, structures as JSON."""
    if isinstance(value, (dict, list)):
        return json.dumps({k: fmt_number(v) if isinstance(v, float) else v for k, v in value.items()}
                          if isinstance(value, dict) else value)
    if key.endswith(("_at", "_time")):
        return fmt_time(value)
    return fmt_number(value) if isinstance(value, float) else value


@click.group()
def cost() -> None:
    """Training cost attribution from the ledger."""


@cost.command("report")
@click.option("--month", callback=lambda ctx, param, value: _month(value), help="Only this month (YYYY-MM).")
@click.option("--tenant", help="Only this tenant.")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML or JSON mapping of instance type to USD per hour, overriding the built-in table.")
@json_option
def cost_report_command(month: str | None, tenant: str | None, prices: Path | None, as_json: bool) -> None:
    """Cost per tenant and model per month: instance price × instance count × duration."""
    from mlops.cost import cost_report

    overrides = _read_prices(prices) if prices else None
    report = cost_report(_ledger().scan(tenant=tenant), overrides, month)

    def render(data: dict[str, Any]) -> None:
        table("training cost", ["month", "tenant", "model", "executions", "instance hours", "cost"],
              [[r["month"], r["tenant"], r["model"], r["executions"], fmt_number(r["instance_hours"]),
                fmt_cost(r["cost"], data["currency"])] for r in data["rows"]])
        for tenant_id, amount in data["per_tenant"].items():
            info(f"{tenant_id}: {fmt_cost(amount, data['currency'])}")
        for instance, count in data["unpriced_instance_types"].items():
            info(f"warning: no price for {instance} ({count} execution(s)); pass --prices")

    emit(report.as_dict(), as_json, render)


def _month(value: str | None) -> str | None:
    """`--month` as YYYY-MM with a month from 01 to 12."""
    if value is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise click.BadParameter(f"{value!r} is not a month: use YYYY-MM, e.g. 2026-12")
    return value


def _read_prices(path: Path) -> dict[str, float]:
    from mlops.config._yaml import read_yaml  # pylint: disable=import-outside-toplevel

    data = read_yaml(path, "price table")
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise MlopsError(f"{path}: expected a mapping of instance type to price per hour", "e.g. ml.m5.large: 0.115")
    return {str(k): float(v) for k, v in data.items()}
