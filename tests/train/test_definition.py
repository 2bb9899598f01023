"""The pipeline definition: built by the SageMaker SDK, one for every tenant, everything per tenant a parameter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import NAMES, ROOT

from mlops.config.contract import load_contract
from mlops.config.tenants import load_registry
from mlops.pipeline import parameters as P
from mlops.pipeline.builder import definition_json


def _steps(definition: dict) -> dict[str, dict]:
    steps = {}
    for step in definition["Steps"]:
        steps[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step.get("Arguments", {}).get(branch, []):
                steps[inner["Name"]] = inner
    return steps


@pytest.fixture(scope="module")
def house_prices_definition() -> str:
    """The regression example's definition."""
    return definition_json(load_contract(ROOT / "examples" / "house-prices"), pipeline_name=NAMES.pipeline("acme", "house-prices"))


def test_every_run_value_is_a_parameter_without_a_tenant_default(churn_definition: str) -> None:
    declared = {p["Name"]: p for p in json.loads(churn_definition)["Parameters"]}
    assert set(declared) == set(P.PARAMETERS)
    defaults = {name: p["DefaultValue"] for name, p in declared.items() if "DefaultValue" in p}
    assert defaults == {P.INSTANCE_COUNT: 1, P.APPROVAL_STATUS: "PendingManualApproval"}


def test_nothing_tenant_specific_is_baked_in(churn_definition: str) -> None:
    registry = load_registry(ROOT / "platform.yaml", ROOT / "tenants")
    text = churn_definition
    for tenant in registry.tenants.values():
        run = P.RunRequest(tenant=tenant.id, tier=tenant.tier, model="churn", instance_type="ml.m5.large", instance_count=1,
                           code_uri="s3://code/x", image_uri=P.image_uri(NAMES, "churn", "1.0.0"), model_version="1.0.0")
        values = P.execution_parameters(NAMES, run)
        for name in (P.TENANT_ID, P.INPUT_DATA_URI, P.OUTPUT_URI, P.ROLE_ARN, P.MODEL_PACKAGE_GROUP):
            assert values[name] not in text, f"{name} value {values[name]} is baked into the definition"
        assert NAMES.tenant_bucket(tenant.id) not in text
        assert f'"{tenant.id}"' not in text
        for value in tenant.tags.values():  # pylint: disable=no-member  # pydantic field
            assert f'"{value}"' not in text
    assert NAMES.account_id not in text


def test_the_same_definition_serves_every_tenant(churn_definition: str) -> None:
    """Tenants differ only by the parameters of their executions: the definition is built without them."""
    rebuilt = definition_json(load_contract(ROOT / "examples" / "churn"), pipeline_name=NAMES.pipeline("globex", "churn"))
    assert json.loads(rebuilt) == json.loads(churn_definition)
    acme = P.execution_parameters(NAMES, P.RunRequest("acme", "gold", "churn", "ml.m5.2xlarge", 1, "s3://c/x", "img", "1.0.0"))
    globex = P.execution_parameters(NAMES, P.RunRequest("globex", "bronze", "churn", "ml.m5.large", 1, "s3://c/x", "img", "1.0.0"))
    assert set(acme) == set(globex) == {p["Name"] for p in json.loads(churn_definition)["Parameters"]}
    assert {k for k, v in acme.items() if v != globex[k]} >= {P.TENANT_ID, P.INPUT_DATA_URI, P.ROLE_ARN, P.INSTANCE_TYPE}


def test_steps_and_their_wiring(churn_definition: str) -> None:
    definition = json.loads(churn_definition)
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "CheckMetric"]
    steps = _steps(definition)
    assert {name: s["Type"] for name, s in steps.items()} == {
        "Preprocess": "Processing", "Train": "Training", "Evaluate": "Processing", "CheckMetric": "Condition",
        "Register-RegisterModel": "RegisterModel", "MetricNotMet": "Fail"}
    train = steps["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == {"Get": "Parameters.ImageUri"}
    assert train["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.InstanceType"}
    assert train["ResourceConfig"]["InstanceCount"] == {"Get": "Parameters.InstanceCount"}
    assert train["RoleArn"] == {"Get": "Parameters.RoleArn"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in train["InputDataConfig"]}
    assert channels["train"] == {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert {"Key": "mlops:tenant", "Value": {"Get": "Parameters.TenantId"}} in train["Tags"]
    preprocess = steps["Preprocess"]["Arguments"]
    assert preprocess["AppSpecification"]["ContainerEntrypoint"] == [
        "python3", "/opt/ml/processing/input/code/src/preprocess.py", "--target", "churned"]
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}]


