"""`mlops infra plan|apply`: the Terraform root for one environment, fed by the tenant registry.

`--environment NAME` targets the AWS account of the current credentials, with its Terraform state under
`$MLOPS_STATE_DIR/<NAME>/terraform/`; a `.tfvars.json` file gives the environment's variables. The local AWS
has its own commands, `mlops local plan|apply`, which run the same plan and apply (`run_plan`, `run_apply`)
in the working folder of `mlops local up`. Only click is imported at the top.

The tenant registry is validated first, exactly as `mlops tenants validate` does: an invalid registry, or two
tenants whose resource names would collide, is refused before anything is built or planned (the Terraform root
refuses such a collision too).

Data is kept unless the user says otherwise: `apply` saves a plan, refuses it when it deletes or replaces a
data resource (mlops.retention) unless `--allow-destroy-data` is given, and applies exactly that saved plan.
`plan` shows the same list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mlops.cli.output import emit, info, json_option, table

environment_option = click.option(
    "--environment", "-e", required=True, envvar="MLOPS_INFRA_ENVIRONMENT",
    help="The environment's name: its state folder under $MLOPS_STATE_DIR [MLOPS_INFRA_ENVIRONMENT]. "
         "The local AWS is planned and applied with `mlops local plan|apply`.",
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
#: The environment name of the local AWS (`mlops local up`): its own commands plan and apply it.
LOCAL = "local"


def check_registry() -> Any:
    """The settings, once the tenant registry passes the check of `mlops tenants validate`; the refusal says nothing was built."""
    from mlops.config.tenants import load_from_settings
    from mlops.errors import ConfigError
    from mlops.settings import Settings

    # Checked before anything is built, so two tenants that would share a resource name never reach Terraform.
    settings = Settings.from_env()
    try:
        load_from_settings(settings)
    except ConfigError as error:  # the refusal of `mlops tenants validate`, saying that nothing happened
        raise ConfigError(error.message, error.hint or "nothing was built or planned: fix the registry files listed "
                          "(`mlops tenants validate` checks them alone)", error.problems) from None
    return settings


def prepare(environment: str, var_file: str | None = None, extra: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """The environment's Terraform workspace and variables, after the registry check; the Lambda packages are built."""
    from mlops.packaging import build_packages
    from mlops.terraform import Workspace

    settings = check_registry()
    workspace = Workspace(environment, settings)  # checks the environment's name
    given = _read_var_file(var_file) if var_file else {}
    build_dir = settings.state_dir / environment / "build"
    variables: dict[str, Any] = {"lambda_package_dir": str(build_dir), **(extra or {})}
    build_packages(settings.root, build_dir)
    variables.update(given)
    return workspace, variables


def _account_environment(environment: str) -> str:
    from mlops.errors import ConfigError

    if environment == LOCAL:
        raise ConfigError(f"the environment '{LOCAL}' is the local AWS's",
                          "plan and apply it with `mlops local plan` and `mlops local apply`, or name an account's environment")
    return environment


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
    """Plan or apply the Terraform root for an AWS account (the local AWS: `mlops local plan|apply`)."""


@infra.command()
@environment_option
@var_file_option
@json_option
def plan(environment: str, var_file: str | None, as_json: bool) -> None:
    """Show what `apply` would change: a count per tenant, platform and CI, then resource by resource, and the
    data resources it would destroy (which `apply` refuses without --allow-destroy-data)."""
    workspace, variables = prepare(_account_environment(environment), var_file)
    run_plan(workspace, environment, variables, as_json, moto_drift=False)


def run_plan(workspace: Any, environment: str, variables: dict[str, Any], as_json: bool, *, moto_drift: bool) -> None:
    """Plan, then print the changes by component and resource and the data the plan destroys.

    `moto_drift` leaves out the in-place updates that only come from moto reading attributes back
    differently (the local AWS)."""
    from mlops.retention import data_losses
    from mlops.plans import summarise

    info(f"terraform plan ({environment})")
    planned = workspace.plan(variables)
    summary = summarise(planned, local=moto_drift)
    result = {"environment": environment, **summary, "data_destroyed": [loss.as_dict() for loss in data_losses(planned)]}
    apply_command = "mlops local apply" if environment == LOCAL else "mlops infra apply"

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
            click.echo(f"`{apply_command}` refuses this plan without --allow-destroy-data")

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
    workspace, variables = prepare(_account_environment(environment), var_file)
    run_apply(workspace, environment, variables, allow_destroy_data, as_json)


# pylint: disable-next=too-many-arguments  # the plan's inputs, the data guard, the output format and the hook
def run_apply(workspace: Any, environment: str, variables: dict[str, Any], allow_destroy_data: bool,
              as_json: bool, *, applied: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Plan and save, refuse a plan that destroys data unless allowed, apply exactly that plan, print what exists;
    `applied` receives the outputs before they are printed."""
    from mlops.retention import data_losses, refuse_data_loss

    info(f"terraform plan ({environment})")
    losses = data_losses(workspace.plan(variables))
    refuse_data_loss(losses, allowed=allow_destroy_data)
    for loss in losses:
        info(f"destroying {loss.describe()} (--allow-destroy-data)")
    info(f"terraform apply ({environment})")
    outputs = workspace.apply(variables, saved_plan=True)
    if applied is not None:
        applied(outputs)

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
