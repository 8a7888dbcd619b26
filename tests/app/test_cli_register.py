"""``decongan register`` end to end on the Fiji registration goldens and the SR-CACO-2 scans."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from decongan.engine.optics.registration import Transform2D


@pytest.fixture(scope="module")
def calibrated_pair(golden_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("register_inputs")
    moving = folder / "moving.tif"
    fixed = folder / "fixed.tif"
    write_tiff(moving, tifffile.imread(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif"), pixel_size_um=0.159)
    write_tiff(fixed, tifffile.imread(golden_dir / "reg_target_256.tif"), pixel_size_um=0.159)
    return moving, fixed


@pytest.fixture(scope="module")
def rigid_run(calibrated_pair, tmp_path_factory):
    moving, fixed = calibrated_pair
    out = tmp_path_factory.mktemp("register_out")
    paths = {k: out / f"{k}.{'json' if k == 'transform' else 'tif'}" for k in ("aligned", "transform", "cf", "cm")}
    argv = ["register", str(moving), str(fixed), "--transform", "rigid", "--out", str(paths["aligned"]),
            "--transform-out", str(paths["transform"]), "--crop-out-fixed", str(paths["cf"]),
            "--crop-out-moving", str(paths["cm"])]
    return main(argv), paths


def test_rigid_run_writes_calibrated_outputs_and_transform(rigid_run):
    code, paths = rigid_run
    assert code == 0
    aligned = read_image(paths["aligned"])
    assert aligned.data.shape == (256, 256) and aligned.data.dtype == np.float32
    assert aligned.pixel_size_um == pytest.approx(0.159)
    document = json.loads(paths["transform"].read_text())
    t = Transform2D.from_dict(document)
    assert t.angle_deg == pytest.approx(3.0, abs=0.05)
    assert t.shift_px == pytest.approx((7.5, -4.25), abs=0.1)
    assert document["quality"]["ncc_after"] > 0.998 > 0.2 > document["quality"]["ncc_before"]
    np.testing.assert_allclose(document["turboreg_matrix"], t.to_turboreg_matrix())
    cf, cm = read_image(paths["cf"]), read_image(paths["cm"])
    assert cf.data.shape == cm.data.shape and min(cf.data.shape) >= 235
    assert np.count_nonzero(cm.data == 0) == 0  # fully inside the valid area


def test_summary_line(calibrated_pair, tmp_path, capsys):
    moving, fixed = calibrated_pair
    code = main(["register", str(moving), str(fixed), "-t", "similarity", "-o", str(tmp_path / "a.tif")])
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("moving.tif -> fixed.tif: similarity: angle +3.00")
    assert "shift (+7.50" in line and "scale 1.000" in line and "NCC 0.136" in line and "-> 0.998" in line


def test_refuses_to_overwrite_an_input(calibrated_pair, capsys):
    moving, fixed = calibrated_pair
    before = fixed.read_bytes()
    assert main(["register", str(moving), str(fixed), "--out", str(fixed)]) == 1
    assert "is the FIXED input" in capsys.readouterr().err
    assert fixed.read_bytes() == before


def test_constant_image_error_names_the_file(calibrated_pair, tmp_path, capsys):
    _, fixed = calibrated_pair
    flat = tmp_path / "flat.tif"
    write_tiff(flat, np.full((64, 64), 3.0, np.float32))
    assert main(["register", str(flat), str(fixed), "--out", str(tmp_path / "a.tif")]) == 1
    err = capsys.readouterr().err
    assert str(flat) in err and "moving image is constant: nothing to register" in err


def test_stack_is_registered_on_its_projection_and_every_plane_moves(calibrated_pair, tmp_path):
    moving, fixed = calibrated_pair
    plane = read_image(moving).data
    stack = tmp_path / "stack.tif"
    write_tiff(stack, np.stack([plane, 2 * plane, plane + 5]), axes="ZYX", pixel_size_um=0.159)
    out = tmp_path / "aligned_stack.tif"
    assert main(["register", str(stack), str(fixed), "-t", "rigid", "-o", str(out)]) == 0
    aligned = read_image(out)
    assert aligned.axes == "ZYX" and aligned.data.shape == (3, 256, 256)
    reference = tifffile.imread(fixed)
    inside = aligned.data[0] != 0
    np.testing.assert_allclose(aligned.data[1][inside], 2 * aligned.data[0][inside], rtol=1e-5, atol=1e-3)
    assert np.corrcoef(aligned.data[0][inside], reference[inside])[0, 1] > 0.998


def test_pixel_sizes_fix_the_scale_of_the_real_x2_scan(shared_data, tmp_path, capsys):
    folder = shared_data / "srcaco2_confocal_multiscale_scans"
    out, js = tmp_path / "x2_on_x1.tif", tmp_path / "x2.json"
    code = main(["register", str(folder / "lq/caco2_nuclei_x2.tif"), str(folder / "hq/caco2_nuclei_x1.tif"),
                 "-t", "translation", "--moving-pixel-um", "0.2", "--fixed-pixel-um", "0.1", "-o", str(out),
                 "--transform-out", str(js)])
    assert code == 0
    t = Transform2D.from_json(js.read_text())
    assert t.scale == pytest.approx(2.0, abs=1e-12) and t.angle_deg == 0.0
    quality = json.loads(js.read_text())["quality"]
    assert quality["ncc_after"] - quality["ncc_before"] > 0.04
    aligned = read_image(out)
    assert aligned.data.shape == (512, 512) and aligned.pixel_size_um == pytest.approx(0.1)
