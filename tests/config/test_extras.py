"""Optional extras: a command whose extra is not installed says so in one line; its --help still works."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from mlops import extras
from mlops.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Pretend the given top-level modules are not installed."""
    def hide(*modules: str) -> None:
        monkeypatch.setattr(extras, "_missing", lambda module: module in modules)
    return hide


@pytest.mark.parametrize(("args", "extra", "missing"), [
    pytest.param(["local", "status"], "local", "moto[server]", id="local"),
    pytest.param(["demo"], "local", "moto[server]", id="demo"),
    pytest.param(["lint", "."], "lint", "pylint-gitlab", id="lint"),
])
def test_a_command_without_its_extra_says_so_in_one_line(without, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                                                         args: list[str], extra: str, missing: str) -> None:
    without("moto", "pylint_gitlab")
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"needs the `{extra}` extra ({missing} missing)" in lines[0], lines
    assert f"pip install 'mlops-sagemaker-gitlab[{extra}]'" in lines[0]


def test_help_needs_no_extra(without, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    without("moto", "pylint", "pylint_gitlab")
    main(["local", "--help"])  # click prints the help and returns (no SystemExit outside standalone mode)
    assert "Start, inspect and stop" in capsys.readouterr().out
    main(["lint", "--help"])
    assert "pylint" in capsys.readouterr().out


def test_json_errors_name_the_extra(without, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    without("moto")
    with pytest.raises(SystemExit):
        main(["demo", "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["message"] == "`mlops demo` needs the `local` extra (moto[server] missing)"
    assert error["hint"].startswith("pip install 'mlops-sagemaker-gitlab[local]'")


def test_an_import_of_an_extras_module_is_one_line_any_other_is_not_hidden() -> None:
    error = extras.missing_extra(ModuleNotFoundError("No module named 'moto'", name="moto.server"))
    assert error is not None and error.one_line().startswith("moto[server] is not installed: it comes with the `local` extra")
    assert extras.missing_extra(ModuleNotFoundError("No module named 'x'", name="x")) is None


def test_every_extra_of_a_command_is_an_extra_of_the_package() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = " ".join(declared["dependencies"])
    for extra, packages in extras.MODULES.items():
        listed = " ".join(declared["optional-dependencies"][extra])
        assert all(package in listed and package.split("[")[0] not in runtime for package in packages.values()), extra
    assert set(extras.COMMANDS.values()) <= set(extras.MODULES)
