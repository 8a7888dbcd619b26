"""Trust without ground truth: split the input's photons in two, restore each half, map the disagreement.

A restoration is only as trustworthy as it is stable. Two independent measurements of the same
object should restore to the same picture up to noise; where they do not, the method shows something
the photons do not pin down. Most users have no ground truth, but every image can be split into two
independent measurements after the fact, because photon counts split binomially.

Split-half map (:func:`split_half_map`)
---------------------------------------
1. **Gain and offset from the image itself** (:func:`estimate_photon_calibration`). The Poisson-Gaussian
   noise model ``variance = a * mean + b`` is fitted to the image
   (:func:`decongan.engine.evaluate.consistency.estimate_noise_model`: second differences, robust
   variance in 16 quantile bins of the 3 x 3 local mean, weighted line fit; measured on the native grid
   of nearest-neighbour upsampled data). The gain (intensity units per photon) is ``a``; the offset is
   where the fitted variance reaches zero, ``-b / a`` (a pure shot-noise model with a dark offset),
   kept between ``min(0, dark)`` and ``dark``, the image's 0.1th percentile: an offset above the
   darkest pixels is not physical, and a negative one would count photons in pixels that recorded
   none (photon-counting detectors, ``b > 0``: the rest of ``b`` is read or quantisation noise).
   Both can be given instead (e.g. a camera calibration); the result says which.
2. **Photon counts** ``n = round((image - offset) / gain)``, negative values set to 0 (their fraction
   is recorded). Nearest-neighbour upsampled images are split on their native grid and replicated
   back, so each acquired pixel's photons are split once.
3. **Binomial thinning**: ``n1 ~ Binomial(n, 1/2)`` from a seeded :func:`numpy.random.default_rng`,
   ``n2 = n - n1``. For Poisson counts, ``n1`` and ``n2`` are independent Poisson images with half the
   mean each. Each half is returned to the input's intensity units at the input's brightness,
   ``offset + 2 * gain * n_k`` (float32), so a method calibrated on the full image (a GAN's dataset
   normalisation, an RL background) sees familiar intensities; it sees twice the relative noise.
4. **Restore each half** with the same method (any callable image -> image: Richardson-Lucy through
   the engine, a GAN through its inference, a classical denoiser).
5. **Disagreement map** of the two restorations (:func:`engine.evaluate.disagreement.disagreement_map`).

Step 5 uses :mod:`engine.evaluate.disagreement` with the input as intensity reference and, as noise
floor, **the method's own spread at one photon per pixel**: the robust spread of each (filtered)
deviation divided by the square root of the input's local photon count, over pixels with at least 4
photons (the identity's ``2 x gain`` when fewer than 200 such pixels exist). A disagreement smaller
than one photon's worth of noise, as the method passes it, is never flagged.

Thresholds
----------
The defaults (``threshold`` 5, ``detection_sigma_px`` 1 px) were measured on real data in
tests/engine/test_split_half.py: FMD confocal single frames and TA-GAN confocal images, restored by a
Gaussian filter or by the engine's Richardson-Lucy; the test states its recall and false-flag
thresholds and prints the measured numbers.

What it cannot see
------------------
A hallucination that a method produces *stably* (the same invented texture from both halves; a GAN
that always paints the same pattern for a given input class) is not flagged: the split-half map
measures instability, not truth. It also measures the method at half the photons, where it is
noisier than on the full image, so its flags are conservative for the full-dose result. Systematic
error (blur, a wrong PSF) is the same in both halves and is not flagged either: on FMD the map's
correlation with a Gaussian filter's true error is 0.25-0.37, below the input intensity's own 0.93-0.96.
Pair it with the data-consistency map (is the result supported by the input?) and the domain check.
The gain estimate needs enough pixels and structure: single 130 x 133 planes of the nucleus widefield
stack give 0.23-1.38 units/photon, the whole stack 0.29; split whole stacks, or give the camera's gain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from decongan.engine.evaluate.consistency import (
    _as_float,
    _clipped_sigma,
    estimate_noise_model,
    replication_factor,
)
from decongan.engine.evaluate.disagreement import (
    DEFAULT_DETECTION_SIGMA_PX,
    DEFAULT_THRESHOLD,
    DisagreementError,
    DisagreementResult,
    _disagreement,
    _lateral,
    _white_floor,
    disagreement_map,
)

#: The split-half floor is measured on pixels with at least this many photons (local mean) ...
MIN_FLOOR_PHOTONS = 4.0
#: ... when there are at least this many of them (else the identity's shot noise at one photon).
MIN_FLOOR_PIXELS = 200
#: Percentile of the image above which a fitted offset is capped (module docstring, step 1).
OFFSET_CAP_PERCENTILE = 0.1

Restorer = Callable[[np.ndarray], np.ndarray]  #: what a split-half map applies to each half (float32 in)


class SplitHalfError(DisagreementError):
    """The split-half map cannot be computed for this input."""


@dataclass(frozen=True)
class PhotonCalibration:
    """How image intensities map to photon counts: ``counts = (image - offset) / gain``.

    Attributes
    ----------
    gain : float
        Intensity units per photon (> 0).
    offset : float
        Intensity of zero photons (intensity units).
    read_variance : float
        Signal-independent variance left in the noise model after the offset (intensity units squared).
    method : str
        How ``gain`` and ``offset`` were obtained, in words.
    """

    gain: float
    offset: float
    read_variance: float
    method: str

    def as_dict(self) -> dict[str, Any]:
        """The calibration as JSON-ready numbers and text (keys ``gain``, ``offset``, ``read_variance``, ``method``)."""
        return {"gain": self.gain, "offset": self.offset, "read_variance": self.read_variance, "method": self.method}


def estimate_photon_calibration(image: np.ndarray) -> PhotonCalibration:
    """Estimate the gain and offset of ``image`` from its own noise (module docstring, step 1).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        A raw measurement in its recorded intensity units (not a restoration, not rescaled).

    Returns
    -------
    PhotonCalibration

    Raises
    ------
    SplitHalfError
        When the noise does not grow with intensity (no shot noise to measure a gain from).
    """
    img = _as_float("image", image)
    noise = estimate_noise_model(img)
    if not noise.a > 0:
        raise SplitHalfError("the image's noise does not grow with its intensity, so no photon gain can be "
                             "estimated from it (already denoised, rescaled or clipped?); give the detector's gain "
                             "and offset explicitly", value=noise.a)
    zero_variance = -noise.b / noise.a
    dark = float(np.percentile(img, OFFSET_CAP_PERCENTILE))
    offset = min(max(zero_variance, min(0.0, dark)), dark)
    read_variance = max(0.0, noise.b + noise.a * offset)
    if offset == zero_variance:
        which = "the intensity where the fitted variance reaches zero"
    elif offset == dark:
        which = (f"the image's {OFFSET_CAP_PERCENTILE}th percentile (the fitted zero-variance intensity "
                 f"{zero_variance:.4g} lies above the darkest pixels)")
    else:
        which = (f"{offset:.4g} (the fitted zero-variance intensity {zero_variance:.4g} is negative: the variance "
                 "left at zero intensity is taken as read noise)")
    how = (f"gain = slope of the Poisson-Gaussian noise fit variance = {noise.a:.4g} * mean + {noise.b:.4g} "
           f"(second differences in quantile bins of the local mean, estimated from the image itself); offset = "
           f"{which}")
    return PhotonCalibration(gain=float(noise.a), offset=float(offset), read_variance=float(read_variance), method=how)


def _block_labels(n: int, factor: int, start: int) -> np.ndarray:
    labels = (np.arange(n) - start) // factor
    return labels - labels[0]


def split_photons(image: np.ndarray, calibration: PhotonCalibration, *, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Split ``image`` into two independent half-dose images by binomial thinning (steps 2-3).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        The raw measurement (intensity units).
    calibration : PhotonCalibration
        Gain and offset of the detector (:func:`estimate_photon_calibration` or known values).
    seed : int
        Seed of the :func:`numpy.random.default_rng` that draws the thinning.

    Returns
    -------
    first, second : ndarray, float32, shape of ``image``
        ``offset + 2 * gain * n_k``: each half at the input's brightness (intensity units).
    record : dict
        ``seed``, ``clipped_fraction`` (pixels below the offset, counted as 0 photons),
        ``mean_counts`` (photons per pixel of the input), ``native_grid`` (the block factors when a
        nearest-neighbour upsampled image was split on its acquired grid, else None).

    Raises
    ------
    SplitHalfError
        When the gain is not positive and finite.
    """
    img = _as_float("image", image)
    gain, offset = float(calibration.gain), float(calibration.offset)
    if not (np.isfinite(gain) and gain > 0 and np.isfinite(offset)):
        raise SplitHalfError(f"the photon gain must be positive and finite and the offset finite; got gain {gain}, "
                             f"offset {offset}", value=(gain, offset))
    block = replication_factor(img)
    native = img
    rows = cols = None
    if block is not None:
        (ky, oy), (kx, ox) = block
        rows = _block_labels(img.shape[-2], ky, oy)
        cols = _block_labels(img.shape[-1], kx, ox)
        first_row = np.unique(rows, return_index=True)[1]
        first_col = np.unique(cols, return_index=True)[1]
        native = img[..., first_row[:, None], first_col[None, :]]
    counts = np.rint((native.astype(np.float64) - offset) / gain)
    clipped = float(np.mean(counts < 0))
    counts = np.maximum(counts, 0).astype(np.int64)
    rng = np.random.default_rng(seed)
    first_n = rng.binomial(counts, 0.5)
    halves = []
    for n in (first_n, counts - first_n):
        half = (offset + 2.0 * gain * n).astype(np.float32)
        if rows is not None and cols is not None:
            half = half[..., rows[:, None], cols[None, :]]
        halves.append(half)
    record = {"seed": int(seed), "clipped_fraction": clipped, "mean_counts": float(counts.mean()),
              "native_grid": None if block is None else [list(block[0]), list(block[1])]}
    return halves[0], halves[1], record



