"""`mlops tenants`, `mlops names` and `mlops contract`: the registry, the names and the model contract."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlops.cli.output import emit, info, json_option, table
from mlops.config.contract import load_contract
from mlops.config.tenants import load_from_settings, tenant_schema
from mlops.errors import ConfigError


@click.group()
def tenants() -> None:
    """The tenant registry: one YAML file per tenant under tenants/ (MLOPS_TENANTS_DIR)."""


@tenants.command("validate")
@json_option
def validate(as_json: bool) -> None:
    """Check every tenant file against the schema and platform.yaml; one line per problem."""
    registry = load_from_settings()
    data = {"valid": True, "tenants": len(registry.tenants), "tiers": sorted(registry.platform.tiers)}
    emit(data, as_json, lambda d: info(f"ok: {d['tenants']} tenant(s) valid, tiers {', '.join(d['tiers'])}"))


@tenants.command("list")
@json_option
def list_tenants(as_json: bool) -> None:
    """List tenants with their tier, effective instance type, build limit and models."""
    registry = load_from_settings()
    tiers = registry.platform.tiers
    rows = []
    for tid, tenant in sorted(registry.tenants.items()):
        tier = tenant.effective_tier(tiers)
        rows.append({
            "id": tid,
            "display_name": tenant.display_name,
            "tier": tenant.tier,
            "instance_type": tier.instance_type,
            "max_concurrent_builds": tier.max_concurrent_builds,
            "priority": tier.priority,
            "models": tenant.models,
            "enabled": tenant.enabled,
            "tags": tenant.cost_tags(registry.platform.project),
        })

    def render(items: list[dict]) -> None:
        table(
            f"{len(items)} tenant(s) of project {registry.platform.project}",
            ["tenant", "name", "tier", "instance type", "max builds", "models", "enabled"],
            [[r["id"], r["display_name"], r["tier"], r["instance_type"], r["max_concurrent_builds"],
              ", ".join(r["models"]), "yes" if r["enabled"] else "no"] for r in items],
        )

    emit(rows, as_json, render)


@tenants.command("schema")
def schema() -> None:
    """Print the JSON Schema of a tenant file (for editors and other tools)."""
    click.echo(json.dumps(tenant_schema(), indent=2))


@click.command()
@click.option("--tenant", "tenant_id", help="Only this tenant's names.")
@click.option("--account-id", default="123456789012", show_default=True, help="AWS account id used in bucket names.")
@json_option
def names(tenant_id: str | None, account_id: str, as_json: bool) -> None:
    """Print the AWS resource names of the platform and of every tenant."""
    registry = load_from_settings()
    naming = registry.names(account_id)
    data: dict = {}
    if tenant_id is None:
        data["platform"] = naming.platform_names(registry.platform.models, list(registry.platform.tiers))
    selected = [registry.tenant(tenant_id)] if tenant_id is not None else list(registry.tenants.values())
    data["tenants"] = {t.id: naming.tenant_names(t.id, t.models) for t in selected}

    def render(d: dict) -> None:
        rows = []
        for scope, names_ in [("platform", d.get("platform", {})), *d["tenants"].items()]:
            for key, value in names_.items():
                if isinstance(value, dict):
                    rows.extend([scope, f"{key}[{k}]", v] for k, v in value.items())
                else:
                    rows.append([scope, key, value])
        table(None, ["scope", "resource", "name"], rows)

    emit(data, as_json, render)


@click.group()
def contract() -> None:
    """The model contract: mlops.yaml at the root of a model repository."""


@contract.command("validate")
@click.argument("repo", type=click.Path(path_type=Path), default=".")
@json_option
def validate_contract(repo: Path, as_json: bool) -> None:
    """Check REPO/mlops.yaml (fields, values, that every entry point exists) and that the platform knows its
    project and model (platform.yaml, found as for every command: MLOPS_ROOT, MLOPS_PLATFORM_FILE)."""
    result = load_contract(repo)
    check_against_platform(result, repo, load_from_settings().platform)

    def render(c: dict) -> None:
        metric = c["metric"]
        info(f"ok: model '{c['model']}' of project '{c['project']}', "
             f"metric {metric['name']} ({metric['direction']}, threshold {metric['threshold']})")

    emit(result.model_dump(), as_json, render)


def check_against_platform(contract, repo: Path, platform) -> None:  # type: ignore[no-untyped-def]
    """A contract's project and model must be the platform's: anything else could never be built or trained."""
    where = repo / "mlops.yaml"
    if contract.project != platform.project:
        raise ConfigError(f"{where}: project '{contract.project}' is not this platform's project '{platform.project}'",
                          f"set `project: {platform.project}` in mlops.yaml, or point MLOPS_ROOT at that project's ml-ops")
    if contract.model not in platform.models:
        raise ConfigError(f"{where}: model '{contract.model}' is not a model of the platform "
                          f"(platform.yaml models: {', '.join(platform.models)})",
                          f"add it with `mlops models add {contract.model} --tenants ID,ID` in ml-ops (docs/tenants.md)")
