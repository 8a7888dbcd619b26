"""Atomic file output: a reader never sees a half-written file, and a crash leaves the old one.

Write to a temporary file in the destination folder, flush and fsync it, then ``os.replace``
it over the destination (atomic on POSIX and Windows for same-volume renames).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; on success move it into place.

    The temporary file keeps the destination's suffix, so libraries that pick a format from the
    extension (tifffile, matplotlib) behave the same. On an exception the temporary file is removed
    and the destination is untouched.
    """
    dest = Path(destination)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".partial{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        # mkstemp creates 0600 (and some writers, e.g. safetensors, replace the file with 0600 again):
        # outputs get the permissions of any new file
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(destination: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open`` replacement whose result appears at ``destination`` only when the block succeeds."""
    with atomic_path(destination) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; return the destination path."""
    with atomic_open(destination, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(destination)


def write_json_atomic(destination: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically; return the destination path."""
    return write_text_atomic(destination, json.dumps(obj, indent=indent, sort_keys=False, default=str) + "\n")
