"""Where several restorations of one input disagree beyond what noise explains.

The restorations are the two photon halves of one image (:mod:`engine.evaluate.split_half`), or
several models or seeds applied to the same input. Stable methods give the same picture up to noise;
where they do not, what is shown is not pinned down by the data.

Algorithm (:func:`disagreement_map`)
------------------------------------
For restorations ``R_1 .. R_K`` of the same input:

1. Each member's deviation from the mean of the others, ``d_k = R_k - mean_{j != k} R_j`` (for two,
   only ``d_1 = R_1 - R_2``: ``d_2 = -d_1``).
2. **Expected spread**: the robust spread of ``d_k`` (standard deviation after 3-sigma clipping) in 16
   quantile bins of a local intensity (the input's when given, else the ensemble mean's; smoothed at
   the detection scale), made non-decreasing with intensity and interpolated (the spread model of
   the consistency map, :mod:`engine.evaluate.consistency`). It holds the noise as the method
   propagates it, so only disagreement that is unusual for its brightness stands out. The input is
   the better reference: invented structure is not in it, so it cannot move itself into a brighter,
   noisier bin. The spread never falls below a **noise floor** (empty background, where restorations
   are near zero and their tiny differences would otherwise look significant): by default 1 % of the
   ensemble's bright-structure level (99.9th percentile minus median), scaled for each filter as
   white noise; for split halves the method's own spread at one photon per pixel (see there).
   ``z_k = d_k / spread``.
3. **Detection**: unstable invented structure is spatially coherent, noise much less so. ``d_k`` is
   band-passed (trends wider than 4x the largest filter, at least 10 px, removed), then matched
   Gaussian filters for structures of intrinsic size 0, 2 and 4 px seen at ``detection_sigma_px``
   are applied, and each filtered map is divided by *its own* expected spread (step 2, measured on
   the filtered map): this absorbs the noise correlation a restoration introduces, and smoothing
   first makes the sparse, zero-inflated noise of faint photon counts nearly Gaussian, where a
   per-pixel spread collapses to zero. A pixel is flagged where, at some scale, this significance
   exceeds ``threshold``. Components smaller than ``min_area_px`` are dropped. 3-D stacks are
   filtered plane by plane (lateral filters only). With more than two members the flagged maps of
   all members are united and the detection map keeps the member of largest magnitude.

``flagged_fraction`` is the fraction of pixels flagged. The defaults (``threshold`` 5,
``detection_sigma_px`` 1 px) were measured on real data in tests/engine/test_split_half.py, which
states its recall and false-flag thresholds and prints the measured numbers.
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
)

#: Default detection threshold on the matched-filtered, robustly normalised disagreement.
DEFAULT_THRESHOLD = 5.0
#: Default lateral sigma (pixels of the restored grid) of the smallest matched filter.
DEFAULT_DETECTION_SIGMA_PX = 1.0
#: Default noise floor of a disagreement map, as a fraction of the ensemble's bright-structure level.
DEFAULT_FLOOR_FRACTION = 0.01


class DisagreementError(DeconganError, ValueError):
    """A disagreement map cannot be computed for these inputs."""


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
    member_fractions : list of float
        Per member (in the order given), the fraction of pixels where *that* member departs from the
        others beyond noise: flagged for it, with its significance the largest of all members (two
        members: both equal ``flagged_fraction``, the departure cannot be attributed).
    """

    zmap: np.ndarray
    detection: np.ndarray
    flagged: np.ndarray
    flagged_fraction: float
    parameters: dict[str, Any] = field(default_factory=dict)
    member_fractions: list[float] = field(default_factory=list)


def _lateral(ndim: int, sigma: float) -> float | tuple[float, float, float]:
    return (0.0, sigma, sigma) if ndim == 3 else sigma


def _normalised(values: np.ndarray, local: np.ndarray, floor: float) -> np.ndarray:
    """``values`` divided by their binned robust spread at each local intensity (at least ``floor``)."""
    spread = _spread_model(values, local, np.float32(floor))
    out = np.zeros(values.shape, dtype=np.float32)
    np.divide(values, spread, out=out, where=spread > 0)
    return out


FloorAt = Callable[[np.ndarray, float], float]  # (values, filter sigma px; 0 = unfiltered) -> floor


def _white_floor(floor: float) -> FloorAt:
    """A per-pixel floor scaled for each filter as white noise: sum w^2 = 1 / (4 pi s^2) for a 2-D Gaussian."""
    return lambda values, scale: floor / (2.0 * np.sqrt(np.pi) * scale) if scale > 0 else floor


