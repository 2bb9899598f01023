"""A table of bad inputs across the commands, each run as typed and with --json.

Every case must be refused (a non-zero exit, with an error that names the bad input) before anything is
written, in exactly one `error:` line on stderr, and under --json also as an `{"error": ...}` document on
stdout; never with a traceback. The table is commands x bad values: tenants and models that are not in the
registry, versions that are no image tag, impossible limits and months, binary, oversized, malformed and
missing files, broken variables files, and an AWS that cannot be reached or has no credentials. AWS is an
endpoint where nothing listens, so a command that calls AWS before checking its input fails with an AWS
error, not the expected one.

The CLI runs in this process (`mlops.cli.main`), so a traceback is an exception escaping `main`. Each case
records its outcome as a test property; `bench/bad_input.py` runs this module and prints the totals.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.cli import main
from mlops.config._yaml import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
CHURN = str(ROOT / "examples" / "churn")
#: Where nothing listens: a command that reaches AWS before checking its input answers an AWS error instead.
NO_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
NO_CREDENTIALS = {"AWS_ENDPOINT_URL": None, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
                  "AWS_SESSION_TOKEN": None, "AWS_SECURITY_TOKEN": None, "AWS_EC2_METADATA_DISABLED": "true"}
AWS_DOWN = "AWS did not answer as expected: EndpointConnectionError"
CANNOT_REACH = "cannot reach AWS to find the account"


@dataclass(frozen=True)
class Case:
    """One command line that must be refused. In args and env, `@name` is a file of the `bad` fixture and `+name` a
    path in the case's own folder (where a command that accepted the input would write)."""

    id: str
    args: tuple[str, ...]
    expect: str  # a fragment of the error message: the input it names, or the AWS error
    env: dict[str, str | None] = field(default_factory=dict)


# -- the table --------------------------------------------------------------------------------------------

BAD_TENANTS = {"unknown": "nope", "path": "../acme", "empty": "", "upper-case": "ACME", "shell": "acme;rm -rf /",
               "long": "a" * 300}
BAD_MODELS = {"unknown": "nope", "path": "../churn", "empty": "", "upper-case": "CHURN"}
BAD_VERSIONS = {"path": "../x", "latest": "latest", "two-parts": "0.3", "build-metadata": "1.0.0+build", "empty": "",
                "text": "one"}

