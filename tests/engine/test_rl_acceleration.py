"""Accelerated Richardson-Lucy (Biggs-Andrews) reaches plain RL's likelihood in fewer iterations (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.io import MicroscopyImage
from decongan.engine.optics.deconvolution import richardson_lucy
from decongan.engine.optics.fft_conv import convolve_circular
from decongan.engine.optics.image_deconvolution import deconvolve_image
from decongan.engine.optics.psf import gaussian_psf
from decongan.engine.optics.request import DeconvolutionSettings
from decongan.engine.optics.rl_acceleration import poisson_log_likelihood


def _beads(shape: tuple[int, ...], psf: np.ndarray, seed: int = 1) -> np.ndarray:
    """Beads and a filament blurred with ``psf``, background 5 photons, Poisson noise."""
    rng = np.random.default_rng(seed)
    obj = np.zeros(shape, np.float32)
    n = 60 if len(shape) == 2 else 40
    index = tuple(rng.integers(4, s - 4, n) for s in shape)
    obj[index] = rng.uniform(200, 1000, n)
    obj[(slice(None),) * (len(shape) - 2) + (slice(shape[-2] // 4, 3 * shape[-2] // 4), shape[-1] // 2)] += 80
    return rng.poisson(convolve_circular(obj, psf, placement="centred") + 5).astype(np.float32)


PSF_2D = gaussian_psf(sigma_px=2.5, size=21, normalize="sum")


def test_the_likelihood_is_poissons_with_scipys_linear_convolution():
    """Known truth: for zero edges (odd PSF) RL's forward model is scipy's 'same' convolution; the
    log-likelihood equals scipy.stats' Poisson log-pmf summed, without the log(y!) term."""
    from scipy import signal, special, stats

    y = _beads((64, 64), PSF_2D)
    x = np.random.default_rng(2).uniform(1, 50, y.shape).astype(np.float32)
    blurred = signal.convolve(x.astype(np.float64), PSF_2D / PSF_2D.sum(dtype=np.float64), mode="same")
    expected = float(np.sum(stats.poisson.logpmf(y, blurred)) + np.sum(special.gammaln(y.astype(np.float64) + 1)))
    assert poisson_log_likelihood(y, x, PSF_2D, edges="zero") == pytest.approx(expected, rel=1e-12)
    # border=: only the interior counts (the same terms, cropped)
    inner = (slice(21, 43), slice(21, 43))
    interior = float(np.sum(stats.poisson.logpmf(y[inner], blurred[inner]))
                     + np.sum(special.gammaln(y[inner].astype(np.float64) + 1)))
    assert poisson_log_likelihood(y, x, PSF_2D, edges="zero", border=21) == pytest.approx(interior, rel=1e-12)
    with pytest.raises(ValueError, match="border 32 leaves nothing of an image of shape"):
        poisson_log_likelihood(y, x, PSF_2D, border=32)
    # RL climbs it: 5 more iterations never lower it
    steps = [poisson_log_likelihood(y, richardson_lucy(y, PSF_2D, iterations=k, edges="zero", initial=0.5,
                                                       device="cpu"), PSF_2D) for k in (5, 10, 15)]
    assert steps[0] < steps[1] < steps[2]
    with pytest.raises(ValueError, match="edges 'zero' or 'circular', got 'padded'"):
        poisson_log_likelihood(y, x, PSF_2D, edges="padded")


def test_biggs_reaches_50_plain_iterations_likelihood_in_at_most_a_third_of_them():
    """Measured: 16 accelerated iterations reach the log-likelihood of 50 plain ones (0.32x)."""
    y = _beads((128, 128), PSF_2D)
    options = {"edges": "zero", "initial": 0.5, "device": "cpu"}
    target = poisson_log_likelihood(y, richardson_lucy(y, PSF_2D, iterations=50, **options), PSF_2D)
    reached = None
    for k in range(1, 51):
        accelerated = richardson_lucy(y, PSF_2D, iterations=k, acceleration="biggs", **options)
        if poisson_log_likelihood(y, accelerated, PSF_2D) >= target:
            reached = k
            break
    assert reached is not None and reached <= 17, reached  # <= 0.5x asked for; 16 measured
    assert float(accelerated.min()) >= 0.0 and np.all(np.isfinite(accelerated))
    # plain RL after as many iterations is well below the target
    assert poisson_log_likelihood(y, richardson_lucy(y, PSF_2D, iterations=reached, **options), PSF_2D) < target


