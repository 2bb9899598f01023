"""The deploy commands' wiring that needs no AWS: metric rule from --repo, loopback detection, imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops.cli import deploy as cli
from mlops.errors import MlopsError
from mlops.gate import MetricRule

ROOT = Path(__file__).resolve().parents[2]


def test_rule_comes_from_the_model_repository() -> None:
    assert cli._rule(ROOT / "examples" / "churn", "churn") == MetricRule(  # pylint: disable=protected-access
        name="auc", direction="maximize", min_improvement=0.0, threshold=0.7)
    assert cli._rule(None, "churn") is None  # pylint: disable=protected-access
    with pytest.raises(MlopsError, match="holds model 'churn', not 'house-prices'"):
        cli._rule(ROOT / "examples" / "churn", "house-prices")  # pylint: disable=protected-access


def test_force_needs_reason_and_reason_needs_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_USER_LOGIN", "dora")
    assert cli._force(True, "hotfix").actor == "dora"  # pylint: disable=protected-access
    with pytest.raises(MlopsError, match="needs a reason"):
        cli._force(True, None)  # pylint: disable=protected-access
    with pytest.raises(MlopsError, match="--reason without --force"):
        cli._force(False, "because")  # pylint: disable=protected-access


def test_help_of_the_deploy_commands_imports_no_boto3() -> None:
    code = ("import sys; from mlops.cli import main\n"
            "for c in ('gate', 'deploy', 'reject', 'invoke'):\n"
            "    try: main([c, '--help'])\n"
            "    except SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'sagemaker')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
