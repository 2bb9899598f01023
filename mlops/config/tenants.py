"""The tenant registry: one YAML file per tenant under `tenants/`, checked against `platform.yaml`.

The same files feed Terraform (`yamldecode` in `terraform/main.tf`) and Python. `load_registry` reads
them all and reports every problem at once, one line each naming the file and the field: schema errors,
unknown tiers or models, duplicate ids, and ids that would make an invalid AWS resource name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops.config._yaml import problems_from, read_yaml
from mlops.config.platform import INSTANCE_TYPE, Platform, Tier, load_platform
from mlops.errors import ConfigError, MlopsError
from mlops.naming import SLUG, TENANT_MAX, Names

_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")


class Overrides(BaseModel):
    """Per-tenant exceptions to its tier and to the models' retraining policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_type: str | None = Field(default=None, pattern=INSTANCE_TYPE)
    max_concurrent_builds: int | None = Field(default=None, ge=1, le=100)
    retrain_max_age_days: int | None = Field(default=None, ge=1, le=3650)


class Tenant(BaseModel):
    """One tenant's registry entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=2, max_length=TENANT_MAX, pattern=SLUG.pattern, description="lowercase id used in every resource name")
    display_name: str = Field(min_length=1, max_length=128)
    tier: str = Field(description="a tier from platform.yaml")
    models: list[str] = Field(min_length=1, description="models from platform.yaml this tenant trains")
    tags: dict[str, str] = Field(default_factory=dict, description="cost-allocation tags put on everything the tenant's builds create")
    overrides: Overrides = Field(default_factory=Overrides)
    enabled: bool = True
    retrain_on_upload: Literal["immediate", "scheduled"] = Field(
        default="immediate",
        description="immediate: each data upload starts a build at once; scheduled: the upload is recorded and "
                    "the daily retraining check starts the build (reason new-data), batching a day's uploads",
    )

    @field_validator("tags")
    @classmethod
    def _tags_follow_aws_rules(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key '{key}' uses the reserved aws: prefix")
            # mlops:tenant and its kin are what IAM conditions and cost reports trust: the platform sets them.
            if key.lower().startswith("mlops:"):
                raise ValueError(f"tag key '{key}' uses the platform's reserved mlops: prefix")
            if not _TAG_KEY.match(key):
                raise ValueError(f"tag key '{key}' is not a valid AWS tag key")
            if not isinstance(value, str) or not _TAG_VALUE.match(value):
                raise ValueError(f"tag '{key}' has a value AWS does not accept")
        return tags

    def effective_tier(self, tiers: dict[str, Tier]) -> Tier:
        """The tenant's tier with its overrides applied."""
        base = tiers[self.tier]
        changes = {k: v for k, v in (("instance_type", self.overrides.instance_type),
                                     ("max_concurrent_builds", self.overrides.max_concurrent_builds)) if v is not None}
        return base.model_copy(update=changes)

    def cost_tags(self, project: str) -> dict[str, str]:
        """The tags every resource of this tenant carries: the registry's plus the platform's own."""
        return {"mlops:project": project, "mlops:tenant": self.id, "mlops:tier": self.tier, **self.tags}


@dataclass
class Registry:
    """The platform and its tenants, validated together."""

    platform: Platform
    tenants: dict[str, Tenant] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def names(self, account_id: str = "123456789012") -> Names:
        """The naming scheme of this platform in an account."""
        return Names(project=self.platform.project, account_id=account_id, region=self.platform.region)

    def tenant(self, tenant_id: str) -> Tenant:
        """Look a tenant up; an unknown id is a clear error listing the known ones."""
        try:
            return self.tenants[tenant_id]
        except KeyError:
            known = ", ".join(sorted(self.tenants)) or "none"
            raise MlopsError(f"unknown tenant '{tenant_id}'", f"known tenants: {known}") from None

    def check_model(self, tenant_id: str, model: str) -> Tenant:
        """The tenant, after checking it exists, is enabled and trains `model`."""
        tenant = self.tenant(tenant_id)
        if not tenant.enabled:
            raise MlopsError(f"tenant '{tenant_id}' is disabled", f"set enabled: true in {self.files.get(tenant_id)}")
        if model not in tenant.models:
            raise MlopsError(
                f"tenant '{tenant_id}' does not train model '{model}'",
                f"its models: {', '.join(tenant.models)}; add it to {self.files.get(tenant_id)}",
            )
        return tenant


