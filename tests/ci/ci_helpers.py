"""Shared by the CI-file tests: the repository root and ci-templates/tools/citemplates.py loaded from its path
(the tool is a script next to the templates, not part of the installed package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _load_tool() -> ModuleType:
    if "citemplates" in sys.modules:
        return sys.modules["citemplates"]
    spec = importlib.util.spec_from_file_location("citemplates", ROOT / "ci-templates" / "tools" / "citemplates.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["citemplates"] = module
    spec.loader.exec_module(module)
    return module


CITEMPLATES = _load_tool()
