"""The package's optional extras: which command needs which, and the one line that says one is missing.

`mlops local ...` and `mlops demo` run the embedded local AWS (moto's server: the `local` extra); `mlops lint`
runs pylint with pylint-gitlab's Code Quality reporter (the `lint` extra). Every other command needs neither.
docs/dependencies.md has the same table.
"""

from __future__ import annotations

import importlib.util

from mlops.errors import MlopsError

PACKAGE = "mlops-sagemaker-gitlab"
#: extra -> the packages it installs, by the top-level module a command imports.
MODULES: dict[str, dict[str, str]] = {"local": {"moto": "moto[server]"}, "lint": {"pylint": "pylint", "pylint_gitlab": "pylint-gitlab"}}
#: command -> the extra it needs.
COMMANDS: dict[str, str] = {"local": "local", "demo": "local", "lint": "lint"}


def install_hint(extra: str) -> str:
    """How to install an extra."""
    return f"pip install '{PACKAGE}[{extra}]', or `make venv` in a clone of ml-ops"


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def require(extra: str, command: str) -> None:
    """Raise a one-line MlopsError when a module of `extra` is not installed; `command` is what needs it."""
    absent = [package for module, package in MODULES[extra].items() if _missing(module)]
    if absent:
        raise MlopsError(f"`mlops {command}` needs the `{extra}` extra ({', '.join(absent)} missing)", install_hint(extra))


def missing_extra(exc: ModuleNotFoundError) -> MlopsError | None:
    """The one-line error for an import of an extra's module that failed; None for any other module."""
    top = (exc.name or "").split(".", 1)[0]
    for extra, modules in MODULES.items():
        if top in modules:
            return MlopsError(f"{modules[top]} is not installed: it comes with the `{extra}` extra", install_hint(extra))
    return None
