"""`mlops infra plan|apply`: the Terraform root for one environment, fed by the tenant registry.

`--environment local` (the default) targets the running local AWS (`mlops local up`), with the same
working folder and state as `up`: add a tenant file, `mlops infra plan` shows its resources, `mlops infra
apply` creates them. Any other environment name targets the AWS account of the current credentials
(state under `$MLOPS_STATE_DIR/<environment>/terraform/`). Only click is imported at the top.

The tenant registry is validated first, exactly as `mlops tenants validate` does: an invalid registry, or two
tenants whose resource names would collide, is refused before anything is built or planned (the Terraform root
refuses such a collision too).

Data is kept unless the user says otherwise: `apply` saves a plan, refuses it when it deletes or replaces a
data resource (mlops.retention) unless `--allow-destroy-data` is given, and applies exactly that saved plan.
`plan` shows the same list.
"""

from __future__ import annotations

from typing import Any

import click

from mlops.cli.output import emit, info, json_option, table

environment_option = click.option(
    "--environment", "-e", default="local", show_default=True,
    help="`local` for the local AWS, or a name for a real account's state folder.",
)
var_file_option = click.option(
    "--var-file", type=click.Path(exists=True, dir_okay=False, resolve_path=True), default=None,
    help="A .tfvars.json file of the environment's variables (e.g. gitlab, ci_infra_policy_arns).",
)
allow_destroy_data_option = click.option(
    "--allow-destroy-data", is_flag=True, default=False,
    help="Apply even when the plan deletes or replaces a data resource (S3 bucket, KMS key, model package group, "
         "DynamoDB table, ECR repository); what goes is listed first. Without it such a plan is refused.",
)
_ACTIONS = ("create", "update", "replace", "delete")


def _variables(environment: str, var_file: str | None = None) -> tuple[Any, dict[str, Any]]:
    from mlops.config.tenants import load_from_settings
    from mlops.errors import ConfigError, MlopsError
    from mlops.local.stack import LocalStack
    from mlops.packaging import build_packages
    from mlops.settings import Settings
    from mlops.terraform import Workspace

    # Checked before anything is built: the registry (as `mlops tenants validate` does, so two tenants that would
    # share a resource name never reach Terraform), the environment's name and the variables file.
    settings = Settings.from_env()
    try:
        load_from_settings(settings)
    except ConfigError as error:  # the refusal of `mlops tenants validate`, saying that nothing happened
        raise ConfigError(error.message, error.hint or "nothing was built or planned: fix the registry files listed "
                          "(`mlops tenants validate` checks them alone)", error.problems) from None
    workspace = Workspace(environment, settings)
    given = _read_var_file(var_file) if var_file else {}
    build_dir = settings.state_dir / environment / "build"
    variables: dict[str, Any] = {"lambda_package_dir": str(build_dir)}
    if environment == "local":
        stack = LocalStack(settings)
        state = stack.read_state()
        if not stack.is_running(state):
            raise MlopsError("the local AWS is not running", "start it with `mlops local up`")
        state = stack.wait(progress=info)  # the background part of `up` owns the Terraform state until it ends
        variables.update(aws_endpoint_url=state["endpoint"], force_destroy=True)
    build_packages(settings.root, build_dir)
    variables.update(given)
    return workspace, variables


