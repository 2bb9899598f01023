"""`mlops infra plan|apply`: the Terraform root for one environment, fed by the tenant registry.

`--environment local` (the default) targets the running local AWS (`mlops local up`), with the same
working folder and state as `up`: add a tenant file, `mlops infra plan` shows its resources, `mlops infra
apply` creates them. Any other environment name targets the AWS account of the current credentials
(state under `$MLOPS_STATE_DIR/<environment>/terraform/`). Only click is imported at the top.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from mlops.cli.output import emit, info, json_option, table

environment_option = click.option(
    "--environment", "-e", default="local", show_default=True,
    help="`local` for the local AWS, or a name for a real account's state folder.",
)


def _variables(environment: str) -> tuple[Any, dict[str, Any]]:
    from mlops.errors import MlopsError
    from mlops.local.stack import LocalStack
    from mlops.packaging import build_packages
    from mlops.settings import Settings
    from mlops.terraform import Workspace

    settings = Settings.from_env()
    build_dir = settings.state_dir / environment / "build"
    variables: dict[str, Any] = {"lambda_package_dir": str(build_dir)}
    if environment == "local":
        stack = LocalStack(settings)
        state = stack.read_state()
        if not stack.is_running(state):
            raise MlopsError("the local AWS is not running", "start it with `mlops local up`")
        variables.update(aws_endpoint_url=state["endpoint"], force_destroy=True)
    build_packages(settings.root, build_dir)
    return Workspace(environment, settings), variables


@click.group()
def infra() -> None:
    """Plan or apply the Terraform root for the local AWS or a real account."""


@infra.command()
@environment_option
@json_option
def plan(environment: str, as_json: bool) -> None:
    """Show what `apply` would change, resource by resource."""
    from mlops.terraform import resource_changes

    workspace, variables = _variables(environment)
    info(f"terraform plan ({environment})")
    changes = [{"address": address, "actions": list(actions)} for address, actions in resource_changes(workspace.plan(variables))]
    summary = Counter("/".join(c["actions"]) for c in changes)
    result = {"environment": environment, "summary": dict(summary), "changes": changes}

    def render(data: dict[str, Any]) -> None:
        if not data["changes"]:
            click.echo("no changes")
            return
        table(f"Planned changes ({environment})", ["action", "resource"], [["/".join(c["actions"]), c["address"]] for c in data["changes"]])
        click.echo(", ".join(f"{n} to {action}" for action, n in sorted(data["summary"].items())))

    emit(result, as_json, render)


@infra.command()
@environment_option
@json_option
def apply(environment: str, as_json: bool) -> None:
    """Apply the root and print what exists: tenants, buckets, repositories, model package groups."""
    workspace, variables = _variables(environment)
    info(f"terraform apply ({environment})")
    outputs = workspace.apply(variables)
    if environment == "local":
        from mlops.local.stack import LocalStack

        LocalStack().record_outputs(outputs)

    def render(data: dict[str, Any]) -> None:
        names = data.get("names", {})
        rows = [[tid, t["bucket"], t["role"], ", ".join(t["model_package_groups"].values())]
                for tid, t in sorted(names.get("tenants", {}).items())]
        table("Tenants", ["tenant", "bucket", "role", "model package groups"], rows)
        platform = names.get("platform", {})
        click.echo(f"artifacts bucket {platform.get('artifacts_bucket')}; "
                   f"ECR repositories {', '.join(platform.get('ecr_repositories', {}).values())}")

    emit(outputs, as_json, render)
