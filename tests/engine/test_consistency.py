"""Data-consistency map: forward model, noise model, and detection of planted hallucinations on real data.

The detection test plants Gaussian blobs into a "restoration" that the LQ input does not support and
checks the map finds them, while the unmodified restoration is left (almost) unflagged:

* FMD (real confocal, Poisson-Gaussian noise): LQ = one raw frame, "restoration" = the 50-frame
  average (a perfect denoiser output of the same optics), identity forward model.
* TA-GAN synaptic proteins (real confocal photon counts, 60 nm acquired, NN-upsampled to 15 nm):
  "restoration" = the engine's Richardson-Lucy result with a Born & Wolf PSF (NA 1.4, oil, 620 nm).

Blob brightness is realistic: after re-imaging, its peak is half of the input's bright-structure level
(99.9th percentile above the median background).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

from decongan.engine.evaluate.consistency import (
    blur,
    data_consistency,
    estimate_noise_model,
    fit_gain_offset,
    psf_sigma_px,
    replication_factor,
    resample_to,
)
from decongan.engine.io import read_image
from decongan.engine.optics.psf import born_wolf_psf, gaussian_psf

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"
TAGAN = "tagan_confocal_vs_sted"


def plant_blobs(image: np.ndarray, lq: np.ndarray, psf: np.ndarray | None, gain: float, *, sigmas=(2.0, 4.0),
                per_size: int = 3, seed: int = 0, margin: int = 40) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Add Gaussian blobs whose re-imaged peak is half the input's bright-structure level."""
    rng = np.random.default_rng(seed)
    ny, nx = image.shape
    yy, xx = np.indices(image.shape)
    level = 0.5 * (np.percentile(lq, 99.9) - np.median(lq))
    out = image.astype(np.float64).copy()
    placed: list[tuple[int, int, float]] = []
    for sigma in sigmas:
        unit = np.exp(-((yy - ny // 2) ** 2 + (xx - nx // 2) ** 2) / (2 * sigma ** 2))
        amplitude = level / (gain * blur(unit, psf).max())
        count = 0
        while count < per_size:
            y, x = int(rng.integers(margin, ny - margin)), int(rng.integers(margin, nx - margin))
            if all((y - a) ** 2 + (x - b) ** 2 > (12 * max(s, sigma)) ** 2 for a, b, s in placed):
                out += amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma ** 2))
                placed.append((y, x, sigma))
                count += 1
    return out, placed


def detected(result, blobs) -> int:
    hits = 0
    for y, x, sigma in blobs:
        r = int(np.ceil(2 * sigma))
        hits += bool(result.unsupported[y - r:y + r + 1, x - r:x + r + 1].any())
    return hits


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------
def test_blur_is_reflect_padded_linear_convolution_in_float32():
    rng = np.random.default_rng(1)
    image = rng.random((37, 50))
    kernel = gaussian_psf(sigma_px=2.0, size=13)
    padded = np.pad(image, 6, mode="reflect")
    expected = fftconvolve(padded, kernel / kernel.sum(), mode="same")[6:-6, 6:-6]  # float64 reference
    out = blur(image, kernel)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6 * expected.max())
    np.testing.assert_array_equal(blur(image, None), image.astype(np.float32))
    stack = rng.random((5, 20, 21))
    np.testing.assert_allclose(blur(stack, kernel)[2], blur(stack[2], kernel), rtol=1e-6, atol=1e-7)  # 2-D PSF per plane
    # an asymmetric PSF is convolved, not correlated: a delta one pixel right of the centre shifts right
    shift = np.zeros((3, 3))
    shift[1, 2] = 1.0
    np.testing.assert_allclose(blur(image, shift)[:, 1:], image[:, :-1].astype(np.float32), rtol=1e-6, atol=1e-6)


