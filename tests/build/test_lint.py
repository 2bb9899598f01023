"""`mlops lint`: real pylint on model repositories, Code Quality reports, and clear results on odd input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops.cli import cli
from mlops.lint import default_rcfile, python_files, resolve_rcfile

CLEAN = '"""A clean module."""\n\n\ndef add(left: int, right: int) -> int:\n    """Add two numbers."""\n    return left + right\n'


def run(*args: str) -> tuple[int, str, str]:
    """`mlops lint ARGS`: exit code, stdout, stderr (an unexpected exception fails the test)."""
    result = CliRunner().invoke(cli, ["lint", *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty model repository folder."""
    folder = tmp_path / "model"
    folder.mkdir()
    return folder


def test_clean_repository_passes_and_writes_an_empty_report(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text(CLEAN)
    report = tmp_path / "out" / "gl-code-quality.json"
    code, _, err = run(str(repo), "--codequality", str(report))
    assert code == 0, err
    assert "ok: score 10.00/10" in err
    assert json.loads(report.read_text()) == []


def test_findings_become_code_quality_issues(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text(CLEAN + "\nimport os\n")
    report = tmp_path / "cq.json"
    code, out, err = run(str(repo), "--codequality", str(report), "--fail-under", "0")
    assert code == 0, err
    assert "W0611" in out  # pylint's own text report for the job log
    issues = json.loads(report.read_text())
    assert {i["check_name"] for i in issues} >= {"W0611", "C0413"}
    unused = next(i for i in issues if i["check_name"] == "W0611")
    assert unused["location"] == {"path": "train.py", "positions": {"begin": {"line": 8, "column": 1}}}
    assert unused["severity"] == "major" and unused["fingerprint"]


def test_score_below_fail_under_fails(repo: Path) -> None:
    (repo / "train.py").write_text("import os\nimport sys\n")
    code, _, err = run(str(repo), "--fail-under", "9.5")
    assert code == 1
    assert "is below --fail-under 9.50" in err


def test_syntax_error_is_a_finding_not_a_traceback(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text(CLEAN)
    (repo / "broken.py").write_text("def f(:\n    pass\n")
    report = tmp_path / "cq.json"
    code, out, err = run(str(repo), "--codequality", str(report), "--fail-under", "0")
    assert code == 1
    assert "broken.py:1:7: E0001" in out
    assert "lint failed: 1 error/fatal message(s)" in err
    assert "Traceback" not in out + err
    assert [i["severity"] for i in json.loads(report.read_text())] == ["critical"]


@pytest.mark.parametrize("content", [None, {"README.md": "# model\n", "data/rows.csv": "a,b\n1,2\n"}],
                         ids=["empty-directory", "no-python-files"])
def test_nothing_to_lint_is_said_plainly(repo: Path, tmp_path: Path, content: dict[str, str] | None) -> None:
    for name, text in (content or {}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    report = tmp_path / "cq.json"
    code, out, err = run(str(repo), "--codequality", str(report), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["files"] == 0 and data["passed"] and "nothing to lint" in data["reason"]
    assert json.loads(report.read_text()) == []


def test_missing_path_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["lint", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "does not exist" in str(result.exception)


def test_main_prints_one_line_for_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["lint", str(tmp_path / "nope")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_model_repository_rcfile_overrides_the_default(repo: Path) -> None:
    (repo / "train.py").write_text("import os\n")
    assert resolve_rcfile(repo) == (default_rcfile(), "platform default")
    (repo / "pyproject.toml").write_text("[tool.pylint.'messages control']\ndisable = ['unused-import', 'missing-module-docstring']\n")
    assert resolve_rcfile(repo)[1] == "model repository (pyproject.toml)"
    code, _, err = run(str(repo), "--fail-under", "10")
    assert code == 0, err
    (repo / ".pylintrc").write_text("[MESSAGES CONTROL]\ndisable = missing-module-docstring\n")
    assert resolve_rcfile(repo) == (repo / ".pylintrc", "model repository (.pylintrc)")
    code, _, err = run(str(repo), "--fail-under", "10")
    assert code == 1 and "below" in err  # the unused import still counts


def test_explicit_rcfile_wins_and_a_broken_one_is_explained(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text(CLEAN)
    broken = tmp_path / "broken.rc"
    broken.write_text("[MAIN]\nload-plugins = no_such_plugin_anywhere\n")
    code, out, err = run(str(repo), "--rcfile", str(broken))
    assert code == 1
    assert "E0013" in out and "lint failed" in err
    assert "Traceback" not in out + err
    result = CliRunner().invoke(cli, ["lint", str(repo), "--rcfile", str(tmp_path / "missing.rc")])
    assert "rcfile" in str(result.exception) and "not found" in str(result.exception)


def test_default_rcfile_is_package_data_and_ignores_model_imports(repo: Path) -> None:
    assert default_rcfile().is_file()
    (repo / "train.py").write_text('"""Train."""\nimport sklearn_that_is_not_installed_here  # noqa\n\n'
                                   'print(sklearn_that_is_not_installed_here)\n')
    code, out, err = run(str(repo), "--fail-under", "10")
    assert code == 0, out + err


def test_virtualenvs_and_caches_are_not_linted(repo: Path) -> None:
    for name in ["train.py", "pkg/inference.py", ".venv/lib/x.py", "build/lib/y.py", ".hidden/z.py", "node_modules/a.py"]:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(CLEAN)
    assert python_files(repo) == [Path("pkg/inference.py"), Path("train.py")]


def test_a_single_file_can_be_linted(repo: Path) -> None:
    (repo / "train.py").write_text(CLEAN)
    (repo / "other.py").write_text("def f(:\n")
    code, _, err = run(str(repo / "train.py"), "--json")
    assert code == 0, err
