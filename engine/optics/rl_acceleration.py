"""Accelerated Richardson-Lucy (Biggs & Andrews vector extrapolation) and RL's Poisson log-likelihood.

Richardson-Lucy climbs the Poisson log-likelihood slowly and monotonically; Biggs & Andrews (1997,
Appl. Opt. 36:1766, "Acceleration of iterative image restoration algorithms") extrapolate along the
path it takes. First order, as used here::

    h_k      = x_k - x_{k-1}                      (the last step)
    y_k      = max(x_k + alpha_k h_k, 0)          (prediction; the positivity guard keeps RL's domain)
    x_{k+1}  = RL(y_k)                            (one ordinary update, from the prediction)
    g_k      = x_{k+1} - y_k                      (what the update changed)
    alpha_{k+1} = <g_k, g_{k-1}> / <g_{k-1}, g_{k-1}>, clamped to [0, MAX_ALPHA]

``alpha`` is 0 for the first two updates (it needs two ``g``), so ``acceleration="biggs"`` with 1 or
2 iterations is plain RL. It costs three more float32 buffers of the object's size and a few
element-wise passes per iteration (about a tenth of an iteration's FFTs in 3-D), and reaches a
given likelihood in a fraction of the iterations (``tests/engine/test_rl_acceleration.py``). It is
an option, off by default: the accelerated estimate after N iterations is a different (further
converged) image than plain RL's after N, so DeconvolutionLab2/scikit-image parity holds only
without it.

:func:`poisson_log_likelihood` measures where an estimate stands, under the same forward model
(edges, PSF placement and normalisation) as :func:`decongan.engine.optics.deconvolution.iter_richardson_lucy`,
in float64: how benchmarks compare "time to the same result".
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from decongan.engine.optics.request import ACCELERATIONS

Acceleration = Literal["none", "biggs"]
#: upper clamp of the extrapolation factor: strictly below 1, where the prediction would run away
MAX_ALPHA = 0.99


class BiggsAndrews:
    """First-order Biggs-Andrews extrapolation around RL updates, on torch tensors, in place.

    Call :meth:`predict` on the estimate before an RL update (it becomes the prediction ``y_k``)
    and :meth:`record` after it. ``alpha`` holds the last factor used.
    """

    def __init__(self) -> None:
        self.previous: Any = None  # x_{k-1}
        self.g_new: Any = None  # g_{k-1}
        self.g_old: Any = None  # g_{k-2}
        self.predicted: Any = None  # y_k while an update runs
        self.alpha = 0.0

    def _factor(self) -> float:
        import torch

        if self.g_new is None or self.g_old is None:
            return 0.0
        denominator = float(torch.dot(self.g_old.view(-1), self.g_old.view(-1)))
        if not denominator > 0:
            return 0.0
        alpha = float(torch.dot(self.g_new.view(-1), self.g_old.view(-1))) / denominator
        return min(max(alpha, 0.0), MAX_ALPHA) if np.isfinite(alpha) else 0.0

    def predict(self, x: Any) -> None:
        """Replace the estimate ``x`` (a torch tensor or view) by the prediction ``y_k``."""
        import torch

        if self.previous is None:  # first update: nothing to extrapolate from
            self.previous = x.clone(memory_format=torch.contiguous_format)
            self.predicted = self.previous.clone()
            return
        self.alpha = self._factor()
        step = self.g_old if self.g_old is not None else torch.empty_like(self.previous)  # g_{k-2} is spent
        self.g_old = None
        torch.sub(x, self.previous, out=step)  # h_k
        self.previous.copy_(x)
        if self.alpha > 0:
            x.add_(step, alpha=self.alpha).clamp_(min=0.0)
        self.predicted = step.copy_(x)

    def record(self, x: Any) -> None:
        """After the RL update: ``g_k = x_{k+1} - y_k``."""
        import torch

        change = torch.sub(x, self.predicted, out=self.predicted)
        self.g_old, self.g_new, self.predicted = self.g_new, change, None


def poisson_log_likelihood(image: np.ndarray, estimate: np.ndarray, psf: np.ndarray, *,
                           edges: Literal["circular", "zero"] = "zero", normalize_psf: bool = True,
                           border: int = 0) -> float:
    """Poisson log-likelihood of ``image`` given ``estimate`` blurred as the engine's RL blurs it.

    ``sum(y log(Hx) - Hx)`` over the image (the ``log y!`` term, which does not depend on the
    estimate, is left out), computed in float64; RL increases it at every iteration.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        The measured photon counts ``y`` (non-negative).
    estimate : ndarray, shape of ``image``
        The object estimate ``x`` (as returned by RL with the same ``edges``).
    psf : ndarray, same number of dimensions
        The PSF given to RL (normalised to sum 1 here unless ``normalize_psf`` is False).
    edges : {"zero", "circular"}
        RL's boundary model (``"padded"`` estimates an object larger than the image, which the
        returned estimate does not hold, so it cannot be scored here).
    normalize_psf : bool
        As in :func:`~decongan.engine.optics.deconvolution.iter_richardson_lucy`.
    border : int
        Pixels left out along every edge of the image (>= 0): with a border of at least the PSF
        size, only pixels whose blur comes from the estimate's interior count, where estimates made
        with different boundary models can be compared.

    Returns
    -------
    float
        The log-likelihood (nats); ``-inf`` where the blurred estimate is <= 0 under a count > 0.

    Raises
    ------
    ValueError
        Mismatched shapes or an edge model that cannot be scored.
    """
    from scipy import fft

    from decongan.engine.optics.deconvolution import _geometry

    y = np.asarray(image, dtype=np.float64)
    x = np.asarray(estimate, dtype=np.float64)
    if x.shape != y.shape or np.ndim(psf) != y.ndim:
        raise ValueError(f"image {y.shape}, estimate {x.shape} and a {np.ndim(psf)}-D PSF do not match")
    if edges not in ("zero", "circular"):
        raise ValueError(f"the likelihood can be scored for edges 'zero' or 'circular', got {edges!r}")
    from decongan.engine.optics.fft_conv import kernel_at_origin

    geo = _geometry(y.shape, np.asarray(psf, dtype=np.float32), edges)
    kernel = geo.kernel.astype(np.float64)
    if normalize_psf:
        kernel = kernel / kernel.sum()
    otf = fft.rfftn(kernel_at_origin(kernel, geo.canvas, geo.centre))
    canvas = np.zeros(geo.canvas)
    canvas[geo.obj] = x
    blurred = fft.irfftn(fft.rfftn(canvas) * otf, s=geo.canvas)[geo.data]
    if border:
        if border < 0 or 2 * border >= min(y.shape):
            raise ValueError(f"border {border} leaves nothing of an image of shape {y.shape}")
        inner = tuple(slice(border, n - border) for n in y.shape)
        y, blurred = y[inner], blurred[inner]
    counted = y > 0
    if np.any(blurred[counted] <= 0):
        return float("-inf")
    return float(np.sum(y[counted] * np.log(blurred[counted])) - np.sum(blurred))


__all__ = ["ACCELERATIONS", "MAX_ALPHA", "Acceleration", "BiggsAndrews", "poisson_log_likelihood"]
