"""Archives the tests hand to AWS as a model team's tooling would: a `.tar.gz` of files (a `model.tar.gz`, sources)."""

from __future__ import annotations

import io
import tarfile


def tar_gz_of(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of name -> content."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