#: command -> its arguments around a tenant id
TENANT_COMMANDS: dict[str, tuple[str, ...]] = {
    "train": ("train", "--model", "churn", "--version", "0.1.0", "--tenant"),
    "train-repo": ("train", "--repo", CHURN, "--version", "0.1.0", "--tenant"),
    "gate": ("gate", "--model", "churn", "--tenant"),
    "deploy": ("deploy", "--model", "churn", "--tenant"),
    "reject": ("reject", "--model", "churn", "--version", "0.1.0", "--reason", "bad", "--tenant"),
    "invoke": ("invoke", "--model", "churn", "--body", str(ROOT / "examples" / "churn" / "sample.json"), "--tenant"),
    "names": ("names", "--tenant"),
    "retrain-check": ("retrain-check", "--report", "+report.md", "--tenant"),
    "pipeline-upsert": ("pipeline", "upsert", "--repo", CHURN, "--tenant"),
}
#: command -> its arguments around a model name
MODEL_COMMANDS: dict[str, tuple[str, ...]] = {
    "train": ("train", "--tenant", "acme", "--version", "0.1.0", "--model"),
    "gate": ("gate", "--tenant", "acme", "--model"),
    "deploy": ("deploy", "--tenant", "acme", "--model"),
    "reject": ("reject", "--tenant", "acme", "--version", "0.1.0", "--reason", "bad", "--model"),
    "invoke": ("invoke", "--tenant", "acme", "--body", str(ROOT / "examples" / "churn" / "sample.json"), "--model"),
    "retrain-check": ("retrain-check", "--report", "+report.md", "--model"),
    "version-next": ("version", "next", "--repo", CHURN, "--model"),
    "image-publish": ("image", "publish", "--version", "0.1.0", "--archive", "@image.tar", "--model"),
    "pipeline-definition": ("pipeline", "definition", "--repo", CHURN, "--model"),
    "pipeline-upsert": ("pipeline", "upsert", "--repo", CHURN, "--model"),
}
#: command -> its arguments around a version
VERSION_COMMANDS: dict[str, tuple[str, ...]] = {
    "train": ("train", "--tenant", "acme", "--model", "churn", "--version"),
    "image-publish": ("image", "publish", "--model", "churn", "--archive", "@image.tar", "--version"),
}
#: registry folders and platform files that cannot be read -> the error's fragment
BAD_REGISTRIES: dict[str, tuple[dict[str, str | None], str]] = {
    "tenant-binary": ({"MLOPS_TENANTS_DIR": "@tenants-binary"}, "is not UTF-8 text"),
    "tenant-oversized": ({"MLOPS_TENANTS_DIR": "@tenants-oversized"}, "more than the 1,048,576"),
    "tenant-malformed": ({"MLOPS_TENANTS_DIR": "@tenants-malformed"}, "odd.yaml"),
    "tenant-a-list": ({"MLOPS_TENANTS_DIR": "@tenants-list"}, "odd.yaml"),
    "tenant-unknown-tier": ({"MLOPS_TENANTS_DIR": "@tenants-unknown-tier"}, "platinum"),
    "tenants-missing": ({"MLOPS_TENANTS_DIR": "@missing"}, "tenant registry folder not found"),
    "platform-binary": ({"MLOPS_PLATFORM_FILE": "@binary.yaml"}, "is not UTF-8 text"),
    "platform-oversized": ({"MLOPS_PLATFORM_FILE": "@oversized.yaml"}, "more than the 1,048,576"),
    "platform-malformed": ({"MLOPS_PLATFORM_FILE": "@malformed.yaml"}, "malformed.yaml"),
    "platform-missing": ({"MLOPS_PLATFORM_FILE": "@missing.yaml"}, "not found"),
}
REGISTRY_COMMANDS: dict[str, tuple[str, ...]] = {
    "tenants-validate": ("tenants", "validate"),
    "tenants-list": ("tenants", "list"),
    "names": ("names",),
    "executions-list": ("executions", "list"),
    "train": ("train", "--tenant", "acme", "--model", "churn", "--version", "0.1.0"),
}
#: model repositories whose mlops.yaml cannot be used -> the error's fragment
BAD_REPOS: dict[str, tuple[str, str]] = {
    "binary": ("@repo-binary", "is not UTF-8 text"),
    "oversized": ("@repo-oversized", "more than the 1,048,576"),
    "malformed": ("@repo-malformed", "mlops.yaml"),
    "empty": ("@repo-empty-file", "mlops.yaml"),
    "no-contract": ("@repo-without-contract", "mlops.yaml"),
    "missing": ("@missing", "missing"),
}
REPO_COMMANDS: dict[str, tuple[str, ...]] = {
    "contract-validate": ("contract", "validate"),
    "pipeline-definition": ("pipeline", "definition", "--repo"),
    "retrain-check-contract": ("retrain-check", "--contract"),
    "image-build": ("image", "build", "--kind", "training", "--builder", "source", "--out", "+image.tar", "--repo"),
}
#: files that are no YAML price table -> the error's fragment
BAD_YAML_FILES = {"binary": ("@binary.yaml", "is not UTF-8 text"), "oversized": ("@oversized.yaml", "more than the 1,048,576"),
                  "malformed": ("@malformed.yaml", "malformed.yaml"), "a-list": ("@list.yaml", "expected a mapping"),
                  "missing": ("@missing.yaml", "does not exist"), "a-folder": ("@folder", "is a directory")}
#: files that are no .tfvars.json -> the error's fragment
BAD_VAR_FILES = {"broken-json": ("@broken.json", "not a JSON variables file"), "a-list": ("@list.json", "holds a list"),
                 "binary": ("@binary.json", "not a JSON variables file"), "not-json": ("@vars.tfvars", "only .tfvars.json"),
                 "missing": ("@missing.json", "does not exist"), "a-folder": ("@folder", "is a directory")}
