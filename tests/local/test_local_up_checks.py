"""`mlops local up` touches only its own state, and only after its checks (fast: nothing is started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.errors import MlopsError
from mlops.local.stack import LocalStack
from mlops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _stale(tmp_path: Path, **env: str) -> LocalStack:
    """A local AWS home left behind by a dead server, with the stack's own files and one of the user's."""
    stack = LocalStack(Settings.from_env({"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(tmp_path / "state"), **env}))
    stack.home.mkdir(parents=True)
    stack.state_file.write_text(json.dumps({"pid": 999_999_999, "status": "provisioning"}), encoding="utf-8")
    stack.env_file.write_text("export AWS_ENDPOINT_URL=http://127.0.0.1:1\n", encoding="utf-8")
    (stack.home / "terraform" / "config").mkdir(parents=True)
    (stack.home / "terraform" / "config" / "terraform.tfstate").write_text("{}", encoding="utf-8")
    (stack.home / "notes.txt").write_text("mine", encoding="utf-8")
    return stack


def test_a_bad_registry_is_refused_before_the_stale_state_is_touched(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / "acme.yaml").write_text("id: acme\ntier: [not a tier\n", encoding="utf-8")
    stack = _stale(tmp_path, MLOPS_TENANTS_DIR=str(tenants))
    with pytest.raises(MlopsError):
        stack.up()
    assert stack.state_file.is_file() and stack.env_file.is_file()
    assert (stack.home / "terraform" / "config" / "terraform.tfstate").is_file()


def test_a_missing_terraform_is_refused_before_the_stale_state_is_touched(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _stale(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MlopsError, match="terraform is not on PATH"):
        stack.up()
    assert stack.state_file.is_file()


def test_clearing_stale_state_removes_the_stacks_files_only(tmp_path: Path) -> None:
    stack = _stale(tmp_path)
    stack._clear(json.loads(stack.state_file.read_text(encoding="utf-8")))  # pylint: disable=protected-access  # the step under test
    assert not stack.state_file.exists() and not stack.env_file.exists()
    assert not (stack.home / "terraform").exists()
    assert (stack.home / "notes.txt").read_text(encoding="utf-8") == "mine", "a file the stack did not write stays"
