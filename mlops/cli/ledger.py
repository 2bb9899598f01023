"""`mlops executions list|show` and `mlops cost report`: read the execution ledger.

The ledger is the DynamoDB table `Names.ledger_table()` (or `MLOPS_LEDGER_TABLE`); locally it lives in the
embedded AWS (`mlops local up` writes the endpoint into the environment).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, info, json_option, table
from mlops.errors import MlopsError


def _ledger() -> Any:
    import os

    import boto3

    from mlops.aws.ledger import Ledger
    from mlops.config.tenants import load_from_settings

    name = os.environ.get("MLOPS_LEDGER_TABLE") or load_from_settings().names().ledger_table()
    return Ledger(boto3.client("dynamodb"), name)


@click.group()
def executions() -> None:
    """Pipeline executions recorded in the ledger: what ran, for whom, from what, and how it ended."""


@executions.command("list")
@click.option("--tenant", help="Only this tenant.")
@click.option("--model", help="Only this model.")
@click.option("--status", type=click.Choice(["QUEUED", "STARTING", "EXECUTING", "STOPPING", "SUCCEEDED", "FAILED", "STOPPED"]),
              help="Only executions in this status.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest first, at most this many.")
@json_option
def list_executions(tenant: str | None, model: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List executions, newest request first."""
    items = _ledger().scan(tenant=tenant, model=model, status=status)[:limit]
    rows = [{k: item.get(k) for k in ("execution_id", "tenant", "model", "version", "source", "status", "tier",
                                      "requested_at", "duration_seconds")} for item in items]

    def render(data: list[dict[str, Any]]) -> None:
        if not data:
            info("no executions recorded")
            return
        table(f"{len(data)} execution(s)", ["execution", "tenant", "model", "version", "source", "status", "requested", "duration s"],
              [[r["execution_id"], r["tenant"], r["model"], r["version"], r["source"], r["status"], r["requested_at"],
                r["duration_seconds"]] for r in data])

    emit(rows, as_json, render)


@executions.command("show")
@click.argument("execution_id")
@json_option
def show_execution(execution_id: str, as_json: bool) -> None:
    """Everything the ledger knows about one execution, with its status history."""
    item = _ledger().get(execution_id)
    if item is None:
        raise MlopsError(f"no execution '{execution_id}' in the ledger", "list them with `mlops executions list`")
    item.pop("request", None)

    def render(data: dict[str, Any]) -> None:
        history = data.pop("history", [])
        table(f"execution {execution_id}", ["field", "value"], [[k, json.dumps(v) if isinstance(v, (dict, list)) else v]
                                                                for k, v in sorted(data.items())])
        table("status history", ["status", "at", "by", "detail"],
              [[h.get("status"), h.get("at"), h.get("source"), h.get("detail")] for h in history])

    emit(item, as_json, render)


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
        table(f"training cost ({data['currency']})", ["month", "tenant", "model", "executions", "instance hours", "cost"],
              [[r["month"], r["tenant"], r["model"], r["executions"], f"{r['instance_hours']:.3f}", f"{r['cost']:.2f}"]
               for r in data["rows"]])
        for tenant_id, amount in data["per_tenant"].items():
            info(f"{tenant_id}: {amount:.2f} {data['currency']}")
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
