"""One implementation of each shared numerical helper (issue 11): reflect-padded convolution,
MAD-based robust sigma, least-squares gain/offset; their orientation and numbers against known truths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve
from scipy.stats import norm

from decongan.engine.evaluate import consistency
from decongan.engine.learn import degrade
from decongan.engine.metrics import _common, beads, reference
from decongan.engine.optics import fft_conv
from decongan.engine.optics.fft_conv import convolve_reflect


def test_convolve_reflect_is_a_convolution_with_the_kernel_centre_at_k_over_2():
    rng = np.random.default_rng(0)
    image = rng.random((20, 30))
    # a delta at (c + 2, c - 1) of a 7 x 5 kernel (centre (3, 2)) moves the image by +2 rows, -1 column
    kernel = np.zeros((7, 5))
    kernel[5, 1] = 1.0
    out = convolve_reflect(image, kernel)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out[2:, :-1], image[:-2, 1:], atol=1e-6)
    # even-sized kernel: element k // 2 = 2 of a length-4 kernel is the origin
    kernel = np.zeros((1, 4))
    kernel[0, 3] = 1.0
    np.testing.assert_allclose(convolve_reflect(image, kernel)[:, 1:], image[:, :-1], atol=1e-6)


@pytest.mark.parametrize(("shape", "kshape"), [((37, 50), (13, 13)), ((37, 50), (4, 7)), ((5, 20, 21), (3, 6, 5)),
                                               ((6, 9), (31, 40))])
def test_convolve_reflect_equals_float64_reference(shape, kshape):
    rng = np.random.default_rng(1)
    image, kernel = rng.random(shape), rng.random(kshape)
    pads = [(k - 1 - k // 2, k // 2) for k in kshape]  # numpy "reflect", repeated when the kernel is wider
    expected = fftconvolve(np.pad(image, pads, mode="reflect"), kernel, mode="valid")
    np.testing.assert_allclose(convolve_reflect(image, kernel), expected, rtol=1e-5, atol=1e-6 * expected.max())
    np.testing.assert_allclose(convolve_reflect(image, kernel, normalize=True), expected / kernel.sum(),
                               rtol=1e-5, atol=1e-6 * expected.max() / kernel.sum())


def test_convolve_reflect_refuses_bad_kernels():
    with pytest.raises(ValueError, match="a 3-D kernel cannot convolve a 2-D image"):
        convolve_reflect(np.ones((4, 4)), np.ones((1, 3, 3)))
    with pytest.raises(ValueError, match="positive, finite sum"):
        convolve_reflect(np.ones((4, 4)), np.zeros((3, 3)), normalize=True)


def test_both_users_call_the_one_convolution(monkeypatch):
    assert consistency.convolve_reflect is fft_conv.convolve_reflect
    assert not hasattr(degrade, "_convolve_reflect")
    calls = []

    def spy(image, kernel, **kwargs):
        calls.append(kernel.shape)
        return convolve_reflect(image, kernel, **kwargs)

    monkeypatch.setattr(fft_conv, "convolve_reflect", spy)
    plane = np.random.default_rng(2).random((40, 40)) * 100
    degrade.born_wolf_degrade(plane, pixel_nm=200.0, psf_size=9, rng=np.random.default_rng(0))
    assert calls == [(9, 9)]


def test_robust_sigma_constant_and_value():
    assert _common.MAD_TO_SIGMA == pytest.approx(1.0 / norm.ppf(0.75), rel=1e-12)
    sample = np.random.default_rng(3).normal(5.0, 2.0, 400_000)
    assert _common.robust_sigma(sample) == pytest.approx(2.0, rel=0.01)
    assert _common.robust_sigma(np.array([])) == 0.0
    assert consistency._robust_sigma is _common.robust_sigma
    assert beads.robust_sigma is _common.robust_sigma


def test_gain_offset_fit_is_exact_in_float32_with_a_large_offset():
    model = np.linspace(0.0, 1.0, 2_000_001, dtype=np.float32).reshape(-1, 1)
    target = (3.5 * model.astype(np.float64) + 1000.0).astype(np.float32)
    gain, offset = _common.fit_gain_offset(model=model, target=target)
    assert gain == pytest.approx(3.5, rel=1e-5) and offset == pytest.approx(1000.0, rel=1e-6)
    mask = np.zeros(model.shape, dtype=bool)
    mask[::2] = True
    target_masked = target.copy()
    target_masked[~mask] = -1e6  # outside the mask: ignored
    assert _common.fit_gain_offset(model=model, target=target_masked, mask=mask)[0] == pytest.approx(3.5, rel=1e-5)
    # metrics' scale >= 0 fit and the consistency fit are the same function
    assert reference.fit_affine(prediction=model, target=-target) == (0.0, pytest.approx(-float(np.mean(target, dtype=np.float64))))
    assert consistency.fit_gain_offset is _common.fit_gain_offset
    with pytest.raises(ValueError, match="no pixels"):
        _common.fit_gain_offset(model=model, target=target, mask=np.zeros(model.shape, dtype=bool))
