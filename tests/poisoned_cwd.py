"""A working directory that shadows the package names: importing any of them from there raises."""

from __future__ import annotations

from pathlib import Path

POISON = 'raise RuntimeError("imported from the working directory: {name}")\n'


def make_poisoned_folder(root: Path) -> Path:
    """``root`` with ``imagej_bridge/``, ``decongan/``, ``app/`` packages and ``engine.py`` that raise on import."""
    root.mkdir(parents=True, exist_ok=True)
    for package in ("imagej_bridge", "decongan", "app"):
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").write_text(POISON.format(name=package))
    (root / "engine.py").write_text(POISON.format(name="engine.py"))
    return root
