"""`decongan batch` and `decongan compare` read OME-Zarr inputs: the same real pairs stored as .ome.zarr
give the same numbers as their TIFFs."""

from __future__ import annotations

import csv

import pytest

from decongan.app.cli import main
from decongan.engine.io import list_images, read_image
from decongan.engine.zarr_io import write_ome_zarr
from tests.app.tagan_folders import NAMES, write_tagan_folders


def _rows(path):
    with open(path, newline="") as handle:
        return {(r["image"], r["method"]): r for r in csv.DictReader(handle)}


@pytest.fixture()
def dataset(shared_data, tmp_path):
    folder = write_tagan_folders(shared_data, tmp_path, crop=96, psf_sigma_px=3.0, psf_size=25)
    (folder / "zarr").mkdir()
    for name in NAMES:
        write_ome_zarr(folder / "zarr" / f"{name}.ome.zarr", read_image(folder / "in" / f"{name}.tif"), chunks=64)
    return folder


@pytest.mark.slow
def test_batch_and_compare_read_ome_zarr_like_tiff(dataset, capsys):
    assert [p.name for p in list_images(dataset / "zarr")] == [f"{n}.ome.zarr" for n in sorted(NAMES)]
    common = ["--gt", str(dataset / "gt"), "--psf", str(dataset / "psf.tif"), "--iterations", "3",
              "--device", "cpu", "--formats", "png", "--dpi", "100"]
    assert main(["batch", str(dataset / "in"), "--out", str(dataset / "tif_out"), *common]) == 0
    assert main(["batch", str(dataset / "zarr"), "--out", str(dataset / "zarr_out"), *common]) == 0
    assert "3 restored, 0 already done" in capsys.readouterr().out
    tif, zarr = _rows(dataset / "tif_out" / "metrics.csv"), _rows(dataset / "zarr_out" / "metrics.csv")
    assert set(tif) == set(zarr) and len(tif) == 9
    for key, row in tif.items():
        assert float(zarr[key]["snr"]) == pytest.approx(float(row["snr"]), rel=1e-9)
    lq = dataset / "zarr" / f"{NAMES[0]}.ome.zarr"
    assert main(["compare", "--lq", str(lq), "--gt", str(dataset / "gt" / f"{NAMES[0]}.tif"), "--method",
                 f"copy={lq}", "--consistency", "identity", "--out", str(dataset / "one"), "--formats", "png",
                 "--dpi", "100"]) == 0
    rows = _rows(dataset / "one" / "metrics.csv")
    assert rows[(NAMES[0], "copy")]["ssim"] == rows[(NAMES[0], "LQ (input)")]["ssim"]