def _photon_disagreement(restored: list[np.ndarray], image: np.ndarray, calibration: PhotonCalibration, *,
                         threshold: float, detection_sigma_px: float, min_area_px: int | None) -> DisagreementResult:
    """Halves on the input's grid: spread binned by the input, floor = the method's spread at one photon."""
    from scipy.ndimage import gaussian_filter

    arrays = [_as_float(f"restoration of half {k + 1}", r) for k, r in enumerate(restored)]
    if arrays[0].shape != arrays[1].shape:
        raise SplitHalfError(f"the two halves were restored to different shapes {arrays[0].shape}, {arrays[1].shape}")
    local = gaussian_filter(image, _lateral(image.ndim, max(1.0, detection_sigma_px)), mode="reflect")
    photons = np.maximum((local - calibration.offset) / calibration.gain, 0.0)
    bright = photons >= MIN_FLOOR_PHOTONS
    root = np.sqrt(photons[bright])
    identity = _white_floor(2.0 * float(calibration.gain))
    used: dict[float, str] = {}

    def floor_at(values: np.ndarray, scale: float) -> float:
        # the method's own spread per square-root photon (identity shot noise of d: 2 g sqrt(photons)), at one photon
        if bright.sum() >= MIN_FLOOR_PIXELS:
            used[scale] = "measured"
            return _clipped_sigma(values[bright] / root)
        used[scale] = "identity"
        return identity(values, scale)

    result = _disagreement(arrays, local, floor_at, threshold=threshold, detection_sigma_px=detection_sigma_px,
                           min_area_px=min_area_px)
    measured = all(v == "measured" for v in used.values())
    result.parameters.update({
        "noise_floor": floor_at(arrays[0] - arrays[1], 0.0),
        "noise_floor_how": (
            f"the method's spread at one photon per pixel: robust spread of each (filtered) deviation divided by the "
            f"square root of the input's local photon count, over pixels with >= {MIN_FLOOR_PHOTONS:g} photons"
            if measured else f"2 x gain (identity shot noise at one photon; fewer than {MIN_FLOOR_PIXELS} pixels "
            f"with >= {MIN_FLOOR_PHOTONS:g} photons to measure the method's own)"),
        "spread_model": result.parameters["spread_model"] + "the input's local intensity",
    })
    return result