OPTION_VALUES: list[Case] = [
    Case("limit-negative", ("executions", "list", "--limit", "-5"), "-5 is not in the range x>=1"),
    Case("limit-zero", ("executions", "list", "--limit", "0"), "0 is not in the range x>=1"),
    Case("limit-text", ("executions", "list", "--limit", "many"), "'many' is not a valid integer"),
    Case("limit-empty", ("executions", "list", "--limit", ""), "is not a valid integer"),
    Case("status-unknown", ("executions", "list", "--status", "DONE"), "'DONE' is not one of"),
    Case("month-13", ("cost", "report", "--month", "2024-13"), "'2024-13' is not a month"),
    Case("month-00", ("cost", "report", "--month", "2024-00"), "'2024-00' is not a month"),
    Case("month-short-year", ("cost", "report", "--month", "24-01"), "'24-01' is not a month"),
    Case("month-slash", ("cost", "report", "--month", "2024/01"), "'2024/01' is not a month"),
    Case("month-one-digit", ("cost", "report", "--month", "2024-1"), "'2024-1' is not a month"),
    Case("month-empty", ("cost", "report", "--month", ""), "'' is not a month"),
    Case("approval-status", ("train", "--tenant", "acme", "--model", "churn", "--approval-status", "Approved"), "No such option"),
    Case("environment", ("deploy", "--tenant", "acme", "--model", "churn", "--environment", "prod"), "'prod' is not one of"),
    Case("train-trigger", ("train", "--tenant", "acme", "--model", "churn", "--trigger", "lambda"), "No such option"),
    Case("train-timeout-text", ("train", "--follow", "arn:x", "--timeout", "soon"), "'soon' is not a valid float"),
    Case("train-missing-repo", ("train", "--tenant", "acme", "--repo", "@missing"), "does not exist"),
    Case("train-repo-is-a-file", ("train", "--tenant", "acme", "--repo", "@binary.yaml"), "is a file"),
    Case("train-version-v-prefix", ("train", "--tenant", "acme", "--model", "churn", "--version", "v1.2.3"),
         "is not a version as images are tagged"),
    Case("train-nothing-to-start", ("train", "--version", "0.1.0"), "--tenant and --model (or --repo) are required"),
    Case("deploy-strategy", ("deploy", "--tenant", "acme", "--model", "churn", "--strategy", "big-bang"), "'big-bang' is not one of"),
    Case("deploy-reason-without-force", ("deploy", "--tenant", "acme", "--model", "churn", "--reason", "why"), "--reason without --force"),
    Case("deploy-no-tenant", ("deploy", "--model", "churn"), "Missing option '--tenant'"),
    Case("gate-no-model", ("gate", "--tenant", "acme"), "Missing option '--model'"),
    Case("reject-no-reason", ("reject", "--tenant", "acme", "--model", "churn", "--version", "0.1.0"), "Missing option '--reason'"),
    Case("invoke-missing-body", ("invoke", "--tenant", "acme", "--model", "churn", "--body", "@missing.csv"),
         "cannot read the request body"),
    Case("invoke-body-folder", ("invoke", "--tenant", "acme", "--model", "churn", "--body", "@folder"),
         "cannot read the request body"),
    Case("image-kind", ("image", "build", "--repo", CHURN, "--kind", "gpu", "--out", "+x.tar"), "'gpu' is not one of"),
    Case("image-builder", ("image", "build", "--repo", CHURN, "--kind", "training", "--builder", "kaniko", "--out", "+x.tar"),
         "'kaniko' is not one of"),
    Case("image-build-missing-repo", ("image", "build", "--repo", "@missing", "--kind", "training", "--out", "+x.tar"),
         "does not exist"),
    Case("publish-max-attempts", ("image", "publish", "--model", "churn", "--version", "0.1.0", "--archive", "@image.tar",
                                  "--max-attempts", "0"), "0 is not in the range 1<=x<=50"),
    Case("publish-missing-archive", ("image", "publish", "--model", "churn", "--version", "0.1.0", "--archive", "@missing.tar"),
         "not found"),
    Case("publish-binary-archive", ("image", "publish", "--model", "churn", "--version", "0.1.0", "--archive", "@binary.json"),
         "binary.json"),
    Case("version-bump", ("version", "next", "--model", "churn", "--repo", CHURN, "--bump", "huge"), "'huge' is not one of"),
    Case("version-mr-iid", ("version", "next", "--model", "churn", "--repo", CHURN, "--mr-iid", "0"), "0 is not in the range x>=1"),
    Case("version-pipeline-iid", ("version", "next", "--model", "churn", "--repo", CHURN, "--pipeline-iid", "-1"),
         "-1 is not in the range x>=1"),
    Case("version-missing-repo", ("version", "next", "--model", "churn", "--repo", "@missing", "--no-registry"), "not found"),
    Case("lint-fail-under", ("lint", CHURN, "--fail-under", "11"), "11.0 is not in the range 0<=x<=10"),
    Case("lint-missing-path", ("lint", "@missing"), "missing"),
    Case("lint-missing-rcfile", ("lint", CHURN, "--rcfile", "@missing.rc"), "missing.rc"),
    Case("retrain-now", ("retrain-check", "--now", "yesterday"), "--now 'yesterday' is not an ISO 8601 time"),
    Case("retrain-data-from", ("retrain-check", "--data-from", "ftp"), "'ftp' is not one of"),
    Case("retrain-missing-contract", ("retrain-check", "--contract", "@missing"), "does not exist"),
    Case("report-missing-result", ("report", "evaluation", "@missing.json", "--model", "churn"), "does not exist"),
    Case("report-binary-result", ("report", "evaluation", "@binary.json", "--model", "churn"), "unreadable"),
    Case("report-broken-result", ("report", "evaluation", "@broken.json", "--model", "churn"), "unreadable"),
    Case("report-no-model", ("report", "evaluation", "@broken.json"), "Missing option '--model'"),
    Case("report-no-paths", ("report", "evaluation", "--model", "churn"), "Missing argument 'PATHS...'"),
    Case("executions-show-no-id", ("executions", "show"), "Missing argument 'EXECUTION_ID'"),
    Case("unknown-command", ("deploy-all",), "No such command 'deploy-all'"),
    Case("unknown-subcommand", ("tenants", "show"), "No such command 'show'"),
    Case("unknown-option", ("tenants", "list", "--all"), "No such option '--all'"),
    Case("names-account-id", ("names", "--account-id", "abc"), "account id 'abc' is not 12 digits"),
    Case("infra-environment-path", ("infra", "plan", "-e", "../x"), "is not a simple folder name"),
    Case("infra-environment-empty", ("infra", "apply", "-e", ""), "is not a simple folder name"),
    Case("infra-local-not-running", ("local", "plan"), "the local AWS is not running"),
    Case("infra-environment-local", ("infra", "plan", "-e", "local"), "the environment 'local' is the local AWS's"),
    Case("infra-environment-missing", ("infra", "apply"), "Missing option '--environment'"),
]
#: commands that reach AWS with valid input: no endpoint, then no credentials
AWS_COMMANDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    # id: (args, error without an endpoint, error without credentials)
    "executions-list": (("executions", "list"), AWS_DOWN, "NoCredentialsError"),
    "executions-show": (("executions", "show", "x"), AWS_DOWN, "NoCredentialsError"),
    "cost-report": (("cost", "report"), AWS_DOWN, "NoCredentialsError"),
    "train": (("train", "--tenant", "acme", "--model", "churn", "--version", "0.1.0"), AWS_DOWN, "NoCredentialsError"),
    "pipeline-upsert": (("pipeline", "upsert", "--repo", CHURN), AWS_DOWN, "NoCredentialsError"),
    "gate": (("gate", "--tenant", "acme", "--model", "churn"), CANNOT_REACH, CANNOT_REACH),
    "deploy": (("deploy", "--tenant", "acme", "--model", "churn"), CANNOT_REACH, CANNOT_REACH),
    "retrain-check": (("retrain-check",), CANNOT_REACH, CANNOT_REACH),
    "version-next": (("version", "next", "--model", "churn", "--repo", CHURN), "could not describe the repository",
                     "Unable to locate credentials"),
}


