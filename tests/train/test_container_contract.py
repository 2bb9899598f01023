"""The container contract of the local engine: SageMaker's paths, its training variables, and each job as its role.

The tiny model's scripts are replaced, in a copy, by scripts that use SageMaker's own paths and record
what they see; the engine runs them as it runs any execution.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from test_engine import RECORD_BUCKET, run, start, steps
from train_helpers import NAMES, LocalAws, provision, upload_tiny_data

from mlops.config.contract import load_contract
from mlops.local import container
from mlops.pipeline.builder import definition_json

slow = pytest.mark.slow
needs_namespace = pytest.mark.skipif(not container.isolation().real_paths,
                                     reason=f"no private mount namespace here: {container.isolation().reason}")

# Only SageMaker's paths: no variable tells these scripts where their files are.
NATIVE_PREPROCESS = '''
import argparse
from pathlib import Path
argparse.ArgumentParser().parse_args()
rows = (Path("/opt/ml/processing/input/data") / "data.csv").read_text(encoding="utf-8").splitlines()
for split in ("train", "test"):
    folder = Path("/opt/ml/processing/output") / split
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.csv").write_text("\\n".join(rows) + "\\n", encoding="utf-8")
'''
NATIVE_TRAIN = '''
import json, os, sys
from pathlib import Path
names = ("TRAINING_JOB_NAME", "TRAINING_JOB_ARN", "CURRENT_HOST", "SAGEMAKER_REGION", "SAGEMAKER_JOB_NAME")
seen = {"argv": sys.argv, "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("SM_") or k in names},
        "hyperparameters": json.loads(Path("/opt/ml/input/config/hyperparameters.json").read_text(encoding="utf-8")),
        "resources": json.loads(Path("/opt/ml/input/config/resourceconfig.json").read_text(encoding="utf-8")),
        "train": sorted(p.name for p in Path("/opt/ml/input/data/train").iterdir()),
        "data": sorted(p.name for p in Path("/opt/ml/input/data").iterdir())}
Path("/opt/ml/model/seen.json").write_text(json.dumps(seen), encoding="utf-8")
Path("/opt/ml/model/model.json").write_text(json.dumps({"quality": 0.9}), encoding="utf-8")
Path("/opt/ml/output/data/notes.txt").write_text("kept", encoding="utf-8")
'''
WHO_AM_I = '''
import boto3
print("caller:", boto3.client("sts").get_caller_identity()["Arn"])
'''

TOOLKIT_VARIABLES = {
    "SM_HOSTS", "SM_NETWORK_INTERFACE_NAME", "SM_HPS", "SM_USER_ENTRY_POINT", "SM_FRAMEWORK_PARAMS", "SM_RESOURCE_CONFIG",
    "SM_INPUT_DATA_CONFIG", "SM_OUTPUT_DATA_DIR", "SM_CHANNELS", "SM_CURRENT_HOST", "SM_CURRENT_INSTANCE_TYPE",
    "SM_CURRENT_INSTANCE_GROUP", "SM_CURRENT_INSTANCE_GROUP_HOSTS", "SM_INSTANCE_GROUPS", "SM_INSTANCE_GROUPS_DICT",
    "SM_DISTRIBUTION_INSTANCE_GROUPS", "SM_IS_HETERO", "SM_MODULE_NAME", "SM_LOG_LEVEL", "SM_FRAMEWORK_MODULE", "SM_INPUT_DIR",
    "SM_INPUT_CONFIG_DIR", "SM_OUTPUT_DIR", "SM_NUM_CPUS", "SM_NUM_GPUS", "SM_MODEL_DIR", "SM_MODULE_DIR", "SM_TRAINING_ENV",
    "SM_USER_ARGS", "SM_OUTPUT_INTERMEDIATE_DIR", "SM_CHANNEL_TRAIN", "SM_HP_FAIL", "SM_HP_OMIT_METRIC", "SM_HP_QUALITY",
    "TRAINING_JOB_NAME", "TRAINING_JOB_ARN", "CURRENT_HOST", "SAGEMAKER_REGION", "SAGEMAKER_JOB_NAME",
}


def native_repo(tiny_repo: Callable[..., Path], **changes: Any) -> Path:
    """The tiny model with one channel, no script arguments, and scripts that use SageMaker's paths."""
    repo = tiny_repo(channels=["train"], arguments={"preprocess": []}, **changes)
    (repo / "src" / "preprocess.py").write_text(NATIVE_PREPROCESS, encoding="utf-8")
    (repo / "src" / "train.py").write_text(NATIVE_TRAIN, encoding="utf-8")
    return repo


