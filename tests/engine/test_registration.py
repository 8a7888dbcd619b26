"""Registration: known truth of the Fiji registration goldens, TurboReg's outputs, real multi-scale scans."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile

from decongan.engine.optics.registration import (
    RegistrationError,
    Transform2D,
    apply_transform,
    crop_to_common_valid_area,
    iter_register,
    largest_valid_rectangle,
    normalised_cross_correlation,
    register,
)
from decongan.engine.progress import Progress

SHAPE = (256, 256)
# README "Test inputs": ground truth of reg_moving_rot3deg_shift7.5_-4.25_256.tif vs reg_target_256.tif
TRUTH_TURBOREG = [[14.3475687398, 0.9986295348, -0.0523359562], [-10.7481001022, 0.0523359562, 0.9986295348]]
TRUTH_SIFT = [[0.998630, 0.052336, -13.765394], [-0.052336, 0.998630, 11.484264]]
TURBOREG_TRANSLATION = (9.0234174104, -4.3371423032)  # turboreg_translation_transform.txt


def _read(path):
    return tifffile.imread(path).astype(np.float32)


@pytest.fixture(scope="module")
def pair(golden_dir):
    return _read(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif"), _read(golden_dir / "reg_target_256.tif")


@pytest.fixture(scope="module")
def truth():
    return Transform2D.from_turboreg_matrix(TRUTH_TURBOREG, kind="rigid", fixed_shape=SHAPE, moving_shape=SHAPE)


@pytest.fixture(scope="module")
def results(pair):
    moving, fixed = pair
    return {kind: register(moving=moving, fixed=fixed, transform=kind) for kind in ("rigid", "similarity", "affine")}


# -- conventions ---------------------------------------------------------------------------------
def test_truth_parameters_and_fiji_matrices_agree(truth):
    assert truth.angle_deg == pytest.approx(3.0, abs=1e-6)
    assert truth.shift_px == pytest.approx((7.5, -4.25), abs=1e-6)
    assert truth.scale == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(truth.to_sift_matrix(), TRUTH_SIFT, atol=2e-6)
    built = Transform2D.from_parameters(kind="rigid", angle_deg=3.0, shift_px=(7.5, -4.25), fixed_shape=SHAPE,
                                        moving_shape=SHAPE)
    np.testing.assert_allclose(built.to_turboreg_matrix(), TRUTH_TURBOREG, atol=1e-8)
    back = Transform2D.from_sift_matrix(built.to_sift_matrix(), kind="rigid", fixed_shape=SHAPE, moving_shape=SHAPE)
    np.testing.assert_allclose(back.matrix, built.matrix, atol=1e-12)


def test_apply_transform_reproduces_turboreg_resampling(golden_dir, pair):
    """TurboReg's own matrix through apply_transform gives TurboReg's Data and Mask slices."""
    moving, _ = pair
    lines = (golden_dir / "turboreg_rigidBody_transform.txt").read_text().splitlines()
    rows = [ln for ln in lines if ln and not ln.startswith("#")][3:5]
    matrix = Transform2D.from_turboreg_matrix([[float(v) for v in r.split()] for r in rows], kind="rigid",
                                              fixed_shape=SHAPE, moving_shape=SHAPE)
    golden = _read(golden_dir / "turboreg_rigidBody_aligned.tif")
    aligned, mask = apply_transform(moving, matrix)
    np.testing.assert_array_equal(mask, golden[1] > 0)
    assert np.max(np.abs(aligned - golden[0])) <= 2.5e-5 * golden[0].max()


def test_json_round_trip_and_validation(truth):
    again = Transform2D.from_json(truth.to_json())
    np.testing.assert_array_equal(again.matrix, truth.matrix)
    assert (again.kind, again.fixed_shape, again.moving_shape) == ("rigid", SHAPE, SHAPE)
    assert json.loads(truth.to_json())["shift_px"] == pytest.approx([7.5, -4.25])
    with pytest.raises(ValueError, match="not a DeconGAN transform"):
        Transform2D.from_json(json.dumps({"matrix": truth.matrix.tolist()}))
    with pytest.raises(ValueError, match="singular"):
        Transform2D(np.zeros((3, 3)) + np.diag([0, 0, 1]), "affine", SHAPE, SHAPE)


def test_same_field_of_view_is_the_resize_convention():
    t = Transform2D.same_field_of_view((512, 512), (256, 256))
    # fixed pixel centres 0 and 1 straddle moving pixel 0 (at -0.25 and +0.25); scale 2, no shift
    np.testing.assert_allclose(t.map_fixed_to_moving(np.array([[0.0, 0.0], [1.0, 1.0], [511.0, 0.0]])),
                               [[-0.25, -0.25], [0.25, 0.25], [255.25, -0.25]])
    assert t.scale == pytest.approx(2.0) and t.shift_px == pytest.approx((0.0, 0.0))


def test_apply_transform_on_a_stack_matches_per_plane(pair, truth):
    moving, fixed = pair
    stack, mask = apply_transform(np.stack([moving, fixed]), truth)
    single, mask1 = apply_transform(fixed, truth)
    assert stack.shape == (2, *SHAPE)
    np.testing.assert_array_equal(stack[1], single)
    np.testing.assert_array_equal(mask, mask1)


# -- accuracy on the goldens ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rigid", "similarity", "affine"])
def test_recovers_known_transform(results, truth, kind):
    t = results[kind].transform
    assert t.kind == kind
    assert abs(t.angle_deg - 3.0) <= 0.05
    assert t.max_displacement_error(truth) <= 0.01  # spec: 0.1 px; TurboReg itself: 7.7e-4 px
    np.testing.assert_allclose(t.to_turboreg_matrix(), TRUTH_TURBOREG, atol=0.01)
    np.testing.assert_allclose(t.to_sift_matrix(), TRUTH_SIFT, atol=0.01)
    assert results[kind].ncc_before == pytest.approx(0.1367, abs=1e-3)
    assert results[kind].ncc_after > 0.998


def test_aligned_image_matches_turboreg_output(golden_dir, results):
    golden = _read(golden_dir / "turboreg_rigidBody_aligned.tif")
    result = results["rigid"]
    both = result.mask & (golden[1] > 0)
    assert np.count_nonzero(result.mask != (golden[1] > 0)) <= 5
    diff = np.abs(result.aligned - golden[0])[both]
    assert diff.max() <= 1e-3 * golden[0].max()
    assert np.all(result.aligned[~result.mask] == 0)


def test_translation_against_turboreg(golden_dir, pair):
    """Translation cannot model the 3 deg rotation; the optimum lies near TurboReg's (9.02, -4.34)."""
    moving, fixed = pair
    result = register(moving=moving, fixed=fixed, transform="translation", max_iterations=20)
    t = result.transform
    assert t.angle_deg == 0.0 and t.scale == 1.0
    assert math.dist(t.shift_px, TURBOREG_TRANSLATION) < 1.0
    golden = _read(golden_dir / "turboreg_translation_aligned.tif")
    turboreg_ncc = normalised_cross_correlation(golden[0], fixed, golden[1] > 0)
    assert result.ncc_after >= turboreg_ncc - 1e-3  # at least as good a fit as TurboReg's