def split_half_map(
    image: np.ndarray,
    restore: Restorer,
    *,
    gain: float | None = None,
    offset: float | None = None,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    detection_sigma_px: float = DEFAULT_DETECTION_SIGMA_PX,
    min_area_px: int | None = None,
) -> DisagreementResult:
    """Split the input's photons in two, restore each half, and map where the restorations disagree.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        The raw measurement in its recorded intensity units.
    restore : callable
        The restoration method, ``restore(half) -> restored``: a float32 image of ``image``'s shape in,
        an image out (same shape for both halves; any grid). Called twice, first half first.
    gain, offset : float, optional
        Detector gain (intensity units per photon) and offset. Both None: estimated from the image
        (:func:`estimate_photon_calibration`); give both or neither.
    seed : int
        Seed of the binomial thinning.
    threshold, detection_sigma_px, min_area_px
        As in :func:`disagreement_map`.

    Returns
    -------
    DisagreementResult
        Its ``parameters`` add ``calibration`` (gain, offset, read variance, method), ``split``
        (seed, clipped fraction, mean counts, native grid) and ``halves``.

    Raises
    ------
    SplitHalfError
        When only one of gain and offset is given, no gain can be estimated, or the two restorations
        differ in shape.
    """
    if (gain is None) != (offset is None):
        raise SplitHalfError("give both the detector gain and offset, or neither (then both are estimated from "
                             "the image)", value=(gain, offset))
    if gain is None or offset is None:
        calibration = estimate_photon_calibration(image)
    else:
        calibration = PhotonCalibration(gain=float(gain), offset=float(offset), read_variance=float("nan"),
                                        method="gain and offset given by the caller")
    first, second, record = split_photons(image, calibration, seed=seed)
    return halves_disagreement(image=image, first=restore(first), second=restore(second), calibration=calibration,
                               record=record, threshold=threshold, detection_sigma_px=detection_sigma_px,
                               min_area_px=min_area_px)


