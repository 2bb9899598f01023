"""The build stage as CI runs it on the example model: lint, version, build, publish; then a feat: commit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def mlops(*args: str) -> dict:
    """Run one `mlops ... --json` command like a CI job line; its JSON."""
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_first_commit_then_a_feature(registry_dir: Path, monkeypatch: pytest.MonkeyPatch, ecr, create_repository,  # type: ignore[no-untyped-def]
                                     git_repo: Path, git_commit, tmp_path: Path) -> None:
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    create_repository(ecr, "mlops-demo/churn")
    shutil.copytree(ROOT / "examples" / "churn", git_repo, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"))
    git_commit(git_repo, "feat: churn model")
    versions = []
    for step in ("first", "feature"):
        if step == "feature":
            (git_repo / "src" / "features.txt").write_text("tenure_bucket\n")
            git_commit(git_repo, "feat: bucket the tenure")
        if step == "first":  # pylint infers into scikit-learn and pandas here: about 20 s a run on a busy machine
            report = tmp_path / step / "gl-code-quality.json"
            assert mlops("lint", str(git_repo), "--codequality", str(report), "--fail-under", "9")["passed"]
        planned = mlops("version", "next", "--model", "churn", "--repo", str(git_repo), "--branch", "main",
                        "--dotenv", str(tmp_path / step / "version.env"))
        archive = tmp_path / step / "training.tar"
        built = mlops("image", "build", "--repo", str(git_repo), "--kind", "training", "--builder", "source",
                      "--docker-dir", str(ROOT / "docker"), "--out", str(archive))
        published = mlops("image", "publish", "--model", "churn", "--version", planned["version"], "--archive", str(archive))
        assert published["digest"] == built["digest"]
        versions.append(published["version"])
    assert versions == ["0.1.0", "0.2.0"]
    tags = ecr.list_images(repositoryName="mlops-demo/churn")["imageIds"]
    assert sorted(t["imageTag"] for t in tags) == ["0.1.0", "0.2.0"]
