"""The `mlops` command line: every CI job is one or two calls to it.

Commands are loaded lazily: the table below names each command's module and its one-sentence help, so
`mlops --help` imports neither boto3 nor sagemaker and starts in a fraction of a second. A command module
imports heavy libraries inside its functions only. A command whose module is not installed is not listed; a
command whose optional extra is not installed (`mlops.extras`: `local` for `mlops local` and `mlops demo`,
`lint` for `mlops lint`) says so in one line, with the command that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from typing import NoReturn

import click

from mlops import __version__, extras
from mlops.cli.output import error_data, wants_json
from mlops.errors import MlopsError

# name -> (module:attribute, one-sentence help). Order is the order of `mlops --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "tenants": ("mlops.cli.tenants:tenants", "Validate, list and describe the tenant registry under tenants/."),
    "names": ("mlops.cli.tenants:names", "Print the AWS resource names of the platform and of every tenant."),
    "models": ("mlops.cli.models:models", "List the platform's models, or add one to platform.yaml and tenants in one step."),
    "contract": ("mlops.cli.tenants:contract", "Check a model repository's mlops.yaml against the model contract."),
    "local": ("mlops.cli.local:local", "Start, inspect and stop the embedded local AWS (moto + Terraform)."),
    "infra": ("mlops.cli.infra:infra", "Plan or apply the Terraform root for an AWS account."),
    "lint": ("mlops.cli.build:lint", "Run pylint on a model repository and write a GitLab Code Quality report."),
    "version": ("mlops.cli.build:version", "Compute the next semantic version of a model from ECR tags and commits."),
    "image": ("mlops.cli.build:image", "Build a model's image with Buildah and publish it to ECR under its version."),
    "pipeline": ("mlops.cli.train:pipeline", "Print or register the SageMaker pipeline definition of a model."),
    "train": ("mlops.cli.train:train", "Start a tenant's training pipeline execution and follow it."),
    "executions": ("mlops.cli.ledger:executions", "List and show pipeline executions recorded in the ledger."),
    "cost": ("mlops.cli.ledger:cost", "Report training cost per tenant and model from the ledger."),
    "gate": ("mlops.cli.deploy:gate", "Compare a challenger model with the tenant's champion and decide."),
    "deploy": ("mlops.cli.deploy:deploy", "Deploy a tenant's model version to its endpoint (blue/green, rollback)."),
    "reject": ("mlops.cli.deploy:reject", "Reject a model version; if it is live, roll back to the previous one."),
    "invoke": ("mlops.cli.deploy:invoke", "Send rows to a tenant's endpoint and print the predictions."),
    "retrain-check": ("mlops.cli.retrain:retrain_check", "Decide which tenant models need retraining, and why."),
    "report": ("mlops.cli.report:report", "Report each tenant's evaluation for the job log, GitLab and the merge request."),
    "demo": ("mlops.demo:demo", "Run the whole story on the embedded local AWS and print a summary."),
}


def _available(spec: str) -> bool:
    module = spec.split(":", 1)[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    """A click group whose commands are imported only when they run (or their own --help is asked)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (spec, _) in COMMANDS.items() if _available(spec)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _available(entry[0]):
            return None
        module_name, attr = entry[0].split(":", 1)
        return getattr(importlib.import_module(module_name), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        extra = extras.COMMANDS.get(name or "")
        if extra and not ctx.resilient_parsing and not {"-h", "--help"} & set(rest):  # its --help needs no extra
            extras.require(extra, name or "")
        return name, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="mlops")
def cli() -> None:
    """GitLab CI MLOps for Amazon SageMaker: lint, version, build, train per tenant, gate, deploy, retrain.

    Every command prints readable output by default and JSON with --json, errors included. Settings come from
    environment variables (MLOPS_ROOT, MLOPS_TENANTS_DIR, MLOPS_STATE_DIR, ...; see the README) and,
    for the local AWS, from the env file that `mlops local up` writes.
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning expected failures into one-line errors (and JSON with --json)."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = wants_json(args)
    try:
        cli.main(args=args, prog_name="mlops", standalone_mode=False)
    except click.exceptions.Abort:
        _fail(as_json, "Aborted", "aborted", None, 130, text="aborted")
    except click.ClickException as exc:
        if not as_json:
            exc.show()  # click's own usage block and `Error:` line
            sys.exit(exc.exit_code)
        command = getattr(exc, "ctx", None)  # a usage error knows the command it is about
        _fail(as_json, "UsageError" if isinstance(exc, click.UsageError) else "ClickException", exc.format_message(),
              f"see `{command.command_path} --help`" if command is not None else None, exc.exit_code)
    except MlopsError as exc:
        _fail(as_json, type(exc).__name__, exc.message, exc.hint, exc.exit_code, getattr(exc, "problems", None))
    except ModuleNotFoundError as exc:  # an optional extra's module (moto, pylint) that is not installed
        missing = extras.missing_extra(exc)
        if missing is None:
            raise
        _fail(as_json, "MissingExtra", missing.message, missing.hint, missing.exit_code)
    except KeyboardInterrupt:
        _fail(as_json, "Interrupted", "interrupted", None, 130, text="interrupted")
    except Exception as exc:  # pylint: disable=broad-exception-caught  # only botocore's own errors are answered here
        if not _is_aws_sdk_error(exc):
            raise
        _fail(as_json, "AwsError", f"AWS did not answer as expected: {type(exc).__name__}: {exc}",
              "check the endpoint and credentials: AWS_ENDPOINT_URL, AWS_PROFILE or the role, or "
              "`. .mlops/local/env` for the local AWS", 1)


def _fail(as_json: bool, kind: str, message: str, hint: str | None, exit_code: int,  # pylint: disable=too-many-arguments,too-many-positional-arguments  # the parts of an error
          problems: list[str] | None = None, text: str | None = None) -> NoReturn:
    """Answer a failure and exit: `{"error": ...}` on stdout with --json, and one line on stderr either way (the job
    log shows it when stdout goes to a file); a configuration file's further problems follow, indented."""
    data = error_data(kind, message, hint, exit_code, problems)
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    error = data["error"]
    line = f"error: {error['message']}" + (f" ({error['hint']})" if error["hint"] else "")
    click.echo(text or line, err=True)
    for problem in error["problems"]:
        if problem != message:
            click.echo(f"  {problem}", err=True)
    sys.exit(exit_code)


def _is_aws_sdk_error(exc: BaseException) -> bool:
    """True for the AWS SDK's own errors (no credentials, no connection, a refused call) that no adapter turned
    into an MlopsError. botocore is looked up only when it is already imported: `mlops --help` never loads it."""
    exceptions = sys.modules.get("botocore.exceptions")
    return exceptions is not None and isinstance(exc, (exceptions.BotoCoreError, exceptions.ClientError))
