"""``--backend fiji`` of psf / deconvolve / register through a fake bridge client that records what the
adapters send (no JVM): the exact arrays, parameters and blocks; and, separately, the engine fallback
with its label when no Fiji can run (``get_client`` raising ``FijiUnavailable``).

The real plugins are exercised against the goldens in tests/imagej_bridge/test_fiji_plugins.py (with
DECONGAN_FIJI pointing at a Fiji.app that has them).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from decongan.app.cli import main
from decongan.app.fiji import client as fiji_client
from decongan.app.fiji.crosscheck import REG_TRUTH, max_displacement, read_turboreg_transform
from decongan.engine.io import read_image, write_tiff
from decongan.engine.optics.registration import Transform2D
from tests.app.fake_fiji import FakeFijiClient, install

PSF_NAME = "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif"
MOVING = "reg_moving_rot3deg_shift7.5_-4.25_256.tif"
FIXED = "reg_target_256.tif"
UNAVAILABLE = "no Fiji/ImageJ backend: fiji: test; endpoint: test; imagej1: test"


def _provenance(path):
    with tifffile.TiffFile(path) as tif:
        return json.loads(tif.imagej_metadata["Info"])


@pytest.fixture
def no_fiji(monkeypatch):
    def unavailable(fiji_dir=None, **_):
        raise fiji_client.FijiUnavailable(UNAVAILABLE)

    monkeypatch.setattr(fiji_client, "get_client", unavailable)


# -- through the (fake) Fiji ---------------------------------------------------------------------------

def test_psf_backend_fiji_sends_the_optics_to_psf_generator(tmp_path, golden_dir, monkeypatch):
    fake = install(monkeypatch)
    out = tmp_path / "psf.tif"
    assert main(["psf", "--backend", "fiji", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "520",
                 "--pixel-nm", "159", "--size", "65", "--out", str(out)]) == 0
    (call,) = fake.psf_calls
    assert call["na"] == 1.4 and call["ni"] == 1.515 and call["wavelength_nm"] == 520.0
    assert call["pixel_nm"] == 159.0 and call["size"] == 65 and call["nz"] is None
    golden = tifffile.imread(golden_dir / PSF_NAME)
    assert np.abs(tifffile.imread(out) - golden).max() <= 1e-3 * golden.max()
    provenance = _provenance(out)
    assert provenance["backend"] == "fake-fiji (test)" and "PSF Generator" in provenance["method"]
    assert "na=1.4" in provenance["parameters"]["fiji_config"]


def test_deconvolve_backend_fiji_sends_the_image_and_psf_to_deconvolutionlab2(tmp_path, golden_dir, monkeypatch):
    fake = install(monkeypatch)
    source = golden_dir / "input_filaments_256_blurred_poisson.tif"
    out = tmp_path / "rl.tif"
    assert main(["deconvolve", str(source), "--psf", str(golden_dir / PSF_NAME), "--iterations", "10",
                 "--backend", "fiji", "--out", str(out)]) == 0
    (call,) = fake.rl_calls  # a 2-D image is one block
    image = tifffile.imread(source).astype(np.float32)
    np.testing.assert_array_equal(call["image"], image)
    np.testing.assert_array_equal(call["psf"], tifffile.imread(golden_dir / PSF_NAME).astype(np.float32))
    assert call["iterations"] == 10 and call["tv_lambda"] is None
    np.testing.assert_array_equal(tifffile.imread(out), 2 * image)  # what the plugin returned, in place
    provenance = _provenance(out)
    assert provenance["backend"] == "fake-fiji (test)"
    assert provenance["parameters"]["edges"] == "circular" and provenance["parameters"]["blocks"] == 1
    assert "-algorithm RL 10" in provenance["parameters"]["fiji_macro"]


def test_deconvolve_backend_fiji_sends_zyx_volumes_of_a_zcyx_stack(tmp_path, monkeypatch):
    fake = install(monkeypatch)
    rng = np.random.default_rng(3)
    data = rng.uniform(1, 100, (4, 2, 24, 24)).astype(np.float32)
    source, psf_path, out = tmp_path / "stack.tif", tmp_path / "psf.tif", tmp_path / "rl.tif"
    write_tiff(source, data, axes="ZCYX", pixel_size_um=0.1, z_step_um=0.3)
    psf = np.einsum("z,y,x->zyx", np.hanning(7)[1:-1], np.hanning(9)[1:-1], np.hanning(9)[1:-1]).astype(np.float32)
    write_tiff(psf_path, psf, axes="ZYX", pixel_size_um=0.1, z_step_um=0.3)
    assert main(["deconvolve", str(source), "--psf", str(psf_path), "--iterations", "3", "--backend", "fiji",
                 "--out", str(out)]) == 0
    assert [call["image"].shape for call in fake.rl_calls] == [(4, 24, 24), (4, 24, 24)]
    for c, call in enumerate(fake.rl_calls):
        np.testing.assert_array_equal(call["image"], data[:, c])
        assert call["psf"].shape == (5, 7, 7)
    result = read_image(out)
    assert result.axes == "ZCYX"
    np.testing.assert_array_equal(result.data, 2 * data)


def test_register_backend_fiji_sends_the_images_and_returns_turboregs_transform(tmp_path, golden_dir, monkeypatch):
    golden = read_turboreg_transform(golden_dir / "turboreg_rigidBody_transform.txt")
    fake = install(monkeypatch, FakeFijiClient(turboreg_matrix=golden))
    out, tjson = tmp_path / "aligned.tif", tmp_path / "t.json"
    assert main(["register", str(golden_dir / MOVING), str(golden_dir / FIXED), "--transform", "rigid",
                 "--backend", "fiji", "--out", str(out), "--transform-out", str(tjson)]) == 0
    (call,) = fake.register_calls
    np.testing.assert_array_equal(call["moving"], tifffile.imread(golden_dir / MOVING).astype(np.float32))
    np.testing.assert_array_equal(call["fixed"], tifffile.imread(golden_dir / FIXED).astype(np.float32))
    assert call["transform"] == "rigid"
    document = json.loads(tjson.read_text())
    np.testing.assert_allclose(Transform2D.from_dict(document).to_turboreg_matrix(), golden, atol=1e-9)
    assert max_displacement(golden, REG_TRUTH, (256, 256)) < 1e-3
    assert document["quality"]["ncc_after"] > 0.998
    assert _provenance(out)["backend"] == "fake-fiji (test)"


@pytest.fixture
def binned_pair(golden_dir, tmp_path):
    fixed = tifffile.imread(golden_dir / FIXED).astype(np.float32)
    moving = fixed.reshape(128, 2, 128, 2).mean(axis=(1, 3)).astype(np.float32)  # a x2 binned scan
    paths = tmp_path / "x2.tif", tmp_path / "x1.tif"
    write_tiff(paths[0], moving, pixel_size_um=0.318)
    write_tiff(paths[1], fixed, pixel_size_um=0.159)
    return paths


def test_register_backend_fiji_honours_the_pixel_sizes(binned_pair, tmp_path, monkeypatch, capsys):
    fake = install(monkeypatch)  # TurboReg finds the identity between images of one pixel size
    out, tjson = tmp_path / "a.tif", tmp_path / "t.json"
    assert main(["register", str(binned_pair[0]), str(binned_pair[1]), "-t", "rigid", "--backend", "fiji",
                 "-o", str(out), "--transform-out", str(tjson)]) == 0
    assert fake.register_calls[0]["moving"].shape == (256, 256)  # resampled to 0.159 um before TurboReg
    document = json.loads(tjson.read_text())
    transform = Transform2D.from_dict(document)
    assert transform.scale == pytest.approx(2.0, abs=1e-12)
    assert document["quality"]["ncc_after"] > 0.95
    assert "resampled by x2" in capsys.readouterr().err
    assert read_image(out).data.shape == (256, 256)


def test_register_backend_fiji_refuses_a_failed_registration(binned_pair, tmp_path, monkeypatch, capsys):
    install(monkeypatch, FakeFijiClient(turboreg_matrix=np.array([[70.0, 0.5, 0.0], [-50.0, 0.0, 0.5]])))
    out = tmp_path / "a.tif"
    assert main(["register", str(binned_pair[0]), str(binned_pair[1]), "-t", "rigid", "--backend", "fiji",
                 "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "registration failed:" in err and "NCC" in err
    assert not out.exists()


def test_register_backend_fiji_uses_min_ncc(tmp_path, golden_dir, monkeypatch, capsys):
    golden = read_turboreg_transform(golden_dir / "turboreg_rigidBody_transform.txt")
    install(monkeypatch, FakeFijiClient(turboreg_matrix=golden))
    out = tmp_path / "a.tif"
    assert main(["register", str(golden_dir / MOVING), str(golden_dir / FIXED), "-t", "rigid", "--backend", "fiji",
                 "--min-ncc", "0.9999", "-o", str(out)]) == 1
    assert "< 0.9999" in capsys.readouterr().err
    assert not out.exists()


# -- the engine fallback, labelled ----------------------------------------------------------------------

def test_deconvolve_fallback_is_the_engine_with_dl2_conventions_labelled(tmp_path, golden_dir, no_fiji, capsys):
    out = tmp_path / "rl.tif"
    assert main(["deconvolve", str(golden_dir / "input_filaments_256_blurred_poisson.tif"),
                 "--psf", str(golden_dir / PSF_NAME), "--iterations", "10", "--backend", "fiji",
                 "--device", "cpu", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    golden = tifffile.imread(golden_dir / "dl2_rl10.tif")
    assert np.abs(tifffile.imread(out) - golden).max() / golden.max() < 1e-4
    provenance = _provenance(out)
    assert provenance["backend"] == "engine (Fiji unavailable)"
    assert provenance["parameters"]["edges"] == "circular"
    assert "Fiji unavailable" in err and UNAVAILABLE in err


def test_psf_fallback_is_labelled(tmp_path, golden_dir, no_fiji, capsys):
    out = tmp_path / "psf.tif"
    assert main(["psf", "--backend", "fiji", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "520",
                 "--pixel-nm", "159", "--size", "65", "--out", str(out)]) == 0
    assert UNAVAILABLE in capsys.readouterr().err
    provenance = _provenance(out)
    assert provenance["backend"] == "engine (Fiji unavailable)"
    golden = tifffile.imread(golden_dir / PSF_NAME)
    assert np.abs(tifffile.imread(out) - golden).max() <= 1e-5


def test_register_fallback_is_the_engine_labelled(tmp_path, golden_dir, no_fiji, capsys):
    out, tjson = tmp_path / "aligned.tif", tmp_path / "t.json"
    assert main(["register", str(golden_dir / MOVING), str(golden_dir / FIXED), "--transform", "rigid",
                 "--backend", "fiji", "--out", str(out), "--transform-out", str(tjson)]) == 0
    err = capsys.readouterr().err
    assert f"Fiji unavailable, engine registration used: {UNAVAILABLE}" in err
    assert _provenance(out)["backend"] == "engine (Fiji unavailable)"
    found = Transform2D.from_json(tjson.read_text())
    assert max_displacement(found.to_turboreg_matrix(), REG_TRUTH, (256, 256)) < 0.05


@pytest.mark.parametrize("command", [["psf", "--model", "gaussian", "--fwhm-nm", "200"]])
def test_backend_fiji_refuses_what_the_plugin_cannot_do(tmp_path, command, capsys):
    assert main([*command, "--pixel-nm", "100", "--backend", "fiji", "--out", str(tmp_path / "x.tif")]) == 1
    assert "born-wolf only" in capsys.readouterr().err
