"""Reproducible Lambda packages: one zip per function, and one layer with the third-party libraries.

A function package holds the function's handler folder (`lambda/<function>/`, at the zip's root, so the
handler is `handler.handler`), the `mlops` package without the CLI and the local runtime, which no Lambda
needs, and the tenant registry (`registry/platform.yaml`, `registry/tenants/*.yaml`: the functions read it
with `MLOPS_ROOT=/var/task/registry`, so a registry change redeploys them with the Terraform apply that
provisions the tenant). The same sources always give the same bytes (sorted entries, fixed timestamps and
permissions), so Terraform's `source_code_hash` changes only when the code does.

The layer (`layer.zip`, `python/...`) holds what the handlers import beyond the Lambda runtime's boto3:
pydantic, PyYAML, semver and Powertools. Its lock, `lambda/layer.txt` (hashes required), is resolved by
`make lock` for the Lambda platform (manylinux2014 x86_64 wheels of Python 3.11) at the versions of uv.lock,
the ones the tests run with; pip installs exactly that file. The layer is built once per lock and kept in
`MLOPS_CACHE_DIR`; `layer.runtime` next to it names the runtime it was built for, and Terraform refuses a
`lambda_runtime` that differs.

Only the AWS provider is available to Terraform here (no `archive` provider), which is why Python builds
the zips and Terraform receives their folder as `lambda_package_dir`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from mlops.errors import MlopsError
from mlops.settings import Settings

FUNCTIONS = ("trigger", "dispatcher", "status")
#: The layer's lock, under the checkout's `lambda/` (what the handlers import beyond the runtime's boto3).
LAYER_LOCK = Path("lambda", "layer.txt")
LAYER_ZIP = "layer.zip"
LAYER_RUNTIME_FILE = "layer.runtime"
#: The runtime `make lock` resolves lambda/layer.txt for (its wheels are built for this Python).
DEFAULT_RUNTIME = "python3.11"
_LAYER_PLATFORM = "manylinux2014_x86_64"
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


def package_entries(root: Path, function: str, platform_file: Path, tenants_dir: Path) -> list[tuple[Path, str]]:
    """What goes into one function's zip: (source file, name in the zip), in zip order."""
    handler_dir = root / "lambda" / function
    if not (handler_dir / "handler.py").is_file():
        raise MlopsError(f"{handler_dir / 'handler.py'}: Lambda handler not found", "run from the ml-ops checkout (MLOPS_ROOT)")
    if not platform_file.is_file():
        raise MlopsError(f"{platform_file}: platform file not found", "set MLOPS_PLATFORM_FILE or MLOPS_ROOT")
    mlops_dir = Path(__file__).resolve().parent
    entries = _files(handler_dir)
    entries += [(path, f"mlops/{name}") for path, name in _files(mlops_dir, skip_top=_EXCLUDED_PACKAGES)]
    entries.append((platform_file, "registry/platform.yaml"))
    tenant_files = sorted([*tenants_dir.glob("*.yaml"), *tenants_dir.glob("*.yml")]) if tenants_dir.is_dir() else []
    entries += [(path, f"registry/tenants/{path.name}") for path in tenant_files]
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
    """Build `<out_dir>/<function>.zip` for every function and the dependencies layer; return their paths."""
    settings = Settings.from_env({**os.environ, "MLOPS_ROOT": str(root)})
    built = {}
    for function in FUNCTIONS:
        target = out_dir / f"{function}.zip"
        _write_zip(package_entries(root, function, settings.platform_file, settings.tenants_dir), target)
        built[function] = target
    built["layer"] = build_layer(out_dir, settings.cache_dir, root / LAYER_LOCK)
    return built


def _lock_text(lock_file: Path) -> str:
    try:
        return lock_file.read_text(encoding="utf-8")
    except OSError:
        raise MlopsError(f"{lock_file}: the Lambda layer's lock is missing", "restore it from git or run `make lock`") from None


def _pins_of(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        requirement = line.split(";", 1)[0].strip().rstrip("\\").strip()
        if requirement and not requirement.startswith(("#", "--")) and "==" in requirement:
            name, version = requirement.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def layer_pins(lock_file: Path) -> dict[str, str]:
    """Distribution name (lower case) -> version pinned by the layer's lock."""
    return _pins_of(_lock_text(lock_file))


def cached_layer(cache_dir: Path, lock_file: Path) -> Path:
    """The layer zip built from `lock_file`, from `cache_dir` or installed with pip first."""
    python_version = DEFAULT_RUNTIME.removeprefix("python")
    text = _lock_text(lock_file)
    if not _pins_of(text):  # an empty lock is the user's to fix, not pip's to report
        raise MlopsError(f"{lock_file}: no pinned requirement in the Lambda layer's lock", "run `make lock`")
    key = hashlib.sha256("\n".join([DEFAULT_RUNTIME, _LAYER_PLATFORM, text]).encode()).hexdigest()[:16]
    cached = cache_dir / f"lambda-layer-{key}.zip"
    if cached.is_file():
        return cached
    with tempfile.TemporaryDirectory(prefix="mlops-layer-") as work:
        target = Path(work) / "python"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                   "--require-hashes", "--no-deps", "--only-binary=:all:", "--platform", _LAYER_PLATFORM,
                   "--implementation", "cp", "--python-version", python_version, "--target", str(target),
                   "--requirement", str(lock_file)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise MlopsError(f"cannot build the Lambda dependencies layer: {lines[-1]}",
                             "pip needs the package index (the same one `make venv` used)")
        for folder in target.glob("bin"):  # console scripts: the layer is imported, never run
            shutil.rmtree(folder)
        _write_zip([(path, f"python/{name}") for path, name in _files(target)], cached)
    return cached


def build_layer(out_dir: Path, cache_dir: Path, lock_file: Path) -> Path:
    """`<out_dir>/layer.zip` (+ `layer.runtime`): the layer of `lock_file`, from the cache or built with pip."""
    cached = cached_layer(cache_dir, lock_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, out_dir / LAYER_ZIP)
    (out_dir / LAYER_RUNTIME_FILE).write_text(DEFAULT_RUNTIME + "\n", encoding="utf-8")
    return out_dir / LAYER_ZIP


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file (what a reproducibility check compares)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":  # `python -m mlops.packaging`: build the layer into the cache (make venv does)
    try:
        _settings = Settings.from_env()
        print(f"Lambda dependencies layer: {cached_layer(_settings.cache_dir, _settings.root / LAYER_LOCK)}")
    except MlopsError as error:
        sys.exit(f"error: {error.one_line()}")
