"""`mlops models list|add`: the models the platform builds (platform.yaml `models:`) and who trains them.

`add` is the one step that adds a model: it edits `platform.yaml` and the tenant files in place (comments and
layout kept, mlops.config.models), validates the result as `mlops tenants validate` does before writing
anything, and says what to apply next. Only click is imported at the top.
"""

from __future__ import annotations

from typing import Any

import click

from mlops.cli.output import emit, info, json_option, table


@click.group()
def models() -> None:
    """The models the platform builds: platform.yaml `models:` and each tenant's `models:`."""


@models.command("list")
@json_option
def list_models(as_json: bool) -> None:
    """List the platform's models with their ECR repository and the tenants that train each."""
    from mlops.config.tenants import load_from_settings

    registry = load_from_settings()
    naming = registry.names()
    rows = [{"model": model, "ecr_repository": naming.ecr_repository(model),
             "tenants": sorted(t for t, tenant in registry.tenants.items() if model in tenant.models)}
            for model in registry.platform.models]

    def render(items: list[dict[str, Any]]) -> None:
        table(f"{len(items)} model(s) of project {registry.platform.project}", ["model", "ECR repository", "tenants"],
              [[r["model"], r["ecr_repository"], ", ".join(r["tenants"]) or "(none)"] for r in items])

    emit(rows, as_json, render)


def _tenant_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise click.BadParameter("name at least one tenant id, e.g. --tenants acme,globex")
    return ids


@models.command("add")
@click.argument("name")
@click.option("--tenants", "tenant_ids", metavar="ID,ID", callback=lambda ctx, param, value: _tenant_list(value),
              help="Also add the model to these tenants' `models:` (comma-separated tenant ids).")
@click.option("--all-tenants", is_flag=True, help="Also add the model to every tenant of the registry.")
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
@json_option
def add(name: str, tenant_ids: list[str] | None, all_tenants: bool, dry_run: bool, as_json: bool) -> None:
    """Add model NAME to platform.yaml (and to tenants' models), validate the registry, and say what to apply.

    NAME is lowercase words joined by hyphens (it is part of the ECR repository, pipeline, endpoint and model
    package group names). The files are edited in place, comments kept; nothing is written when the result
    would not pass `mlops tenants validate`. A model already in platform.yaml is only added to the tenants named.
    """
    from mlops.config.models import plan_model_addition, write_texts
    from mlops.errors import MlopsError
    from mlops.settings import Settings

    if tenant_ids and all_tenants:
        raise MlopsError("--tenants and --all-tenants exclude each other", "pass one of them")
    settings = Settings.from_env()
    addition = plan_model_addition(settings.platform_file, settings.tenants_dir, name, tenant_ids, all_tenants)
    if not dry_run:
        write_texts(addition.texts)
    names = addition.names()
    data = {"model": name, "written": not dry_run, "platform_file": str(settings.platform_file) if addition.platform_added else None,
            "tenants": addition.tenants, "files": sorted(str(p) for p in addition.texts), "names": names,
            "next": _next_steps(name)}

    def render(d: dict[str, Any]) -> None:
        verb = "would change" if dry_run else "changed"
        for path in d["files"]:
            info(f"{verb} {path}")
        where = f"trained by {', '.join(d['tenants'])}" if d["tenants"] else "no tenant trains it yet (add it with --tenants)"
        info(f"ok: model {name} {'added' if d['platform_file'] else 'kept'} in the platform, {where}; the registry is valid")
        info(f"it gets ECR repository {names['ecr_repository']} and per tenant a pipeline, model package group, endpoints "
             f"and the upload prefix data/{name}/ (`mlops names`)")
        info("next:")
        for step in d["next"]:
            info(f"  {step}")

    emit(data, as_json, render)


def _next_steps(model: str) -> list[str]:
    """What makes the registry change real: Terraform creates the ECR repository and model package groups, and the
    trigger reads the registry from its package (on AWS) or when the local runtime starts (locally)."""
    return [
        "local AWS: `mlops local down && mlops local up` (provisions from the registry; its Lambda runtime reads the "
        "registry when it starts)",
        "an AWS account: `mlops infra plan --environment ENV`, then `mlops infra apply --environment ENV` (creates the ECR "
        "repository and model package groups, and redeploys the Lambdas with the new registry)",
        f"the model repository: `model: {model}` in its mlops.yaml, checked with `mlops contract validate PATH`",
    ]