def _table() -> list[Case]:
    cases: list[Case] = []
    for command, args in TENANT_COMMANDS.items():
        cases += [Case(f"{command}-tenant-{name}", (*args, value), "tenant") for name, value in BAD_TENANTS.items()]
    for command, args in MODEL_COMMANDS.items():
        cases += [Case(f"{command}-model-{name}", (*args, value), "model") for name, value in BAD_MODELS.items()]
    for command, args in VERSION_COMMANDS.items():
        cases += [Case(f"{command}-version-{name}", (*args, value), "version") for name, value in BAD_VERSIONS.items()]
    for command, args in REGISTRY_COMMANDS.items():
        cases += [Case(f"{command}-{name}", args, expect, env) for name, (env, expect) in BAD_REGISTRIES.items()]
    for command, args in REPO_COMMANDS.items():
        cases += [Case(f"{command}-repo-{name}", (*args, repo), expect) for name, (repo, expect) in BAD_REPOS.items()]
    cases += [Case(f"cost-report-prices-{name}", ("cost", "report", "--prices", path), expect)
              for name, (path, expect) in BAD_YAML_FILES.items()]
    for command in ("plan", "apply"):
        cases += [Case(f"infra-{command}-var-file-{name}", ("infra", command, "-e", "staging", "--var-file", path), expect)
                  for name, (path, expect) in BAD_VAR_FILES.items()]
    cases += OPTION_VALUES
    for command, (args, down, no_credentials) in AWS_COMMANDS.items():
        cases += [Case(f"{command}-no-endpoint", args, down), Case(f"{command}-no-credentials", args, no_credentials, NO_CREDENTIALS)]
    return cases


