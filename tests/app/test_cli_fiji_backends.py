"""``--backend fiji`` of psf / deconvolve / register: Fiji's plugins when present, otherwise the engine
with the plugin's conventions, labelled "engine (Fiji unavailable)" and saying what is missing.

Here (Debian's ImageJ 1.x without PSF Generator, DeconvolutionLab2 or TurboReg) the fallback path runs
for real: the JVM starts, the plugin is looked up and found missing. With DECONGAN_FIJI pointing at a
Fiji.app that has the plugins, the same commands run the plugins and must still match the goldens.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile

from decongan.app.cli import main

PSF_NAME = "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif"


def _provenance(path):
    with tifffile.TiffFile(path) as tif:
        return json.loads(tif.imagej_metadata["Info"])


def _expect_backend(provenance, err):
    if os.environ.get("DECONGAN_FIJI"):
        assert provenance["backend"] != "engine"
    else:
        assert provenance["backend"] == "engine (Fiji unavailable)"
        assert "not installed" in err or "no Fiji/ImageJ backend" in err


def test_psf_backend_fiji_matches_the_psf_generator_golden(tmp_path, golden_dir, capsys):
    out = tmp_path / "psf.tif"
    assert main(["psf", "--backend", "fiji", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "520",
                 "--pixel-nm", "159", "--size", "65", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    golden = tifffile.imread(golden_dir / PSF_NAME)
    assert np.abs(tifffile.imread(out) - golden).max() <= 1e-3 * golden.max()
    _expect_backend(_provenance(out), err)


def test_deconvolve_backend_fiji_matches_deconvolutionlab2(tmp_path, golden_dir, capsys):
    out = tmp_path / "rl.tif"
    assert main(["deconvolve", str(golden_dir / "input_filaments_256_blurred_poisson.tif"),
                 "--psf", str(golden_dir / PSF_NAME), "--iterations", "10", "--backend", "fiji",
                 "--device", "cpu", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    golden = tifffile.imread(golden_dir / "dl2_rl10.tif")
    assert np.abs(tifffile.imread(out) - golden).max() / golden.max() < 1e-4
    provenance = _provenance(out)
    _expect_backend(provenance, err)
    if provenance["backend"] == "engine (Fiji unavailable)":
        assert "DeconvolutionLab2" in err and provenance["parameters"]["edges"] == "circular"


def test_register_backend_fiji_recovers_the_golden_transform(tmp_path, golden_dir, capsys):
    out, tjson = tmp_path / "aligned.tif", tmp_path / "t.json"
    assert main(["register", str(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif"),
                 str(golden_dir / "reg_target_256.tif"), "--transform", "rigid", "--backend", "fiji",
                 "--out", str(out), "--transform-out", str(tjson)]) == 0
    err = capsys.readouterr().err
    document = json.loads(tjson.read_text())
    truth = np.array([[14.3475687, 0.9986295, -0.0523360], [-10.7481001, 0.0523360, 0.9986295]])
    from decongan.engine.optics.registration import Transform2D

    found = Transform2D.from_json(json.dumps(document["transform"]) if "transform" in document else tjson.read_text())
    assert np.abs(found.to_turboreg_matrix() - truth).max() < 0.05
    _expect_backend(_provenance(out), err)
    if not os.environ.get("DECONGAN_FIJI"):
        assert "TurboReg" in err


@pytest.mark.parametrize("command", [["psf", "--model", "gaussian", "--fwhm-nm", "200"]])
def test_backend_fiji_refuses_what_the_plugin_cannot_do(tmp_path, command, capsys):
    assert main([*command, "--pixel-nm", "100", "--backend", "fiji", "--out", str(tmp_path / "x.tif")]) == 1
    assert "born-wolf only" in capsys.readouterr().err
