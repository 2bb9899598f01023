"""`mlops models add|list` and `mlops contract validate` against the platform: adding a model is one step.

Every test works on a registry of its own (the `registry_dir` fixture), never on the shipped files. The last
test plans the Terraform root (mock provider, no AWS) on a registry that `mlops models add` changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops.cli import main
from mlops.config.models import append_to_models
from mlops.config.tenants import load_registry
from mlops.errors import ConfigError
from mlops.terraform import cli_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tests' registry as the CLI's settings."""
    monkeypatch.setenv("MLOPS_ROOT", str(registry_dir))
    for name in ("MLOPS_PLATFORM_FILE", "MLOPS_TENANTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return registry_dir


def _mlops(*args: str) -> tuple[int, str, str]:
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exited:
            code = int(exited.code or 0)
    return code, out.getvalue(), err.getvalue()


def _texts(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.yaml"))}


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("# top\nmodels:\n  - churn   # first\n  - house-prices\ntiers: {}\n",
                 "# top\nmodels:\n  - churn   # first\n  - house-prices\n  - fraud\ntiers: {}\n", id="block-list-keeps-comments"),
    pytest.param("models:\n- churn\n\n# the tiers\ntiers: {}\n", "models:\n- churn\n- fraud\n\n# the tiers\ntiers: {}\n",
                 id="block-list-without-indent"),
    pytest.param("id: a\nmodels: [churn, house-prices]  # what it trains\ntier: gold\n",
                 "id: a\nmodels: [churn, house-prices, fraud]  # what it trains\ntier: gold\n", id="flow-list-keeps-comment"),
    pytest.param("id: a\nmodels: []\n", "id: a\nmodels: [fraud]\n", id="empty-flow-list"),
    pytest.param("id: a\nmodels:\n  - churn", "id: a\nmodels:\n  - churn\n  - fraud\n", id="no-final-newline"),
])
def test_a_model_is_appended_to_the_list_as_it_is_written(text: str, expected: str) -> None:
    assert append_to_models(text, "fraud", "f.yaml") == expected


@pytest.mark.parametrize("text", [
    pytest.param("id: a\n", id="no-models"),
    pytest.param("models: churn\n", id="not-a-list"),
    pytest.param("models: [churn,\n  house-prices]\n", id="flow-list-over-lines"),
])
def test_a_models_list_of_another_shape_is_left_to_a_person(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        append_to_models(text, "fraud", "f.yaml")
    assert refused.value.one_line().startswith("f.yaml: ") and refused.value.one_line().endswith("by hand)")


def test_add_edits_platform_and_tenants_keeps_their_comments_and_the_registry_validates(registry: Path) -> None:
    before = _texts(registry)
    code, out, err = _mlops("models", "add", "fraud-detection", "--tenants", "acme,globex")
    assert code == 0, err
    assert out == ""  # people's lines go to stderr
    assert "ok: model fraud-detection added in the platform, trained by acme, globex; the registry is valid" in err
    assert "next:" in err and "mlops infra apply" in err and "mlops local up" in err
    after = _texts(registry)
    assert after["platform.yaml"] == before["platform.yaml"].replace("  - house-prices\n", "  - house-prices\n  - fraud-detection\n")
    assert after["tenants/acme.yaml"].startswith("# One tenant.\n")
    assert "models: [churn, house-prices, fraud-detection]\n" in after["tenants/acme.yaml"]
    assert "models: [churn, fraud-detection]\n" in after["tenants/globex.yaml"]
    assert _mlops("tenants", "validate")[0] == 0
    loaded = load_registry(registry / "platform.yaml", registry / "tenants")
    assert loaded.platform.models == ["churn", "house-prices", "fraud-detection"]
    code, out, _ = _mlops("names", "--json")
    names = json.loads(out)
    assert names["platform"]["ecr_repositories"]["fraud-detection"] == "mlops-demo/fraud-detection"
    assert names["tenants"]["globex"]["model_package_groups"]["fraud-detection"] == "mlops-demo-globex-fraud-detection"


def test_add_to_all_tenants_and_list_shows_who_trains_what(registry: Path) -> None:  # pylint: disable=unused-argument  # the settings
    code, out, _ = _mlops("models", "add", "fraud", "--all-tenants", "--json")
    assert code == 0
    added = json.loads(out)
    assert (added["model"], added["written"], added["tenants"]) == ("fraud", True, ["acme", "globex"])
    assert added["names"]["tenants"]["acme"]["pipeline"] == "mlops-demo-acme-fraud"
    code, out, _ = _mlops("models", "list", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"model": "churn", "ecr_repository": "mlops-demo/churn", "tenants": ["acme", "globex"]},
        {"model": "house-prices", "ecr_repository": "mlops-demo/house-prices", "tenants": ["acme"]},
        {"model": "fraud", "ecr_repository": "mlops-demo/fraud", "tenants": ["acme", "globex"]},
    ]


