"""Reproducible Lambda packages: one zip per function, built with `zipfile` and nothing else.

A package holds the function's handler folder (`lambda/<function>/`, at the zip's root, so the handler is
`handler.handler`) and the `mlops` package without the CLI and the local runtime, which no Lambda needs.
The same sources always give the same bytes (sorted entries, fixed timestamps and permissions), so
Terraform's `source_code_hash` changes only when the code does and re-applying deploys nothing new.
Third-party libraries beyond the Lambda runtime's boto3 belong in a layer, not here.

Only the AWS provider is available to Terraform here (no `archive` provider), which is why Python builds
the zips and Terraform receives their folder as `lambda_package_dir`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

from mlops.errors import MlopsError

FUNCTIONS = ("trigger", "dispatcher", "status")
#: Parts of the `mlops` package a Lambda never imports.
_EXCLUDED_PACKAGES = ("cli", "local")
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", "tests"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
# 1980-01-01 is the earliest time a zip entry can carry.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _files(folder: Path, skip_top: tuple[str, ...] = ()) -> list[tuple[Path, str]]:
    """(path, relative posix name) of every file to package under `folder`, sorted."""
    found: list[tuple[Path, str]] = []
    for current, dirs, files in os.walk(folder):
        rel_dir = Path(current).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not (rel_dir == Path(".") and d in skip_top))
        for name in files:
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            found.append((Path(current) / name, (rel_dir / name).as_posix()))
    return sorted(found, key=lambda item: item[1])


def package_entries(root: Path, function: str) -> list[tuple[Path, str]]:
    """What goes into one function's zip: (source file, name in the zip), in zip order."""
    handler_dir = root / "lambda" / function
    if not (handler_dir / "handler.py").is_file():
        raise MlopsError(f"{handler_dir / 'handler.py'}: Lambda handler not found", "run from the ml-ops checkout (MLOPS_ROOT)")
    mlops_dir = Path(__file__).resolve().parent
    entries = _files(handler_dir)
    entries += [(path, f"mlops/{name}") for path, name in _files(mlops_dir, skip_top=_EXCLUDED_PACKAGES)]
    return sorted(entries, key=lambda item: item[1])


def _write_zip(entries: list[tuple[Path, str]], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            for path, name in entries:
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so the permission bits below are honoured
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), compresslevel=9)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_packages(root: Path, out_dir: Path) -> dict[str, Path]:
    """Build `<out_dir>/<function>.zip` for every function; return their paths by function."""
    built = {}
    for function in FUNCTIONS:
        target = out_dir / f"{function}.zip"
        _write_zip(package_entries(root, function), target)
        built[function] = target
    return built


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file (what a reproducibility check compares)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
