"""`mlops local up|status|down`: the embedded local AWS (a moto server provisioned by the Terraform root).

Only click and light modules are imported here; moto, boto3 and Terraform are reached inside the commands.
"""

from __future__ import annotations

from typing import Any

import click

from mlops.cli.output import emit, info, json_option, table


def _stack():  # type: ignore[no-untyped-def]
    from mlops.local.stack import LocalStack

    return LocalStack()


@click.group()
def local() -> None:
    """Start, inspect and stop the embedded local AWS (moto + Terraform)."""


@local.command()
@json_option
def up(as_json: bool) -> None:
    """Start a moto server on loopback and apply the Terraform root to it; a running one is left alone."""
    state = _stack().up(progress=info)

    def render(data: dict[str, Any]) -> None:
        if data["already_running"]:
            click.echo(f"the local AWS already runs at {data['endpoint']} (pid {data['pid']}); nothing changed")
            click.echo("stop it with `mlops local down`")
            return
        click.echo(f"local AWS ready at {data['endpoint']} in {data['timings']['total']:.1f} s "
                   f"(tenants: {', '.join(data['tenants']) or 'none'})")
        click.echo(f"use it from a shell: . {data['env_file']}")

    emit(state, as_json, render)


@local.command()
@json_option
def status(as_json: bool) -> None:
    """Show whether the local AWS runs, its endpoint, and what is provisioned in it."""
    result = _stack().status()

    def render(data: dict[str, Any]) -> None:
        if not data["running"]:
            click.echo(data.get("message") or f"the local AWS is not running (stale state of pid {data.get('pid')})")
            return
        click.echo(f"local AWS {data['status']} at {data['endpoint']} (pid {data['pid']}, since {data['started']})")
        live = data["provisioned"]
        rows = [[tid, t["bucket"] or "(missing)", ", ".join(t["model_package_groups"])] for tid, t in sorted(live["tenants"].items())]
        table("Tenants", ["tenant", "bucket", "model package groups"], rows)
        kinds = ["buckets", "ecr_repositories", "model_package_groups", "queues", "tables", "functions", "topics"]
        table("Resources", ["kind", "count", "names"], [[k, len(live[k]), ", ".join(live[k])] for k in kinds])

    emit(result, as_json, render)


@local.command()
@json_option
def down(as_json: bool) -> None:
    """Stop the local AWS and remove its state (says so when nothing runs)."""
    result = _stack().down()
    emit(result, as_json, lambda data: click.echo(data["message"]))
