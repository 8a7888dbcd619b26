"""Bundled resources: presets, Fiji macros, sample data (with attribution) and small trained models."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """Absolute path of a bundled resource, e.g. ``resource_path("presets", "s1.json")``.

    Raises
    ------
    FileNotFoundError
        If the resource is not part of this installation.
    """
    path = ROOT.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"bundled resource {'/'.join(parts)!r} is missing from {ROOT}")
    return path
