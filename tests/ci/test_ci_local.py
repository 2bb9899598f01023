"""End-to-end runs of .gitlab-ci.yml with gitlab-ci-local, in the shell, against the embedded local AWS.

gitlab-ci-local (and the Node 22 it needs) is installed into .ci/node by .ci/gitlab-ci-local.sh, once.
Each test runs on a snapshot of the working tree (a fresh git repository in a temporary folder), so the
runs never touch the checkout. The jobs reuse the project's virtual environment (MLOPS_CI_VENV) and, with
MLOPS_LOCAL=1, the local AWS that `mlops local up` starts, instead of an OIDC login.

The model mode is started the way a model repository's trigger would start it (a multi-project trigger
is a no-op under gitlab-ci-local): the component's package job runs in a copy of the example model
repository and uploads to a stand-in of GitLab's generic package API (tests/gitlab_stub.py); then ml-ops
runs with CI_PIPELINE_SOURCE=pipeline, the trigger's inputs (`--input`) and the upstream project and
pipeline GitLab names (CI_UPSTREAM_*), and its source job downloads that package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ci_helpers import ROOT
from gitlab_stub import GitLabNotes, serve

pytestmark = pytest.mark.slow

SCRIPT = ROOT / ".ci" / "gitlab-ci-local.sh"
VENV = Path(sys.executable).parent.parent
MLOPS = Path(sys.executable).with_name("mlops")
COMMON = ["--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source", "--no-color"]
# Predefined variables a test may set (gitlab-ci-local takes the list once).
IGNORED = ["CI_PIPELINE_SOURCE", "CI_COMMIT_BRANCH", "CI_API_V4_URL", "CI_UPSTREAM_PROJECT_ID", "CI_UPSTREAM_PIPELINE_ID",
           "CI_JOB_TOKEN"]
CHECKOV = ROOT / ".ci" / "checkov-venv" / "bin" / "checkov"
SNAPSHOT_EXCLUDES = [".git", ".venv", ".mlops", ".ci/node", ".gitlab-ci-local", "__pycache__", ".pytest_cache",
                     "*.egg-info", "/build", "/dist", ".terraform"]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args], cwd=cwd, check=True,
                   capture_output=True, text=True)


def _has_command(*words: str) -> bool:
    result = subprocess.run([str(MLOPS), *words, "--help"], capture_output=True, text=True, check=False)
    return result.returncode == 0


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    """The gitlab-ci-local launcher, installed into .ci/node if it is not yet."""
    if not shutil.which("npm") or not shutil.which("rsync"):
        pytest.skip("gitlab-ci-local needs npm and rsync (apt-get install npm rsync)")
    result = subprocess.run([str(SCRIPT), "--install-only"], capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"could not install gitlab-ci-local from the npm registry: {result.stderr.strip()[-300:]}")
    return SCRIPT


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as a fresh git repository (gitlab-ci-local reads tracked files)."""
    target = tmp_path_factory.mktemp("ci-snapshot") / "ml-ops"
    excludes = [f"--exclude={pattern}" for pattern in SNAPSHOT_EXCLUDES]
    subprocess.run(["rsync", "-a", *excludes, f"{ROOT}/", f"{target}/"], check=True)
    _git(target, "init", "--quiet", "--initial-branch=main")
    _git(target, "add", "--all")
    _git(target, "commit", "--quiet", "--message=snapshot")
    return target


