"""The bundled S1 GAN applied to an OME-Zarr region by region (engine.learn.zarr_prediction, through
``decongan predict ... --out X.ome.zarr``): equal to whole-image prediction, calibrated for the official
reader, and a level at another pixel size is refused before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine.io import read_image
from decongan.engine.learn.inference import load_model, predict_image
from decongan.engine.learn.zarr_prediction import ZarrPredictionError, iter_predict_zarr, plane_sample
from decongan.engine.progress import drain
from decongan.engine.zarr_io import open_ome_zarr, write_ome_zarr

CELLS = "other_fluorescence/neubias_xy_calibrated_16bit__cells_eres_noisy.tif"


@pytest.fixture(scope="module")
def model(repo_root):
    return load_model(repo_root / "resources" / "models" / "s1_neubias_nucleus", device="cpu")


@pytest.fixture
def nuclei_zarr(shared_data, model, tmp_path):
    image = read_image(shared_data / CELLS)
    image = image.with_data(image.data[:176, :208])
    image.pixel_size_um = model.config.pixel_size_um  # the model's own sampling
    return image, write_ome_zarr(tmp_path / "in.ome.zarr", image, chunks=64)


@pytest.mark.slow
def test_region_by_region_equals_whole_image_prediction(model, nuclei_zarr, tmp_path, capsys, repo_root):
    image, path = nuclei_zarr
    whole, _ = predict_image(model, image, tile=0, device="cpu")
    args = ["predict", str(repo_root / "resources" / "models" / "s1_neubias_nucleus"), str(path), "--tile", "64",
            "--device", "cpu", "--pyramid", "2", "--out", str(tmp_path / "out.ome.zarr")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "12 regions of 64 px + 96 px halo (receptive field 94 px)" in printed
    restored = read_image(tmp_path / "out.ome.zarr")
    span = float(whole.data.max() - whole.data.min())
    assert np.abs(restored.data - whole.data).max() <= 1e-5 * span
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(str(tmp_path / "out.ome.zarr")))()))
    px = model.config.pixel_size_um
    assert [t[0]["scale"] for t in node.metadata["coordinateTransformations"]] == [[px, px], [2 * px, 2 * px]]
    assert main(args) == 1 and "out.ome.zarr exists" in capsys.readouterr().err


def test_sample_matches_whole_plane_and_pixel_size_mismatch_is_refused(model, nuclei_zarr, tmp_path):
    image, path = nuclei_zarr
    source = open_ome_zarr(path)
    np.testing.assert_array_equal(plane_sample(source, (), band=50), image.data.reshape(-1).astype(np.float64))
    big = np.tile(image.data, (7, 6))  # 1232 x 1248 > 2**20 pixels: strided sample, read in bands of 100 rows
    big_path = write_ome_zarr(tmp_path / "big.ome.zarr", image.with_data(big), chunks=256)
    step = int(np.ceil(big.size / 2**20))
    np.testing.assert_array_equal(plane_sample(open_ome_zarr(big_path), (), band=100),
                                  big.reshape(-1)[::step].astype(np.float64))
    coarse = write_ome_zarr(tmp_path / "coarse.ome.zarr", image, levels=2, chunks=64)
    with pytest.raises(ZarrPredictionError, match=r"coarse.ome.zarr: level 1 has pixels of 1.02\d* um but the model "
                                                   r"was trained at 0.51\d* um"):
        drain(iter_predict_zarr(model, open_ome_zarr(coarse, level=1), tmp_path / "x.ome.zarr", device="cpu"))
    assert not (tmp_path / "x.ome.zarr").exists()
