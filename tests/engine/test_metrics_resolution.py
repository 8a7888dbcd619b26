"""Decorrelation analysis and FRC: known-truth rankings on real images blurred with known Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from decongan.engine.io import read_image
from decongan.engine.metrics import decorrelation_resolution, frc
from decongan.engine.metrics.resolution import _highest_local_max

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"


@pytest.fixture(scope="module")
def actin(shared_data):
    """Real BPAE F-actin image (680 x 1100, float32, 108 nm pixels per its notebook)."""
    return read_image(shared_data / "other_fluorescence" / "bian_BPAE_actin.tif").data.astype(float)


@pytest.fixture(scope="module")
def frames(shared_data):
    """Two independent real noisy confocal frames of the same field (FMD fov01)."""
    folder = shared_data / FMD / "raw_frames" / "fov01"
    return tuple(read_image(folder / f"frame_{i:02d}.png").data.astype(float) for i in (1, 2))


def test_decorrelation_ranks_known_gaussian_blurs_of_a_real_image(actin):
    results = [decorrelation_resolution(gaussian_filter(actin, s) if s else actin, pixel_nm=108.3)
               for s in (0, 1, 2, 4)]
    px = [r.resolution_px for r in results]
    assert px == sorted(px) and len(set(px)) == 4, px
    # a Gaussian of sigma s has FWHM 2.355 s: the blurred images cannot be resolved finer than that
    assert px[3] > 2.355 * 4 * 0.9
    assert 2.0 <= px[0] < 5.0
    assert results[0].resolution_nm == pytest.approx(108.3 * px[0])
    assert all(0.05 <= r.a0 <= 1 for r in results)


def test_decorrelation_resolution_is_invariant_to_intensity_gain(actin):
    crop = actin[:256, :256]
    a = decorrelation_resolution(crop)
    b = decorrelation_resolution(0.001 * crop + 17)
    assert b.resolution_px == pytest.approx(a.resolution_px, rel=1e-9)


def test_decorrelation_of_pure_noise_finds_no_structure():
    rng = np.random.default_rng(0)
    result = decorrelation_resolution(rng.normal(size=(128, 128)))
    # white noise: the decorrelation curve is flat-rising, no significant peak away from Nyquist
    assert result.a0 < 0.05 or result.resolution_px < 2.3


def test_highest_local_max_follows_the_published_rule():
    assert _highest_local_max(np.array([0.0, 0.2, 0.5, 0.3, 0.1])) == (2, 0.5)
    # a curve still rising at the end has no peak at the end: the earlier local maximum wins
    assert _highest_local_max(np.array([0.0, 0.4, 0.3, 0.35, 0.6])) == (1, 0.4)
    assert _highest_local_max(np.linspace(0, 1, 10)) == (0, 0.0)


def test_frc_ranks_blurred_acquisitions_of_a_real_field(frames):
    a, b = frames
    noise = float(np.std(a - b) / np.sqrt(2))  # per-frame noise, from the real independent pair
    rng = np.random.default_rng(5)
    resolutions = [frc(a, b, pixel_nm=100.0).resolution_px]
    for sigma in (1.0, 2.0, 4.0):  # an acquisition with a wider PSF: blur the frame, then new noise
        pair = [gaussian_filter(f, sigma) + rng.normal(0, noise, f.shape) for f in (a, b)]
        resolutions.append(frc(*pair).resolution_px)
    assert resolutions == sorted(resolutions) and len(set(resolutions)) == 4, resolutions
    assert resolutions[0] < 6.0 and resolutions[3] > 2.355 * 4 * 0.9


def test_frc_is_blind_to_the_same_filter_applied_to_both(frames):
    a, b = frames
    plain = frc(a, b).resolution_px
    blurred = frc(gaussian_filter(a, 1.0), gaussian_filter(b, 1.0)).resolution_px
    assert blurred == pytest.approx(plain, rel=0.05)


def test_frc_limits_and_thresholds(frames):
    a, b = frames
    same = frc(a, a)
    assert not same.crossed and same.resolution_px == 2.0
    np.testing.assert_allclose(same.raw_curve, 1.0, atol=1e-9)
    rng = np.random.default_rng(6)
    unrelated = frc(rng.normal(size=(128, 128)), rng.normal(size=(128, 128)))
    assert unrelated.crossed and unrelated.resolution_px > 20
    half_bit = frc(a, b, threshold="half-bit", pixel_nm=50.0)
    assert half_bit.threshold[1] > half_bit.threshold[-1]  # half-bit threshold falls with ring size
    assert half_bit.resolution_nm == pytest.approx(50.0 * half_bit.resolution_px)
    with pytest.raises(ValueError, match="same shape"):
        frc(a, a[:, :-1])
    with pytest.raises(ValueError, match="unknown FRC threshold"):
        frc(a, b, threshold="fsc")


def _literal_d(image_apodized: np.ndarray, radii: np.ndarray, g_px: float | None) -> np.ndarray:
    """The published formula with full FFTs and one disc mask per radius (slow, for checking)."""
    spectrum = np.fft.fft2(image_apodized)
    fy = np.fft.fftfreq(image_apodized.shape[0])[:, None]
    fx = np.fft.fftfreq(image_apodized.shape[1])[None, :]
    r = 2 * np.hypot(fy, fx)
    inside = r < 1
    inside[0, 0] = False
    phase = np.where(inside, spectrum / np.abs(spectrum), 0)
    ik = np.where(inside, np.fft.fft2((image_apodized - image_apodized.mean()) / image_apodized.std()), 0)
    if g_px is not None:
        ik = ik * (1 - np.exp(-2 * np.pi**2 * g_px**2 * (r / 2) ** 2))
    c = np.sqrt(np.sum(np.abs(ik) ** 2))
    out = []
    for radius in radii:
        mask = r < radius
        denom = c * np.sqrt(np.sum(np.abs(phase[mask]) ** 2))
        out.append(np.sum((ik[mask] * np.conj(phase[mask])).real) / denom if denom > 0 else 0.0)
    return np.array(out)


def test_fast_decorrelation_curves_equal_the_literal_formula(actin):
    from decongan.engine.metrics._common import apodize

    crop = actin[100:164, 300:390]  # 64 x 90: non-square, even width (rfft Nyquist column)
    result = decorrelation_resolution(crop)
    apodized = apodize(crop, 20)
    np.testing.assert_allclose(result.d0, _literal_d(apodized, result.radii, None), atol=1e-10)
    for radii, d, g_px, _, _ in (result.curves[0], result.curves[7], result.curves[-1]):
        np.testing.assert_allclose(d, _literal_d(apodized, radii, g_px), atol=1e-10)


def test_frc_curve_equals_the_literal_ring_sums(frames):
    from decongan.engine.metrics._common import edge_taper

    a, b = (f[:70, :96] for f in frames)
    result = frc(a, b, smoothing_rings=1)
    window = edge_taper(a.shape, 20)
    fa, fb = (np.fft.fft2((f - f.mean()) * window) for f in (a, b))
    q = np.hypot(np.fft.fftfreq(70)[:, None], np.fft.fftfreq(96)[None, :])
    rings = np.rint(q * 70).astype(int)
    for k in range(1, 36):
        m = rings == k
        expected = (fa[m] * np.conj(fb[m])).real.sum() / np.sqrt((np.abs(fa[m]) ** 2).sum() * (np.abs(fb[m]) ** 2).sum())
        assert result.raw_curve[k] == pytest.approx(expected, abs=1e-10)
    np.testing.assert_array_equal(result.curve, result.raw_curve)
