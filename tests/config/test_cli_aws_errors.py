"""The AWS SDK's own errors (no credentials, no endpoint) reach the user as one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args, env, error", [
    pytest.param(["executions", "list"], {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None,
                                          "AWS_SECURITY_TOKEN": None, "AWS_EC2_METADATA_DISABLED": "true"},
                 "NoCredentialsError: Unable to locate credentials", id="no-credentials"),
    pytest.param(["train", "--tenant", "acme", "--repo", "examples/churn", "--version", "0.1.0"],
                 {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
                 "EndpointConnectionError: Could not connect to the endpoint URL", id="no-endpoint"),
])
def test_aws_sdk_errors_are_one_line(args: list[str], env: dict[str, str | None], error: str) -> None:
    environment = {**os.environ, "MLOPS_ROOT": str(ROOT)}
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    done = subprocess.run([sys.executable, "-m", "mlops", *args], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: AWS did not answer as expected: ") and error in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
