"""`mlops local up|wait|status|plan|apply|down`: the embedded local AWS (a moto server provisioned by the Terraform root).

`plan` and `apply` are `mlops infra plan|apply` for the local AWS: the same root, in the working folder and
state of `up`, with the provider pointed at the running server.

Only click and light modules are imported here; moto, boto3 and Terraform are reached inside the commands.
"""

from __future__ import annotations

from typing import Any

import click

from mlops.cli.infra import allow_destroy_data_option, var_file_option
from mlops.cli.output import emit, info, json_option, table


def _stack():  # type: ignore[no-untyped-def]
    from mlops.local.stack import LocalStack

    return LocalStack()


@click.group()
def local() -> None:
    """Start, inspect and stop the embedded local AWS (moto + Terraform)."""


@local.command()
@click.option("--wait", "wait", is_flag=True,
              help="Return only when everything is applied and the local Lambda runtime runs (about 65 s from the "
                   "start), instead of as soon as the flow can run.")
@json_option
def up(wait: bool, as_json: bool) -> None:
    """Start a moto server on loopback and apply the Terraform root to it; a running one is left alone.

    Returns as soon as the flow can run (buckets, keys, ECR repositories, tables, roles, model package
    groups: about 20 s). One full `terraform apply` goes on in the background: the resources whose creation
    only waits for AWS to confirm it (SQS queues, S3 lifecycle rules, Lambda functions), then the local
    Lambda runtime. `mlops local wait` (or `--wait`) waits for them, `mlops local status` shows where they
    are. Uploads start builds once they are there.
    """
    state = _stack().up(progress=info, wait=wait)

    def render(data: dict[str, Any]) -> None:
        if data["already_running"]:
            click.echo(f"the local AWS already runs at {data['endpoint']} (pid {data['pid']}, {data['status']}); nothing changed")
            click.echo("stop it with `mlops local down`")
            return
        timings = data["timings"]
        if data["status"] == "ready":
            click.echo(f"local AWS ready at {data['endpoint']} in {timings['total']:.1f} s (usable after {timings['usable']:.1f} s; "
                       f"tenants: {', '.join(data['tenants']) or 'none'})")
        else:
            click.echo(f"local AWS usable at {data['endpoint']} in {timings['usable']:.1f} s "
                       f"(tenants: {', '.join(data['tenants']) or 'none'}); queues, lifecycle rules and functions follow "
                       "in the background (`mlops local wait`)")
        click.echo(f"use it from a shell: . {data['env_file']}")

    emit(state, as_json, render)


@local.command()
@json_option
def wait(as_json: bool) -> None:
    """Wait until the background apply of `mlops local up` is done (queues, lifecycle rules, functions, runtime)."""
    state = _stack().wait(progress=info)
    emit(state, as_json, lambda data: click.echo(f"local AWS ready at {data['endpoint']} "
                                                 f"(everything applied {data['timings'].get('total', 0):.1f} s after `up` started)"))


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
        if data.get("finishing"):
            click.echo("queues, lifecycle rules and functions are being applied in the background (`mlops local wait`)")
        if data.get("error"):
            click.echo(f"the background apply failed: {data['error']}")
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
    result = _stack().down(progress=info)
    emit(result, as_json, lambda data: click.echo(data["message"]))


def _local_root(var_file: str | None) -> tuple[Any, dict[str, Any]]:
    """The local AWS's workspace and variables: the registry is checked first, then that the local AWS runs."""
    from mlops.cli.infra import LOCAL, check_registry, prepare
    from mlops.errors import MlopsError

    check_registry()
    stack = _stack()
    if not stack.is_running(stack.read_state()):
        raise MlopsError("the local AWS is not running", "start it with `mlops local up`")
    state = stack.wait(progress=info)  # the background part of `up` owns the Terraform state until it ends
    return prepare(LOCAL, var_file, {"aws_endpoint_url": state["endpoint"], "force_destroy": True})


@local.command()
@var_file_option
@json_option
def plan(var_file: str | None, as_json: bool) -> None:
    """Show what `mlops local apply` would change in the running local AWS (after a tenant or model is added, say)."""
    from mlops.cli.infra import LOCAL, run_plan

    workspace, variables = _local_root(var_file)
    run_plan(workspace, LOCAL, variables, as_json, moto_drift=True)


@local.command()
@var_file_option
@allow_destroy_data_option
@json_option
def apply(var_file: str | None, allow_destroy_data: bool, as_json: bool) -> None:
    """Apply the Terraform root to the running local AWS; `mlops local status` then lists what is new."""
    from mlops.cli.infra import LOCAL, run_apply

    workspace, variables = _local_root(var_file)
    run_apply(workspace, LOCAL, variables, allow_destroy_data, as_json, applied=_stack().record_outputs)
