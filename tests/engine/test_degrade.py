"""Synthetic degradations: shapes, units, blur widths, SNR, seeding, JPEG-like quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.io import read_image
from decongan.engine.learn.degrade import (
    DegradationSpec,
    born_wolf_degrade,
    degrade,
    gaussian_degrade,
    jpeg_like,
    poisson_noise_at_snr,
    realesrgan_degrade,
)


@pytest.fixture(scope="module")
def hq(shared_data):
    return read_image(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "hq" / "fov01.png").data[:256, :256]


def _second_moment_sigma(image: np.ndarray) -> float:
    """Standard deviation along y of a blurred point, in pixels."""
    yy = np.indices(image.shape)[0]
    w = image / image.sum()
    cy = (w * yy).sum()
    return float(np.sqrt((w * (yy - cy) ** 2).sum()))


def test_gaussian_blurs_a_point_by_sigma_and_keeps_the_shape_at_scale_one():
    point = np.zeros((64, 64), np.float32)
    point[32, 32] = 1000.0
    lq = gaussian_degrade(point, sigma_px=2.0, factor=1.0)
    assert lq.shape == (64, 64) and lq.dtype == np.float32
    assert _second_moment_sigma(lq) == pytest.approx(2.0, rel=0.02)
    assert lq.sum() == pytest.approx(1000.0, rel=1e-3)  # intensity units kept


def test_gaussian_s3_recipe_on_real_data(hq):
    same = gaussian_degrade(hq, sigma_px=1.0, factor=2.0)  # S3 cGAN2: blur, down x2, up back
    assert same.shape == hq.shape
    assert same.mean() == pytest.approx(hq.mean(), rel=0.01)
    assert np.abs(np.diff(same, axis=1)).mean() < 0.8 * np.abs(np.diff(hq.astype(np.float32), axis=1)).mean()
    small = gaussian_degrade(hq, scale=2, sigma_px=1.0, factor=2.0)
    assert small.shape == (128, 128)


def test_poisson_noise_reaches_the_target_snr():
    rng = np.random.default_rng(3)
    signal = 10.0 + 90.0 * np.random.default_rng(4).random((512, 512))
    for target in (15.0, 30.0):
        noisy = poisson_noise_at_snr(signal, snr_db=target, rng=rng)
        measured = 10 * np.log10((signal**2).sum() / ((noisy - signal) ** 2).sum())
        assert measured == pytest.approx(target, abs=0.1)
        assert noisy.mean() == pytest.approx(signal.mean(), rel=1e-3)


def test_born_wolf_blur_width_matches_the_airy_pattern_and_is_seeded():
    from decongan.engine.optics.psf import airy_fwhm_nm

    point = np.zeros((101, 101), np.float32)
    point[50, 50] = 1e6
    lq = born_wolf_degrade(point, pixel_nm=100.0, na=0.5, wavelength_nm=520.0, snr_db=80.0,
                           rng=np.random.default_rng(0))
    profile = lq[50]
    half = profile.max() / 2
    above = np.flatnonzero(profile >= half)
    fwhm_px = above[-1] - above[0] + 1  # pixel-count width: within one pixel of the analytic FWHM
    assert abs(fwhm_px * 100.0 - airy_fwhm_nm(na=0.5, wavelength_nm=520.0)) <= 100.0
    again = born_wolf_degrade(point, pixel_nm=100.0, na=0.5, wavelength_nm=520.0, snr_db=80.0,
                              rng=np.random.default_rng(0))
    np.testing.assert_array_equal(lq, again)


def test_born_wolf_needs_a_pixel_size_and_a_generator(hq):
    with pytest.raises(ValueError, match="pixel size"):
        born_wolf_degrade(hq, pixel_nm=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        born_wolf_degrade(hq, pixel_nm=100)


def test_realesrgan_two_stage_is_seeded_keeps_units_and_lands_on_the_lq_grid(hq):
    a = realesrgan_degrade(hq, scale=2, rng=np.random.default_rng(7))
    b = realesrgan_degrade(hq, scale=2, rng=np.random.default_rng(7))
    c = realesrgan_degrade(hq, scale=2, rng=np.random.default_rng(8))
    assert a.shape == (128, 128) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.isfinite(a).all()
    assert a.mean() == pytest.approx(hq.mean(), rel=0.3)


def test_jpeg_like_quantisation_error_grows_as_quality_drops():
    image = np.random.default_rng(1).random((64, 72)).astype(np.float32)
    errors = [np.abs(jpeg_like(image, quality=q) - image).mean() for q in (100, 75, 30)]
    assert errors[0] < 0.01 and errors[0] < errors[1] < errors[2]
    flat = np.full((16, 16), 0.5, np.float32)  # DC only: error at most half a DC step (16 * 5000 / 10 / 100 / 8 / 255 / 2)
    assert np.abs(jpeg_like(flat, quality=10) - flat).max() <= 80 / 8 / 255 / 2 + 1e-6
    mid = np.full((16, 16), 128 / 255, np.float32)  # DC coefficient 0: exact
    np.testing.assert_allclose(jpeg_like(mid, quality=10), mid, atol=1e-6)


def test_dispatch_and_bad_input():
    plane = np.ones((32, 32), np.float32)
    out = degrade(plane, DegradationSpec(method="gaussian", params={"sigma_px": 0.5}), scale=2)
    assert out.shape == (16, 16)
    assert degrade(plane, "realesrgan", rng=np.random.default_rng(0)).shape == (32, 32)
    with pytest.raises(ValueError, match="2-D"):
        gaussian_degrade(np.ones((2, 8, 8)))
    with pytest.raises(ValueError, match="scale"):
        gaussian_degrade(plane, scale=0)
