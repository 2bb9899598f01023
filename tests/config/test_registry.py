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
    ],
)
def test_each_problem_is_one_line_naming_file_and_field(registry_dir: Path, filename: str, content: str, expected: str) -> None:
    (registry_dir / "tenants" / filename).write_text(content)
    with pytest.raises(ConfigError) as caught:
        _load(registry_dir)
    assert any(expected in line for line in caught.value.problems), caught.value.problems
    assert all("\n" not in line for line in caught.value.problems)


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