def _read_var_file(path: str) -> dict[str, Any]:
    """The variables of a .tfvars.json file (merged into the -var-file python-terraform writes)."""
    import json

    from mlops.errors import MlopsError

    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as exc:
            raise MlopsError(f"{path}: cannot read the variables file: {exc.strerror}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MlopsError(f"{path}: not a JSON variables file: {exc}", "write the variables as a JSON object") from exc
        if not isinstance(data, dict):
            raise MlopsError(f"{path}: the variables file holds a {type(data).__name__}, not an object",
                             "write the variables as a JSON object")
        return data
    raise MlopsError(f"{path}: only .tfvars.json files are read", "write the environment's variables as JSON")


@click.group()
def infra() -> None:
    """Plan or apply the Terraform root for the local AWS or a real account."""


@infra.command()
@environment_option
@var_file_option
@json_option
def plan(environment: str, var_file: str | None, as_json: bool) -> None:
    """Show what `apply` would change: a count per tenant, platform and CI, then resource by resource, and the
    data resources it would destroy (which `apply` refuses without --allow-destroy-data)."""
    from mlops.retention import data_losses
    from mlops.terraform import summarise

    workspace, variables = _variables(environment, var_file)
    info(f"terraform plan ({environment})")
    planned = workspace.plan(variables)
    summary = summarise(planned, local=environment == "local")
    result = {"environment": environment, **summary, "data_destroyed": [loss.as_dict() for loss in data_losses(planned)]}

    def render(data: dict[str, Any]) -> None:
        if not data["changes"]:
            click.echo("no changes" + (f" (besides {len(data['known_drift'])} known moto drift)" if data["known_drift"] else ""))
            return
        rows = [[owner, *(str(counts.get(a, "")) for a in _ACTIONS)] for owner, counts in data["by_component"].items()]
        table(f"Planned changes ({environment})", ["component", *_ACTIONS], rows)
        table("Resources", ["action", "resource"], [[c["action"], c["address"]] for c in data["changes"]])
        click.echo(", ".join(f"{n} to {action}" for action, n in sorted(data["totals"].items())))
        if data["known_drift"]:
            click.echo(f"{len(data['known_drift'])} in-place updates left out: moto reads them back differently "
                       "(docs/terraform.md, drift)")
        _render_losses(data["data_destroyed"], "Data this plan destroys")
        if data["data_destroyed"]:
            click.echo("`mlops infra apply` refuses this plan without --allow-destroy-data")

    emit(result, as_json, render)


def _render_losses(losses: list[dict[str, str]], title: str) -> None:
    if losses:
        table(title, ["component", "action", "data resource", "name", "with it"],
              [[loss["component"], loss["action"], loss["kind"], loss["name"], loss["contents"]] for loss in losses])


@infra.command()
@environment_option
@var_file_option
@allow_destroy_data_option
@json_option
def apply(environment: str, var_file: str | None, allow_destroy_data: bool, as_json: bool) -> None:
    """Apply the root and print what exists: tenants, platform, and the CI roles to set in GitLab.

    The plan is saved and checked first: one that deletes or replaces a data resource is refused, with
    nothing applied, unless --allow-destroy-data is given; then exactly that plan is applied.
    """
    from mlops.retention import data_losses, refuse_data_loss

    workspace, variables = _variables(environment, var_file)
    info(f"terraform plan ({environment})")
    losses = data_losses(workspace.plan(variables))
    refuse_data_loss(losses, allowed=allow_destroy_data)
    for loss in losses:
        info(f"destroying {loss.describe()} (--allow-destroy-data)")
    info(f"terraform apply ({environment})")
    outputs = workspace.apply(variables, saved_plan=True)
    if environment == "local":
        from mlops.local.stack import LocalStack

        LocalStack().record_outputs(outputs)

    def render(data: dict[str, Any]) -> None:
        names = data.get("names", {})
        rows = [[tid, t["bucket"], t["role"], ", ".join(t["model_package_groups"].values())]
                for tid, t in sorted(names.get("tenants", {}).items())]
        table("Tenants", ["tenant", "bucket", "role", "model package groups"], rows)
        if data.get("disabled_tenants"):
            click.echo("disabled tenants (bucket, KMS key and model package groups kept): "
                       + ", ".join(sorted(data["disabled_tenants"])))
        platform = names.get("platform", {})
        click.echo(f"artifacts bucket {platform.get('artifacts_bucket')}; "
                   f"ECR repositories {', '.join(platform.get('ecr_repositories', {}).values())}")
        ci = data.get("ci") or {}
        if ci.get("role_arns"):
            table("GitLab CI roles (set as CI/CD variables)", ["variable", "role", "audience"],
                  [[f"MLOPS_AWS_ROLE_ARN_{purpose.upper()}", arn, ci["audiences"][purpose]]
                   for purpose, arn in sorted(ci["role_arns"].items())])
        _render_losses(data["data_destroyed"], "Data destroyed")

    emit({**outputs, "data_destroyed": [loss.as_dict() for loss in losses]}, as_json, render)
