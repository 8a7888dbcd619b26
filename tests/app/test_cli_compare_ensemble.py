"""`decongan compare --ensemble`: several "seeds" of one method (restorations of independent raw frames of
the same FMD field) disagree by noise only, until one of them invents a blob; that member's column says so."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.fmd_pairs import FMD

FIELDS = ("fov01", "fov02")
SIZE = 192


@pytest.mark.slow  # compare report (10-20 s on 2 busy cores)
def test_the_member_that_invents_structure_stands_out(shared_data, tmp_path, capsys):
    yy, xx = np.indices((SIZE, SIZE))
    blob = 40.0 * np.exp(-((yy - 100) ** 2 + (xx - 80) ** 2) / (2 * 2.5 ** 2))
    for field in FIELDS:
        for side in ("lq", "hq"):
            data = read_image(shared_data / FMD / side / f"{field}.png").data[:SIZE, :SIZE]
            write_tiff(tmp_path / side / f"{field}.tif", data, dtype="uint8")
        for k in (1, 2, 3):  # "seed" k restores raw frame k of the field
            frame = read_image(shared_data / FMD / "raw_frames" / field / f"frame_{k:02d}.png").data[:SIZE, :SIZE]
            restored = gaussian_filter(frame.astype(np.float32), 1.5)
            if k == 3 and field == "fov01":
                restored = restored + blob
            write_tiff(tmp_path / f"seed{k}" / f"{field}.tif", restored.astype(np.float32), dtype="float32")
    args = ["compare", "--lq-dir", str(tmp_path / "lq"), "--gt-dir", str(tmp_path / "hq"),
            *[f"--method=seed{k}={tmp_path / f'seed{k}'}" for k in (1, 2, 3)], "--no-noref", "--formats", "png"]
    assert main([*args, "--ensemble", "seed1,seed2,seed3", "--out", str(tmp_path / "cmp")]) == 0
    with open(tmp_path / "cmp" / "metrics.csv", newline="") as handle:
        rows = {(r["image"], r["method"]): r for r in csv.DictReader(handle)}
    share = {key: float(row["ens_flagged_fraction"]) for key, row in rows.items() if row["ens_flagged_fraction"]}
    assert share[("fov01", "seed3")] > 0.001, share
    assert all(v <= 0.005 for key, v in share.items() if key != ("fov01", "seed3")), share
    assert rows[("fov01", "LQ (input)")]["ens_flagged_fraction"] == ""
    capsys.readouterr()
    assert main([*args, "--ensemble", "seed1,seed9", "--out", str(tmp_path / "cmp2")]) == 1
    assert "--ensemble 'seed1,seed9'" in capsys.readouterr().err and not (tmp_path / "cmp2").exists()
