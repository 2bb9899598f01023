"""`platform.yaml`: the project name, the AWS region, the models the platform builds, and the tiers.

A tier is what a tenant subscribes to: the instance type its builds run on, how many of its builds may
run at once, and its priority when tiers compete for the account's pipeline-execution quota.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops.config._yaml import problems_from, read_yaml
from mlops.errors import ConfigError
from mlops.naming import MODEL_MAX, PROJECT_MAX, SLUG

INSTANCE_TYPE = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"


class Tier(BaseModel):
    """One subscription tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_type: str = Field(pattern=INSTANCE_TYPE, description="SageMaker instance type, e.g. ml.m5.large")
    instance_count: int = Field(default=1, ge=1, le=20, description="training instances per build")
    max_concurrent_builds: int = Field(ge=1, le=100, description="builds of this tier that may run at once")
    priority: int = Field(ge=1, le=100, description="higher is admitted first when tiers compete")
    endpoint_instance_type: str = Field(default="ml.t2.medium", pattern=INSTANCE_TYPE)


class Platform(BaseModel):
    """The whole of `platform.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str = Field(min_length=2, max_length=PROJECT_MAX, pattern=SLUG.pattern)
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    models: list[str] = Field(min_length=1, description="models the platform builds (one ECR repository each)")
    tiers: dict[str, Tier] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _models_are_slugs(cls, models: list[str]) -> list[str]:
        for model in models:
            if not SLUG.match(model) or len(model) > MODEL_MAX:
                raise ValueError(f"model '{model}' must be lowercase words joined by hyphens, at most {MODEL_MAX} characters")
        if len(set(models)) != len(models):
            raise ValueError("a model is listed twice")
        return models

    @field_validator("tiers")
    @classmethod
    def _tier_names_are_slugs(cls, tiers: dict[str, Tier]) -> dict[str, Tier]:
        for name in tiers:
            if not SLUG.match(name) or len(name) > 16:
                raise ValueError(f"tier name '{name}' must be a lowercase word of at most 16 characters")
        return tiers


def load_platform(path: Path) -> Platform:
    """Read and validate `platform.yaml`."""
    data = read_yaml(path, "platform file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with project, region, models and tiers")
    try:
        return Platform.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, path)
        raise ConfigError(problems[0], problems=problems) from exc
