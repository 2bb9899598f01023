"""`mlops version next` and `mlops image publish` end to end: git history + ECR (in-process moto) + dotenv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops import image
from mlops.cli import cli, main
from mlops.errors import MlopsError

REPO = "mlops-demo/churn"


@pytest.fixture
def project(registry_dir: Path, monkeypatch: pytest.MonkeyPatch, ecr, create_repository):  # type: ignore[no-untyped-def]
    """The repository's platform.yaml (project mlops-demo) and the churn model's ECR repository."""
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    create_repository(ecr, REPO)
    return ecr


def version_next(repo: Path, *args: str) -> dict:
    """`mlops version next --json` for the churn model; its JSON."""
    result = CliRunner().invoke(cli, ["version", "next", "--model", "churn", "--repo", str(repo), "--json", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def publish(repo: Path, version: str, tmp_path: Path, *args: str) -> dict:
    """Build a small image of the repository's HEAD (revision annotated, as buildah's build does) and publish it."""
    revision = image.git_revision(repo)
    archive = image.write_oci_archive(tmp_path / f"{version}.tar", {"code/rev": (revision or "").encode()},
                                      annotations={image.REVISION: revision or ""}).archive
    result = CliRunner().invoke(cli, ["image", "publish", "--model", "churn", "--version", version, "--archive", str(archive),
                                      "--json", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_versions_follow_the_commits_release_after_release(project, git_repo: Path, git_commit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    del project
    git_commit(git_repo, "feat: first model")
    first = version_next(git_repo, "--branch", "main")
    assert (first["version"], first["base"], first["channel"]) == ("0.1.0", None, "release")
    assert publish(git_repo, "0.1.0", tmp_path)["version"] == "0.1.0"

    git_commit(git_repo, "feat: a new feature column")
    git_commit(git_repo, "docs: explain it")
    second = version_next(git_repo, "--branch", "main")
    assert (second["version"], second["base"], second["bump"], second["commits"]) == ("0.2.0", "0.1.0", "minor", 2)
    assert "the revision image 0.1.0 was built from" in second["bump_source"]
    publish(git_repo, "0.2.0", tmp_path)

    git_commit(git_repo, "fix: off by one in the split")
    assert version_next(git_repo, "--branch", "main")["version"] == "0.2.1"
    git_commit(git_repo, "refactor!: new input format")
    assert version_next(git_repo, "--branch", "main")["version"] == "1.0.0"
    assert version_next(git_repo, "--branch", "main", "--bump", "patch")["version"] == "0.2.1"


def test_pre_releases_for_merge_requests_and_branches(project, git_repo: Path, git_commit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    del project
    git_commit(git_repo, "feat: first model")
    publish(git_repo, "0.1.0", tmp_path)
    git_commit(git_repo, "feat: more")
    mr = version_next(git_repo, "--branch", "feature/More", "--mr-iid", "12", "--pipeline-iid", "3")
    assert (mr["version"], mr["channel"]) == ("0.2.0-mr.12.3", "mr")
    assert version_next(git_repo, "--branch", "feature/More", "--pipeline-iid", "7")["version"] == "0.2.0-feature-more.7"
    publish(git_repo, "0.2.0-mr.12.3", tmp_path)
    # the same pipeline number again (a retried job) moves on instead of colliding
    assert version_next(git_repo, "--mr-iid", "12", "--pipeline-iid", "3")["version"] == "0.2.0-mr.12.4"
    # pre-releases never become the base of a release
    assert version_next(git_repo, "--branch", "main")["version"] == "0.2.0"


def test_gitlab_variables_are_read(project, git_repo: Path, git_commit, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    del project
    git_commit(git_repo, "feat: first model")
    monkeypatch.setenv("CI_COMMIT_REF_NAME", "ml-ops-branch")
    monkeypatch.setenv("MLOPS_MODEL_BRANCH", "develop")  # what the upstream model pipeline passes wins
    monkeypatch.setenv("CI_DEFAULT_BRANCH", "develop")
    monkeypatch.setenv("CI_PIPELINE_IID", "99")
    assert version_next(git_repo)["version"] == "0.1.0"
    monkeypatch.setenv("MLOPS_MODEL_BRANCH", "topic")
    assert version_next(git_repo)["version"] == "0.1.0-topic.99"


def test_dotenv_for_later_jobs(project, git_repo: Path, git_commit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    del project
    git_commit(git_repo, "feat: first model")
    dotenv = tmp_path / "build.env"
    version_next(git_repo, "--branch", "main", "--dotenv", str(dotenv))
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert values["MODEL_VERSION"] == values["IMAGE_TAG"] == "0.1.0"
    assert values["MODEL_NAME"] == "churn" and values["ECR_REPOSITORY"] == REPO
    assert values["IMAGE_URI"].endswith(f"/{REPO}:0.1.0")
    published_env = tmp_path / "publish.env"
    result = publish(git_repo, "0.1.0", tmp_path, "--dotenv", str(published_env))
    published = dict(line.split("=", 1) for line in published_env.read_text().splitlines())
    assert published["IMAGE_DIGEST"] == result["digest"] and published["MODEL_VERSION"] == "0.1.0"


def test_invalid_registry_tags_are_reported_and_ignored(project, git_repo: Path, git_commit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git_commit(git_repo, "fix: first model")
    for tag in ["1.5", "latest", "2.0.0-rc.1"]:
        built = image.write_oci_archive(tmp_path / f"{tag}.tar", {"t": tag.encode()})
        image.upload_image(project, REPO, built)
        project.put_image(repositoryName=REPO, imageTag=tag, imageManifest=built.manifest.decode(),
                          imageManifestMediaType=built.media_type, imageDigest=built.digest)
    result = CliRunner().invoke(cli, ["version", "next", "--model", "churn", "--repo", str(git_repo), "--branch", "main"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "0.1.0"
    assert "ignored invalid tag '1.5'" in result.stderr


def test_git_tags_are_the_fallback(registry_dir: Path, monkeypatch: pytest.MonkeyPatch, git_repo: Path, git_commit,  # type: ignore[no-untyped-def]
                                   run_git) -> None:
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    git_commit(git_repo, "feat: first model")
    run_git(git_repo, "tag", "v0.5.0")
    git_commit(git_repo, "fix: small")
    plan = version_next(git_repo, "--branch", "main", "--no-registry")
    assert (plan["version"], plan["git_base"], plan["commits"]) == ("0.5.1", "0.5.0", 1)
    assert "git tag v0.5.0" in plan["bump_source"]


def test_outside_a_git_repository_the_bump_is_patch_with_a_note(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    del project
    plain = tmp_path / "plain"
    plain.mkdir()
    result = CliRunner().invoke(cli, ["version", "next", "--model", "churn", "--repo", str(plain)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "0.1.0"
    assert "could not read commits" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["version", "next", "--model", "nope"], "model 'nope' is not one of the platform's models", id="unknown-model"),
        pytest.param(["image", "publish", "--model", "churn", "--version", "0.1", "--archive", "x.tar"], "not found",
                     id="missing-archive"),
        pytest.param(["version", "next", "--model", "house-prices"], "does not exist", id="repository-not-provisioned"),
    ],
)
def test_expected_failures_are_one_line(project, args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    del project
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_publish_rejects_a_version_that_is_not_semver(project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    del project
    archive = image.write_oci_archive(tmp_path / "a.tar", {"a": b"a"}).archive
    with pytest.raises(SystemExit):
        main(["image", "publish", "--model", "churn", "--version", "latest", "--archive", str(archive)])
    assert "'latest' is not a semantic version" in capsys.readouterr().err


def test_without_tag_or_revision_only_the_last_commit_counts(project, git_repo: Path, git_commit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git_commit(git_repo, "feat!: an old breaking change")
    built = image.write_oci_archive(tmp_path / "old.tar", {"old": b"1"})  # no revision annotation
    image.publish(project, model="churn", repository=REPO, version="1.0.0", image=built)
    git_commit(git_repo, "fix: small")
    plan = version_next(git_repo, "--branch", "main")
    assert (plan["version"], plan["commits"]) == ("1.0.1", 1)
    assert "only the last commit" in plan["bump_source"]


@pytest.mark.parametrize("version", ["latest", "../x", "1.0"])
def test_publish_refuses_a_bad_version_before_any_aws_call(project, tmp_path: Path, version: str) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    project.meta.events.register("before-call.ecr.*", lambda model, **_: calls.append(model.name))
    built = image.write_oci_archive(tmp_path / "a.tar", {"a": b"a"})
    with pytest.raises(MlopsError, match="is not a semantic version"):
        image.publish(project, model="churn", repository=REPO, version=version, image=built)
    assert not calls  # no upload, not even a look at the repository
