"""Atomic file output: a reader never sees a half-written file, and a crash leaves the old one.

Write to a temporary file in the destination folder, flush and fsync it, then ``os.replace``
it over the destination (atomic on POSIX and Windows for same-volume renames).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np


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
    """``open`` replacement whose result appears at ``destination`` only when the block succeeds.

    An existing ``destination`` is replaced; callers that must not overwrite check first
    (:mod:`engine.outputs`).

    Parameters
    ----------
    destination : str or path-like
        The final file; its folder is created when missing.
    mode : str
        A writing mode of :func:`open` (``"w"``, ``"wb"``...).
    **kwargs
        Passed to :func:`open` (``encoding``, ``newline``...).

    Yields
    ------
    file object
        Open on a temporary file in the destination folder.
    """
    with atomic_path(destination) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text_atomic(destination: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; return the destination path.

    Parameters
    ----------
    destination : str or path-like
        The file to write (replaced when it exists; its folder is created when missing).
    text : str
        Written as is, encoded as UTF-8 (platform newline translation applies).

    Returns
    -------
    Path
        ``destination``.
    """
    with atomic_open(destination, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(destination)


def write_json_atomic(destination: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically; return the destination path.

    Parameters
    ----------
    destination : str or path-like
        The file to write (replaced when it exists; its folder is created when missing).
    obj : object
        JSON-serialisable; other values (paths, numpy scalars...) are written as ``str(value)``, and
        non-finite floats (NaN, infinities; JSON has none) as ``null``.
    indent : int
        Spaces per indentation level; the file ends with a newline.

    Returns
    -------
    Path
        ``destination``.
    """
    text = json.dumps(_finite_json(obj), indent=indent, sort_keys=False, default=str, allow_nan=False)
    return write_text_atomic(destination, text + "\n")


def _finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) as None: JSON has no NaN, and strict readers refuse it."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_json(v) for v in obj]
    return obj
