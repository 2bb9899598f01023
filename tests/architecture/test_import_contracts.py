"""The layers of docs/architecture.md hold: `lint-imports` (import-linter) keeps the contracts of `.importlinter`.

The contracts: decisions <- adapters <- use cases <- CLI, demo and the local AWS; only the local commands
and the demo import `mlops.local` (the product reaches the local AWS through boto3, as it reaches AWS); no
import cycle between sibling packages or modules. Each contract is shown to fail on a copy of the package
that breaks it, and every module of the package has a place in the layers.
"""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under `root` (its own `.importlinter`), with that copy first on the path."""
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(root), "NO_COLOR": "1"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "mlops", tmp_path / "mlops", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_package_keeps_every_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    # an adapter that asks the local AWS: the forbidden contract and the layers both catch it
    ("aws/ecr.py", "import mlops.local.stack", "Only the local commands and the demo know the local AWS"),
    # a decision that reaches up to an adapter
    ("naming.py", "import mlops.aws.errors", "mlops.naming is not allowed to import mlops.aws"),
    # two use cases that import each other
    ("report.py", "import mlops.terraform", None),
], ids=["adapter-imports-local", "decision-imports-adapter", "sibling-cycle"])
def test_a_copy_that_breaks_a_contract_is_refused(tmp_path: Path, module: str, line: str, broken: str | None) -> None:
    root = _copy(tmp_path)
    path = root / "mlops" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    if broken is None:  # a cycle: the other direction too
        other = root / "mlops" / "terraform.py"
        other.write_text(other.read_text(encoding="utf-8") + "\nimport mlops.report  # noqa\n", encoding="utf-8")
        broken = "No import cycles between sibling packages or modules"
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout[-3000:]
    assert broken in result.stdout.split("Broken contracts", 1)[-1], result.stdout[-3000:]


def test_every_module_of_the_package_has_a_layer() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter", encoding="utf-8")
    layered = {module.strip() for layer in config["importlinter:contract:layers"]["layers"].split("\n") if layer.strip()
               for module in layer.split(":")}
    children = set()
    for path in (ROOT / "mlops").iterdir():
        if path.name.startswith("_") and path.name != "__main__.py" or path.name in ("resources", "py.typed"):
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            children.add(f"mlops.{path.stem}")
    # mlops.pipeline's modules sit in different layers: each of them, instead of the package
    pipeline = {f"mlops.pipeline.{p.stem}" for p in (ROOT / "mlops" / "pipeline").glob("*.py") if p.stem != "__init__"}
    expected = (children - {"mlops.pipeline"}) | pipeline
    assert expected - layered == set(), "modules without a layer in .importlinter"
    assert layered - expected == set(), "layers naming modules that do not exist"


def _local_forks() -> object:
    spec = importlib.util.spec_from_file_location("local_forks", ROOT / "bench" / "local_forks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_business_code_asks_whether_aws_is_local() -> None:
    """`bench/local_forks.py` counts imports of mlops.local and local questions outside the local AWS: none."""
    assert _local_forks().forks(ROOT) == []  # type: ignore[attr-defined]


def test_the_fork_count_sees_a_question_and_an_import(tmp_path: Path) -> None:
    (tmp_path / "mlops" / "aws").mkdir(parents=True)
    (tmp_path / "lambda").mkdir()
    (tmp_path / "mlops" / "aws" / "x.py").write_text(
        'import os\nfrom mlops.local.serving import LocalEndpoints\nLOCAL = "127.0.0.1" in os.environ.get("AWS_ENDPOINT_URL", "")\n',
        encoding="utf-8")
    (tmp_path / "mlops" / "demo.py").write_text("import mlops.local.stack\n", encoding="utf-8")  # the demo may
    found = _local_forks().forks(tmp_path)  # type: ignore[attr-defined]
    assert [(f["file"], f["line"], f["kind"]) for f in found] == [("mlops/aws/x.py", 2, "import"), ("mlops/aws/x.py", 3, "question")]
