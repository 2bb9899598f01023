"""`make demo` end to end: the whole story on a fresh local AWS, through the real `mlops` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.terraform
def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    # No MLOPS_TF_PLUGIN_DIR: the demo finds the provider where Terraform would, as a new user's shell does.
    env = {key: value for key, value in os.environ.items() if key != "MLOPS_TF_PLUGIN_DIR"}
    env.update(MLOPS_STATE_DIR=str(tmp_path / "state"), MLOPS_ROOT=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "mlops.demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=1500, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    for expected in (
        "published churn 0.1.0", "published churn 0.2.0",          # versions from conventional commits
        "gate for acme 0.3.0: refuse",                               # the worse challenger is refused
        "challenger is worse than the champion",
        "decided: retrain globex/churn (max-age)",                   # the stale tenant (14-day override, 15 days later)
        "decided: retrain acme/churn (new-data)",                    # acme's scheduled upload, left to the check
        "retraining requested: globex/churn", "retraining requested: acme/churn",
        "demo finished in",
        "local AWS stopped",
    ):
        assert expected in out, expected
    assert not (tmp_path / "state" / "local" / "state.json").exists()
