"""Trust without ground truth: split-half maps and the disagreement of several restorations.

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
5. **Disagreement map** of the two restorations (:func:`disagreement_map`, below).

Disagreement map (:func:`disagreement_map`)
-------------------------------------------
For restorations ``R_1 .. R_K`` of the same input (the two halves, or several models or seeds):

1. Each member's deviation from the mean of the others, ``d_k = R_k - mean_{j != k} R_j`` (for two,
   only ``d_1 = R_1 - R_2``: ``d_2 = -d_1``).
2. **Expected spread**: the robust spread of ``d_k`` (standard deviation after 3-sigma clipping) in 16
   quantile bins of the ensemble mean's local intensity (smoothed at the detection scale), made
   non-decreasing with intensity and interpolated (the spread model of the consistency map,
   :mod:`decongan.engine.evaluate.consistency`). It holds the photon noise as the method propagates
   it, so only disagreement that is unusual for its brightness stands out. ``z_k = d_k / spread``.
3. **Detection**: unstable invented structure is spatially coherent, noise much less so. ``z_k`` is
   band-passed (trends wider than 4x the largest filter, at least 10 px, removed), then matched
   Gaussian filters for structures of intrinsic size 0, 2 and 4 px seen at ``detection_sigma_px``
   are applied to the deviation, and each filtered map is divided by *its own* expected spread (the
   binned robust spread of step 2, measured on the filtered map): this absorbs the noise correlation
   a restoration introduces, and smoothing first makes the sparse, zero-inflated noise of faint
   photon counts nearly Gaussian, where a per-pixel spread collapses to zero. A pixel is flagged where,
   at some scale, this significance exceeds ``threshold``. Components smaller than ``min_area_px``
   are dropped. 3-D
   stacks are filtered plane by plane (lateral filters only). With more than two members the
   flagged maps of all members are united and the detection map keeps the member of largest
   magnitude.

Scores and thresholds
---------------------
``flagged_fraction`` is the fraction of pixels flagged. The defaults (``threshold`` 5, ``detection_sigma_px``
1 px) were measured on real data in tests/engine/test_split_half.py: FMD
confocal single frames and TA-GAN confocal images, restored by a Gaussian filter or by the engine's
Richardson-Lucy; the test states its recall and false-flag thresholds and prints the measured numbers.

What it cannot see
------------------
A hallucination that a method produces *stably* (the same invented texture from both halves; a GAN
that always paints the same pattern for a given input class) is not flagged: the split-half map
measures instability, not truth. It also measures the method at half the photons, where it is
noisier than on the full image, so its flags are conservative for the full-dose result. Pair it with
the data-consistency map (is the result supported by the input?) and the domain check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.evaluate.consistency import (
    BACKGROUND_SCALE,
    DETECTION_EXTRA_SIZES_PX,
    _as_float,
    _remove_small,
    _spread_model,
    estimate_noise_model,
    replication_factor,
)

#: Default detection threshold on the matched-filtered, robustly normalised disagreement.
DEFAULT_THRESHOLD = 5.0
#: Default lateral sigma (pixels of the restored grid) of the smallest matched filter.
DEFAULT_DETECTION_SIGMA_PX = 1.0
#: Default noise floor of a disagreement map, as a fraction of the ensemble's bright-structure level.
DEFAULT_FLOOR_FRACTION = 0.01
#: Percentile of the image above which a fitted offset is capped (module docstring, step 1).
OFFSET_CAP_PERCENTILE = 0.1

Restorer = Callable[[np.ndarray], np.ndarray]  #: what a split-half map applies to each half (float32 in)


class SplitHalfError(DeconganError, ValueError):
    """The split-half or disagreement map cannot be computed for these inputs."""


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


@dataclass
class DisagreementResult:
    """Output of :func:`disagreement_map` and :func:`split_half_map` (arrays on the restorations' grid).

    Attributes
    ----------
    zmap : ndarray, float32
        Normalised disagreement ``d / spread`` (dimensionless; for more than two members, the member
        deviation of largest magnitude). Negative where the first member (the first half) is darker.
    detection : ndarray, float32
        Matched-filtered, robustly normalised ``zmap`` (significance, dimensionless).
    flagged : ndarray of bool
        Pixels where the restorations disagree beyond what noise explains.
    flagged_fraction : float
        ``flagged.mean()``.
    parameters : dict
        Threshold, filters, minimum area, members; for a split-half map also calibration, seed, halves.
    """

    zmap: np.ndarray
    detection: np.ndarray
    flagged: np.ndarray
    flagged_fraction: float
    parameters: dict[str, Any] = field(default_factory=dict)


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


def _lateral(ndim: int, sigma: float) -> float | tuple[float, float, float]:
    return (0.0, sigma, sigma) if ndim == 3 else sigma


def _normalised(values: np.ndarray, local: np.ndarray, floor: float) -> np.ndarray:
    """``values`` divided by their binned robust spread at each local intensity (at least ``floor``)."""
    spread = _spread_model(values, local, np.float32(floor))
    out = np.zeros(values.shape, dtype=np.float32)
    np.divide(values, spread, out=out, where=spread > 0)
    return out


def _detect(deviation: np.ndarray, local: np.ndarray, *, sigma_det: float, threshold: float, floor: float
            ) -> tuple[np.ndarray, np.ndarray, list[float], float]:
    """Band-pass and matched-filter ``deviation``; normalise each scale by its binned robust spread.

    Returns (significance, candidates, scales, background sigma).
    """
    from scipy.ndimage import gaussian_filter

    scales = sorted({round(float(np.hypot(sigma_det, extra)), 3) for extra in DETECTION_EXTRA_SIZES_PX})
    sigma_bg = max(BACKGROUND_SCALE * scales[-1], 10.0)
    highpass = deviation - gaussian_filter(deviation, _lateral(deviation.ndim, sigma_bg), mode="reflect")
    detection = np.zeros_like(deviation)
    candidates = np.zeros(deviation.shape, dtype=bool)
    for scale in scales:
        filtered = gaussian_filter(highpass, _lateral(deviation.ndim, scale), mode="reflect")
        # the filtered deviation's own spread at each brightness: holds the noise as the restoration
        # correlates it, and smoothing makes sparse photon noise (zero-inflated counts) near-Gaussian
        # a Gaussian of sigma s (sum 1) scales white noise by sqrt(sum w^2) = 1 / (2 sqrt(pi) s) per plane
        significance = _normalised(filtered, local, floor / (2.0 * np.sqrt(np.pi) * scale))
        candidates |= np.abs(significance) > threshold
        detection = np.where(np.abs(significance) > np.abs(detection), significance, detection)
    return detection.astype(np.float32, copy=False), candidates, scales, sigma_bg


def disagreement_map(
    restorations: Sequence[np.ndarray],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    detection_sigma_px: float = DEFAULT_DETECTION_SIGMA_PX,
    min_area_px: int | None = None,
    noise_floor: float | None = None,
    intensity: np.ndarray | None = None,
) -> DisagreementResult:
    """Map where several restorations of one input disagree beyond what noise explains.

    Parameters
    ----------
    restorations : sequence of ndarray, each shape (Y, X) or (Z, Y, X), all the same shape
        Two or more restorations of the same input (two halves, several models or seeds), in the same
        intensity units.
    threshold : float
        Detection threshold on the matched-filtered, robustly normalised disagreement (default 5).
    detection_sigma_px : float
        Lateral sigma (pixels) of the smallest matched filter (default 1).
    min_area_px : int, optional
        Smallest flagged component kept (pixels or voxels). Default: half the area of a disc of
        radius ``detection_sigma_px``, at least 4.
    noise_floor : float, optional
        Smallest expected per-pixel spread of a member's deviation (intensity units): disagreement
        below it never counts, however quiet the region (empty background, where restorations are
        near zero and their tiny differences would otherwise look significant). Scaled for each
        matched filter as white noise would be. Default: 1 % of the ensemble mean's bright-structure
        level (99.9th percentile minus median).
    intensity : ndarray, optional
        The image whose local intensity bins the expected spread, on the restorations' grid (e.g. the
        input they were restored from). Default: the ensemble mean. The input is better: invented
        structure is not in it, so it cannot move itself into a brighter, noisier bin.

    Returns
    -------
    DisagreementResult
        Maps as float32 (and bool) on the restorations' grid; see the module docstring.

    Raises
    ------
    SplitHalfError
        Fewer than two restorations, differing shapes, or non-positive parameters.
    """
    from scipy.ndimage import gaussian_filter

    if len(restorations) < 2:
        raise SplitHalfError(f"a disagreement map needs at least two restorations; got {len(restorations)}")
    arrays = [_as_float(f"restoration {k + 1}", r) for k, r in enumerate(restorations)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise SplitHalfError(f"the restorations differ in shape {sorted(shapes)}; restore the same input on one grid",
                             value=sorted(shapes))
    if not threshold > 0 or not detection_sigma_px > 0:
        raise SplitHalfError(f"the threshold and the detection sigma must be > 0; got {threshold}, {detection_sigma_px}")
    count = len(arrays)
    total = np.sum(arrays, axis=0, dtype=np.float32)
    if intensity is None:
        reference, binned_by = total / count, "the ensemble mean's local intensity"
    else:
        reference = _as_float("intensity reference", intensity)
        if reference.shape != total.shape:
            raise SplitHalfError(f"the intensity reference {reference.shape} and the restorations {total.shape} differ "
                                 "in shape; give it on the restorations' grid or not at all", value=reference.shape)
        binned_by = "the input's local intensity"
    local = gaussian_filter(reference, _lateral(total.ndim, max(1.0, detection_sigma_px)), mode="reflect")
    if noise_floor is None:
        floor = DEFAULT_FLOOR_FRACTION * float(np.percentile(local, 99.9) - np.median(local))
        floor_how = f"{DEFAULT_FLOOR_FRACTION:g} x the ensemble mean's bright-structure level (99.9th percentile - median)"
    elif noise_floor >= 0 and np.isfinite(noise_floor):
        floor, floor_how = float(noise_floor), "given by the caller"
    else:
        raise SplitHalfError(f"the noise floor must be finite and >= 0; got {noise_floor}", value=noise_floor)
    members = [0] if count == 2 else list(range(count))
    zmap = np.zeros_like(total)
    detection = np.zeros_like(total)
    candidates = np.zeros(total.shape, dtype=bool)
    scales: list[float] = []
    sigma_bg = 0.0
    for k in members:
        deviation = arrays[k] - (total - arrays[k]) / (count - 1)
        z = _normalised(deviation, local, floor)
        det, cand, scales, sigma_bg = _detect(deviation, local, sigma_det=detection_sigma_px, threshold=threshold,
                                              floor=floor)
        candidates |= cand
        larger = np.abs(det) > np.abs(detection)
        detection = np.where(larger, det, detection)
        zmap = np.where(np.abs(z) > np.abs(zmap), z, zmap)
    if min_area_px is None:
        min_area_px = max(4, int(round(0.5 * np.pi * detection_sigma_px ** 2)))
    flagged = _remove_small(candidates, int(min_area_px))
    parameters = {
        "members": count, "threshold": float(threshold),
        "detection_sigma_px": float(detection_sigma_px), "detection_scales_px": [float(s) for s in scales],
        "background_sigma_px": float(sigma_bg), "min_area_px": int(min_area_px),
        "noise_floor": floor, "noise_floor_how": floor_how,
        "spread_model": "robust spread of each member's deviation from the others (and of each matched-filtered "
                        f"deviation), in 16 quantile bins of {binned_by}",
    }
    return DisagreementResult(zmap=zmap.astype(np.float32, copy=False), detection=detection.astype(np.float32),
                              flagged=flagged, flagged_fraction=float(flagged.mean()), parameters=parameters)


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
    return halves_disagreement(image, restore(first), restore(second), calibration, record, threshold=threshold,
                               detection_sigma_px=detection_sigma_px, min_area_px=min_area_px)


def halves_disagreement(
    image: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    calibration: PhotonCalibration,
    record: dict[str, Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    detection_sigma_px: float = DEFAULT_DETECTION_SIGMA_PX,
    min_area_px: int | None = None,
) -> DisagreementResult:
    """The disagreement map of two restored halves (step 5), with the split's record in its parameters.

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
    same_grid = restored[0].shape == np.shape(image)
    result = disagreement_map(restored, threshold=threshold, detection_sigma_px=detection_sigma_px,
                              min_area_px=min_area_px, noise_floor=2.0 * float(calibration.gain),
                              intensity=np.asarray(image) if same_grid else None)
    result.parameters.update({
        "noise_floor_how": "2 x gain: the deviation one photon per pixel of shot noise makes between the halves "
                           "(a disagreement below it is never flagged)",
        "calibration": calibration.as_dict(), "split": record,
        "halves": "binomial thinning p = 0.5 of the photon counts; each half rescaled to the input's brightness "
                  "(offset + 2 * gain * counts) and restored by the same method",
    })
    return result