def run_gcl(launcher: Path, cwd: Path, *args: str, variables: dict[str, str] | None = None,  # pylint: disable=too-many-arguments  # gitlab-ci-local's knobs
            inputs: dict[str, str] | None = None, timeout: int = 900,
            extra_path: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run gitlab-ci-local in `cwd` with the shell executor, the given pipeline variables and inputs."""
    ignored = IGNORED + [k for k in (variables or {}) if k.startswith("CI_") and k not in IGNORED]
    command = [str(launcher), *COMMON, "--ignore-predefined-vars", ",".join(ignored)]
    for key, value in (variables or {}).items():
        command += ["--variable", f"{key}={value}"]
    for key, value in (inputs or {}).items():
        command += ["--input", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_", "CI_", "GITLAB_"))}
    if extra_path:
        env["PATH"] = f"{env.get('PATH', '')}:{extra_path}"
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout,
                          env=env)


def listed_jobs(launcher: Path, cwd: Path, variables: dict[str, str],
                inputs: dict[str, str] | None = None) -> dict[str, dict]:
    """The jobs gitlab-ci-local would run for these pipeline variables and inputs (rules and workflow applied)."""
    result = run_gcl(launcher, cwd, "--list-json", variables=variables, inputs=inputs, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    start = re.search(r"^\[", result.stdout, re.MULTILINE)
    assert start, result.stdout
    return {job["name"]: job for job in json.loads(result.stdout[start.start():]) if job.get("when") != "never"}


# What a model repository's trigger gives ml-ops: its inputs, and the upstream GitLab itself names.
TRIGGER_INPUTS = {"model": "churn", "tenants": "all"}
TRIGGER_VARIABLES = {"CI_PIPELINE_SOURCE": "pipeline", "CI_UPSTREAM_PROJECT_ID": "42", "CI_UPSTREAM_PIPELINE_ID": "7"}
JOB_TOKEN = "job-token-for-the-test"


def _package(launcher: Path, repo: Path, api_url: str, branch: str = "main", mr_iid: str = "") -> dict[str, str]:
    """Run the component's package job in the model repository `repo`, uploading to the GitLab stand-in.

    The repository's CI includes templates/model-repo.yml as a local file (gitlab-ci-local cannot fetch a
    component or a project include from a GitLab it cannot reach); the job itself is the component's.
    Returns the CI_UPSTREAM_* variables GitLab would give the ml-ops pipeline this package belongs to.
    """
    (repo / "ci").mkdir(exist_ok=True)
    shutil.copy(ROOT / "templates" / "model-repo.yml", repo / "ci" / "model-repo.yml")
    (repo / ".gitlab-ci.yml").write_text("include:\n  - local: ci/model-repo.yml\n    inputs:\n      model: churn\n",
                                         encoding="utf-8")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--message=ci: include the model-repo component")
    # The upstream pipeline's number (>= 1 in GitLab; gitlab-ci-local's own CI_PIPELINE_IID starts at 0).
    variables = {"CI_API_V4_URL": api_url, "CI_JOB_TOKEN": JOB_TOKEN, "CI_PIPELINE_IID": "7"}
    if mr_iid:
        variables |= {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_BRANCH": "", "CI_MERGE_REQUEST_IID": mr_iid,
                      "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": branch}
    else:
        variables |= {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": branch}
    result = run_gcl(launcher, repo, "mlops-package", variables=variables, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    uploads = [r["path"] for r in GitLabNotes.received if r["method"] == "PUT"]
    assert len(uploads) == 2 and all(r["job_token"] == JOB_TOKEN for r in GitLabNotes.received), GitLabNotes.received
    project, pipeline = re.fullmatch(r"/api/v4/projects/(\d+)/packages/generic/mlops-model-source/(\d+)/.*",
                                     uploads[-1]).groups()
    return {"CI_PIPELINE_SOURCE": "pipeline", "CI_UPSTREAM_PROJECT_ID": project, "CI_UPSTREAM_PIPELINE_ID": pipeline,
            "CI_API_V4_URL": api_url, "CI_JOB_TOKEN": JOB_TOKEN}


def _package_folder(folder: Path) -> Path:
    """The package the stand-in holds, as files in `folder` (MLOPS_UPSTREAM_PACKAGE_DIR, gitlab-ci-local only)."""
    folder.mkdir(parents=True, exist_ok=True)
    for (_, _, _, name), content in GitLabNotes.packages.items():
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture
def gitlab() -> Iterator[str]:
    """GitLab's generic packages and notes APIs on 127.0.0.1 (tests/gitlab_stub.py); yields its CI_API_V4_URL."""
    with serve("project-token-for-the-test", job_tokens=frozenset({JOB_TOKEN})) as url:
        yield url


