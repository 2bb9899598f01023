"""`mlops train --wait` end to end on a moto server: the trigger function runs on Lambda Invoke, the engine
runs detached, the CLI follows its record and the ledger the status function keeps.

Both example models (a classifier that maximises auc, a regression that minimises rmse) run through the
same code for two tenants on two tiers; a broken model shows its reason in the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from train_helpers import NAMES, ROOT, LocalAws, upload_example_data, upload_tiny_data

pytestmark = pytest.mark.slow


def mlops(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the CLI as CI would, in the test's environment."""
    return subprocess.run([sys.executable, "-m", "mlops", *args], capture_output=True, text=True, env=dict(os.environ),
                          timeout=timeout, check=False)


@pytest.mark.parametrize(("tenant", "model", "instance_type", "metric"), [
    pytest.param("acme", "churn", "ml.m5.2xlarge", "auc", id="acme-gold-churn"),
    pytest.param("globex", "churn", "ml.m5.large", "auc", id="globex-bronze-churn"),
    pytest.param("acme", "house-prices", "ml.m5.2xlarge", "rmse", id="acme-house-prices-regression"),
])
def test_examples_train_to_a_registered_model_package(server_env: LocalAws, tmp_path: Path, tenant: str, model: str,
                                                      instance_type: str, metric: str) -> None:
    upload_example_data(server_env.s3, tenant, model, tmp_path)
    out = mlops("train", "--tenant", tenant, "--repo", str(ROOT / "examples" / model), "--wait", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "Succeeded"
    assert metric in result["metrics"]
    package = server_env.sm.describe_model_package(ModelPackageName=result["model_package_arn"])
    assert package["ModelPackageGroupName"] == NAMES.model_package_group(tenant, model)
    assert package["CustomerMetadataProperties"]["tenant"] == tenant
    assert float(package["CustomerMetadataProperties"]["metric_value"]) == result["metrics"][metric]
    parameters = {p["Name"]: p["Value"] for p in server_env.sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=result["execution_arn"])["PipelineParameters"]}
    assert parameters["InstanceType"] == instance_type
    assert parameters["InputDataUri"] == f"s3://{NAMES.tenant_bucket(tenant)}/data/{model}/"
    assert result["trigger"] == "started" and result["ledger"]["status"] == "SUCCEEDED" and "note" not in result["ledger"]


def test_wait_shows_each_step_and_the_failure_reason(server_env: LocalAws, tiny_repo: Callable[..., Path]) -> None:
    upload_tiny_data(server_env.s3, "globex")
    out = mlops("train", "--tenant", "globex", "--repo", str(tiny_repo(hyperparameters={"fail": True})), "--wait")
    assert out.returncode == 1
    assert "  Preprocess               Succeeded" in out.stderr
    assert "reason: step Train failed: the script exited with code 1: RuntimeError: learning rate exploded: loss is NaN" in out.stderr
    assert "    | RuntimeError: learning rate exploded: loss is NaN" in out.stderr
    assert " FAILED" in out.stderr.splitlines()[-1] and out.stderr.splitlines()[-1].startswith("ledger: globex-churn-")


def test_a_metric_below_threshold_is_reported_and_not_registered(server_env: LocalAws, tiny_repo: Callable[..., Path]) -> None:
    upload_tiny_data(server_env.s3, "globex")
    out = mlops("train", "--tenant", "globex", "--repo", str(tiny_repo(metric={"threshold": 0.99})), "--wait")
    assert out.returncode == 1
    assert "reason: auc = 0.9 does not meet the threshold (>= 0.99); the model was not registered" in out.stderr
    assert "registered model package" not in out.stderr  # and no metrics: SageMaker has them only with a package


def test_an_unknown_tenant_is_a_one_line_error(server_env: LocalAws) -> None:  # pylint: disable=unused-argument
    out = mlops("train", "--tenant", "nobody", "--model", "churn", "--wait")
    assert out.returncode != 0
    assert out.stderr.strip().startswith("error: unknown tenant 'nobody'")


def test_a_request_the_trigger_function_refuses_is_a_one_line_error(server_env: LocalAws, registry_dir: Path) -> None:  # pylint: disable=unused-argument
    # A tenant added to the registry after the trigger was deployed: the CLI knows it, the function does not.
    (registry_dir / "tenants" / "initech.yaml").write_text(
        "id: initech\ndisplay_name: Initech\ntier: bronze\nmodels: [churn]\ntags:\n  cost-center: cc-3003\n  customer: initech\n")
    out = mlops("train", "--tenant", "initech", "--model", "churn", "--version", "1.0.0")
    assert out.returncode != 0
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: the trigger rejected the build request: unknown tenant 'initech'"), line
