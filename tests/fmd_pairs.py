"""Small training folders cut from the shared FMD pairs (confocal nuclei, 1 frame vs 50-frame average),
and the tiny S1 options the training tests share."""

from __future__ import annotations

from pathlib import Path

from decongan.engine.io import read_image, write_tiff

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"
#: a tiny S1 on the command line (seconds per iteration on 2 cores)
TINY_S1_CLI = ["--width", "4", "--model-arg", "depth=2", "--disc-arg", "num_blocks=2", "--patch-size", "32",
               "--batch-size", "2", "--device", "cpu", "--threads", "1"]


def write_fmd_pairs(shared_data: Path, root: Path, *, start: int, size: int, names=("fov01", "fov02", "fov03"),
                    pixel_size_um: float | None = 0.2) -> tuple[Path, Path]:
    """Write ``root/lq`` and ``root/hq``: uint8 TIFF crops ``[start:start+size]`` on both axes of each named field.

    Returns
    -------
    (Path, Path)
        The LQ and HQ folders.
    """
    for name in names:
        for side in ("lq", "hq"):
            data = read_image(shared_data / FMD / side / f"{name}.png").data[start:start + size, start:start + size]
            write_tiff(root / side / f"{name}.tif", data, dtype="uint8", pixel_size_um=pixel_size_um)
    return root / "lq", root / "hq"
