"""The exact texts given to the plugins and the numbers read back, checked against ../shared/golden/fiji."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from decongan.imagej_bridge import operations as ops

GT_TURBOREG = np.array([[14.3475687398, 0.9986295348, -0.0523359562], [-10.7481001022, 0.0523359562, 0.9986295348]])
GT_SIFT = np.array([[0.998630, 0.052336, -13.765394], [-0.052336, 0.998630, 11.484264]])


def read_turboreg_golden(path: Path) -> dict:
    """Options, refined landmarks and matrix from a golden ``turboreg_*_transform.txt``."""
    lines = path.read_text().splitlines()
    run_line = next(line for line in lines if line.startswith('# run("TurboReg ", "'))
    options = re.match(r'# run\("TurboReg ", "(.*)"\)$', run_line).group(1)
    numeric = [line for line in lines if line and not line.startswith("#")]
    rows = [[float(v) for v in line.split()] for line in numeric]
    landmarks = [r for r in rows if len(r) == 4]
    matrix = np.array([r for r in rows if len(r) == 3])
    return {"options": options, "source": [r[:2] for r in landmarks], "target": [r[2:] for r in landmarks],
            "matrix": matrix}


# -- PSF Generator -----------------------------------------------------------------------------------

def parse_properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_psf_generator_config_holds_the_golden_parameters():
    text = ops.psf_generator_config(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=159, size=65, nz=33,
                                    z_step_nm=200, accuracy="best")
    props = parse_properties(text)
    assert props == {"PSF-shortname": "BW", "NX": "65", "NY": "65", "NZ": "33", "ResLateral": "159",
                     "ResAxial": "200", "NA": "1.4", "Lambda": "520", "Type": "32-bits", "Scale": "Linear",
                     "LUT": "Grays", "psf-BW-NI": "1.515", "psf-BW-accuracy": "Best"}


def test_psf_generator_2d_asks_for_three_planes():
    props = parse_properties(ops.psf_generator_config(na=0.3, ni=1.0, wavelength_nm=520, pixel_nm=650,
                                                      size=(33, 65), nz=None, z_step_nm=None))
    assert (props["NZ"], props["NY"], props["NX"], props["psf-BW-accuracy"]) == ("3", "33", "65", "Good")
    assert ops.psf_generator_planes(None, None) == (3, 200.0)
    with pytest.raises(ValueError, match="at least 3 planes"):
        ops.psf_generator_planes(2, 100.0)
    with pytest.raises(ValueError, match="smaller than the immersion"):
        ops.psf_generator_config(na=1.6, ni=1.515, wavelength_nm=520, pixel_nm=159, size=65, nz=None, z_step_nm=None)
    with pytest.raises(ValueError, match="accuracy"):
        ops.psf_generator_config(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=159, size=65, nz=None,
                                 z_step_nm=None, accuracy="perfect")


def test_kernel_diffraction_arguments_are_metres():
    args = ops.kernel_diffraction_arguments(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=159, z_step_nm=200)
    assert args["lambda"] == pytest.approx(520e-9) and args["resLateral"] == pytest.approx(159e-9)
    assert args["resAxial"] == pytest.approx(200e-9) and args["ns"] == args["ni"] == 1.515 and args["pZ"] == 0


# -- DeconvolutionLab2 ---------------------------------------------------------------------------------

def test_dl2_options_match_the_golden_macro(golden_dir):
    readme = (golden_dir / "README.md").read_text()
    template = re.search(r'run\("DeconvolutionLab2 Run", "(.*?)"\);', readme).group(1)
    expected = (template.replace("<dir>/INPUT", "/w/in.tif")
                .replace("<dir>/psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif", "/w/psf.tif")
                .replace("ALGO [EXTRA]", "RL 10").replace("NAME", "result").replace("OUTDIR", "/w"))
    got = ops.dl2_options(image_path="/w/in.tif", psf_path="/w/psf.tif", iterations=10, tv_lambda=None,
                          out_name="result", out_dir="/w")
    assert got == expected
    assert ops.dl2_macro(got) == f'run("DeconvolutionLab2 Run", "{expected}");'


def test_dl2_algorithm_and_unsafe_paths():
    assert ops.dl2_algorithm(50, 0.01) == "RLTV 50 0.01"
    assert ops.dl2_algorithm(10, None) == "RL 10"
    with pytest.raises(ValueError):
        ops.dl2_algorithm(0, None)
    with pytest.raises(ValueError, match="spaces"):
        ops.dl2_options(image_path="/my data/in.tif", psf_path="/w/p.tif", iterations=1, tv_lambda=None,
                        out_name="o", out_dir="/w")


# -- TurboReg ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, golden", [("translation", "translation"), ("rigid", "rigidBody"), ("affine", "affine")])
def test_turboreg_options_match_the_golden_call(golden_dir, kind, golden):
    expected = read_turboreg_golden(golden_dir / f"turboreg_{golden}_transform.txt")["options"]
    expected = expected.replace("<golden_dir>", "/g")
    got = ops.turboreg_options(source_path="/g/reg_moving_rot3deg_shift7.5_-4.25_256.tif",
                               target_path="/g/reg_target_256.tif", transform=kind,
                               source_shape=(256, 256), target_shape=(256, 256))
    assert got == expected
    assert ops.turboreg_macro(got) == f'run("TurboReg ", "{expected}");'


@pytest.mark.parametrize("kind, golden", [("translation", "translation"), ("rigid", "rigidBody"), ("affine", "affine")])
def test_turboreg_matrix_from_golden_landmarks(golden_dir, kind, golden):
    data = read_turboreg_golden(golden_dir / f"turboreg_{golden}_transform.txt")
    matrix = ops.turboreg_matrix(data["source"], data["target"], kind)
    np.testing.assert_allclose(matrix, data["matrix"], atol=5e-10)  # the files print 10 decimals


def test_turboreg_landmarks_follow_stackreg_integer_division():
    assert ops.turboreg_landmarks("similarity", 255, 101) == [(63.0, 50.0), (191.0, 50.0)]
    assert ops.turboreg_landmarks("rigidBody", 7, 9) == [(3.0, 4.0), (3.0, 2.0), (3.0, 6.0)]
    with pytest.raises(ValueError, match="unknown transform"):
        ops.turboreg_landmarks("bilinear", 10, 10)
    with pytest.raises(ValueError, match="double quote"):
        ops.turboreg_options(source_path='/a"b.tif', target_path="/t.tif", transform="rigid",
                             source_shape=(8, 8), target_shape=(8, 8))


def test_similarity_matrix_maps_target_landmarks_onto_source():
    target = [(64.0, 128.0), (192.0, 128.0)]
    angle, scale, shift = np.deg2rad(5.0), 1.1, np.array([3.0, -2.0])
    a = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = [tuple(a @ np.array(p) + shift) for p in target]
    matrix = ops.turboreg_matrix(source, target, "similarity")
    np.testing.assert_allclose(ops.turboreg_to_homogeneous(matrix)[:2], np.column_stack([a, shift]), atol=1e-12)


def test_turboreg_mask_rule_reproduces_the_golden_mask(golden_dir):
    """Mask slice of TurboReg's output = where the rounded source position is inside the source."""
    data = read_turboreg_golden(golden_dir / "turboreg_rigidBody_transform.txt")
    golden_mask = tifffile.imread(golden_dir / "turboreg_rigidBody_aligned.tif")[1] > 0
    mask = ops.valid_mask(data["matrix"], (256, 256), (256, 256), rounded=True)
    assert golden_mask.sum() < golden_mask.size  # the golden has an empty border
    np.testing.assert_array_equal(mask, golden_mask)


