"""The model contract (mlops.yaml): a valid repo loads; each mistake names the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.config.contract import load_contract
from mlops.errors import ConfigError

VALID = {
    "model": "churn",
    "project": "mlops-demo",
    "entry_points": {"preprocess": "src/pre.py", "train": "src/train.py", "evaluate": "src/eval.py", "inference": "src/inf.py"},
    "metric": {"name": "auc", "direction": "maximize", "threshold": 0.7},
    "hyperparameters": {"n_estimators": 50, "learning_rate": 0.1},
}


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    """A model repository with every entry point present."""
    (tmp_path / "src").mkdir()
    for name in ("pre", "train", "eval", "inf"):
        (tmp_path / "src" / f"{name}.py").write_text("")
    (tmp_path / "requirements.txt").write_text("")
    return tmp_path


def _write(repo: Path, data: dict) -> None:
    (repo / "mlops.yaml").write_text(yaml.safe_dump(data))


def test_a_valid_contract_loads(model_repo: Path) -> None:
    _write(model_repo, VALID)
    contract = load_contract(model_repo)
    assert contract.metric.passes(0.71) and not contract.metric.passes(0.69)
    assert contract.hyperparameters["n_estimators"] == 50


def test_minimize_metrics_pass_below_the_threshold(model_repo: Path) -> None:
    _write(model_repo, VALID | {"metric": {"name": "rmse", "direction": "minimize", "threshold": 3.0}})
    metric = load_contract(model_repo).metric
    assert metric.passes(2.5) and not metric.passes(3.5)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"metric": {"name": "auc", "direction": "up", "threshold": 1}},
                     "metric.direction: Input should be 'maximize' or 'minimize'",
                     id="bad-direction"),
        pytest.param({"model": "Churn!"}, "model: String should match pattern", id="bad-model-name"),
        pytest.param({"entry_points": {"train": "src/train.py"}},
                     "entry_points.preprocess: required field is missing (add it)", id="missing-entry"),
        pytest.param({"hyperparams": {}}, "hyperparams: unknown field (remove it or check its spelling)", id="typo"),
    ],
)
def test_schema_errors_name_file_and_field(model_repo: Path, change: dict, expected: str) -> None:
    _write(model_repo, VALID | change)
    with pytest.raises(ConfigError) as caught:
        load_contract(model_repo)
    lines = caught.value.problems
    assert any(str(model_repo / "mlops.yaml") in line and expected in line for line in lines), lines


def test_a_missing_script_is_named(model_repo: Path) -> None:
    (model_repo / "src" / "eval.py").unlink()
    _write(model_repo, VALID)
    with pytest.raises(ConfigError, match=r"entry_points.evaluate: file 'src/eval.py' not found"):
        load_contract(model_repo)


def test_a_missing_contract_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mlops.yaml: model contract .* not found"):
        load_contract(tmp_path)
