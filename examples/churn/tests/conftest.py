"""Fixtures for this repository's tests: a small synthetic customer file and a runner for the scripts.

The scripts run as subprocesses under the SageMaker container contract, every `/opt/ml/...` path mapped
to a temporary folder through the environment variables, exactly as the ml-ops local engine runs them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def customers(rows: int = 600, seed: int = 7) -> pd.DataFrame:
    """Customers whose churn depends on tenure, charges, support calls and contract."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    monthly = rng.uniform(20, 120, rows).round(2)
    calls = rng.poisson(1.5, rows)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], rows)
    logit = -0.05 * (tenure - 30) + 0.03 * (monthly - 70) + 0.6 * (calls - 1.5) + (contract == "month-to-month") * 1.2 - 1
    return pd.DataFrame({
        "customer_id": [f"T{i:05d}" for i in range(rows)], "tenure_months": tenure, "monthly_charges": monthly,
        "total_charges": (tenure * monthly).round(2), "support_calls": calls, "senior": rng.integers(0, 2, rows),
        "contract": contract, "internet_service": rng.choice(["dsl", "fiber", "none"], rows),
        "payment_method": rng.choice(["card", "electronic-check"], rows),
        "churned": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
    })


def run_step(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run one of the scripts with extra environment variables; never raises on a non-zero exit."""
    return subprocess.run([sys.executable, str(SRC / script), *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def pack(model_dir: Path, into: Path) -> Path:
    """model.tar.gz of a model folder, as SageMaker makes it."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(into / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return into / "model.tar.gz"


def load_inference() -> ModuleType:
    """The inference module, imported from its file under a name of its own."""
    spec = importlib.util.spec_from_file_location("churn_inference", SRC / "inference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One full preprocess -> train -> pack -> evaluate run, shared by the tests that only read it."""
    base = tmp_path_factory.mktemp("run")
    (base / "raw").mkdir()
    customers().to_csv(base / "raw" / "customers.csv", index=False)
    steps = [
        ("preprocess.py", {"MLOPS_PROCESSING_INPUT": str(base / "raw"), "MLOPS_PROCESSING_OUTPUT": str(base / "out")},
         ["--target", "churned"]),
        ("train.py", {"SM_CHANNEL_TRAIN": str(base / "out/train"), "SM_CHANNEL_VALIDATION": str(base / "out/validation"),
                      "SM_MODEL_DIR": str(base / "model"), "SM_HPS": '{"n_estimators": 60, "max_depth": 2}'}, []),
    ]
    for script, env, args in steps:
        done = run_step(script, env, *args)
        assert done.returncode == 0, done.stderr
    pack(base / "model", base / "packed")
    done = run_step("evaluate.py", {"MLOPS_PROCESSING_MODEL": str(base / "packed"),
                                    "MLOPS_PROCESSING_TEST": str(base / "out/test"),
                                    "MLOPS_PROCESSING_EVALUATION": str(base / "evaluation")}, "--target", "churned")
    assert done.returncode == 0, done.stderr
    return {"base": base, "model": base / "model", "evaluation": base / "evaluation" / "evaluation.json"}


@pytest.fixture(name="customers")
def customers_fixture():
    """The synthetic data maker, for tests that write their own input."""
    return customers


@pytest.fixture(name="run_step")
def run_step_fixture():
    """The script runner."""
    return run_step


@pytest.fixture(name="contract")
def contract_fixture() -> dict:
    """This repository's mlops.yaml."""
    return yaml.safe_load((REPO / "mlops.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def served(trained: dict[str, Path]) -> tuple[ModuleType, dict]:
    """The inference module and the model it loaded from the trained run."""
    module = load_inference()
    return module, module.model_fn(str(trained["model"]))
