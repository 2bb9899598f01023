"""The runtime process reads the env file of `mlops local up` and gives the handlers the Lambda environment."""

from __future__ import annotations

from pathlib import Path

from mlops.local.runtime_process import lambda_environment, read_env_file
from mlops.local.stack import LocalStack
from mlops.naming import Names
from mlops.settings import Settings


def test_reads_the_env_file_that_local_up_writes(tmp_path: Path) -> None:
    stack = LocalStack(Settings.from_env({"MLOPS_ROOT": str(Path(__file__).resolve().parents[2]),
                                          "MLOPS_STATE_DIR": str(tmp_path)}))
    env_file = tmp_path / "env"
    env_file.write_text("\n".join(stack.env_lines("http://127.0.0.1:4566", "eu-west-1")) + "\n", encoding="utf-8")
    assert read_env_file(env_file) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1", "MLOPS_LOCAL": "1"}


def test_lambda_environment_is_what_terraform_gives_the_functions(tmp_path: Path) -> None:
    names = Names("mlops-demo")
    env = lambda_environment(names, tmp_path, "arn:aws:sns:us-east-1:123456789012:mlops-demo-notifications")
    assert env == {"MLOPS_PROJECT": "mlops-demo", "MLOPS_LEDGER_TABLE": names.ledger_table(),
                   "MLOPS_SLOTS_TABLE": names.slots_table(), "MLOPS_MAX_RECEIVES": "5", "MLOPS_ROOT": str(tmp_path),
                   "MLOPS_NOTIFICATIONS_TOPIC": "arn:aws:sns:us-east-1:123456789012:mlops-demo-notifications"}
    assert "MLOPS_NOTIFICATIONS_TOPIC" not in lambda_environment(names, tmp_path)


def test_no_runtime_is_running_without_a_recorded_pid(tmp_path: Path) -> None:
    stack = LocalStack(Settings.from_env({"MLOPS_ROOT": str(Path(__file__).resolve().parents[2]),
                                          "MLOPS_STATE_DIR": str(tmp_path)}))
    assert not stack.runtime_running(None)
    assert not stack.runtime_running({"runtime_pid": 1})  # pid 1 is no runtime of ours
