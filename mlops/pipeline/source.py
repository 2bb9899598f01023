"""The source bundle: a model repository packed the way SageMaker script mode expects it.

Training jobs get `sourcedir.tar.gz` (the `sagemaker_submit_directory` of script mode); processing jobs get
the same files unpacked under a prefix, because a processing input is a plain S3 prefix. The bundle is
reproducible (sorted entries, fixed times and owners), so its digest names it: uploading the same sources
twice lands on the same S3 keys. Pure: reads files, never talks to AWS.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

# Folders and files that are never part of a model's sources.
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", ".pytest_cache", ".mypy_cache", "node_modules", ".mlops", ".idea"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
MAX_BUNDLE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class SourceBundle:
    """The files of a model repository and their reproducible tar.gz."""

    files: dict[str, bytes]
    archive: bytes
    digest: str

    @property
    def short_digest(self) -> str:
        """The first 16 hex digits of the archive's SHA-256, used in S3 keys."""
        return self.digest[:16]


def source_files(repo: Path) -> dict[str, bytes]:
    """Every file of the model repository that belongs in the bundle, by POSIX relative path."""
    files: dict[str, bytes] = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if any(part in _SKIP_DIRS for part in rel.parts) or not path.is_file() or path.name.endswith(_SKIP_SUFFIXES):
            continue
        files[rel.as_posix()] = path.read_bytes()
    return files


def pack(files: dict[str, bytes]) -> bytes:
    """A reproducible gzip'd tar of `files` (same input, same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def bundle(repo: Path) -> SourceBundle:
    """Pack a model repository; refuses a bundle too large to be sources (data belongs in S3)."""
    files = source_files(repo)
    archive = pack(files)
    if len(archive) > MAX_BUNDLE_BYTES:
        raise ValueError(f"the sources of {repo} pack to {len(archive) // 1024 // 1024} MB; "
                         "keep data out of the model repo (upload it to the tenant's bucket)")
    return SourceBundle(files=files, archive=archive, digest=hashlib.sha256(archive).hexdigest())