def test_hyperparameters_come_from_mlops_yaml(churn_definition: str) -> None:
    contract = load_contract(ROOT / "examples" / "churn")
    hps = _steps(json.loads(churn_definition))["Train"]["Arguments"]["HyperParameters"]
    assert {k: json.loads(v) for k, v in hps.items() if not k.startswith("sagemaker_")} == contract.hyperparameters
    assert hps["sagemaker_program"] == contract.entry_points.train
    assert hps["sagemaker_submit_directory"] == {"Std:Join": {"On": "/", "Values": [{"Get": "Parameters.CodeUri"}, "sourcedir.tar.gz"]}}


@pytest.mark.parametrize(("example", "condition", "threshold", "symbol", "path"), [
    pytest.param("churn", "GreaterThanOrEqualTo", 0.7, ">=", "binary_classification_metrics.auc.value", id="classification-maximize"),
    pytest.param("house-prices", "LessThanOrEqualTo", 60000.0, "<=", "regression_metrics.rmse.value", id="regression-minimize"),
])
def test_the_condition_follows_the_metric_direction(request: pytest.FixtureRequest, example: str, condition: str,  # pylint: disable=too-many-arguments,too-many-positional-arguments
                                                    threshold: float, symbol: str, path: str) -> None:
    definition = json.loads(request.getfixturevalue(f"{example.replace('-', '_')}_definition"))
    metric = load_contract(ROOT / "examples" / example).metric
    assert metric.json_path == path
    steps = _steps(definition)
    check = steps["CheckMetric"]["Arguments"]["Conditions"]
    json_get = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                                "Path": metric.json_path}}
    assert check == [{"Type": condition, "LeftValue": json_get, "RightValue": threshold}]
    message = steps["MetricNotMet"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert message[1] == json_get and f"({symbol} {threshold})" in message[2]


def test_registration_carries_metrics_and_metadata(churn_definition: str) -> None:
    register = _steps(json.loads(churn_definition))["Register-RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == {"Get": "Parameters.ModelPackageGroupName"}
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"][1] == "evaluation.json"
    metadata = register["CustomerMetadataProperties"]
    assert metadata["semantic_version"] == {"Get": "Parameters.ModelVersion"}
    assert metadata["image_digest"] == {"Get": "Parameters.ImageDigest"}
    assert metadata["git_commit"] == {"Get": "Parameters.GitCommit"}
    assert metadata["tenant"] == {"Get": "Parameters.TenantId"}
    assert metadata["metric_name"] == "auc" and metadata["metric_path"] == "binary_classification_metrics.auc.value"
    container = register["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


def test_the_sdk_is_only_imported_by_the_builder() -> None:
    modules = ["mlops.pipeline.start", "mlops.pipeline.progress", "mlops.pipeline.upsert", "mlops.aws.sagemaker", "mlops.local.engine",
               "mlops.cli.train", "mlops.trigger_client"]
    code = "import sys, " + ", ".join(modules) + "; print('sagemaker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    offenders = [p for p in (ROOT / "mlops").rglob("*.py") if p.name != "builder.py"
                 and any(line.strip().startswith(("import sagemaker", "from sagemaker")) for line in p.read_text().splitlines())]
    assert not offenders


@pytest.mark.slow
def test_mlops_pipeline_definition_prints_json_and_nothing_alarming(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "HOME": str(tmp_path),
           "AWS_DEFAULT_REGION": "us-east-1", "MLOPS_ROOT": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "mlops", "pipeline", "definition", "--repo", str(ROOT / "examples" / "churn")],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert {p["Name"] for p in json.loads(out.stdout)["Parameters"]} == set(P.PARAMETERS)
