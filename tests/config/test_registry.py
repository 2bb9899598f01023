"""The tenant registry: valid files load, each kind of mistake is one line naming file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops.config.tenants import load_registry
from mlops.errors import ConfigError

GOOD = "id: {id}\ndisplay_name: X\ntier: {tier}\nmodels: [churn]\n"


def _load(root: Path):
    return load_registry(root / "platform.yaml", root / "tenants")


def test_the_repository_registry_is_valid(registry_dir: Path) -> None:
    registry = _load(registry_dir)
    assert set(registry.tenants) == {"acme", "globex"}
    assert {t.tier for t in registry.tenants.values()} == {"gold", "bronze"}


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        pytest.param("bad-tier.yaml", GOOD.format(id="t1", tier="platinum"), "bad-tier.yaml: tier: unknown tier 'platinum'",
                     id="bad-tier"),
        pytest.param("missing.yaml", "id: t2\ntier: gold\nmodels: [churn]\n", "missing.yaml: display_name: required field is missing",
                     id="missing-field"),
        pytest.param("dup.yaml", GOOD.format(id="acme", tier="gold"), "dup.yaml: id: duplicate tenant id 'acme'", id="duplicate-id"),
        pytest.param("upper.yaml", GOOD.format(id="Bad_Id", tier="gold"), "upper.yaml: id: String should match pattern", id="invalid-id"),
        pytest.param("long.yaml", GOOD.format(id="a-very-long-tenant-id-abc", tier="gold"), "long.yaml: id:",
                     id="id-too-long-for-names"),
        pytest.param("model.yaml", "id: t3\ndisplay_name: X\ntier: gold\nmodels: [fraud]\n", "model.yaml: models[0]: unknown model 'fraud'",
                     id="unknown-model"),
        pytest.param("extra.yaml", GOOD.format(id="t4", tier="gold") + "colour: red\n", "extra.yaml: colour: unknown field",
                     id="unknown-field"),
        pytest.param("yaml.yaml", "id: [unclosed\n", "yaml.yaml: line", id="malformed-yaml"),
        pytest.param("tag.yaml", GOOD.format(id="t5", tier="gold") + "tags: {'aws:owner': x}\n",
                     "tag.yaml: tags: Value error, tag key 'aws:owner'", id="reserved-tag"),
        pytest.param("upload.yaml", GOOD.format(id="t6", tier="gold") + "retrain_on_upload: nightly\n",
                     "upload.yaml: retrain_on_upload: Input should be 'immediate' or 'scheduled' (use one of the allowed values)",
                     id="bad-retrain-on-upload"),
    ],
)
def test_each_problem_is_one_line_naming_file_and_field(registry_dir: Path, filename: str, content: str, expected: str) -> None:
    (registry_dir / "tenants" / filename).write_text(content)
    with pytest.raises(ConfigError) as caught:
        _load(registry_dir)
    assert any(expected in line for line in caught.value.problems), caught.value.problems
    assert all("\n" not in line for line in caught.value.problems)


def test_retrain_on_upload_defaults_to_immediate_and_takes_scheduled(registry_dir: Path) -> None:
    (registry_dir / "tenants" / "later.yaml").write_text(GOOD.format(id="later", tier="gold") + "retrain_on_upload: scheduled\n")
    registry = _load(registry_dir)
    assert registry.tenants["later"].retrain_on_upload == "scheduled"
    assert registry.tenants["acme"].retrain_on_upload == "immediate"


def test_all_problems_are_reported_at_once(registry_dir: Path) -> None:
    (registry_dir / "tenants" / "a.yaml").write_text(GOOD.format(id="t1", tier="platinum"))
    (registry_dir / "tenants" / "b.yaml").write_text(GOOD.format(id="acme", tier="gold"))
    with pytest.raises(ConfigError) as caught:
        _load(registry_dir)
    assert len(caught.value.problems) == 2


def test_cli_validate_exits_non_zero_with_one_line_per_problem(registry_dir: Path) -> None:
    (registry_dir / "tenants" / "bad.yaml").write_text(GOOD.format(id="t1", tier="platinum"))
    (registry_dir / "tenants" / "dup.yaml").write_text(GOOD.format(id="globex", tier="gold"))
    result = subprocess.run(
        [sys.executable, "-m", "mlops", "tenants", "validate"],
        capture_output=True, text=True, check=False, env={"MLOPS_ROOT": str(registry_dir), "PATH": ""},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: 2 problem(s)")
    assert any("bad.yaml: tier:" in line for line in lines)
    assert any("id: duplicate tenant id 'globex'" in line and "dup.yaml" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_cli_list_json(registry_dir: Path) -> None:
    import json

    result = subprocess.run(
        [sys.executable, "-m", "mlops", "tenants", "list", "--json"],
        capture_output=True, text=True, check=True, env={"MLOPS_ROOT": str(registry_dir), "PATH": ""},
    )
    data = json.loads(result.stdout)
    assert [t["id"] for t in data] == ["acme", "globex"]
    assert data[0]["tags"]["mlops:tenant"] == "acme"


def test_tenant_and_model_pairs_that_share_resource_names_are_refused(registry_dir: Path) -> None:
    """`acme` + `eu-churn` and `acme-eu` + `churn` would both be `<project>-acme-eu-churn` (pipeline, group, endpoint)."""
    platform = registry_dir / "platform.yaml"
    platform.write_text(platform.read_text().replace("  - churn\n", "  - churn\n  - eu-churn\n", 1))
    (registry_dir / "tenants" / "acme-eu.yaml").write_text(GOOD.format(id="acme-eu", tier="gold"))
    assert set(_load(registry_dir).tenants) == {"acme", "acme-eu", "globex"}  # no clash yet: acme trains no eu-churn
    acme = registry_dir / "tenants" / "acme.yaml"
    acme.write_text(acme.read_text().replace("models: [churn, house-prices]", "models: [churn, house-prices, eu-churn]", 1))
    with pytest.raises(ConfigError) as caught:
        _load(registry_dir)
    assert caught.value.problems == [
        f"{registry_dir / 'tenants' / 'acme-eu.yaml'}: id: tenant 'acme-eu' with model 'churn' gets the same resource names as "
        "tenant 'acme' with model 'eu-churn' (acme-eu-churn); rename one of the tenants"]
