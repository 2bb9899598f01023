"""Reading YAML files into plain data, and turning pydantic errors into one-line problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlops.errors import ConfigError


#: No configuration file of the project comes near this; a larger one is a mistake, refused before parsing.
MAX_BYTES = 1 << 20
#: libyaml's parser when PyYAML was built with it (many times faster), else the pure-Python one; both safe.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file; a missing, oversized, binary or malformed file becomes a ConfigError that names it."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{path}: {what} is {size:,} bytes, more than the {MAX_BYTES:,} a configuration file may have",
                              "point the setting at the right file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: {what} not found", "create it or point the setting at the right file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} is not UTF-8 text (byte {exc.start})", "point the setting at a YAML file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    try:
        return yaml.load(text, Loader=_LOADER)  # nosec B506 - a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}", "fix the YAML syntax") from exc


def _field(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling",
    "literal_error": "use one of the allowed values",
    "string_pattern_mismatch": "fix the value's format",
}


def problems_from(error: ValidationError, path: Path) -> list[str]:
    """One line per pydantic error: `file: field: message (fix)`."""
    lines = []
    for err in error.errors(include_url=False):
        msg = err["msg"]
        fix = _FIXES.get(err["type"])
        if err["type"] == "missing":
            msg = "required field is missing"
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{path}: {_field(err['loc'])}: {msg}" + (f" ({fix})" if fix else ""))
    return lines
