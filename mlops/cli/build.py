"""`mlops lint`, `mlops version next`, `mlops image build` and `mlops image publish`: the build stage.

Each command wires the pure rules (`mlops.versioning`), the ECR adapter (`mlops.aws.ecr`) and the
orchestration (`mlops.lint`, `mlops.image`). boto3 is imported inside the commands only. Pipeline facts
come from options with GitLab's variables as fallbacks; in the downstream ml-ops pipeline the upstream
trigger passes the model repository's values as `MLOPS_MODEL_*`, which win over ml-ops' own `CI_*`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlops.cli.output import emit, info, json_option
from mlops.errors import ConfigError, MlopsError


def _repository(model: str) -> tuple[str, str]:
    """The model's ECR repository name and the platform region, after checking the model is known."""
    from mlops.config.tenants import load_from_settings

    registry = load_from_settings()
    if model not in registry.platform.models:
        raise ConfigError(f"model '{model}' is not one of the platform's models ({', '.join(registry.platform.models)})",
                          "check --model, or add the model to platform.yaml and apply Terraform")
    return registry.names().ecr_repository(model), registry.platform.region


def _ecr_client(region: str) -> Any:
    import boto3

    # AWS_ENDPOINT_URL (set by `mlops local up`'s env file) points boto3 at the local AWS.
    return boto3.client("ecr", region_name=region)


# -- lint -----------------------------------------------------------------------------------------------

@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=".")
@click.option("--codequality", type=click.Path(path_type=Path, dir_okay=False),
              help="Write a GitLab Code Quality report (JSON) here, for artifacts:reports:codequality.")
@click.option("--fail-under", type=click.FloatRange(0, 10), default=8.0, show_default=True,
              envvar="MLOPS_LINT_FAIL_UNDER", help="Fail when the pylint score is below this.")
@click.option("--rcfile", type=click.Path(path_type=Path, dir_okay=False),
              help="pylintrc to use instead of the model repository's own or the platform default.")
@json_option
def lint(path: Path, codequality: Path | None, fail_under: float, rcfile: Path | None, as_json: bool) -> None:
    """Run pylint on PATH (a model repository or a file); fail on errors or a score below --fail-under."""
    from mlops.lint import lint as run_lint

    result = run_lint(path, rcfile=rcfile, codequality=codequality, fail_under=fail_under,
                      echo=lambda text: click.echo(text, err=as_json))

    def render(r: dict) -> None:
        info(f"rcfile: {r['rcfile']} ({r['rcfile_source']}); {r['files']} Python file(s)")
        if r["codequality"]:
            info(f"code quality report: {r['codequality']}")
        info(("ok: " if r["passed"] else "lint failed: ") + r["reason"])

    emit(result.as_dict(), as_json, render)
    if not result.passed:
        raise SystemExit(1)


# -- version --------------------------------------------------------------------------------------------

@click.group()
def version() -> None:
    """Semantic versions of models: the base is the highest release in ECR, the bump comes from commits."""


@version.command("next")
@click.option("--model", required=True, help="Model name (one of platform.yaml models).")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=".", show_default=True,
              help="The model repository (git tags and commit messages are read here).")
@click.option("--branch", envvar=["MLOPS_MODEL_BRANCH", "CI_COMMIT_REF_NAME"],
              help="Branch being built. [env: MLOPS_MODEL_BRANCH, CI_COMMIT_REF_NAME]")
@click.option("--default-branch", envvar=["MLOPS_MODEL_DEFAULT_BRANCH", "CI_DEFAULT_BRANCH"], default="main",
              show_default=True, help="The branch that publishes releases. [env: MLOPS_MODEL_DEFAULT_BRANCH, CI_DEFAULT_BRANCH]")
@click.option("--mr-iid", type=click.IntRange(min=1), envvar=["MLOPS_MODEL_MR_IID", "CI_MERGE_REQUEST_IID"],
              help="Merge request number: gives a pre-release mr.<iid>.<pipeline>. [env: MLOPS_MODEL_MR_IID, CI_MERGE_REQUEST_IID]")
@click.option("--pipeline-iid", type=click.IntRange(min=1), envvar=["MLOPS_MODEL_PIPELINE_IID", "CI_PIPELINE_IID"],
              help="Pipeline number, the last part of pre-releases. [env: MLOPS_MODEL_PIPELINE_IID, CI_PIPELINE_IID]")