TABLE = _table()


# -- files the table names --------------------------------------------------------------------------------

def _registry_copy(folder: Path, odd: bytes | None = None) -> None:
    shutil.copytree(ROOT / "tenants", folder)
    if odd is not None:
        (folder / "odd.yaml").write_bytes(odd)


def _repo_copy(folder: Path, contract: bytes | None) -> None:
    shutil.copytree(ROOT / "examples" / "churn", folder)
    if contract is None:
        (folder / "mlops.yaml").unlink()
    else:
        (folder / "mlops.yaml").write_bytes(contract)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the table names with `@`: binary, oversized, malformed and otherwise wrong ones."""
    folder = tmp_path_factory.mktemp("bad")
    binary, oversized = b"\xff\xfe\x00binary", b"id: x\n" + b"#" * (MAX_BYTES + 1)
    files = {"binary.yaml": binary, "oversized.yaml": oversized, "malformed.yaml": b"a: [unclosed\n",
             "list.yaml": b"- a\n- b\n", "broken.json": b"{not json", "list.json": b'["a"]', "binary.json": binary,
             "vars.tfvars": b"a = 1\n"}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / "folder").mkdir()
    _registry_copy(folder / "tenants-binary", binary)
    _registry_copy(folder / "tenants-oversized", oversized)
    _registry_copy(folder / "tenants-malformed", b"id: odd\nmodels: [unclosed\n")
    _registry_copy(folder / "tenants-list", b"- id: odd\n")
    _registry_copy(folder / "tenants-unknown-tier", b"id: odd\ndisplay_name: Odd\ntier: platinum\nmodels: [churn]\n")
    _repo_copy(folder / "repo-binary", binary)
    _repo_copy(folder / "repo-oversized", oversized)
    _repo_copy(folder / "repo-malformed", b"model: [unclosed\n")
    _repo_copy(folder / "repo-empty-file", b"")
    _repo_copy(folder / "repo-without-contract", None)
    return folder


@pytest.fixture(scope="module")
def image_archive(bad: Path) -> Path:  # pylint: disable=redefined-outer-name  # pytest fixtures
    """A real OCI archive of the churn model (source only), for the cases that publish it."""
    archive = bad / "image.tar"
    code, _, err = _run(["image", "build", "--repo", CHURN, "--kind", "training", "--builder", "source",
                         "--docker-dir", str(ROOT / "docker"), "--out", str(archive)])
    assert code == 0 and archive.is_file(), err
    return archive


def _resolve(value: str, bad_files: Path, own: Path) -> str:
    return str({"@": bad_files, "+": own}[value[0]] / value[1:]) if value[:1] in ("@", "+") else value


# -- running a case ---------------------------------------------------------------------------------------

def _run(args: list[str]) -> tuple[int | None, str, str]:
    """(exit code, stdout, stderr) of `mlops ARGS` in this process; exit code None when an exception escaped `main`."""
    out, err = io.StringIO(), io.StringIO()
    code: int | None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # pylint: disable=broad-exception-caught  # what escapes main is what a user would see as a traceback
            traceback.print_exc(file=err)
            code = None
    return code, out.getvalue(), err.getvalue()


def outcome(code: int | None, stdout: str, stderr: str, as_json: bool) -> dict[str, Any]:
    """What the table counts: a traceback, a silent acceptance, the error lines, and the JSON error document."""
    lines = stderr.splitlines()
    errors = [number for number, line in enumerate(lines) if line.lower().startswith("error:")]
    # The error line and the indented problems under it (a configuration file's further problems).
    block = lines[errors[0]:errors[0] + 1] + list(takewhile(lambda line: line.startswith("  "), lines[errors[0] + 1:])) if errors else []
    result: dict[str, Any] = {"exit_code": code, "traceback": code is None or "Traceback" in stdout + stderr,
                              "accepted": code == 0, "error_lines": len(errors), "message": "\n".join(block)}
    if as_json:
        try:
            document = json.loads(stdout)
        except ValueError:
            document = None
        error = document.get("error") if isinstance(document, dict) else None
        result["json_error"] = (isinstance(error, dict) and isinstance(error.get("message"), str) and bool(error["message"])
                                and isinstance(error.get("type"), str) and error.get("exit_code") == code
                                and isinstance(error.get("problems"), list)
                                and (error.get("hint") is None or isinstance(error["hint"], str)))
        if result["json_error"]:
            result["message"] = "\n".join([error["message"], *map(str, error["problems"])])
    return result


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """This repository's registry, state and cache folders in the test's own empty folder (a refused input writes
    nothing there), AWS where nothing listens, no CI variables, and a fresh boto3 default session (it caches
    credentials and endpoints)."""
    for key in list(os.environ):
        if key.startswith(("MLOPS_", "CI_", "GITLAB_")) or key == "MODEL_VERSION":
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLOPS_ROOT", str(ROOT))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    for key, value in NO_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    yield monkeypatch


@pytest.mark.parametrize("as_json", [pytest.param(False, id="text"), pytest.param(True, id="json")])
@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in TABLE])
def test_bad_input_is_one_error_never_a_traceback(case: Case, as_json: bool, bad: Path, image_archive: Path,  # pylint: disable=redefined-outer-name,unused-argument,too-many-arguments,too-many-positional-arguments  # pytest fixtures
                                                  environment: pytest.MonkeyPatch, tmp_path: Path,
                                                  record_property: Any) -> None:
    for key, value in case.env.items():
        if value is None:
            environment.delenv(key, raising=False)
        else:
            environment.setenv(key, _resolve(value, bad, tmp_path))
    args = [_resolve(arg, bad, tmp_path) for arg in case.args] + (["--json"] if as_json else [])
    code, stdout, stderr = _run(args)
    result = outcome(code, stdout, stderr, as_json)
    result["written"] = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    record_property("outcome", result)
    assert not result["traceback"], stderr
    assert code not in (0, None), f"accepted: {args}\n{stdout}\n{stderr}"
    assert not result["written"], "a refused input must change nothing"
    assert result["error_lines"] == 1, stderr
    if as_json:
        assert result["json_error"], stdout
    assert case.expect in result["message"], f"{result['message']!r} does not name {case.expect!r}\n{stderr}"


def test_the_json_error_is_the_documented_document(environment: pytest.MonkeyPatch) -> None:  # pylint: disable=redefined-outer-name,unused-argument  # pytest fixtures
    code, stdout, stderr = _run(["train", "--tenant", "nope", "--model", "churn", "--json"])
    error = json.loads(stdout)["error"]
    hint = error.pop("hint")
    assert code == 1 and hint.startswith("known tenants: acme, ")
    assert error == {"type": "MlopsError", "message": "unknown tenant 'nope'", "exit_code": 1, "problems": []}
    assert stderr.splitlines() == [f"error: unknown tenant 'nope' ({hint})"], "the job log still shows the one line"
