"""The real plugins against ../shared/golden/fiji, when a Fiji.app (or ImageJ folder) with them is given.

Enable with ``DECONGAN_FIJI=/path/to/Fiji.app`` (PSF Generator, DeconvolutionLab2 and TurboReg
installed; SIFT is part of Fiji). Each test skips with the reason when its plugin is absent. The
goldens were made with PSF Generator 1.1.1.2, DL2 2.1.2 (JTransforms) and TurboReg of July 2011;
other versions may differ slightly, hence the tolerances below.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from decongan.imagej_bridge import FijiClient, operations
from decongan.imagej_bridge.discovery import discover

ENABLE = ("set DECONGAN_FIJI=/path/to/Fiji.app (or an ImageJ 1.x folder) with PSF Generator, "
          "DeconvolutionLab2 and TurboReg installed to run the plugin cross-checks")
GROUND_TRUTH = np.array([[14.3475687398, 0.9986295348, -0.0523359562], [-10.7481001022, 0.0523359562, 0.9986295348]])


@pytest.fixture(scope="module")
def fiji():
    folder = os.environ.get("DECONGAN_FIJI")
    if not folder:
        pytest.skip(ENABLE)
    backend = discover(folder, probe_network=False).active
    if backend is None or backend.kind == "endpoint":
        pytest.skip(f"DECONGAN_FIJI={folder} is not a usable Fiji.app / ImageJ folder")
    client = FijiClient(backend, timeout=600)
    client.start()
    yield client
    client.close()


def need(client: FijiClient, key: str) -> None:
    if not client.info["plugins"][key]["present"]:
        pytest.skip(f"{client.info['plugins'][key]['name']} is not installed in {client.backend.location}; {ENABLE}")


def corners_error(a: np.ndarray, b: np.ndarray, size: int = 256) -> float:
    corners = np.array([[1.0, 0, 0], [1.0, size - 1, 0], [1.0, 0, size - 1], [1.0, size - 1, size - 1]])
    return float(np.linalg.norm(corners @ a.T - corners @ b.T, axis=1).max())


@pytest.mark.parametrize("filename, params", [
    ("psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif", {"na": 1.4, "ni": 1.515, "wavelength_nm": 520, "pixel_nm": 159}),
    ("psf_bw_3d_na1.4_ni1.515_dxy159_dz200_lambda461_65x65x33.tif",
     {"na": 1.4, "ni": 1.515, "wavelength_nm": 461, "pixel_nm": 159, "nz": 33, "z_step_nm": 200}),
    ("psf_bw_2d_na0.3_ni1.0_dxy650_lambda520_65x65.tif", {"na": 0.3, "ni": 1.0, "wavelength_nm": 520, "pixel_nm": 650}),
])
def test_psf_generator_matches_golden(fiji, golden_dir, filename, params):
    need(fiji, "psf_generator")
    result = fiji.born_wolf_psf(size=65, **params)
    golden = tifffile.imread(golden_dir / filename)
    assert result.image.shape == golden.shape and result.image.dtype == np.float32
    assert np.abs(result.image - golden).max() < 1e-6
    assert result.provenance["plugin"] == "PSF Generator" and "PSF-shortname=BW" in result.provenance["config"]


@pytest.mark.parametrize("filename, iterations, tv_lambda", [("dl2_rl10.tif", 10, None),
                                                            ("dl2_rltv10_l0.01.tif", 10, 0.01)])
def test_deconvolutionlab2_matches_golden(fiji, golden_dir, filename, iterations, tv_lambda):
    need(fiji, "deconvolutionlab2")
    image = tifffile.imread(golden_dir / "input_filaments_256_blurred_poisson.tif")
    psf = tifffile.imread(golden_dir / "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif")
    result = fiji.richardson_lucy(image, psf, iterations, tv_lambda)
    golden = tifffile.imread(golden_dir / filename)
    # JTransforms vs DL2's Academic FFT differ by <= 2.1e-4 (README): allow 5e-4 for other FFT set-ups
    assert np.abs(result.image - golden).max() < 5e-4
    assert "-monitor console -multithreading no" in result.provenance["macro"]


@pytest.mark.parametrize("kind, golden_name", [("translation", "translation"), ("rigid", "rigidBody"),
                                               ("affine", "affine")])
def test_turboreg_matches_golden(fiji, golden_dir, kind, golden_name):
    need(fiji, "turboreg")
    moving = tifffile.imread(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif")
    fixed = tifffile.imread(golden_dir / "reg_target_256.tif")
    out = fiji.register(moving=moving, fixed=fixed, transform=kind, method="turboreg")
    stack = tifffile.imread(golden_dir / f"turboreg_{golden_name}_aligned.tif")
    from decongan.app.fiji.crosscheck import read_turboreg_transform

    expected = read_turboreg_transform(golden_dir / f"turboreg_{golden_name}_transform.txt")
    assert corners_error(out.matrix, expected) < 1e-4
    np.testing.assert_array_equal(out.mask, stack[1] > 0)
    assert np.abs(out.aligned - stack[0]).max() < 1e-3
    assert out.provenance["macro"].startswith('run("TurboReg ", "-align -file ')


def test_sift_alignment_recovers_the_ground_truth(fiji, golden_dir):
    need(fiji, "sift")
    if fiji.info["headless"] and fiji.backend.kind == "imagej1":
        pytest.skip("SIFT needs a display in plain ImageJ 1.x: install Xvfb")
    moving = tifffile.imread(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif")
    fixed = tifffile.imread(golden_dir / "reg_target_256.tif")
    out = fiji.register(moving=moving, fixed=fixed, transform="rigid", method="sift")
    assert corners_error(out.matrix, GROUND_TRUTH) < 0.1  # README: SIFT rigid within 0.041 px
    assert out.matrix.shape == (2, 3)
    np.testing.assert_allclose(operations.sift_to_turboreg(np.array(out.values["sift_matrix"])), out.matrix)
