"""`terraform test` of every module and of the root (mock_provider "aws": no AWS, no moto) and the READMEs' generated
tables.

Each module runs in a copy of terraform/ under a temporary folder, so `.terraform/` never lands in the
checkout; `init` reads the module's committed lock file and never changes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops import tfdocs
from mlops.terraform import cli_config

ROOT = Path(__file__).resolve().parents[2]
MODULES = [p.name for p in tfdocs.modules(ROOT / "terraform")]


@pytest.fixture(scope="module")
def terraform_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of terraform/ without working files."""
    target = tmp_path_factory.mktemp("tftest") / "terraform"
    shutil.copytree(ROOT / "terraform", target, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    return target


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "TF_DATA_DIR": str(home / "data")}
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        rc_file = home / "cli.tfrc"
        rc_file.write_text(cli_config(Path(os.environ["MLOPS_TF_PLUGIN_DIR"])), encoding="utf-8")
        env["TF_CLI_CONFIG_FILE"] = str(rc_file)
    return env


def test_every_module_has_terraform_tests() -> None:
    assert MODULES == ["bucket_guard", "ci", "naming", "platform", "tenant"]
    for module in MODULES:
        assert list((ROOT / "terraform" / "modules" / module / "tests").glob("*.tftest.hcl")), module


def _terraform_test(terraform_bin: str, folder: Path, home: Path) -> str:
    """`terraform init` and `terraform test` in `folder`; its output, after asserting nothing failed."""
    env = _env(home)
    init = subprocess.run([terraform_bin, "init", "-backend=false", "-lockfile=readonly", "-no-color"], cwd=folder, env=env,
                          capture_output=True, text=True, check=False)
    assert init.returncode == 0, init.stderr
    result = subprocess.run([terraform_bin, "test", "-no-color"], cwd=folder, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
    return result.stdout


@pytest.mark.slow
@pytest.mark.terraform
@pytest.mark.parametrize("module", MODULES)
def test_module_terraform_tests_pass(terraform_bin: str, terraform_copy: Path, module: str, tmp_path: Path) -> None:
    _terraform_test(terraform_bin, terraform_copy / "modules" / module, tmp_path)


@pytest.mark.slow
@pytest.mark.terraform
def test_root_terraform_tests_pass(terraform_bin: str, terraform_copy: Path, tmp_path: Path) -> None:
    """The root reads a registry (terraform/tests/registry) and refuses one in which two tenants share names."""
    output = _terraform_test(terraform_bin, terraform_copy, tmp_path)
    assert 'run "refuses_tenants_that_would_share_resource_names"... pass' in output


def test_module_readme_tables_are_up_to_date() -> None:
    stale = tfdocs.outdated(ROOT / "terraform", write=False)
    assert not stale, f"run `python -m mlops.tfdocs`: {[str(p) for p in stale]}"


def test_tables_list_every_variable_with_type_default_and_every_output(tmp_path: Path) -> None:
    module = tmp_path / "m"
    module.mkdir()
    (module / "variables.tf").write_text('''variable "a" {
  description = "First | piped."
  type = object({
    x = optional(string, "y")
  })

  validation {
    condition     = true
    error_message = "never"
  }
}

variable "b" {
  description = <<-EOT
    Long
    text.
  EOT
  type    = number
  default = 3
}
''', encoding="utf-8")
    (module / "outputs.tf").write_text('output "o" {\n  description = "The output."\n  value       = 1\n}\n', encoding="utf-8")
    text = tfdocs.tables(module)
    assert '| `a` | First \\| piped. | `object({ x = optional(string, "y") })` | n/a | yes |' in text
    assert "| `b` | Long text. | `number` | `3` | no |" in text
    assert "| `o` | The output. |" in text
    rendered = tfdocs.render("# m\n\nhand-written\n", module)
    assert rendered.startswith("# m\n\nhand-written\n") and tfdocs.render(rendered, module) == rendered