def _fmd_crop(shared_data, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    lq = read_image(shared_data / FMD / "lq" / "fov01.png").data[:size, :size]
    gt = read_image(shared_data / FMD / "hq" / "fov01.png").data[:size, :size].astype(np.float64)
    return lq, gt


def test_data_consistency_is_float32_and_equals_the_float64_computation(shared_data):
    """Same numbers as the former float64 implementation (scores it printed, FMD fov01[:128, :128],
    identity forward model), and the forward model against an independent float64 reference."""
    lq, gt = _fmd_crop(shared_data)
    result = data_consistency(restored=gt, lq=lq, psf=None)
    for name in ("prediction", "residual", "zmap", "detection", "noise_floor"):
        assert getattr(result, name).dtype == np.float32, name
    float64_scores = {"rse": 3.8481260953807452, "rsp": 0.9438619296330828, "chi_rms": 1.258541235378084,
                      "gain": 0.9120124608815352, "offset": -0.19080278991560018, "flagged_fraction": 0.0006103515625}
    for key, value in float64_scores.items():
        assert result.scores[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key

    psf = gaussian_psf(sigma_px=1.5, size=11)
    result = data_consistency(restored=gt, lq=lq, psf=psf)
    pads = 5
    model = fftconvolve(np.pad(gt, pads, mode="reflect"), psf / psf.sum(), mode="valid")  # float64
    gain, offset = result.scores["gain"], result.scores["offset"]
    float64_scores = {"rse": 4.011068177951111, "rsp": 0.9388142076409387, "chi_rms": 1.2650860971681437,
                      "gain": 0.9373990122060073, "offset": -0.411766739248411}
    for key, value in float64_scores.items():
        assert result.scores[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    np.testing.assert_allclose(result.prediction, gain * model + offset, rtol=1e-5, atol=1e-5 * np.abs(model).max())
    np.testing.assert_allclose(result.residual, lq - (gain * model + offset), atol=1e-5 * np.abs(model).max())


def test_data_consistency_peak_memory_is_a_small_multiple_of_the_image():
    """float32 with an FFT of the image padded by the PSF only: peak < 25x the float32 image
    (measured 18.9x at 128^3 with a 31^3 PSF; the float64 full-convolution version needed 42x, 61x with 63^3)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n, k = 48, 31
    zz, yy, xx = np.indices((k, k, k)) - k // 2
    psf = np.exp(-(xx ** 2 + yy ** 2) / (2 * 2.0 ** 2) - zz ** 2 / (2 * 4.0 ** 2))
    lq = rng.poisson(20, size=(n, n, n)).astype(np.uint16)
    restored = lq.astype(np.float32)
    before = restored.copy()
    tracemalloc.start()
    try:
        data_consistency(restored=restored, lq=lq, psf=psf)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 25 * restored.nbytes, peak / restored.nbytes
    np.testing.assert_array_equal(restored, before)  # the caller's float32 array is not written to


def test_resample_block_mean_and_gain_offset_fit():
    fine = np.arange(64, dtype=float).reshape(8, 8)
    coarse, how = resample_to(fine, (2, 4))
    assert how == "block mean x4x2"
    assert coarse[0, 0] == pytest.approx(fine[:4, :2].mean())
    model = np.linspace(0, 1, 100)
    gain, offset = fit_gain_offset(model=model, target=3.5 * model + 7.0)
    assert gain == pytest.approx(3.5) and offset == pytest.approx(7.0)


def test_psf_sigma_of_gaussian_and_born_wolf():
    # half-maximum disc of a 2-D Gaussian: per-axis variance (1 - ln 2) sigma^2 (0.2797 gave 10.49 for 10)
    assert psf_sigma_px(gaussian_psf(sigma_px=10.0, size=121)) == pytest.approx(10.0, rel=0.01)
    assert psf_sigma_px(gaussian_psf(sigma_px=3.0, size=41)) == pytest.approx(3.0, rel=0.03)
    # Airy core: FWHM 0.5145 lambda/NA = 2.3548 sigma -> sigma ~ 0.2185 lambda / NA (Gaussian approximation 0.21)
    bw = born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=620, pixel_nm=15, size=127)
    assert psf_sigma_px(bw) == pytest.approx(0.2185 * 620 / 1.4 / 15, rel=0.1)


def test_noise_model_recovers_poisson_gaussian_gain_on_known_truth():
    rng = np.random.default_rng(3)
    yy, xx = np.indices((256, 256))
    clean = 20 + 200 * np.exp(-((yy - 128) ** 2 + (xx - 100) ** 2) / (2 * 40.0 ** 2))
    noisy = 2.0 * rng.poisson(clean) + rng.normal(0, 3.0, clean.shape)  # gain 2 -> var = 2 * mean + 9
    model = estimate_noise_model(noisy)
    assert model.a == pytest.approx(2.0, rel=0.15)
    assert model.b == pytest.approx(9.0, abs=15.0)


def test_tagan_confocal_is_detected_as_nn_upsampled_photon_counts(shared_data):
    lq = read_image(shared_data / TAGAN / "lq" / "synprot_bassoon-homer_train_ch640.tif").data
    assert replication_factor(lq) == ((4, 3), (4, 3))  # pairs.csv: offset 3,3, x4
    assert replication_factor(read_image(shared_data / TAGAN / "lq" / "dendritic_factin_train804.tif").data) is None
    model = estimate_noise_model(lq)
    assert 0.7 < model.a < 1.3  # photon counting: variance ~ mean


def test_input_validation():
    with pytest.raises(ValueError, match="coarser grid"):
        data_consistency(restored=np.ones((10, 10)), lq=np.ones((20, 20)))
    with pytest.raises(ValueError, match="NaN"):
        data_consistency(restored=np.full((20, 20), np.nan), lq=np.ones((20, 20)))
    with pytest.raises(ValueError, match="spread_model"):
        data_consistency(restored=np.random.default_rng(0).random((32, 32)), lq=np.random.default_rng(1).random((32, 32)),
                         spread_model="nope")


def test_finer_restoration_is_integrated_onto_the_lq_grid(shared_data):
    lq = read_image(shared_data / TAGAN / "lq" / "synprot_psd95-bassoon_train_ch640.tif").data
    native = lq[3::4, 3::4][:60, :60].astype(float)  # the 60 nm acquisition
    fine = np.kron(native, np.ones((4, 4)))  # a "x4 restoration" that is exactly the input
    result = data_consistency(restored=fine, lq=native, psf=None)
    assert result.parameters["resampling"] == "block mean x4x4"
    assert result.scores["rse"] == pytest.approx(0.0, abs=1e-9)
    assert result.scores["flagged_fraction"] == 0.0


# ---------------------------------------------------------------------------------------------
# detection of planted hallucinations on real data
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_planted_blobs_are_flagged_and_clean_restorations_are_not(shared_data):
    from decongan.engine.optics.deconvolution import richardson_lucy

    cases = []
    for name in ("fov01", "fov02", "fov06", "fov11", "fov17", "fov19"):
        lq = read_image(shared_data / FMD / "lq" / f"{name}.png").data
        gt = read_image(shared_data / FMD / "hq" / f"{name}.png").data.astype(np.float64)
        cases.append((f"FMD {name}", lq, gt, None))
    psf = born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=620, pixel_nm=15, size=127, normalize="sum")
    for name in ("synprot_psd95-bassoon_train_ch640", "synprot_psd95-bassoon_valid_ch640"):
        lq = read_image(shared_data / TAGAN / "lq" / f"{name}.tif").data
        rl = richardson_lucy(lq.astype(np.float32), psf, iterations=30, edges="padded", device="cpu")
        cases.append((f"TA-GAN {name}", lq, rl, psf))

    total = hits = 0
    report = []
    for label, lq, restored, kernel in cases:
        clean = data_consistency(restored=restored, lq=lq, psf=kernel)
        planted, blobs = plant_blobs(restored, lq, kernel, clean.scores["gain"], seed=len(report))
        dirty = data_consistency(restored=planted, lq=lq, psf=kernel)
        found = detected(dirty, blobs)
        hits += found
        total += len(blobs)
        report.append((label, clean.scores["flagged_fraction"], found, len(blobs)))
        assert clean.scores["flagged_fraction"] <= 0.05, report[-1]  # false alarms on the unmodified output
        assert dirty.scores["unsupported_fraction"] > clean.scores["unsupported_fraction"], report[-1]
    assert hits / total >= 0.90, report