def test_matrix_layout_round_trip():
    h = ops.turboreg_to_homogeneous(GT_TURBOREG)
    np.testing.assert_allclose(h[:, 2], [GT_TURBOREG[0, 0], GT_TURBOREG[1, 0], 1.0])
    np.testing.assert_allclose(ops.homogeneous_to_turboreg(h), GT_TURBOREG)


# -- SIFT ------------------------------------------------------------------------------------------------

def test_sift_options_match_the_golden_call(golden_dir):
    line = (golden_dir / "sift_rigid_transform.txt").read_text().splitlines()[1]
    assert line == f'# run("Linear Stack Alignment with SIFT", "{ops.sift_options("rigid")}")'


def test_parse_sift_log_and_convert_to_turboreg(golden_dir):
    log = (golden_dir / "sift_rigid_transform.txt").read_text()
    sift = ops.parse_sift_matrix(log)
    np.testing.assert_allclose(sift, [[0.998622807151947, 0.052464169067706, -13.804411558581611],
                                      [-0.052464169067706, 0.998622807151947, 11.501911045980648]])
    # the README's two ground truths are the same transform in the two conventions
    np.testing.assert_allclose(ops.sift_to_turboreg(GT_SIFT), GT_TURBOREG, atol=2e-5)
    # SIFT's estimate is within 0.05 px of the truth over the image, in TurboReg's convention too
    corners = np.array([[1, 0, 0], [1, 255, 0], [1, 0, 255], [1, 255, 255]], dtype=float)
    error = np.abs(corners @ ops.sift_to_turboreg(sift).T - corners @ GT_TURBOREG.T).max()
    assert error < 0.05
    with pytest.raises(ValueError, match="no transformation matrix"):
        ops.parse_sift_matrix("38 potentially corresponding features identified")
