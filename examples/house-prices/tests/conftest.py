"""Test fixtures: synthetic house sales, and a fake `/opt/ml` under a temporary folder.

`Container` maps every SageMaker path into its own folder through the environment variables of the
contract and runs a script there as a subprocess, the way the ml-ops local engine does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parents[1]


def make_sales(count: int = 400, seed: int = 3) -> pd.DataFrame:
    """Sales whose log price is linear in log area, age, condition and neighbourhood."""
    rng = np.random.default_rng(seed)
    area = rng.lognormal(np.log(1700), 0.3, count).round()
    hood = rng.choice(["north", "south", "centre"], count)
    condition = rng.integers(1, 6, count)
    age = rng.integers(0, 90, count)
    log_price = (12.6 + 0.9 * np.log(area / 1700) - 0.003 * age + 0.05 * condition
                 + np.where(hood == "centre", 0.2, 0.0) + rng.normal(0, 0.06, count))
    return pd.DataFrame({
        "house_id": np.arange(count), "sqft": area, "bedrooms": np.clip(area // 550, 1, 6),
        "bathrooms": rng.choice([1, 1.5, 2, 2.5], count), "age_years": age, "lot_size": (area * 3).round(),
        "has_garage": rng.integers(0, 2, count), "condition": condition, "neighborhood": hood,
        "price": np.exp(log_price).round(-2),
    })


class Container:
    """A fake SageMaker container rooted at a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            "MLOPS_PROCESSING_INPUT": root / "processing/input/data", "MLOPS_PROCESSING_OUTPUT": root / "processing/output",
            "SM_CHANNEL_TRAIN": root / "processing/output/train", "SM_CHANNEL_VALIDATION": root / "processing/output/validation",
            "SM_INPUT_CONFIG_DIR": root / "input/config", "SM_MODEL_DIR": root / "model",
            "MLOPS_PROCESSING_MODEL": root / "processing/model", "MLOPS_PROCESSING_TEST": root / "processing/output/test",
            "MLOPS_PROCESSING_EVALUATION": root / "processing/evaluation",
        }

    def path(self, variable: str) -> Path:
        """Where a contract variable points in this container."""
        return self.env[variable]

    def run(self, script: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
        """Run src/<script>.py with the contract's variables (plus `extra`); the exit code is for the test."""
        env = {**os.environ, "SM_HPS": "", **{k: str(v) for k, v in self.env.items()}, **extra}
        return subprocess.run([sys.executable, str(HERE / "src" / f"{script}.py"), *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    def package(self) -> None:
        """Pack the model folder as SageMaker does, where the evaluation step expects it."""
        self.path("MLOPS_PROCESSING_MODEL").mkdir(parents=True, exist_ok=True)
        with tarfile.open(self.path("MLOPS_PROCESSING_MODEL") / "model.tar.gz", "w:gz") as archive:
            archive.add(self.path("SM_MODEL_DIR"), arcname=".")


@pytest.fixture(name="container")
def container_fixture(tmp_path: Path) -> Container:
    """An empty fake container."""
    return Container(tmp_path / "opt-ml")


@pytest.fixture(name="sales")
def sales_fixture():
    """The synthetic sales maker."""
    return make_sales


@pytest.fixture(scope="session", name="fitted")
def fitted_fixture(tmp_path_factory: pytest.TempPathFactory) -> Container:
    """A container in which the whole pipeline ran once: preprocess, train, package, evaluate."""
    box = Container(tmp_path_factory.mktemp("fitted"))
    box.path("MLOPS_PROCESSING_INPUT").mkdir(parents=True)
    make_sales().to_csv(box.path("MLOPS_PROCESSING_INPUT") / "sales.csv", index=False)
    box.path("SM_INPUT_CONFIG_DIR").mkdir(parents=True)
    (box.path("SM_INPUT_CONFIG_DIR") / "hyperparameters.json").write_text(
        json.dumps({"alpha": "0.3", "log_target": "true", "log_area": "True"}), encoding="utf-8")
    for script, args in (("preprocess", ["--target", "price"]), ("train", []), ("package", []), ("evaluate", ["--target", "price"])):
        if script == "package":
            box.package()
            continue
        done = box.run(script, *args)
        assert done.returncode == 0, done.stderr
    return box


@pytest.fixture(scope="session", name="serving")
def serving_fixture(fitted: Container):
    """The inference module (imported from its file) and the model it loaded."""
    spec = importlib.util.spec_from_file_location("house_prices_inference", HERE / "src" / "inference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.model_fn(str(fitted.path("SM_MODEL_DIR")))
