"""`mlops report evaluation`: the job-log report, GitLab's metrics report and the merge-request note.

The result files are built the way `mlops train --wait --json` builds them (`progress.Status.as_dict()`
plus what the trigger answered). The merge-request note goes to a GitLab stand-in: an HTTP server on
loopback in this test process that records what it receives and answers like GitLab's notes API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gitlab_stub import GitLabNotes, serve
from mlops.cli import main
from mlops.pipeline.progress import Status
from mlops.gate import Candidate, MetricRule, decide
from mlops.report import Evaluation, markdown_note, openmetrics, parse_evaluation, text_report

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/mlops-demo-churn/execution/abc"
TOKEN = "test-token-value-123"


def train_output(tenant: str, status: str = "Succeeded", auc: float | None = 0.851, reason: str | None = None,
                 package: bool = True, version: str = "0.2.0") -> str:
    """What `mlops train --wait --json` prints for one tenant."""
    result = Status(ARN, status, reason, metrics={"auc": {"value": auc}["value"], "accuracy": 0.8} if auc is not None else {},
                    model_package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{tenant}-churn/1" if package else None)
    data = result.as_dict() | {"execution_id": f"{tenant}-churn-1", "trigger": "started", "tier": "gold",
                               "parameters": {"TenantId": tenant, "ModelVersion": version}}
    return json.dumps(data, indent=2, sort_keys=True, default=str)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A folder as the train jobs leave it: acme registered, globex refused by the pipeline's threshold."""
    folder = tmp_path / "evaluation"
    folder.mkdir()
    (folder / "acme.json").write_text(train_output("acme"), encoding="utf-8")
    (folder / "globex.json").write_text(train_output(
        "globex", "Failed", auc=0.83, package=False,
        reason="auc = 0.83 does not meet the threshold (>= 0.99); the model was not registered"), encoding="utf-8")
    return folder


@pytest.fixture
def gitlab() -> Iterator[str]:
    """GitLab's notes API on 127.0.0.1 (tests/gitlab_stub.py) expecting TOKEN; requests land in GitLabNotes.received."""
    with serve(TOKEN) as url:
        yield url