@click.option("--bump", type=click.Choice(["major", "minor", "patch"]), help="Bump this part instead of reading commits.")
@click.option("--no-registry", is_flag=True, help="Do not ask ECR; use the model repository's git tags only.")
@click.option("--dotenv", "dotenv_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write MODEL_VERSION, IMAGE_TAG, ... here, for artifacts:reports:dotenv.")
@json_option
def version_next(model: str, repo: Path, branch: str | None, default_branch: str, mr_iid: int | None,
                 pipeline_iid: int | None, bump: str | None, no_registry: bool, dotenv_file: Path | None,
                 as_json: bool) -> None:
    """Compute the next version of MODEL: a release on the default branch, a pre-release elsewhere."""
    from mlops import image, versioning

    repository, region = _repository(model)
    if not repo.is_dir():
        raise MlopsError(f"model repository {repo} not found", "pass --repo PATH")
    tags: list[str] = []
    revision_of: Callable[[str], str | None] | None = None
    image_uri = None
    if not no_registry:
        from mlops.aws import ecr

        client = _ecr_client(region)
        image_uri = ecr.describe_repository(client, repository).uri
        tags = ecr.list_tags(client, repository)

        def read_revision(tag: str) -> str | None:
            manifest = ecr.manifest_of(client, repository, tag) or {}
            return (manifest.get("annotations") or {}).get(image.REVISION)

        revision_of = read_revision

    pipeline = versioning.Pipeline(branch=branch, default_branch=default_branch, mr_iid=mr_iid, pipeline_iid=pipeline_iid)
    plan = image.plan_version(model=model, repository=repository, registry_tags=tags, repo=repo, pipeline=pipeline,
                              bump=bump, revision_of=revision_of)
    for note in plan.notes:
        info(f"note: {note}")
    if dotenv_file is not None:
        image.write_dotenv(dotenv_file, plan.dotenv(image_uri))
        info(f"wrote {dotenv_file}")

    def render(p: dict) -> None:
        info(f"{model}: {p['base'] or 'nothing released'} -> {p['version']} ({p['channel']}, {p['bump']} from {p['bump_source']})")
        click.echo(p["version"])

    emit(plan.as_dict(), as_json, render)


# -- image ----------------------------------------------------------------------------------------------

@click.group()
def image() -> None:
    """Model images: build with Buildah into an OCI archive, publish to ECR under an immutable version tag."""


@image.command("build")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False, exists=True), default=".", show_default=True,
              help="The model repository (its mlops.yaml names the model and the entry points).")
@click.option("--kind", type=click.Choice(["training", "inference"]), required=True, help="Which image to build.")
@click.option("--base-image", envvar="MLOPS_BASE_IMAGE",
              help="Base image reference (name@sha256:digest, or oci-archive:FILE); default: the Dockerfile's pinned one.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The OCI archive to write.")
@click.option("--docker-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder holding training/ and inference/ Dockerfiles (default: docker/ of the ml-ops checkout).")
@click.option("--storage-root", type=click.Path(path_type=Path, file_okay=False), envvar="MLOPS_BUILDAH_ROOT",
              help="Buildah storage to use (default: a private one per build, removed afterwards).")
@click.option("--builder", type=click.Choice(["buildah", "source"]), default="buildah", show_default=True,
              envvar="MLOPS_IMAGE_BUILDER",
              help="source: an image of the code only, without Buildah or a base (the local demo). [env: MLOPS_IMAGE_BUILDER]")
@json_option
def build(repo: Path, kind: str, base_image: str | None, out: Path, docker_dir: Path | None,
          storage_root: Path | None, builder: str, as_json: bool) -> None:
    """Build the model's KIND image with Buildah into an OCI archive and print its digest."""
    from mlops import image as images
    from mlops.config.contract import load_contract
    from mlops.settings import Settings

    contract = load_contract(repo)
    common = {"repo": repo, "kind": kind, "docker_dir": docker_dir or Settings.from_env().root / "docker", "out": out,
              "entry_points": contract.entry_points.model_dump(), "model": contract.model,
              "revision": images.git_revision(repo)}
    if builder == "source":
        info("note: a source-only image (code and entry program, no base): publishable, not runnable")
        result = images.pack_source_image(**common)
    else:
        result = images.build_image(**common, base_image=base_image, storage_root=storage_root, log=info)

    def render(r: dict) -> None:
        info(f"built {r['kind']} image of {contract.model} in {r['seconds']} s: {r['archive']}")
        click.echo(r["digest"])

    emit(vars(result), as_json, render)


@image.command("publish")
@click.option("--model", required=True, help="Model name (one of platform.yaml models).")
@click.option("--version", "model_version", required=True, envvar="MODEL_VERSION",
              help="Version to publish (from mlops version next). [env: MODEL_VERSION]")
@click.option("--archive", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="OCI archive written by mlops image build.")
@click.option("--max-attempts", type=click.IntRange(1, 50), default=10, show_default=True,
              help="How many versions to try when other pipelines publish the same model at once.")
@click.option("--dotenv", "dotenv_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the final MODEL_VERSION, IMAGE_TAG, IMAGE_DIGEST and IMAGE_URI here.")
@json_option
def publish(model: str, model_version: str, archive: Path, max_attempts: int, dotenv_file: Path | None,
            as_json: bool) -> None:
    """Push the image to the model's ECR repository under VERSION (immutable), or the next free version."""
    from mlops import image as images

    repository, region = _repository(model)
    oci = images.read_oci_archive(archive)
    result = images.publish(_ecr_client(region), model=model, repository=repository, version=model_version, image=oci,
                            max_attempts=max_attempts, log=info)
    if dotenv_file is not None:
        images.write_dotenv(dotenv_file, {
            "MODEL_NAME": model, "MODEL_VERSION": result.version, "IMAGE_TAG": result.version,
            "IMAGE_DIGEST": result.digest, "IMAGE_URI": result.image_uri, "ECR_REPOSITORY": repository,
        })
        info(f"wrote {dotenv_file}")

    def render(r: dict) -> None:
        if r["version"] != r["requested_version"]:
            info(f"{r['requested_version']} was taken; published as {r['version']} after {r['attempts']} attempt(s)")
        info(f"published {r['model']} {r['version']}: {r['image_uri']} ({r['digest']})")
        click.echo(r["version"])

    emit(vars(result), as_json, render)
