"""Provenance: every restored image and every result carries how it was made.

A :class:`Provenance` says which method and backend produced an array, with which parameters and
software versions, so a figure or table can always be traced back to its inputs.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """The hex SHA-256 digest of a file's bytes, read in chunks; of a folder (an OME-Zarr image), the
    digest of its files' relative paths and digests in sorted order.

    Parameters
    ----------
    path : str or Path
        The file (or folder).
    chunk : int
        Bytes read at a time (1 MiB by default).

    Returns
    -------
    str
        64 hexadecimal characters.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    digest = hashlib.sha256()
    if Path(path).is_dir():
        for item in sorted(p for p in Path(path).rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path).as_posix()}\0{sha256_file(item, chunk=chunk)}\n".encode())
        return digest.hexdigest()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def software_versions(*extra: str) -> dict[str, str]:
    """Versions of Python, DeconGAN and the numerical libraries (plus ``extra`` module names if imported)."""
    import importlib

    from decongan.engine import __version__

    versions = {"python": platform.python_version(), "decongan": __version__, "numpy": np.__version__}
    for name in ("scipy", "skimage", "tifffile", "torch", *extra):
        module = sys.modules.get(name)
        if module is None and name in extra:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


class Provenance(BaseModel):
    """How an array was produced.

    ``method`` is what a person reads in a figure legend ("RL 10 it (engine)", "S1 GAN"),
    ``backend`` what computed it ("engine/cpu", "engine/cuda", "fiji:Fiji.app", "imagej1:/usr/share/java/ij.jar",
    "engine (Fiji unavailable)"), ``parameters`` the exact settings (for Fiji runs: the macro or config text).
    """

    model_config = ConfigDict(extra="forbid")

    method: str
    backend: str = "engine"
    parameters: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=software_versions)
    created: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    notes: list[str] = Field(default_factory=list)


@dataclass
class Restored:
    """A restored image and how it was made. ``image`` has the shape of the input it restores."""

    image: np.ndarray
    provenance: Provenance
