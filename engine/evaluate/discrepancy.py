"""The no-reference stopping rule for Richardson-Lucy: the discrepancy principle.

Without calibration pairs (``engine.evaluate.tuning.default_tuning``) every RL step of a baseline stops by
the discrepancy principle. The noise of the input is modelled as Poisson-Gaussian,
``variance = a * mean + b``: the gain ``a`` and read-noise variance ``b`` are estimated from the image
itself by :func:`decongan.engine.evaluate.consistency.estimate_noise_model` (second differences binned
by local mean, a weighted line fit). RL then runs the smallest iteration count of
:data:`DISCREPANCY_GRID` at which the re-blurred estimate's chi^2 per pixel,
``mean((y - H x)^2 / (a * H x + b))``, has fallen to 1 or below (it starts above 1 and falls as RL fits
more of the data, noise included). The mean runs over the pixels whose modelled variance is at least
``a ** 2``, the variance of one detected photon in image units: below that Poisson counts are far from
Gaussian and the fitted intercept ``b`` (negative when the image has an intensity offset) decides the
variance, which would let a few dark pixels dominate the sum. ``H x`` is the engine's
reflect-padded convolution
(:func:`decongan.engine.evaluate.consistency.blur`), the forward model of the consistency map.

The rule is conservative: on a synthetic field of blobs (Gaussian PSF sigma 2 px, Poisson counts) it
stops after 5 iterations, where the error to the object is still falling (smallest near 50 iterations).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from decongan.engine.evaluate.tuning import TuningError
from decongan.engine.io import MicroscopyImage
from decongan.engine.optics.classical import BaselineSpec, restore_array
from decongan.engine.optics.request import DEFAULT_SETTINGS, DeconvolutionSettings

#: the iteration counts the discrepancy rule tries, in order (the first with chi^2 per pixel <= 1 wins)
DISCREPANCY_GRID: tuple[int, ...] = (1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200)


@dataclass
class Discrepancy:
    """What :func:`discrepancy_iterations` found.

    Attributes
    ----------
    iterations : int
        The chosen count.
    reached : bool
        False when chi^2 per pixel stayed above 1 up to the last count tried (then the last is used).
    chi2_per_pixel : dict of int to float
        Every count tried and its chi^2 per pixel.
    gain, read_variance : float
        The noise model ``variance = gain * mean + read_variance`` (image units, units squared).
    """

    iterations: int
    reached: bool
    chi2_per_pixel: dict[int, float]
    gain: float
    read_variance: float

    def as_dict(self) -> dict[str, Any]:
        """JSON form for provenance."""
        return {"rule": "discrepancy principle: first count with chi^2 per pixel <= 1",
                "iterations": self.iterations, "reached": self.reached,
                "chi2_per_pixel": {str(k): v for k, v in self.chi2_per_pixel.items()},
                "noise_model": {"gain": self.gain, "read_variance": self.read_variance,
                                "estimated_by": "engine.evaluate.consistency.estimate_noise_model"}}


def chi2_per_pixel(data: np.ndarray, estimate: np.ndarray, psf: np.ndarray, gain: float, read_variance: float) -> float:
    """``mean((y - H x)^2 / (gain * H x + read_variance))``: the data misfit of an estimate per pixel.

    Parameters
    ----------
    data : ndarray, shape (Y, X) or (Z, Y, X)
        Measured image ``y``.
    estimate : ndarray, shape of ``data``
        Restored object ``x``.
    psf : ndarray
        PSF of the system, same grid (normalised to sum 1 here).
    gain, read_variance : float
        Poisson-Gaussian noise model (image units, units squared). Only pixels whose modelled variance
        is at least ``gain ** 2`` (one detected photon) enter the mean (all pixels when ``gain`` is 0).

    Returns
    -------
    float
        About 1 when the residual is as large as the noise; below 1 when the estimate fits the noise.

    Raises
    ------
    TuningError
        No pixel is bright enough (an image of less than one photon per pixel).
    """
    from decongan.engine.evaluate.consistency import blur

    y = np.asarray(data, dtype=np.float64)
    reblurred = blur(estimate, psf).astype(np.float64)
    variance = gain * np.maximum(reblurred, 0.0) + read_variance
    usable = variance >= max(gain * gain, 1e-12)
    if not np.any(usable):
        raise TuningError("no pixel is bright enough for the discrepancy rule (modelled noise below one photon "
                          "everywhere)", value=(gain, read_variance))
    return float(np.mean((y[usable] - reblurred[usable]) ** 2 / variance[usable]))


def discrepancy_iterations(data: np.ndarray, psf: np.ndarray, spec: BaselineSpec | None = None, *,
                           grid: Sequence[int] = DISCREPANCY_GRID,
                           settings: DeconvolutionSettings = DEFAULT_SETTINGS) -> Discrepancy:
    """The RL iteration count chosen by the discrepancy principle (module docstring).

    Parameters
    ----------
    data : ndarray, shape (Y, X) or (Z, Y, X)
        Measured image (non-negative intensities).
    psf : ndarray
        PSF of the LQ system on the data's grid.
    spec : BaselineSpec, optional
        The RL baseline whose iterations are chosen (``rl``, ``rltv`` or a denoise+RL combination);
        default plain RL.
    grid : sequence of int
        Counts tried in increasing order.
    settings : DeconvolutionSettings
        RL settings other than iterations / TV weight.

    Returns
    -------
    Discrepancy

    Raises
    ------
    TuningError
        A noise model without variance (a constant image).
    """
    from decongan.engine.evaluate.consistency import estimate_noise_model

    spec = spec or BaselineSpec("rl")
    y = np.asarray(data, dtype=np.float32)
    model = estimate_noise_model(y)
    if not (model.a > 0 or model.b > 0) or not math.isfinite(model.a + model.b):
        raise TuningError("the image's noise could not be estimated (no variance); the discrepancy rule needs "
                          "a noisy measurement", value=(model.a, model.b))
    chi2: dict[int, float] = {}
    for k in grid:
        estimate = restore_array(spec.with_parameters(iterations=int(k)), y, psf, settings=settings)
        chi2[int(k)] = chi2_per_pixel(y, estimate, psf, model.a, model.b)
        if chi2[int(k)] <= 1.0:
            return Discrepancy(int(k), True, chi2, float(model.a), float(model.b))
    return Discrepancy(int(grid[-1]), False, chi2, float(model.a), float(model.b))


def discrepancy_spec(spec: BaselineSpec, image: MicroscopyImage, psf: np.ndarray | Sequence[np.ndarray], *,
                     settings: DeconvolutionSettings = DEFAULT_SETTINGS) -> tuple[BaselineSpec, dict[str, Any]]:
    """``spec`` with the iteration count the discrepancy rule picks for ``image`` (one count per image).

    Every block of the image (:func:`decongan.engine.optics.request.plan_blocks`: a plane or volume per
    time point and channel) gets its own count; the image runs with their median (the lower middle
    value for an even number of blocks).

    Parameters
    ----------
    spec : BaselineSpec
        A baseline with RL iterations.
    image : MicroscopyImage
        The LQ input (non-negative intensities).
    psf : ndarray or sequence of ndarray
        The PSF (or one per channel) on the image's grid.
    settings : DeconvolutionSettings
        RL settings other than iterations / TV weight.

    Returns
    -------
    spec : BaselineSpec
        With ``iterations`` set.
    record : dict
        For provenance: the rule, the count, and every block's :meth:`Discrepancy.as_dict`.
    """
    from decongan.engine.optics.request import block_psfs, plan_blocks

    psfs = [psf] if isinstance(psf, np.ndarray) else list(psf)
    plan = plan_blocks(image.axes, image.data.shape, [p.ndim for p in psfs])
    kernels, _ = block_psfs(plan, psfs)
    found = [discrepancy_iterations(image.data[b.index], kernels[b.channel], spec, settings=settings) for b in plan]
    count = int(statistics.median_low([d.iterations for d in found]))
    record = {"rule": "discrepancy principle: first count with chi^2 per pixel <= 1 (median over blocks)",
              "iterations": count, "blocks": [d.as_dict() for d in found]}
    return spec.with_parameters(iterations=count), record


__all__ = ["DISCREPANCY_GRID", "Discrepancy", "chi2_per_pixel", "discrepancy_iterations", "discrepancy_spec"]