@needs_namespace
@slow
def test_scripts_see_sagemakers_paths_and_the_toolkits_variables(local_aws: LocalAws, tiny_repo: Callable[..., Path],
                                                                 tmp_path: Path) -> None:
    upload_tiny_data(local_aws.s3, "acme")
    record = run(local_aws, start(local_aws, native_repo(tiny_repo)), tmp_path)
    assert record["PipelineExecutionStatus"] == "Succeeded", record.get("FailureReason")
    assert "Warnings" not in record
    seen = json.loads((tmp_path / "work" / "Train" / "opt" / "ml" / "model" / "seen.json").read_text(encoding="utf-8"))
    # Hyperparameters as the toolkit passes them: sorted, JSON-decoded, then str().
    assert seen["argv"] == ["src/train.py", "--fail", "False", "--omit_metric", "False", "--quality", "0.9"]
    assert seen["cwd"] == "/opt/ml/code" and seen["train"] == ["train.csv"] and seen["data"] == ["train"]
    assert seen["hyperparameters"]["quality"] == "0.9" and seen["hyperparameters"]["sagemaker_program"] == "src/train.py"
    env = seen["env"]
    assert set(env) == TOOLKIT_VARIABLES
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train" and env["SM_CHANNELS"] == '["train"]'
    assert (env["SM_MODEL_DIR"], env["SM_OUTPUT_DATA_DIR"], env["SM_INPUT_CONFIG_DIR"]) == (
        "/opt/ml/model", "/opt/ml/output/data", "/opt/ml/input/config")
    assert env["SM_HPS"] == '{"fail":false,"omit_metric":false,"quality":0.9}' and env["SM_HP_QUALITY"] == "0.9"
    assert json.loads(env["SM_USER_ARGS"]) == seen["argv"][1:]
    assert (env["SM_CURRENT_HOST"], env["SM_HOSTS"], env["SM_NUM_GPUS"], env["SM_USER_ENTRY_POINT"]) == (
        "algo-1", '["algo-1"]', "0", "src/train.py")
    assert json.loads(env["SM_TRAINING_ENV"])["channel_input_dirs"] == {"train": "/opt/ml/input/data/train"}
    assert env["TRAINING_JOB_ARN"].endswith(f":training-job/{env['TRAINING_JOB_NAME']}")
    assert seen["resources"]["current_host"] == "algo-1" and seen["resources"]["hosts"] == ["algo-1"]
    log = (tmp_path / "work" / "Train" / "job.log").read_text(encoding="utf-8")
    assert "(private mount namespace" in log and "warning" not in log


@slow
def test_without_a_namespace_the_variables_carry_the_paths_and_the_engine_says_so(
        local_aws: LocalAws, tiny_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container, "_isolation", container.Isolation("none", "not allowed here"))
    upload_tiny_data(local_aws.s3, "acme")
    record = run(local_aws, start(local_aws, tiny_repo()), tmp_path)
    assert record["PipelineExecutionStatus"] == "Succeeded", record.get("FailureReason")
    [warning] = record["Warnings"]
    assert warning.startswith("warning: no private mount namespace for the job (not allowed here)")
    log = (tmp_path / "work" / "Preprocess" / "job.log").read_text(encoding="utf-8")
    assert warning in log and str(tmp_path / "work" / "Preprocess" / "opt" / "ml" / "processing" / "input" / "code") in log


@slow
def test_a_job_runs_with_its_roles_credentials(moto_server: str, tiny_repo: Callable[..., Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The script's AWS identity is the assumed role of its job request, as on SageMaker."""
    repo = tiny_repo()
    with (repo / "src" / "train.py").open("a", encoding="utf-8") as script:
        script.write(WHO_AM_I)
    definition = definition_json(load_contract(repo), pipeline_name=NAMES.pipeline("acme", "churn"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    session = boto3.session.Session(region_name="us-east-1")
    provision(session)
    aws = LocalAws(session, session.client("s3"), session.client("sagemaker"))
    upload_tiny_data(aws.s3, "acme")
    record = run(aws, start(aws, repo, definition=definition), tmp_path)
    assert record["PipelineExecutionStatus"] == "Succeeded", record.get("FailureReason")
    log = (tmp_path / "work" / "Train" / "job.log").read_text(encoding="utf-8")
    assert f"caller: arn:aws:sts::123456789012:assumed-role/{NAMES.tenant_role('acme')}/SageMaker" in log


@slow
def test_a_permission_the_role_lacks_fails_the_job(local_aws: LocalAws, tiny_repo: Callable[..., Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With IAM enforced, the engine's own S3 transfers for a job are made as the job's role."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    iam = local_aws.session.client("iam")
    iam.create_user(UserName="engine")
    iam.put_user_policy(UserName="engine", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="engine")["AccessKey"]
    # Locally the engine plays SageMaker, so the role trusts it (moto evaluates trust for AWS principals only).
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/engine"},
                                                     "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=NAMES.tenant_role("acme"), AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=NAMES.tenant_role("acme"), PolicyName="artifacts-only", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                 "Resource": [f"arn:aws:s3:::{RECORD_BUCKET}", f"arn:aws:s3:::{RECORD_BUCKET}/*"]}]}))
    upload_tiny_data(local_aws.s3, "acme")
    arn = start(local_aws, tiny_repo())
    engine_session = boto3.session.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                           region_name="us-east-1")
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    record = run(LocalAws(engine_session, engine_session.client("s3"), engine_session.client("sagemaker")), arn, tmp_path)
    assert steps(record)["Preprocess"] == "Failed", (record.get("FailureReason"), record.get("EngineTraceback"))
    assert record["FailureReason"].startswith(
        f"step Preprocess failed: input 'data': cannot download s3://{NAMES.tenant_bucket('acme')}/data/churn/ as the job's role: "
        "AccessDenied")