def halves_disagreement(
    *,
    image: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    calibration: PhotonCalibration,
    record: dict[str, Any],
    threshold: float = DEFAULT_THRESHOLD,
    detection_sigma_px: float = DEFAULT_DETECTION_SIGMA_PX,
    min_area_px: int | None = None,
) -> DisagreementResult:
    """The disagreement map of two restored halves (step 5), with the split's record in its parameters.

    Every argument is keyword-only (the input and its two restorations play different roles).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        The measurement the halves were split from (bins the expected spread when the restorations are
        on its grid).
    first, second : ndarray, same shape
        The restorations of the first and second half (:func:`split_photons`).
    calibration : PhotonCalibration
        The gain and offset used for the split; ``2 * gain`` (the deviation one photon per pixel of
        shot noise makes between the halves) is the map's noise floor.
    record : dict
        :func:`split_photons`' record.
    threshold, detection_sigma_px, min_area_px
        As in :func:`disagreement_map`.

    Returns
    -------
    DisagreementResult
    """
    restored = [np.asarray(first), np.asarray(second)]
    if restored[0].shape != np.shape(image):  # another grid (e.g. super-resolution): the generic floor
        result = disagreement_map(restored, threshold=threshold, detection_sigma_px=detection_sigma_px,
                                  min_area_px=min_area_px)
    else:
        result = _photon_disagreement(restored, _as_float("image", image), calibration, threshold=threshold,
                                      detection_sigma_px=detection_sigma_px, min_area_px=min_area_px)
    result.parameters.update({
        "calibration": calibration.as_dict(), "split": record,
        "halves": "binomial thinning p = 0.5 of the photon counts; each half rescaled to the input's brightness "
                  "(offset + 2 * gain * counts) and restored by the same method",
    })
    return result