@pytest.mark.parametrize(
    ("variables", "inputs", "expected", "absent"),
    [
        pytest.param({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature"}, {},
                     {"self-unit", "self-ci-files", "self-terraform", "self-checkov", "self-component"},
                     {"mlops-train-acme", "mlops-retrain-check", "infra-apply"}, id="push-on-a-branch"),
        pytest.param({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}, {}, {"infra-plan", "infra-apply"},
                     {"mlops-source"}, id="push-on-the-default-branch"),
        pytest.param({"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "3", "CI_COMMIT_BRANCH": ""},
                     {}, {"self-unit"},
                     {"infra-plan", "mlops-source"}, id="merge-request-no-plan"),
        pytest.param({"CI_PIPELINE_SOURCE": "schedule"}, {}, {"mlops-retrain-check"}, {"self-unit", "mlops-source"},
                     id="schedule"),
        pytest.param({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "1.2.0", "CI_COMMIT_BRANCH": ""}, {},
                     {"release-component"}, {"self-unit", "mlops-source", "infra-plan"}, id="release-tag"),
        pytest.param(TRIGGER_VARIABLES, TRIGGER_INPUTS,
                     {"mlops-source", "mlops-lint", "mlops-test", "mlops-version", "mlops-image", "mlops-pipeline",
                      "mlops-train-acme", "mlops-report", "mlops-deploy-staging-globex", "mlops-deploy-production-acme"},
                     {"self-unit", "mlops-retrain-check"}, id="triggered-by-a-model-repo"),
        pytest.param(TRIGGER_VARIABLES, {}, set(), {"mlops-source", "self-unit"}, id="triggered-without-inputs-starts-nothing"),
    ],
)
def test_workflow_rules_pick_the_jobs_of_each_mode(gitlab_ci_local, snapshot, variables, inputs, expected, absent) -> None:
    jobs = listed_jobs(gitlab_ci_local, snapshot, variables, inputs)
    assert expected <= set(jobs), sorted(jobs)
    assert not absent & set(jobs), sorted(jobs)


def test_a_malformed_input_creates_no_pipeline(gitlab_ci_local, snapshot) -> None:
    # GitLab checks an input's regex before the pipeline exists; gitlab-ci-local does the same for the
    # pipeline's own inputs.
    result = run_gcl(gitlab_ci_local, snapshot, "--list-json", variables=TRIGGER_VARIABLES,
                     inputs={**TRIGGER_INPUTS, "model": "churn; rm -rf /"}, timeout=120)
    assert result.returncode != 0
    assert "does not match required regex" in result.stdout + result.stderr


def test_self_mode_jobs_pass(gitlab_ci_local, snapshot) -> None:
    # Every self job that runs without AWS, as a push on a branch runs them. The unit tests are narrowed to
    # one folder (MLOPS_SELF_PYTEST_ARGS): the whole fast suite is what `make test` runs anyway.
    jobs = ["self-unit", "self-pylint", "self-ci-files", "self-terraform"]
    jobs += ["self-hadolint"] if list((snapshot / "docker").glob("*/Dockerfile")) else []
    # checkov comes from its own virtual environment (`make checkov` makes it), found on PATH like in its image.
    jobs += ["self-checkov"] if CHECKOV.is_file() else []
    variables = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature", "MLOPS_CI_VENV": str(VENV),
                 "MLOPS_SELF_PYTEST_ARGS": "tests/report"}
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        variables["MLOPS_TF_PLUGIN_DIR"] = os.environ["MLOPS_TF_PLUGIN_DIR"]
    result = run_gcl(gitlab_ci_local, snapshot, *jobs, variables=variables, timeout=2400, extra_path=str(CHECKOV.parent))
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # Terraform colours its output anyway
    assert result.returncode == 0, output[-6000:]
    for job in jobs:
        assert re.search(rf"PASS +{re.escape(job)}\b", output), job
    assert "CI files valid" in output
    assert re.search(r"self-unit.*\d+ passed", output), "the selected tests ran"
    assert re.search(r"self-pylint.*rated at 10\.00/10", output), "pylint is clean"
    assert "Success! The configuration is valid." in output, "terraform validate ran"
    if CHECKOV.is_file():
        assert re.search(r"self-checkov.*Failed checks: 0", output), output[-3000:]


def test_the_component_test_uploads_and_fetches_a_package(gitlab_ci_local, snapshot, gitlab) -> None:
    # self-component's child pipeline, as GitLab starts it (CI_PIPELINE_SOURCE=parent_pipeline). Its include
    # `component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/model-repo@$CI_COMMIT_SHA` is this checkout's component.
    variables = {"CI_PIPELINE_SOURCE": "parent_pipeline", "CI_API_V4_URL": gitlab, "CI_JOB_TOKEN": JOB_TOKEN}
    result = run_gcl(gitlab_ci_local, snapshot, "--file", "ci-templates/self-component-test.yml", variables=variables,
                     timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"PASS +component-test-package", output) and re.search(r"PASS +component-test-fetch", output)
    assert "component test passed: package mlops-model-source/" in output
    calls = [(r["method"], r["path"].rsplit("/", 1)[1]) for r in GitLabNotes.received]
    assert calls == [("PUT", "model-source.tar.gz"), ("PUT", "request.env"),
                     ("GET", "model-source.tar.gz"), ("GET", "request.env")], calls
    assert all(r["job_token"] == JOB_TOKEN for r in GitLabNotes.received)


@pytest.mark.parametrize(
    ("request_env", "error"),
    [
        pytest.param("MLOPS_REQUEST_MODEL=churn\nMLOPS_UPSTREAM_PROJECT_PATH=models/churn\nMLOPS_LOCAL=1\n",
                     "request.env has lines ml-ops does not accept: MLOPS_LOCAL=1", id="an-unknown-key"),
        pytest.param("MLOPS_REQUEST_MODEL=churn\nMLOPS_MODEL_BRANCH=main;curl${IFS}x\n",
                     "does not accept: MLOPS_MODEL_BRANCH=main;curl", id="a-malformed-value"),
        pytest.param("MLOPS_REQUEST_MODEL=house-prices\n", "the model package is not for model churn",
                     id="another-model"),
    ],
)
def test_the_source_job_refuses_a_request_it_does_not_accept(gitlab_ci_local, snapshot, gitlab, tmp_path,
                                                             request_env, error) -> None:
    # The package comes from another project: the source job checks every line of its request before any
    # line reaches a job as a variable.
    (tmp_path / "mlops.yaml").write_text("model: churn\n", encoding="utf-8")
    tarball = tmp_path / "model-source.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(tmp_path), "mlops.yaml"], check=True)
    for name, content in (("model-source.tar.gz", tarball.read_bytes()), ("request.env", request_env.encode())):
        GitLabNotes.packages[("42", "mlops-model-source", "7", name)] = content
    variables = {**TRIGGER_VARIABLES, "CI_API_V4_URL": gitlab, "CI_JOB_TOKEN": JOB_TOKEN}
    result = run_gcl(gitlab_ci_local, snapshot, "mlops-source", variables=variables, inputs=TRIGGER_INPUTS, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"FAIL +mlops-source", output), output[-3000:]
    assert error in output, output[-3000:]


def _git_repo(source: Path, target: Path, message: str) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc"))
    _git(target, "init", "--quiet", "--initial-branch=main")
    _git(target, "add", "--all")
    _git(target, "commit", "--quiet", f"--message={message}")
    return target


@pytest.fixture
def model_repo(tmp_path: Path) -> Path:
    """The example churn repository as its own git repository (versions come from its commits)."""
    return _git_repo(ROOT / "examples" / "churn", tmp_path / "churn", "feat: churn model")


def test_triggered_mode_fails_the_lint_job_on_a_broken_commit(gitlab_ci_local, snapshot, model_repo, gitlab) -> None:
    (model_repo / "src" / "train.py").write_text("def broken(:\n", encoding="utf-8")
    _git(model_repo, "commit", "--quiet", "--all", "--message=fix: break it")
    _package(gitlab_ci_local, model_repo, gitlab)
    # The package handed over as a folder (MLOPS_UPSTREAM_PACKAGE_DIR, the gitlab-ci-local shortcut docs/ci.md
    # shows) instead of downloaded.
    package = _package_folder(model_repo.parent / "package")
    variables = {**TRIGGER_VARIABLES, "MLOPS_CI_VENV": str(VENV), "MLOPS_UPSTREAM_PACKAGE_DIR": str(package)}
    result = run_gcl(gitlab_ci_local, snapshot, "mlops-lint", "--needs", variables=variables, inputs=TRIGGER_INPUTS,
                     timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "PASS  mlops-source" in output
    assert "FAIL  mlops-lint" in output
    assert "train.py" in output, "the job log names the broken file"


# -- against the embedded local AWS: one `mlops local up` for the whole module -------------------------


def _upload_tenant_data(state: Path, tenant: str, model: str, *extra: str) -> None:
    """Generate a tenant's dataset (examples/datagen.py) and upload it where the tenant's uploads land."""
    env = {**os.environ, "MLOPS_STATE_DIR": str(state), "MLOPS_ROOT": str(ROOT)}
    csv = state / f"{tenant}-{model}-{len(list(state.glob('*.csv')))}.csv"
    subprocess.run([sys.executable, str(ROOT / "examples" / "datagen.py"), "--model", model, "--tenant", tenant,
                    "--out", str(csv), *extra], env=env, check=True, capture_output=True, text=True)
    script = (
        "import sys, boto3\n"
        "from mlops.config.tenants import load_from_settings\n"
        "names = load_from_settings().names()\n"
        "boto3.client('s3').upload_file(sys.argv[1], names.tenant_bucket(sys.argv[2]),"
        " names.data_prefix(sys.argv[3]) + sys.argv[4])\n"
    )
    # In a shell that sourced the env file, as a tenant's upload would arrive.
    command = f'set -a; . "{state}/local/env"; set +a; exec "{sys.executable}" -c "$0" "$@"'
    subprocess.run(["sh", "-c", command, script, str(csv), tenant, model, csv.name], env=env, check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One embedded local AWS (`mlops local up`) for this module, with acme's churn data; yields MLOPS_STATE_DIR.

    Terraform installs hashicorp/aws from MLOPS_TF_PLUGIN_DIR (named by tests/conftest.py) on these machines.
    """
    if not _has_command("local"):
        pytest.skip("`mlops local` does not exist yet")
    state = tmp_path_factory.mktemp("ci-state")
    env = {**os.environ, "MLOPS_STATE_DIR": str(state), "MLOPS_ROOT": str(ROOT)}
    up = subprocess.run([str(MLOPS), "local", "up", "--wait"], env=env, capture_output=True, text=True, check=False, timeout=900)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert (state / "local" / "env").is_file()
        _upload_tenant_data(state, "acme", "churn")
        yield state
    finally:
        down = subprocess.run([str(MLOPS), "local", "down"], env=env, capture_output=True, text=True, check=False,
                              timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr


def _wait_for_builds(state: Path, timeout: float = 300.0) -> None:
    """Wait until the ledger of the local AWS has no build queued or running."""
    env = {**os.environ, "MLOPS_STATE_DIR": str(state), "MLOPS_ROOT": str(ROOT)}
    for line in (state / "local" / "env").read_text(encoding="utf-8").splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip("'\"")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run([str(MLOPS), "executions", "list", "--json"], env=env, capture_output=True, text=True,
                                check=False, timeout=60)
        items = json.loads(listed.stdout) if listed.returncode == 0 and listed.stdout.strip() else []
        if items and all(i.get("status") in ("SUCCEEDED", "FAILED", "STOPPED") for i in items):
            return
        time.sleep(2)
    raise AssertionError(f"builds still running after {timeout:.0f} s")


def _local_variables(state: Path) -> dict[str, str]:
    return {"MLOPS_LOCAL": "1", "MLOPS_CI_VENV": str(VENV), "MLOPS_STATE_DIR": str(state),
            "MLOPS_IMAGE_BUILDER": "source"}


@pytest.fixture(scope="module")
def triggered_run(gitlab_ci_local, snapshot, local_aws, tmp_path_factory) -> str:
    """The whole triggered pipeline for tenant acme, with its manual staging deploy; returns the log."""
    missing = [c for c in ("train", "pipeline", "deploy") if not _has_command(c)]
    if missing:
        pytest.skip(f"`mlops {' / '.join(missing)}` does not exist yet")
    repo = _git_repo(ROOT / "examples" / "churn", tmp_path_factory.mktemp("upstream") / "churn", "feat: churn model")
    with serve(job_tokens=frozenset({JOB_TOKEN})) as api:
        # The model repository's package job uploads its package; ml-ops' source job downloads it.
        upstream = _package(gitlab_ci_local, repo, api)
        # One tenant keeps the run short: globex's jobs end at the tenant guard.
        variables = {**upstream, **_local_variables(local_aws)}
        # The manual clicks: acme's staging deployment, then acme's production deployment, which needs acme's
        # staging job only, not globex's.
        result = run_gcl(gitlab_ci_local, snapshot, "--manual", "mlops-deploy-staging-acme",
                         "--manual", "mlops-deploy-production-acme", variables=variables,
                         inputs={**TRIGGER_INPUTS, "tenants": "acme"}, timeout=1800)
        downloads = [r["path"].rsplit("/", 1)[1] for r in GitLabNotes.received if r["method"] == "GET"]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert downloads == ["model-source.tar.gz", "request.env"], downloads
    return output


def test_triggered_mode_trains_reports_and_promotes_staging_to_production(triggered_run, snapshot) -> None:
    for job in ("mlops-source", "mlops-lint", "mlops-test", "mlops-version", "mlops-image", "mlops-pipeline",
                "mlops-train-acme", "mlops-train-globex", "mlops-report", "mlops-deploy-staging-acme",
                "mlops-deploy-production-acme"):
        assert re.search(rf"PASS +{re.escape(job)}", triggered_run), job
    assert "skipped: tenant globex is not in this build" in triggered_run
    version = re.search(r"published churn (\d+\.\d+\.\d+): ", triggered_run)
    assert version, "the image job publishes a version"
    # The train job's log shows the evaluation against the contract's threshold, and keeps the result.
    assert f"evaluation of churn {version[1]} for tenant acme: registered" in triggered_run
    assert re.search(r"threshold: auc >= 0\.7 \(meets\)", triggered_run)
    artifacts = snapshot / ".gitlab-ci-local" / "artifacts"
    kept = artifacts / "mlops-train-acme" / "evaluation" / "acme.json"
    result = json.loads(kept.read_text(encoding="utf-8"))
    assert result["status"] == "Succeeded" and result["model_package_arn"]
    # The report job: every tenant trained, as text, as GitLab's metrics report and as the note's Markdown.
    assert re.search(r"mlops-report.*merge-request note: not posted: MLOPS_MR_NOTE_TOKEN is not set", triggered_run)
    assert "| acme | registered |" in (artifacts / "mlops-report" / "evaluation.md").read_text(encoding="utf-8")
    # Promotion: staging deploys the version to the staging endpoint, production the same version to its own.
    assert re.search(rf"mlops-deploy-staging-acme .*deployed: mlops-demo-staging-acme-churn serves {version[1]}", triggered_run)
    assert re.search(rf"mlops-deploy-production-acme .*: mlops-demo-production-acme-churn serves {version[1]}", triggered_run)
    # Manual jobs run only when clicked.
    passed = re.findall(r"PASS +(.+?)\s*$", triggered_run, re.MULTILINE)
    assert "mlops-deploy-staging-globex" not in passed
    assert "mlops-deploy-production-globex" not in passed


def test_schedule_mode_applies_the_retraining_check(gitlab_ci_local, snapshot, local_aws, triggered_run) -> None:
    del triggered_run  # acme's churn model is trained
    # A new data drop starts a build by itself (upload → trigger); once it is done, the daily check run a
    # month later (simulated clock) finds acme's model past its maximum age.
    _upload_tenant_data(local_aws, "acme", "churn", "--seed", "2")
    _wait_for_builds(local_aws)
    later = (datetime.now(timezone.utc) + timedelta(days=31)).isoformat(timespec="seconds")
    variables = {"CI_PIPELINE_SOURCE": "schedule", "MLOPS_RETRAIN_NOW": later, **_local_variables(local_aws)}
    result = run_gcl(gitlab_ci_local, snapshot, variables=variables, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"PASS +mlops-retrain-check", output)
    assert "1 retraining request(s) sent" in output, output[-3000:]
    assert re.search(r"acme/churn -> started ", output)
    report = snapshot / ".gitlab-ci-local" / "artifacts" / "mlops-retrain-check" / "retrain-report.md"
    assert "| acme | churn |" in report.read_text(encoding="utf-8")


def test_self_mode_plans_the_infrastructure(gitlab_ci_local, snapshot, local_aws) -> None:
    if not _has_command("infra"):
        pytest.skip("`mlops infra` does not exist yet")
    # An account's environment of its own, whose variables file points the provider at the local AWS.
    endpoint = json.loads((local_aws / "local" / "state.json").read_text(encoding="utf-8"))["endpoint"]
    var_file = local_aws / "ci-plan.tfvars.json"
    var_file.write_text(json.dumps({"aws_endpoint_url": endpoint, "force_destroy": True}), encoding="utf-8")
    variables = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", **_local_variables(local_aws),
                 "MLOPS_INFRA_ENVIRONMENT": "ci-plan", "MLOPS_INFRA_VAR_FILE": str(var_file)}
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        variables["MLOPS_TF_PLUGIN_DIR"] = os.environ["MLOPS_TF_PLUGIN_DIR"]
    result = run_gcl(gitlab_ci_local, snapshot, "infra-plan", variables=variables, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"PASS +infra-plan", output)
    assert "terraform plan (ci-plan)" in output


def test_triggered_mode_fails_the_train_job_on_a_failing_evaluation(gitlab_ci_local, snapshot, local_aws, model_repo,
                                                                     gitlab) -> None:
    # A merge request that asks more of the model than it can give. The example's own pipeline test would
    # catch it in mlops-test first; a repository without that test reaches the last line of defence: the
    # pipeline's CheckMetric step, which must fail the train job and say why, in the job log and, with a
    # note token, on the merge request.
    contract = model_repo / "mlops.yaml"
    contract.write_text(contract.read_text(encoding="utf-8").replace("threshold: 0.70", "threshold: 0.99"),
                        encoding="utf-8")
    _git(model_repo, "rm", "--quiet", "tests/test_steps.py")
    _git(model_repo, "commit", "--quiet", "--all", "--message=feat: a stricter threshold")
    upstream = _package(gitlab_ci_local, model_repo, gitlab, branch="stricter", mr_iid="3")
    variables = {**upstream, **_local_variables(local_aws), "MLOPS_MR_NOTE_TOKEN": "project-token-for-the-test"}
    # The whole pipeline (the report job waits for the train stage, not for named jobs); no manual click.
    result = run_gcl(gitlab_ci_local, snapshot, variables=variables, inputs={**TRIGGER_INPUTS, "tenants": "acme"},
                     timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"PASS +mlops-image", output), output[-6000:]
    assert re.search(r"FAIL +mlops-train-acme", output), output[-6000:]
    reason = r"auc = [0-9.]+ does not meet the threshold \(>= 0\.99\); the model was not registered"
    assert re.search(rf"evaluation of churn \S+ for tenant acme: failed: {reason}", output), output[-6000:]
    # The report job runs after the failure and comments on the upstream merge request.
    assert re.search(r"PASS +mlops-report", output), output[-6000:]
    assert f"merge-request note: posted, note 77 on merge request !3 of project {upstream['CI_UPSTREAM_PROJECT_ID']}" \
        in output
    notes = [r for r in GitLabNotes.received if r["method"] == "POST"]
    assert len(notes) == 1
    note = notes[0]
    assert note["path"] == f"/api/v4/projects/{upstream['CI_UPSTREAM_PROJECT_ID']}/merge_requests/3/notes"
    assert note["auth"] == "Bearer project-token-for-the-test"
    assert re.search(rf"\| acme \| failed: {reason}", note["body"]["body"])
    assert "project-token-for-the-test" not in output, "the token never shows in a log"