def _synthetic_pair(image, *, angle_deg, scale, shift=(3.3, -5.1)):
    """fixed = centre crop of ``image``; moving = ``image`` resampled with a known map; returns truth."""
    h, w = image.shape
    generator = Transform2D.from_parameters(kind="similarity", angle_deg=angle_deg, scale=scale, shift_px=shift,
                                            fixed_shape=(h // 2, w // 2), moving_shape=image.shape)
    moving, _ = apply_transform(image, generator)
    offset = np.eye(3)
    offset[:2, 2] = (w // 4, h // 4)
    truth = Transform2D(np.linalg.inv(generator.matrix) @ offset, "similarity", (h // 2, w // 2), (h // 2, w // 2))
    return moving, image[h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2], truth


@pytest.mark.parametrize(("source", "kind", "angle", "scale"), [
    ("srcaco2_confocal_multiscale_scans/hq/caco2_nuclei_x1.tif", "rigid", 170.0, 1.0),
    ("srcaco2_confocal_multiscale_scans/hq/caco2_nuclei_x1.tif", "similarity", -20.0, 1.4),
    ("tagan_confocal_vs_sted/hq/live_factin_confstedfull2.tif", "rigid", -60.0, 1.0),  # 210 x 423: not square
])
def test_large_rotation_and_scale_known_truth(shared_data, source, kind, angle, scale):
    """Beyond the optimiser's reach: needs the Fourier-Mellin start (incl. its 180-degree branch)."""
    image = _read(shared_data / source)
    moving, fixed, truth = _synthetic_pair(image, angle_deg=angle, scale=scale)
    result = register(moving=moving, fixed=fixed, transform=kind)
    assert result.transform.max_displacement_error(truth) < 0.05
    assert result.transform.angle_deg == pytest.approx(-angle, abs=0.01)


@pytest.mark.parametrize("angle", [25.0, 40.0, 150.0])
def test_fourier_mellin_on_a_non_square_image(shared_data, angle):
    from decongan.engine.optics.registration.initial import fourier_mellin

    image = _read(shared_data / "tagan_confocal_vs_sted/hq/live_factin_confstedfull2.tif")  # 420 x 846
    moving, fixed, truth = _synthetic_pair(image, angle_deg=angle, scale=1.0, shift=(0.0, 0.0))
    found, scale = fourier_mellin(fixed=fixed, moving=moving)
    assert (found - truth.angle_deg + 90.0) % 180.0 - 90.0 == pytest.approx(0.0, abs=0.3)  # known modulo 180
    assert scale == pytest.approx(1.0, abs=0.01)


# -- real multi-scale scans ------------------------------------------------------------------------
def test_real_x2_scan_onto_x1_scan(shared_data):
    folder = shared_data / "srcaco2_confocal_multiscale_scans"
    lq = tifffile.imread(folder / "lq/caco2_nuclei_x2.tif")
    hq = tifffile.imread(folder / "hq/caco2_nuclei_x1.tif")
    result = register(moving=lq, fixed=hq, transform="similarity")  # no pixel sizes: the shape ratio is a candidate
    assert result.transform.scale == pytest.approx(2.0, abs=0.01)
    assert abs(result.transform.angle_deg) < 0.1
    assert result.ncc_before == pytest.approx(0.929, abs=0.005)  # naive x2 upsampling
    assert result.ncc_after > 0.975
    assert result.ncc_gain > 0.04
    assert result.aligned.shape == hq.shape and result.mask.mean() > 0.97


# -- progress, errors ------------------------------------------------------------------------------
def test_iter_register_reports_progress_and_can_be_closed(pair):
    moving, fixed = pair
    events = iter_register(moving=moving, fixed=fixed, transform="rigid")
    first = next(events)
    second = next(events)
    assert isinstance(first, Progress) and second.step == first.step + 1 and second.total == first.total
    assert "initial estimate" in second.message
    events.close()  # cancelling: nothing else runs


def test_bad_inputs_give_clear_errors(pair):
    moving, fixed = pair
    with pytest.raises(RegistrationError, match="fixed image is constant: nothing to register") as info:
        register(moving=moving, fixed=np.full(SHAPE, 7.0))
    assert info.value.which == "fixed"
    nan = moving.copy()
    nan[3, 4] = np.nan
    with pytest.raises(RegistrationError, match="moving image contains NaN"):
        register(moving=nan, fixed=fixed)
    with pytest.raises(RegistrationError, match="must be 2-D"):
        register(moving=np.stack([moving, moving]), fixed=fixed)
    with pytest.raises(RegistrationError, match="too small"):
        register(moving=moving[:8, :8], fixed=fixed)
    with pytest.raises(RegistrationError, match="unknown transform 'shear'"):
        register(moving=moving, fixed=fixed, transform="shear")


def test_failure_reports_scores_instead_of_garbage(pair):
    _, fixed = pair
    noise = np.random.default_rng(1).normal(size=SHAPE)
    with pytest.raises(RegistrationError, match=r"registration failed: .*NCC") as info:
        register(moving=noise, fixed=fixed, transform="rigid", max_iterations=10)
    assert info.value.result is not None and info.value.result.ncc_after < 0.1


# -- common valid area -------------------------------------------------------------------------------
def test_largest_valid_rectangle_is_exact_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(200):
        mask = rng.random((int(rng.integers(1, 7)), int(rng.integers(1, 7)))) < rng.uniform(0.3, 0.95)
        h, w = mask.shape
        brute = max([(y1 - y0) * (x1 - x0) for y0 in range(h) for y1 in range(y0 + 1, h + 1)
                     for x0 in range(w) for x1 in range(x0 + 1, w + 1) if mask[y0:y1, x0:x1].all()], default=0)
        y0, y1, x0, x1 = largest_valid_rectangle(mask)
        assert (y1 - y0) * (x1 - x0) == brute
        assert mask[y0:y1, x0:x1].all()


def test_crop_to_common_valid_area(results, pair):
    _, fixed = pair
    result = results["rigid"]
    fixed_crop, aligned_crop, (y0, y1, x0, x1) = crop_to_common_valid_area(fixed, result.aligned, result.mask)
    assert fixed_crop.shape == aligned_crop.shape == (y1 - y0, x1 - x0)
    assert result.mask[y0:y1, x0:x1].all()
    # a 3 deg rotation plus the shift leaves a ~243 px square fully inside
    assert 235 <= min(fixed_crop.shape) and fixed_crop.size >= 0.88 * fixed.size
    assert normalised_cross_correlation(fixed_crop, aligned_crop) > 0.998
    with pytest.raises(ValueError, match="does not overlap"):
        crop_to_common_valid_area(fixed, result.aligned, np.zeros(SHAPE, bool))
