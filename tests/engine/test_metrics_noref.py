"""No-reference metrics (BGSTD, CUF, SNR, the combined report) on known signals and real images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from decongan.engine.io import read_image
from decongan.engine.metrics import background_mask, bgstd, cuf, no_reference_metrics, sharpest_plane, snr


@pytest.fixture(scope="module")
def nuclei(shared_data):
    """Real confocal nuclei, 50-frame average (high SNR), 512 x 512."""
    return read_image(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "hq" / "fov01.png").data.astype(float)


def test_cuf_of_a_pure_cosine_is_its_frequency():
    y, x = np.mgrid[0:256, 0:256]
    for cycles in (8, 30, 77):  # on-grid frequencies: all energy in one pair of FFT bins
        image = 100 + 10 * np.cos(2 * np.pi * cycles * x / 256)
        assert cuf(image) == pytest.approx(cycles / 256, abs=1e-12)
    diagonal = np.cos(2 * np.pi * (12 * x + 5 * y) / 256)
    assert cuf(diagonal) == pytest.approx(13 / 256, abs=1e-12)


def test_cuf_falls_with_blur_and_rises_with_noise(nuclei):
    rng = np.random.default_rng(0)
    sharp = cuf(nuclei)
    blurred = [cuf(gaussian_filter(nuclei, s)) for s in (1, 2, 4)]
    assert sharp > blurred[0] > blurred[1] > blurred[2]
    noisy = cuf(nuclei + rng.normal(0, 5, nuclei.shape))
    assert noisy > sharp + 0.05


def test_bgstd_is_the_background_std_on_the_percentile_scale():
    rng = np.random.default_rng(1)
    image = np.full((200, 200), 10.0)
    image[:, 100:] = 200.0
    image[:, :100] += rng.normal(0, 2, (200, 100))
    low, high = np.percentile(image, [0.1, 99.9])
    expected = image[:, :100].std() / (high - low)
    assert bgstd(image) == pytest.approx(expected, rel=1e-9)
    assert background_mask(image)[:, :100].all() and not background_mask(image)[:, 100:].any()
    assert bgstd(7 * image + 3) == pytest.approx(bgstd(image), rel=1e-9)


def test_bgstd_rises_with_noise_on_a_real_image(nuclei):
    rng = np.random.default_rng(2)
    values = [bgstd(nuclei + rng.normal(0, s, nuclei.shape)) if s else bgstd(nuclei) for s in (0, 2, 5, 10)]
    assert values == sorted(values) and values[-1] > 2 * values[0]


def test_snr_is_invariant_to_gain_and_falls_with_noise(nuclei):
    rng = np.random.default_rng(3)
    base = snr(nuclei)
    assert snr(3 * nuclei + 50) == pytest.approx(base, rel=1e-9)
    noisy = [snr(nuclei + rng.normal(0, s, nuclei.shape)) for s in (2, 5, 10)]
    assert base > noisy[0] > noisy[1] > noisy[2]


def test_snr_of_synthetic_spots_matches_amplitude_over_noise():
    rng = np.random.default_rng(4)
    image = np.zeros((256, 256))
    for cy in range(32, 256, 64):
        for cx in range(32, 256, 64):
            image[cy, cx] = 1.0
    spots = gaussian_filter(image, 4.0)
    spots *= 100 / spots.max()  # amplitude 100
    noisy = 20 + spots + rng.normal(0, 2, image.shape)
    # signal = peak of the 1-px-smoothed spot (sigma 4 -> sqrt(17): factor 16/17 of the amplitude, less
    # the small drop over the brightest 0.1 %); noise sigma 2 -> SNR about 45-47
    assert 40 < snr(noisy) < 48


def test_no_reference_report_keys_units_and_stack_plane(nuclei):
    report = no_reference_metrics(nuclei, pixel_nm=100.0)
    assert set(report) == {"bgstd", "cuf", "snr", "decorrelation_px", "decorrelation_nm"}
    assert report["decorrelation_nm"] == pytest.approx(100.0 * report["decorrelation_px"])
    assert "decorrelation_nm" not in no_reference_metrics(nuclei)
    stack = np.stack([gaussian_filter(nuclei, 3), nuclei, gaussian_filter(nuclei, 1.5)])
    assert sharpest_plane(stack) == 1
    report3d = no_reference_metrics(stack)
    assert report3d["z_plane"] == 1
    assert report3d["cuf"] == pytest.approx(report["cuf"])
