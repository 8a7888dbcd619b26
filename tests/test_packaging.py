"""Installation: the design card's folders live under one namespace (decongan.*), so nothing collides.

* The package list in pyproject.toml covers every folder with an ``__init__.py``.
* From a folder holding ``engine.py``, ``app.py``, ``resources.py``, an ``imagej_bridge/`` and a
  ``decongan/`` package that all raise on import, the commands work and never import them.
* A built wheel installs beside another distribution that provides a top-level ``app`` package, and
  both keep working.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import tomllib

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("app", "engine", "imagej_bridge", "resources")
TRAP = "raise RuntimeError('a file of the working folder was imported: {name}')\n"


def _decongan() -> str:
    script = Path(sys.executable).parent / "decongan"
    if not script.exists():
        pytest.skip(f"the console script {script} is not installed (pip install -e .)")
    return str(script)


def test_package_list_covers_every_folder():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {"decongan." + str(p.parent.relative_to(REPO)).replace(os.sep, ".")
             for top in FOLDERS for p in (REPO / top).rglob("__init__.py") if "__pycache__" not in p.parts}
    assert listed == found
    assert config["package-dir"] == {f"decongan.{top}": top for top in FOLDERS}


@pytest.fixture
def trap_folder(tmp_path: Path) -> Path:
    """A working folder full of modules named like DeconGAN's packages, each raising on import."""
    folder = tmp_path / "work"
    folder.mkdir()
    for name in ("engine", "app", "resources", "torch_utils"):
        (folder / f"{name}.py").write_text(TRAP.format(name=name))
    for package in ("imagej_bridge", "decongan"):
        (folder / package).mkdir()
        (folder / package / "__init__.py").write_text(TRAP.format(name=package))
    image = np.zeros((48, 48), np.float32)
    image[20:28, 20:28] = 100.0
    tifffile.imwrite(folder / "img.tif", image)
    return folder


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DECONGAN_FIJI")}
    environ.update(env)
    return subprocess.run(argv, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def test_commands_never_import_files_of_the_working_folder(trap_folder):
    exe = _decongan()
    proc = _run([exe, "--help"], trap_folder)
    assert proc.returncode == 0 and "usage: decongan" in proc.stdout, proc.stderr

    proc = _run([exe, "psf", "--na", "1.2", "--ni", "1.33", "--wavelength-nm", "520", "--pixel-nm", "100",
                 "--size", "15", "--out", "psf.tif"], trap_folder)
    assert proc.returncode == 0, proc.stderr
    psf = tifffile.imread(trap_folder / "psf.tif")
    assert psf.shape == (15, 15) and psf.max() == pytest.approx(1.0)  # peak-normalised Born & Wolf

    # no Fiji here: the Fiji backend falls back to the engine, and says so
    proc = _run([exe, "deconvolve", "img.tif", "--psf", "psf.tif", "--iterations", "2", "--backend", "fiji",
                 "--out", "restored.tif"], trap_folder, DECONGAN_FIJI=str(trap_folder / "no-such-fiji"))
    assert proc.returncode == 0, proc.stderr
    assert (trap_folder / "restored.tif").exists()
    assert "engine" in (proc.stdout + proc.stderr).lower()
    assert "working folder was imported" not in proc.stderr


def test_gui_starts_offscreen_from_a_trap_folder(trap_folder, tmp_path):
    exe = _decongan()
    proc = _run([exe, "gui", "--settings", str(tmp_path / "gui.ini"), "--exit-after", "1"], trap_folder,
                QT_QPA_PLATFORM="offscreen")
    assert proc.returncode == 0, proc.stderr
    assert "working folder was imported" not in proc.stderr


@pytest.mark.slow
def test_wheel_installs_beside_another_app_distribution(tmp_path):
    """Build DeconGAN's wheel and a tiny wheel of a distribution named "app"; install both into one target."""
    other = tmp_path / "other"
    (other / "app").mkdir(parents=True)
    (other / "app" / "__init__.py").write_text("WHO = 'the other app'\n")
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "app"\nversion = "1.0"\n[tool.setuptools]\npackages = ["app"]\n')
    # build from a copy, so that setuptools' build/ folder never lands in the checkout
    source_copy = tmp_path / "decongan-src"
    shutil.copytree(REPO, source_copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "decongan-demo", "tests"))
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    for source in (other, source_copy):
        proc = subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
        if proc.returncode != 0 and "No module named" in proc.stderr:
            pytest.skip(f"cannot build wheels offline here: {proc.stderr.strip()[-200:]}")
        assert proc.returncode == 0, proc.stderr
    target = tmp_path / "site"
    proc = subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(target),
                           *map(str, sorted(wheels.glob("*.whl")))], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (target / "app" / "__init__.py").read_text() == "WHO = 'the other app'\n"
    assert (target / "decongan" / "engine" / "optics" / "psf.py").exists()
    assert (target / "decongan" / "resources" / "presets" / "s1.json").exists()
    code = ("import app, decongan.app.cli, decongan.engine.optics.psf as psf, decongan.resources as r; "
            "print(app.WHO); print(decongan.app.cli.__file__); print(r.resource_path('presets', 's1.json')); "
            "print(psf.born_wolf_psf(na=1.2, ni=1.33, wavelength_nm=520, pixel_nm=100, size=9).shape)")
    proc = _run([sys.executable, "-c", code], tmp_path, PYTHONPATH=str(target))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "the other app"
    assert lines[1].startswith(str(target)) and lines[2].startswith(str(target))
    assert lines[3] == "(9, 9)"