def test_the_first_two_accelerated_updates_are_plain_rl_bit_for_bit_and_none_is_the_default():
    y = _beads((48, 40), PSF_2D)
    for edges in ("circular", "padded", "zero"):
        plain = richardson_lucy(y, PSF_2D, iterations=2, edges=edges, device="cpu")
        assert np.array_equal(plain, richardson_lucy(y, PSF_2D, iterations=2, edges=edges, device="cpu",
                                                     acceleration="biggs"))
        assert np.array_equal(plain, richardson_lucy(y, PSF_2D, iterations=2, edges=edges, device="cpu",
                                                     acceleration="none"))
        # from the third update on it extrapolates: a different, non-negative image
        third = richardson_lucy(y, PSF_2D, iterations=6, edges=edges, device="cpu", acceleration="biggs")
        assert not np.array_equal(third, richardson_lucy(y, PSF_2D, iterations=6, edges=edges, device="cpu"))
        assert float(third.min()) >= 0.0


def test_accelerated_3d_padded_and_rltv_stay_finite_and_climb_faster():
    psf = gaussian_psf(sigma_px=1.5, size=11, nz=7, sigma_z_px=1.5, normalize="sum")
    y = _beads((16, 40, 40), psf)
    options = {"edges": "zero", "initial": 0.5, "device": "cpu", "iterations": 12}
    plain = poisson_log_likelihood(y, richardson_lucy(y, psf, **options), psf)
    fast = poisson_log_likelihood(y, richardson_lucy(y, psf, acceleration="biggs", **options), psf)
    assert fast > plain
    for method in ("rl", "rltv"):
        padded = richardson_lucy(y, psf, iterations=8, edges="padded", method=method, device="cpu", acceleration="biggs")
        assert padded.shape == y.shape and np.all(np.isfinite(padded)) and float(padded.min()) >= 0.0
        # the flux of the image is kept within a few percent, as plain RL keeps it
        assert abs(float(padded.sum()) / float(y.sum()) - 1) < 0.05


def test_acceleration_is_checked_recorded_and_labelled():
    with pytest.raises(ValueError, match="acceleration must be one of none, biggs, got 'fast'"):
        richardson_lucy(np.ones((8, 8), np.float32), np.ones((3, 3), np.float32), acceleration="fast")
    with pytest.raises(ValueError, match="tv_variant='dl2' reproduces DeconvolutionLab2's own iterations"):
        richardson_lucy(np.ones((8, 8), np.float32), np.ones((3, 3), np.float32), method="rltv",
                        tv_variant="dl2", acceleration="biggs")
    with pytest.raises(ValueError, match="acceleration must be one of none, biggs, got 'fast'"):
        DeconvolutionSettings(acceleration="fast")
    settings = DeconvolutionSettings(acceleration="biggs", iterations=5, device="cpu")
    assert settings.label() == "RL 5 it (padded edges, Biggs-Andrews accelerated)"
    image = MicroscopyImage(_beads((32, 32), PSF_2D), "YX")
    result = deconvolve_image(image, PSF_2D, **settings.as_options())
    assert result.provenance.method == settings.label()
    assert result.provenance.parameters["acceleration"] == "biggs"
    assert any("Biggs-Andrews" in note for note in result.provenance.notes)
    assert np.array_equal(result.image.data, richardson_lucy(image.data, PSF_2D, iterations=5, edges="padded",
                                                              device="cpu", acceleration="biggs"))
    plain = deconvolve_image(image, PSF_2D, iterations=5, device="cpu")
    assert "acceleration" not in plain.provenance.parameters and plain.provenance.method == "RL 5 it (padded edges)"
