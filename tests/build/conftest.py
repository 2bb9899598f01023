"""Fixtures of the build stage: git model repositories, ECR repositories and small OCI images."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops import image


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; return its output."""
    cmd = ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.com",
           "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def commit(repo: Path, message: str) -> str:
    """Commit whatever changed (or nothing) with `message`; return the commit id."""
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "--message", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty git repository on branch main."""
    repo = tmp_path / "model"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch", "main")
    return repo


@pytest.fixture(autouse=True)
def no_ci_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the same inside a GitLab job: its variables must not leak into the commands."""
    for name in ("CI_COMMIT_REF_NAME", "CI_DEFAULT_BRANCH", "CI_MERGE_REQUEST_IID", "CI_PIPELINE_IID", "CI_COMMIT_SHA",
                 "MLOPS_MODEL_BRANCH", "MLOPS_MODEL_DEFAULT_BRANCH", "MLOPS_MODEL_MR_IID", "MLOPS_MODEL_PIPELINE_IID",
                 "MODEL_VERSION", "MLOPS_BASE_IMAGE", "MLOPS_LINT_FAIL_UNDER"):
        monkeypatch.delenv(name, raising=False)


def _create_repository(client, name: str, mutability: str = "IMMUTABLE") -> None:  # type: ignore[no-untyped-def]
    client.create_repository(repositoryName=name, imageTagMutability=mutability,
                             imageScanningConfiguration={"scanOnPush": True})


@pytest.fixture
def create_repository() -> Callable[..., None]:
    """Make an ECR repository as the platform module does (immutable tags, scan on push)."""
    return _create_repository


@pytest.fixture
def git_commit() -> Callable[[Path, str], str]:
    """Commit everything in a repository with a message; returns the commit id."""
    return commit


@pytest.fixture
def run_git() -> Callable[..., str]:
    """Run git in a repository with a fixed identity."""
    return git


@pytest.fixture
def ecr(aws: None) -> Iterator[object]:
    """An in-process moto ECR client."""
    del aws
    import boto3

    yield boto3.client("ecr", region_name="us-east-1")


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[[str], image.OciImage]:
    """Write a small distinct OCI image per name (its content names it, so its digest is its own)."""
    def make(name: str) -> image.OciImage:
        return image.write_oci_archive(tmp_path / "images" / f"{name}.tar", {"app/owner.txt": name.encode()},
                                       config={"Labels": {"owner": name}}, annotations={image.REVISION: name})
    return make