@dataclass
class Ran:
    """What a run of `mlops` left: exit code, stdout, and stdout + stderr as a person sees them."""

    exit_code: int
    stdout: str
    output: str


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """`mlops ARGS` through the console entry point (one-line errors included), with a clean CI environment."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Ran:
        for name in ("MLOPS_MR_NOTE_TOKEN", "MLOPS_MODEL_MR_IID", "MLOPS_UPSTREAM_PROJECT_ID", "CI_API_V4_URL",
                     "CI_PIPELINE_URL", "MODEL_VERSION", "MLOPS_MODEL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.out + captured.err)

    return invoke


# -- pure renderings -----------------------------------------------------------------------------------


def test_parse_takes_tenant_and_version_from_the_result_and_keeps_numeric_metrics() -> None:
    evaluation = parse_evaluation(train_output("acme", version="1.4.0"), tenant="from-file-name", model="churn")
    assert (evaluation.tenant, evaluation.version, evaluation.status) == ("acme", "1.4.0", "Succeeded")
    assert evaluation.metrics == {"auc": 0.851, "accuracy": 0.8}
    assert evaluation.registered


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("{not json", "not JSON", id="broken-json"),
    pytest.param('["a list"]', "no `status`", id="not-a-train-result"),
])
def test_parse_rejects_what_is_not_a_train_result(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_evaluation(text, tenant="acme", model="churn")


def test_an_empty_result_is_reported_as_no_result() -> None:
    evaluation = parse_evaluation("", tenant="acme", model="churn", version="0.1.0")
    assert evaluation.status == "NoResult" and not evaluation.registered
    assert "wrote no result" in evaluation.outcome()


def test_the_error_of_a_failed_train_command_is_its_no_result_reason() -> None:
    text = json.dumps({"error": {"type": "MlopsError", "message": "unknown tenant 'initech'", "hint": None, "exit_code": 1,
                                 "problems": []}})
    evaluation = parse_evaluation(text, tenant="initech", model="churn", version="0.1.0")
    assert evaluation.status == "NoResult" and not evaluation.registered
    assert evaluation.failure_reason == "the train command failed: unknown tenant 'initech'"


def test_openmetrics_report_has_one_gauge_family_per_metric_labelled_by_tenant_and_model() -> None:
    evaluations = [parse_evaluation(train_output("acme"), tenant="acme", model="churn"),
                   Evaluation("glo\"bex", "churn", "0.2.0", "Failed", {"auc": 0.83, "r2-score": 0.5})]
    text = openmetrics(evaluations)
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    assert 'mlops_evaluation_auc{tenant="acme",model="churn"} 0.851' in lines
    assert 'mlops_evaluation_auc{tenant="glo\\"bex",model="churn"} 0.83' in lines, "label values are escaped"
    assert 'mlops_evaluation_r2_score{tenant="glo\\"bex",model="churn"} 0.5' in lines, "names are sanitised"
    assert 'mlops_model_registered{tenant="acme",model="churn"} 1' in lines
    assert 'mlops_model_registered{tenant="glo\\"bex",model="churn"} 0' in lines
    # Every sample follows its family's TYPE line, and every family is declared once.
    families = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(families) == len(set(families))
    current = None
    for line in lines[:-1]:
        if line.startswith("# TYPE"):
            current = line.split()[2]
        else:
            assert line.startswith(current + "{"), line
    assert "0.2.0" not in text, "the version is not a label (it changes every build)"


def test_markdown_note_puts_the_contract_metric_first_and_escapes_cells() -> None:
    evaluations = [Evaluation("acme", "churn", "0.2.0", "Succeeded", {"accuracy": 0.8, "auc": 0.851}, model_package_arn="arn:p"),
                   Evaluation("globex", "churn", "0.2.0", "Failed", {"auc": 0.83}, failure_reason="a | b")]
    note = markdown_note(evaluations, MetricRule("auc", "maximize", threshold=0.7), {"ml-ops pipeline": "https://gitlab.example/p/1"})
    assert note.startswith("<!-- mlops-evaluation-report -->\n**ml-ops evaluation of churn 0.2.0**")
    assert "| Tenant | Result | auc | accuracy |" in note
    assert "| acme | registered | 0.851 | 0.8 |" in note
    assert "| globex | failed: a \\| b | 0.83 |  |" in note
    assert "Registration threshold: `auc >= 0.7`." in note
    assert "[ml-ops pipeline](https://gitlab.example/p/1)" in note


@pytest.mark.parametrize(("direction", "threshold", "value"), [
    ("maximize", 0.7, 0.7), ("maximize", 0.7, 0.7 - 1e-12), ("maximize", 0.1 + 0.2, 0.3), ("maximize", 0.7, 0.6999),
    ("minimize", 0.3, 0.1 + 0.2), ("minimize", 12.5, 12.5 + 1e-12), ("minimize", 12.5, 12.5001),
])
def test_the_report_and_the_gate_give_one_verdict_at_the_threshold(direction: str, threshold: float, value: float) -> None:
    rule = MetricRule("auc", direction, threshold=threshold)  # type: ignore[arg-type]
    deployed = decide(Candidate("0.2.0", {"auc": value}), None, rule).deploy
    line = text_report([Evaluation("acme", "churn", "0.2.0", "Succeeded", {"auc": value})], rule).splitlines()[-1]
    assert line.endswith("(meets)" if deployed else "(does not meet)"), (line, deployed)
    assert deployed == (abs(value - threshold) < 1e-9), "at the threshold, within float noise, meets; clearly past it, does not"


# -- the command ----------------------------------------------------------------------------------------


def test_report_prints_each_tenant_and_writes_the_metrics_report(run: Callable[..., Ran], results: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.txt"
    result = run("report", "evaluation", str(results), "--model", "churn", "--repo", str(ROOT / "examples" / "churn"),
                 "--metrics", str(metrics))
    assert result.exit_code == 0, result.output
    assert "evaluation of churn 0.2.0 for tenant acme: registered" in result.output
    assert "  threshold: auc >= 0.7 (meets)" in result.output
    assert ("evaluation of churn 0.2.0 for tenant globex: failed: auc = 0.83 does not meet the threshold (>= 0.99); "
            "the model was not registered") in result.output
    assert "  threshold: auc >= 0.7 (meets)" in result.output.split("tenant globex")[1], "0.83 meets the contract's 0.70"
    assert 'mlops_evaluation_auc{tenant="globex",model="churn"} 0.83' in metrics.read_text(encoding="utf-8")
    assert "merge-request note" not in result.output, "no note unless asked"


def test_report_json_lists_the_evaluations(run: Callable[..., Ran], results: Path) -> None:
    result = run("report", "evaluation", str(results / "acme.json"), "--model", "churn", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(e["tenant"], e["registered"]) for e in data["evaluations"]] == [("acme", True)]
    assert data["merge_request_note"] is None and data["problems"] == []


def test_an_unreadable_result_is_reported_and_fails_the_command_after_writing_the_rest(
        run: Callable[..., Ran], results: Path, tmp_path: Path) -> None:
    (results / "initech.json").write_text("Traceback (most recent call last):", encoding="utf-8")
    metrics = tmp_path / "metrics.txt"
    result = run("report", "evaluation", str(results), "--model", "churn", "--metrics", str(metrics))
    assert result.exit_code == 1
    assert "tenant initech: noresult: initech.json is unreadable: not JSON" in result.output
    assert 'tenant="acme"' in metrics.read_text(encoding="utf-8"), "the readable results are still reported"


def test_an_unreadable_result_under_json_is_one_document_with_the_evaluations_and_the_error(
        run: Callable[..., Ran], results: Path) -> None:
    (results / "initech.json").write_text("Traceback (most recent call last):", encoding="utf-8")
    result = run("report", "evaluation", str(results), "--model", "churn", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [e["tenant"] for e in data["evaluations"]] == ["acme", "globex", "initech"]
    assert data["error"]["message"].startswith("1 result file(s) unreadable: ") and data["error"]["exit_code"] == 1


def test_a_missing_path_is_one_line(run: Callable[..., Ran], tmp_path: Path) -> None:
    result = run("report", "evaluation", str(tmp_path / "nope.json"), "--model", "churn")
    assert result.exit_code == 1
    assert result.output.strip().endswith("(pass the files (or the folder) `mlops train --wait --json` wrote)")
    assert len(result.output.strip().splitlines()) == 1


def test_mr_note_is_posted_to_the_upstream_merge_request(run: Callable[..., Ran], results: Path, gitlab: str) -> None:
    env = {"MLOPS_MR_NOTE_TOKEN": TOKEN, "MLOPS_MODEL_MR_IID": "17", "MLOPS_UPSTREAM_PROJECT_ID": "42",
           "CI_API_V4_URL": gitlab, "CI_PIPELINE_URL": "https://gitlab.example/platform/ml-ops/-/pipelines/5"}
    result = run("report", "evaluation", str(results), "--model", "churn", "--repo", str(ROOT / "examples" / "churn"),
                 "--mr-note", env=env)
    assert result.exit_code == 0, result.output
    assert "merge-request note: posted, note 77 on merge request !17 of project 42" in result.output
    assert len(GitLabNotes.received) == 1
    request = GitLabNotes.received[0]
    assert request["path"] == "/api/v4/projects/42/merge_requests/17/notes"
    assert request["auth"] == f"Bearer {TOKEN}"
    body = request["body"]["body"]
    assert "| acme | registered | 0.851 | 0.8 |" in body
    assert "auc = 0.83 does not meet the threshold" in body
    assert "(https://gitlab.example/platform/ml-ops/-/pipelines/5)" in body
    assert TOKEN not in result.output


@pytest.mark.parametrize(("env", "expected"), [
    pytest.param({"MLOPS_MR_NOTE_TOKEN": "wrong"}, "not posted: GitLab answered 401 (401 Unauthorized): the token in "
                 "MLOPS_MR_NOTE_TOKEN is invalid, expired or revoked", id="bad-token"),
    pytest.param({"forbidden": "1"}, "not posted: GitLab answered 403 (403 Forbidden): the token may not comment on "
                 "project 42", id="token-without-access"),
    pytest.param({"CI_API_V4_URL": "http://127.0.0.1:9/api/v4"}, "not posted: cannot reach GitLab at "
                 "http://127.0.0.1:9/api/v4", id="gitlab-unreachable"),
    pytest.param({"MLOPS_MR_NOTE_TOKEN": ""}, "not posted: MLOPS_MR_NOTE_TOKEN is not set", id="no-token"),
    pytest.param({"MLOPS_MODEL_MR_IID": ""}, "not posted: no upstream merge request", id="branch-build"),
    pytest.param({"MLOPS_MODEL_MR_IID": "1; rm"}, "not posted: the upstream merge request iid '1; rm' is not a number",
                 id="malformed-iid"),
])
def test_a_note_that_cannot_be_posted_prints_one_line_and_never_fails(run: Callable[..., Ran], results: Path, gitlab: str,
                                                                       env: dict[str, str],
                                                                       expected: str) -> None:
    GitLabNotes.answer_status = 403 if env.pop("forbidden", None) else 201
    full = {"MLOPS_MR_NOTE_TOKEN": TOKEN, "MLOPS_MODEL_MR_IID": "17", "MLOPS_UPSTREAM_PROJECT_ID": "42",
            "CI_API_V4_URL": gitlab, **env}
    result = run("report", "evaluation", str(results), "--model", "churn", "--mr-note", env=full)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("merge-request note:")]
    assert len(lines) == 1 and expected in lines[0], result.output
    assert TOKEN not in result.output and "wrong" not in lines[0]