def _detect(deviation: np.ndarray, local: np.ndarray, *, sigma_det: float, threshold: float, floor_at: FloorAt
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
        significance = _normalised(filtered, local, floor_at(filtered, scale))
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
    DisagreementError
        Fewer than two restorations, differing shapes, or non-positive parameters.
    """
    from scipy.ndimage import gaussian_filter

    if len(restorations) < 2:
        raise DisagreementError(f"a disagreement map needs at least two restorations; got {len(restorations)}")
    arrays = [_as_float(f"restoration {k + 1}", r) for k, r in enumerate(restorations)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DisagreementError(f"the restorations differ in shape {sorted(shapes)}; restore the same input on one grid",
                             value=sorted(shapes))
    if not threshold > 0 or not detection_sigma_px > 0:
        raise DisagreementError(f"the threshold and the detection sigma must be > 0; got {threshold}, {detection_sigma_px}")
    count = len(arrays)
    total = np.sum(arrays, axis=0, dtype=np.float32)
    if intensity is None:
        reference, binned_by = total / count, "the ensemble mean's local intensity"
    else:
        reference = _as_float("intensity reference", intensity)
        if reference.shape != total.shape:
            raise DisagreementError(f"the intensity reference {reference.shape} and the restorations {total.shape} differ "
                                 "in shape; give it on the restorations' grid or not at all", value=reference.shape)
        binned_by = "the input's local intensity"
    local = gaussian_filter(reference, _lateral(total.ndim, max(1.0, detection_sigma_px)), mode="reflect")
    if noise_floor is None:
        floor = DEFAULT_FLOOR_FRACTION * float(np.percentile(local, 99.9) - np.median(local))
        floor_how = f"{DEFAULT_FLOOR_FRACTION:g} x the ensemble mean's bright-structure level (99.9th percentile - median)"
    elif noise_floor >= 0 and np.isfinite(noise_floor):
        floor, floor_how = float(noise_floor), "given by the caller"
    else:
        raise DisagreementError(f"the noise floor must be finite and >= 0; got {noise_floor}", value=noise_floor)
    result = _disagreement(arrays, local, _white_floor(floor), threshold=threshold,
                           detection_sigma_px=detection_sigma_px, min_area_px=min_area_px)
    result.parameters.update({"noise_floor": floor, "noise_floor_how": floor_how + " (per pixel; scaled for each "
                              "matched filter as white noise)", "spread_model": result.parameters["spread_model"]
                              + binned_by})
    return result


def _disagreement(arrays: list[np.ndarray], local: np.ndarray, floor_at: FloorAt, *, threshold: float,
                  detection_sigma_px: float, min_area_px: int | None) -> DisagreementResult:
    """The map of validated float32 restorations, spread binned by ``local``, floors from ``floor_at``."""
    count = len(arrays)
    total = np.sum(arrays, axis=0, dtype=np.float32)
    members = [0] if count == 2 else list(range(count))
    zmap = np.zeros_like(total)
    detection = np.zeros_like(total)
    candidates = np.zeros(total.shape, dtype=bool)
    per_member: list[tuple[np.ndarray, np.ndarray]] = []
    scales: list[float] = []
    sigma_bg = 0.0
    for k in members:
        deviation = arrays[k] - (total - arrays[k]) / (count - 1)
        z = _normalised(deviation, local, floor_at(deviation, 0.0))
        det, cand, scales, sigma_bg = _detect(deviation, local, sigma_det=detection_sigma_px, threshold=threshold,
                                              floor_at=floor_at)
        candidates |= cand
        per_member.append((np.abs(det), cand))
        larger = np.abs(det) > np.abs(detection)
        detection = np.where(larger, det, detection)
        zmap = np.where(np.abs(z) > np.abs(zmap), z, zmap)
    if min_area_px is None:
        min_area_px = max(4, int(round(0.5 * np.pi * detection_sigma_px ** 2)))
    flagged = _remove_small(candidates, int(min_area_px))
    # a member departs where it is flagged and its significance is the largest of all members (a blob in one
    # member also shifts the others' leave-one-out means, by 1 / (K - 1) of its size)
    strongest = np.argmax(np.stack([magnitude for magnitude, _ in per_member]), axis=0)
    fractions = [float(_remove_small(cand & (strongest == k), int(min_area_px)).mean())
                 for k, (_, cand) in enumerate(per_member)]
    parameters = {
        "members": count, "threshold": float(threshold),
        "detection_sigma_px": float(detection_sigma_px), "detection_scales_px": [float(s) for s in scales],
        "background_sigma_px": float(sigma_bg), "min_area_px": int(min_area_px),
        "spread_model": "robust spread of each member's deviation from the others (and of each matched-filtered "
                        "deviation), in 16 quantile bins of ",
    }
    return DisagreementResult(zmap=zmap.astype(np.float32, copy=False), detection=detection.astype(np.float32),
                              flagged=flagged, flagged_fraction=float(flagged.mean()), parameters=parameters,
                              member_fractions=fractions * 2 if count == 2 else fractions)


__all__ = ["DEFAULT_DETECTION_SIGMA_PX", "DEFAULT_THRESHOLD", "DisagreementError", "DisagreementResult",
           "disagreement_map"]
