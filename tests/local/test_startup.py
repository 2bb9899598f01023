"""`mlops --help` imports neither boto3 nor sagemaker (nor moto): start-up stays a fraction of a second."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys
from mlops.cli import cli
try:
    cli.main(["--help"], prog_name="mlops")
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "sagemaker", "moto", "python_terraform"))
print(json.dumps(heavy), file=sys.stderr)
"""


def test_mlops_help_imports_no_aws_sdk() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60)
    assert "Commands:" in result.stdout and "local" in result.stdout
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []


def test_mlops_local_help_imports_no_aws_sdk() -> None:
    probe = _PROBE.replace('["--help"]', '["local", "up", "--help"]')
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert "Start a moto server" in result.stdout
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
