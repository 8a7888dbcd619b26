"""A small batch/compare dataset cut from the shared TA-GAN confocal/STED pairs (shared by the CLI tests)."""

from __future__ import annotations

from pathlib import Path

from decongan.engine.io import read_image, write_tiff
from decongan.engine.optics.psf import gaussian_psf

TAGAN = "tagan_confocal_vs_sted"
NAMES = ("axonal_rings_test0", "axonal_rings_train0", "dendritic_factin_train804")


def write_tagan_folders(shared_data: Path, folder: Path, *, crop: int, psf_sigma_px: float, psf_size: int) -> Path:
    """Write ``in/`` (confocal), ``gt/`` (STED) crops of ``crop`` x ``crop`` px at 20 nm and ``psf.tif`` (Gaussian)."""
    for sub in ("in", "gt"):
        (folder / sub).mkdir()
    for name in NAMES:
        for sub, target in (("lq", "in"), ("hq", "gt")):
            data = read_image(shared_data / TAGAN / sub / f"{name}.tif").data[:crop, :crop]
            write_tiff(folder / target / f"{name}.tif", data, pixel_size_um=0.02, dtype="uint16")
    write_tiff(folder / "psf.tif", gaussian_psf(sigma_px=psf_sigma_px, size=psf_size), pixel_size_um=0.02)
    return folder
