"""`mlops infra plan|apply` check the tenant registry before anything else, as `mlops tenants validate` does.

Two tenants whose resource names would collide (tenant `acme` with model `house-prices` and tenant `acme-house`
with model `prices`: both `<project>-acme-house-prices`) are refused in one `error:` line naming the files,
with nothing built and Terraform never run. Terraform refuses the same registry on its own
(terraform/tests/root.tftest.hcl, run by tests/terraform/test_module_tests.py).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.config.tenants import load_registry
from mlops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def colliding(registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's registry plus model `prices` and tenant `acme-house` training it, as the CLI's settings."""
    platform = registry_dir / "platform.yaml"
    platform.write_text(platform.read_text().replace("  - house-prices\n", "  - house-prices\n  - prices\n", 1))
    (registry_dir / "tenants" / "acme-house.yaml").write_text(
        "id: acme-house\ndisplay_name: Acme House\ntier: gold\nmodels: [prices]\n")
    monkeypatch.setenv("MLOPS_ROOT", str(ROOT))
    monkeypatch.setenv("MLOPS_PLATFORM_FILE", str(platform))
    monkeypatch.setenv("MLOPS_TENANTS_DIR", str(registry_dir / "tenants"))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(registry_dir / "state"))
    # Were Terraform reached, it would fail differently: there is none on the PATH.
    monkeypatch.setenv("PATH", str(registry_dir / "no-programs"))
    return registry_dir


def _mlops(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0), out.getvalue(), err.getvalue()


PROBLEM = ("id: tenant 'acme-house' with model 'prices' gets the same resource names as tenant 'acme' with model "
           "'house-prices' (acme-house-prices); rename one of the tenants")


def _problem(registry: Path) -> str:
    return f"{registry / 'tenants' / 'acme-house.yaml'}: {PROBLEM}"


@pytest.mark.parametrize("command", [("plan",), ("apply",), ("apply", "--allow-destroy-data")], ids=" ".join)
@pytest.mark.parametrize("where", [("local",), ("infra", "--environment", "staging")], ids=" ".join)
def test_colliding_tenants_are_refused_in_one_line_before_anything_is_built(colliding: Path, command: tuple[str, ...],
                                                                           where: tuple[str, ...]) -> None:
    code, out, err = _mlops(where[0], *command, *where[1:])
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and out == ""
    assert errors == ["error: 1 problem(s) in the tenant registry (nothing was built or planned: fix the registry files "
                      "listed (`mlops tenants validate` checks them alone))"], err
    assert err.splitlines()[1:] == [f"  {_problem(colliding)}"]
    assert not (colliding / "state").exists()  # no package built, no Terraform folder, no plan


def test_the_refusal_is_the_registry_check_of_tenants_validate_and_a_json_error(colliding: Path) -> None:
    code, out, _ = _mlops("infra", "plan", "--environment", "staging", "--json")
    refused = json.loads(out)["error"]
    validate_code, validate_out, _ = _mlops("tenants", "validate", "--json")
    assert (code, refused["type"]) == (validate_code, "ConfigError") == (2, "ConfigError")
    assert refused["problems"] == json.loads(validate_out)["error"]["problems"] == [_problem(colliding)]
    assert not (colliding / "state").exists()


def test_a_registry_without_collisions_gets_past_the_check(registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tenant ids that only share a prefix are fine: the local AWS is what is missing next."""
    (registry_dir / "tenants" / "acme-house.yaml").write_text("id: acme-house\ndisplay_name: Acme House\ntier: gold\nmodels: [churn]\n")
    for name, value in {"MLOPS_ROOT": ROOT, "MLOPS_PLATFORM_FILE": registry_dir / "platform.yaml",
                        "MLOPS_TENANTS_DIR": registry_dir / "tenants", "MLOPS_STATE_DIR": registry_dir / "state"}.items():
        monkeypatch.setenv(name, str(value))
    code, _, err = _mlops("local", "plan")
    assert code == 1 and err.splitlines()[0] == "error: the local AWS is not running (start it with `mlops local up`)"


def test_python_judges_the_registries_of_the_terraform_test_as_terraform_does() -> None:
    """terraform/tests/root.tftest.hcl plans `tenants` and refuses `colliding`: the registry check agrees on both."""
    registries = ROOT / "terraform" / "tests" / "registry"
    assert set(load_registry(registries / "platform.yaml", registries / "tenants").tenants) == {"acme", "acme-house"}
    with pytest.raises(ConfigError) as refused:
        load_registry(registries / "platform.yaml", registries / "colliding")
    assert refused.value.problems == [f"{registries / 'colliding' / 'acme-house.yaml'}: {PROBLEM}"]
