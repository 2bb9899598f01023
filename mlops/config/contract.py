"""The model contract: `mlops.yaml` at the root of a model repository.

It names the model and the platform project it belongs to, the four entry points (preprocess, train,
evaluate, inference) that follow the SageMaker container contract, the training channels, the arguments
each processing script asks for, the metric the evaluation reports (where it is in `evaluation.json`, see
`mlops.evaluation`) with its direction and threshold, the hyperparameters, and the retraining policy.
Errors name the file, the field and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops import evaluation
from mlops.config._yaml import problems_from, read_yaml
from mlops.errors import ConfigError
from mlops.gate import MetricRule
from mlops.naming import MODEL_MAX, PROJECT_MAX, SLUG

CONTRACT_FILE = "mlops.yaml"


class EntryPoints(BaseModel):
    """Scripts, relative to the model repository root."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preprocess: str = Field(description="processing script: raw tenant data -> train/validation/test sets")
    train: str = Field(description="training script: writes the model to /opt/ml/model")
    evaluate: str = Field(description="processing script: writes evaluation.json with the metric")
    inference: str = Field(description="module with model_fn/input_fn/predict_fn/output_fn")


class Metric(BaseModel):
    """The metric that decides registration and deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the metric's name in evaluation.json")
    direction: Literal["maximize", "minimize"]
    threshold: float = Field(description="register only if the metric is at least (maximize) or at most (minimize) this")
    min_improvement: float = Field(default=0.0, ge=0, description="how much better than the champion a challenger must be")
    problem_type: Literal["regression", "binary_classification", "multiclass_classification"] | None = Field(
        default=None, description="SageMaker model-quality section of the report (found from the name when it is in one only)")
    path: str | None = Field(default=None, description="JSON path of the value in a report of another shape")

    @model_validator(mode="after")
    def _report_path_is_known(self) -> "Metric":
        try:
            evaluation.metric_path(self.name, self.problem_type, self.path)
        except evaluation.ReportError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def json_path(self) -> str:
        """Where the value is in evaluation.json (what the pipeline's JsonGet reads)."""
        return evaluation.metric_path(self.name, self.problem_type, self.path)

    def passes(self, value: float) -> bool:
        """Whether `value` meets the registration threshold: `mlops.gate.MetricRule`'s comparison, the one there is."""
        return MetricRule.from_contract(self).meets_threshold(value)


class Retraining(BaseModel):
    """When the daily check retrains this model (tenants may override max_age_days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age_days: int = Field(default=30, ge=1, le=3650)
    on_new_data: bool = True
    on_new_image: bool = True
    drift_threshold: float | None = Field(default=None, ge=0)


class ScriptArguments(BaseModel):
    """Command-line arguments of the processing scripts (the training script gets its hyperparameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preprocess: list[str] = Field(default_factory=list)
    evaluate: list[str] = Field(default_factory=list)


class ModelContract(BaseModel):
    """The whole of `mlops.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=2, max_length=MODEL_MAX, pattern=SLUG.pattern)
    project: str = Field(min_length=2, max_length=PROJECT_MAX, pattern=SLUG.pattern)
    description: str = ""
    entry_points: EntryPoints
    requirements: str | None = Field(default="requirements.txt", description="pip requirements of the scripts")
    metric: Metric
    hyperparameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    retraining: Retraining = Field(default_factory=Retraining)
    channels: list[str] = Field(default_factory=lambda: ["train", "validation"], min_length=1, max_length=8,
                                description="training channels, each a split the preprocess step writes")
    arguments: ScriptArguments = Field(default_factory=ScriptArguments)
    target: str | None = Field(default=None, description="label column name (for tools; scripts get it through `arguments`)")

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, channels: list[str]) -> list[str]:
        for name in channels:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
                raise ValueError(f"channel name '{name}' must be 1-64 letters, digits, '.', '_' or '-'")
        if len(set(channels)) != len(channels):
            raise ValueError("channel names must be unique")
        return channels

    @field_validator("hyperparameters")
    @classmethod
    def _keys_are_names(cls, params: dict[str, object]) -> dict[str, object]:
        for key in params:
            if not key.replace("_", "a").replace("-", "a").isalnum():
                raise ValueError(f"hyperparameter name '{key}' must be letters, digits, _ or -")
        return params


def load_contract(repo: Path) -> ModelContract:
    """Read `mlops.yaml` from a model repository and check that its entry points exist."""
    path = repo / CONTRACT_FILE if repo.is_dir() else repo
    root = path.parent
    data = read_yaml(path, "model contract (mlops.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with model, project, entry_points, metric")
    try:
        contract = ModelContract.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, path)
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems in {path}", problems=problems) from exc
    problems = []
    for step, rel in contract.entry_points.model_dump().items():
        if not (root / rel).is_file():
            problems.append(f"{path}: entry_points.{step}: file '{rel}' not found in {root} (fix the path or add the script)")
    if contract.requirements and not (root / contract.requirements).is_file():
        problems.append(f"{path}: requirements: file '{contract.requirements}' not found (fix the path or set it to null)")
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems in {path}", problems=problems)
    return contract