def test_a_known_model_is_only_added_to_the_tenants_named_and_a_dry_run_writes_nothing(registry: Path) -> None:
    before = _texts(registry)
    code, out, _ = _mlops("models", "add", "house-prices", "--tenants", "globex", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["files"] == [str(registry / "tenants" / "globex.yaml")]
    assert _texts(registry) == before
    assert _mlops("models", "add", "house-prices", "--tenants", "globex")[0] == 0
    assert "models: [churn, house-prices]\n" in (registry / "tenants" / "globex.yaml").read_text(encoding="utf-8")
    assert _texts(registry)["platform.yaml"] == before["platform.yaml"]


@pytest.mark.parametrize(("args", "line", "code"), [
    pytest.param(("Fraud_Model",), "error: model name 'Fraud_Model' is not valid: use lowercase letters, digits and single "
                 "hyphens, starting with a letter (e.g. fraud-detection)", 2, id="bad-characters"),
    pytest.param(("a-model-name-far-too-long-for-aws",), "error: model name 'a-model-name-far-too-long-for-aws' is 33 "
                 "characters, at most 24 are allowed (it is part of the pipeline, endpoint and model package group names)", 2,
                 id="too-long"),
    pytest.param(("fraud", "--tenants", "initech"), "error: unknown tenant 'initech' (known tenants: acme, globex)", 1,
                 id="unknown-tenant"),
    pytest.param(("churn", "--tenants", "acme"), "error: model 'churn' is already in platform.yaml; trained by acme, globex: "
                 "nothing to change (name tenants to add it to with --tenants, or see `mlops models list`)", 1, id="nothing-to-do"),
    pytest.param(("fraud", "--tenants", "acme", "--all-tenants"),
                 "error: --tenants and --all-tenants exclude each other (pass one of them)", 1, id="both-tenant-options"),
])
def test_a_bad_addition_is_one_line_and_changes_nothing(registry: Path, args: tuple[str, ...], line: str, code: int) -> None:
    before = _texts(registry)
    exit_code, out, err = _mlops("models", "add", *args)
    assert (exit_code, out, err.splitlines()) == (code, "", [line])
    assert _texts(registry) == before


def test_an_addition_the_registry_check_refuses_is_not_written(registry: Path) -> None:
    """acme + eu-churn would get the names of acme-eu + churn: `mlops tenants validate` refuses it, so nothing is written."""
    (registry / "tenants" / "acme-eu.yaml").write_text("id: acme-eu\ndisplay_name: Acme EU\ntier: gold\nmodels: [churn]\n")
    before = _texts(registry)
    code, _, err = _mlops("models", "add", "eu-churn", "--tenants", "acme")
    assert code == 2
    assert err.splitlines() == [
        "error: 1 problem(s) in the tenant registry (nothing was changed)",
        f"  {registry / 'tenants' / 'acme-eu.yaml'}: id: tenant 'acme-eu' with model 'churn' gets the same resource names as "
        "tenant 'acme' with model 'eu-churn' (acme-eu-churn); rename one of the tenants"]
    assert _texts(registry) == before


def _contract_repo(tmp_path: Path, **changes: str) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "churn", repo, ignore=shutil.ignore_patterns("__pycache__"))
    contract = yaml.safe_load((repo / "mlops.yaml").read_text(encoding="utf-8")) | changes
    (repo / "mlops.yaml").write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return repo


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"model": "fraud"}, "model 'fraud' is not a model of the platform (platform.yaml models: churn, house-prices) "
                 "(add it with `mlops models add fraud --tenants ID,ID` in ml-ops", id="unknown-model"),
    pytest.param({"project": "other"}, "project 'other' is not this platform's project 'mlops-demo' (set `project: mlops-demo`",
                 id="unknown-project"),
])
def test_contract_validate_refuses_what_the_platform_does_not_know(registry: Path, tmp_path: Path,  # pylint: disable=unused-argument  # the settings
                                                                   changes: dict[str, str], expected: str) -> None:
    repo = _contract_repo(tmp_path, **changes)
    code, _, err = _mlops("contract", "validate", str(repo))
    assert code == 2
    assert err.splitlines()[0].startswith(f"error: {repo / 'mlops.yaml'}: {expected}"), err


