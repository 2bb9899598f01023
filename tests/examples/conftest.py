"""Fixtures for the example model repositories and the tenant data generator.

The example scripts are loaded from their files under names of their own (the two repositories both have
`src/train.py`), or run as subprocesses under the SageMaker container contract with every `/opt/ml/...`
path mapped into a temporary folder through the contract's environment variables.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from mlops import evaluation
from mlops.config.contract import ModelContract, load_contract

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MODELS = ("churn", "house-prices")


def load_module(path: Path, name: str) -> ModuleType:
    """Import a file as a module called `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", name="load_script")
def load_script_fixture():
    """load_module, for tests that import an example's script from its file."""
    return load_module


@pytest.fixture(scope="session")
def datagen() -> ModuleType:
    """examples/datagen.py as a module."""
    return load_module(EXAMPLES / "datagen.py", "examples_datagen")


@pytest.fixture(scope="session")
def contracts() -> dict[str, ModelContract]:
    """Each example's mlops.yaml, read through the platform's own loader."""
    return {model: load_contract(EXAMPLES / model) for model in MODELS}


@dataclass
class Workspace:
    """One run of a model repository's steps in a temporary folder standing in for /opt/ml."""

    model: str
    contract: ModelContract
    root: Path
    times: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The container contract's variables, mapped into this workspace."""
        paths = {
            "MLOPS_PROCESSING_INPUT": "raw", "MLOPS_PROCESSING_OUTPUT": "processed",
            "SM_CHANNEL_TRAIN": "processed/train", "SM_CHANNEL_VALIDATION": "processed/validation",
            "SM_INPUT_CONFIG_DIR": "config", "SM_MODEL_DIR": "model", "SM_OUTPUT_DIR": "output",
            "MLOPS_PROCESSING_MODEL": "packed", "MLOPS_PROCESSING_TEST": "processed/test",
            "MLOPS_PROCESSING_EVALUATION": "evaluation",
        }
        return {key: str(self.root / rel) for key, rel in paths.items()}

    def script(self, step: str) -> Path:
        """The entry point of a step, as mlops.yaml names it."""
        return EXAMPLES / self.model / getattr(self.contract.entry_points, step)

    def step_args(self, step: str = "preprocess") -> list[str]:
        """The arguments mlops.yaml gives a processing step."""
        return list(getattr(self.contract.arguments, step))

    def write_hyperparameters(self, values: dict[str, object] | None = None) -> None:
        """hyperparameters.json as SageMaker writes it: every value a string."""
        config = Path(self.env["SM_INPUT_CONFIG_DIR"])
        config.mkdir(parents=True, exist_ok=True)
        given = self.contract.hyperparameters if values is None else values
        (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in given.items()}), encoding="utf-8")

    def run(self, step: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
        """Run a step as a subprocess; SM_HPS is cleared so the hyperparameters file is used."""
        import time

        env = {**os.environ, "SM_HPS": "", **self.env, **extra}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(self.script(step)), *args], env=env, capture_output=True,
                              text=True, timeout=180, check=False)
        self.times[step] = time.perf_counter() - started
        return done

    def package(self) -> Path:
        """model.tar.gz of the model folder, where the evaluation step looks for it."""
        packed = Path(self.env["MLOPS_PROCESSING_MODEL"])
        packed.mkdir(parents=True, exist_ok=True)
        with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
            for path in sorted(Path(self.env["SM_MODEL_DIR"]).iterdir()):
                tar.add(path, arcname=path.name)
        return packed / "model.tar.gz"

    def report(self) -> dict:
        """The evaluation step's evaluation.json."""
        return json.loads((Path(self.env["MLOPS_PROCESSING_EVALUATION"]) / "evaluation.json").read_text(encoding="utf-8"))

    def metric(self) -> float:
        """The headline metric of the report, read where the platform reads it."""
        return evaluation.metrics(self.report(), metric=self.contract.metric.name,
                                  path=self.contract.metric.json_path)[self.contract.metric.name]

    def pipeline(self) -> dict:
        """preprocess -> train -> package -> evaluate; fails the test with the step's stderr."""
        self.write_hyperparameters()
        for step, args in (("preprocess", self.step_args()), ("train", []), ("evaluate", self.step_args("evaluate"))):
            if step == "evaluate":
                self.package()
            done = self.run(step, *args)
            assert done.returncode == 0, f"{self.model} {step} failed: {done.stderr}"
        return self.report()


@pytest.fixture
def workspace(tmp_path: Path, contracts: dict[str, ModelContract]):
    """A factory: workspace(model) gives an empty Workspace for that example."""
    def make(model: str) -> Workspace:
        root = tmp_path / model
        (root / "raw").mkdir(parents=True)
        (root / "output").mkdir()  # SageMaker's /opt/ml/output: the training step's failure file goes here
        return Workspace(model=model, contract=contracts[model], root=root)

    return make