def tenant_schema() -> dict:
    """The JSON Schema of a tenant file (for editors and `mlops tenants schema`)."""
    schema = Tenant.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlops tenant"
    return schema


def _validate_one(path: Path, platform: Platform, problems: list[str]) -> Tenant | None:
    try:
        data = read_yaml(path, "tenant file")
    except ConfigError as exc:
        problems.append(exc.message)
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping with id, display_name, tier, models (see tenants/README.md)")
        return None
    try:
        tenant = Tenant.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, path))
        return None
    before = len(problems)
    if tenant.tier not in platform.tiers:
        problems.append(f"{path}: tier: unknown tier '{tenant.tier}' (use one of: {', '.join(platform.tiers)})")
    for i, model in enumerate(tenant.models):
        if model not in platform.models:
            problems.append(f"{path}: models[{i}]: unknown model '{model}' (use one of: {', '.join(platform.models)})")
    try:
        Names(platform.project, region=platform.region).tenant_names(tenant.id, [m for m in tenant.models if m in platform.models])
    except MlopsError as exc:
        problems.append(f"{path}: id: {exc.one_line()}")
    return tenant if len(problems) == before else None


def load_registry(platform_file: Path, tenants_dir: Path) -> Registry:
    """Load `platform.yaml` and every tenant file; raise ConfigError listing every problem found."""
    platform = load_platform(platform_file)
    if not tenants_dir.is_dir():
        raise ConfigError(f"{tenants_dir}: tenant registry folder not found", "create it with one YAML file per tenant")
    problems: list[str] = []
    registry = Registry(platform=platform)
    seen: dict[str, Path] = {}
    for path in sorted([*tenants_dir.glob("*.yaml"), *tenants_dir.glob("*.yml")]):
        tenant = _validate_one(path, platform, problems)
        raw_id = tenant.id if tenant else _raw_id(path)
        if raw_id is not None and raw_id in seen:
            problems.append(f"{path}: id: duplicate tenant id '{raw_id}', also in {seen[raw_id]} (give each tenant its own id)")
            continue
        if raw_id is not None:
            seen[raw_id] = path
        if tenant is not None:
            registry.tenants[tenant.id] = tenant
            registry.files[tenant.id] = path
    _check_name_clashes(registry, problems)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the tenant registry", problems=problems)
    return registry


def _check_name_clashes(registry: Registry, problems: list[str]) -> None:
    """No two tenants may get the same name of one kind (`Names.tenant_names`: bucket, role, rule, and per model the
    pipeline, model package group and endpoint). Pipelines, groups and endpoints are `<project>-<tenant>-<model>`:
    tenant `acme` with model `eu-churn` and tenant `acme-eu` with model `churn` would share them (and each other's
    data by policy). Terraform refuses the same registries: the naming module's `shared_names`, which a precondition
    on the root's `names` output requires empty."""
    names = registry.names()
    owners: dict[tuple[str, str], tuple[str, str | None]] = {}
    reported: set[tuple[tuple[str, str | None], tuple[str, str | None]]] = set()
    for tenant_id, tenant in sorted(registry.tenants.items()):
        for kind, value in names.tenant_names(tenant_id, tenant.models).items():
            for model, name in value.items() if isinstance(value, dict) else [(None, value)]:
                owner = owners.setdefault((kind, str(name)), (tenant_id, model))
                if owner[0] == tenant_id or (owner, (tenant_id, model)) in reported:
                    continue
                reported.add((owner, (tenant_id, model)))  # one line per pair, not one per kind of resource
                other, other_model = owner
                problems.append(f"{registry.files[tenant_id]}: id: " + (
                    f"tenant '{tenant_id}' with model '{model}' gets the same resource names as tenant '{other}' with model "
                    f"'{other_model}' ({tenant_id}-{model})" if model is not None and other_model is not None
                    else f"tenant '{tenant_id}' gets the same {kind} name as tenant '{other}' ({name})")
                    + "; rename one of the tenants")


def _raw_id(path: Path) -> str | None:
    try:
        data = read_yaml(path, "tenant file")
    except ConfigError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def load_from_settings(settings=None) -> Registry:  # type: ignore[no-untyped-def]
    """Load the registry from the configured locations (see mlops.settings)."""
    from mlops.settings import Settings  # pylint: disable=import-outside-toplevel  # avoid a cycle at import

    settings = settings or Settings.from_env()
    return load_registry(settings.platform_file, settings.tenants_dir)