def test_contract_validate_accepts_a_model_once_it_is_added(registry: Path, tmp_path: Path) -> None:  # pylint: disable=unused-argument
    repo = _contract_repo(tmp_path, model="fraud")
    assert _mlops("models", "add", "fraud", "--tenants", "acme")[0] == 0
    code, _, err = _mlops("contract", "validate", str(repo))
    assert code == 0 and "ok: model 'fraud' of project 'mlops-demo'" in err


@pytest.mark.slow
@pytest.mark.terraform
def test_a_model_added_by_the_command_plans_with_the_names_python_gives_it(registry: Path, tmp_path: Path) -> None:
    """The Terraform root plans the changed registry (mock provider, no AWS) and names the new model's ECR repository
    and model package groups as mlops.naming does."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    assert _mlops("models", "add", "fraud", "--tenants", "globex")[0] == 0
    names = load_registry(registry / "platform.yaml", registry / "tenants").names()
    copy = tmp_path / "terraform"
    shutil.copytree(ROOT / "terraform", copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tftest.hcl"))
    shutil.rmtree(copy / "tests")  # the root's own registries: only this test's runs here
    (copy / "tests").mkdir()
    mocks = (ROOT / "terraform" / "tests" / "root.tftest.hcl").read_text(encoding="utf-8").split("\nvariables {")[0]
    (copy / "tests" / "added_model.tftest.hcl").write_text(mocks + f'''
variables {{
  platform_file      = "{registry / 'platform.yaml'}"
  tenants_dir        = "{registry / 'tenants'}"
  lambda_package_dir = "modules/platform/tests/packages"
}}

run "the_added_model_plans" {{
  command = plan

  assert {{
    condition     = output.names.platform.ecr_repositories["fraud"] == "{names.ecr_repository('fraud')}"
    error_message = "The new model's ECR repository is the one Python names."
  }}
  assert {{
    condition     = output.names.tenants["globex"].model_package_groups["fraud"] == "{names.model_package_group('globex', 'fraud')}"
    error_message = "The tenant that trains it gets its model package group."
  }}
  assert {{
    condition     = !contains(keys(output.names.tenants["acme"].model_package_groups), "fraud")
    error_message = "A tenant that does not train it gets none."
  }}
}}
''', encoding="utf-8")
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "TF_DATA_DIR": str(tmp_path / "tfdata")}
    if os.environ.get("MLOPS_TF_PLUGIN_DIR"):
        (tmp_path / "cli.tfrc").write_text(cli_config(Path(os.environ["MLOPS_TF_PLUGIN_DIR"])), encoding="utf-8")
        env["TF_CLI_CONFIG_FILE"] = str(tmp_path / "cli.tfrc")
    init = subprocess.run([terraform, "init", "-backend=false", "-lockfile=readonly", "-no-color"], cwd=copy, env=env,
                          capture_output=True, text=True, check=False)
    assert init.returncode == 0, init.stderr
    tested = subprocess.run([terraform, "test", "-no-color"], cwd=copy, env=env, capture_output=True, text=True, check=False)
    assert tested.returncode == 0 and "1 passed, 0 failed" in tested.stdout, tested.stdout + tested.stderr
