"""Bead FWHM: detect isolated sub-resolution spots and fit each with a 2-D Gaussian.

Method
------
1. Detection on a Gaussian-smoothed (sigma 1 px) image (for a Z stack: its maximum-intensity
   projection): local maxima at least ``min_distance_px`` apart whose height above the median
   background exceeds ``threshold_rel`` of the brightest spot and 5 robust noise sigmas (MAD).
2. Fit window: a square of half-width ``window_radius_px``; by default 2x the FWHM estimated from the
   half-maximum area of the brightest spot (at least 3 px), so the same code serves 20-nm-pixel
   bead stacks and 160-nm-pixel PSFs.
3. Isolation: a spot is kept only if no other detected spot lies within 2 window radii, and its
   window fits inside the image.
4. For a Z stack each bead is fitted on its own best-focus plane (the plane where the smoothed
   stack is brightest at the bead's position), not on the projection.
5. Fit (``scipy.optimize.least_squares``, bounded): ``A exp(-(x-x0)^2/(2 sx^2) - (y-y0)^2/(2 sy^2)) + B``,
   axis-aligned, point-sampled. FWHM = 2 sqrt(2 ln 2) sigma, in pixels and, with a pixel size, in nm.
   Fits whose R^2 < 0.8, whose centre wanders more than half a window, or whose sigma hits a bound
   are flagged ``ok=False`` and left out of the medians.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from decongan.engine.metrics._common import as_float_image, robust_sigma

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
MIN_R_SQUARED = 0.8


@dataclass
class BeadFit:
    """One fitted bead. Positions in pixels (row ``y``, column ``x``; ``z`` plane index or None)."""

    y: float
    x: float
    z: int | None
    fwhm_x_px: float
    fwhm_y_px: float
    fwhm_x_nm: float | None
    fwhm_y_nm: float | None
    amplitude: float
    background: float
    r_squared: float
    ok: bool


@dataclass
class BeadFWHMResult:
    """All fits and their medians over the ``ok`` beads (NaN when there is none).

    ``median_fwhm_px`` / ``median_fwhm_nm`` are medians of the per-bead mean of x and y FWHM.
    """

    beads: list[BeadFit] = field(default_factory=list)
    median_fwhm_x_px: float = math.nan
    median_fwhm_y_px: float = math.nan
    median_fwhm_px: float = math.nan
    median_fwhm_x_nm: float | None = None
    median_fwhm_y_nm: float | None = None
    median_fwhm_nm: float | None = None
    pixel_nm: float | None = None
    window_radius_px: int = 0

    @property
    def n_ok(self) -> int:
        return sum(b.ok for b in self.beads)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _gaussian(params: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    amplitude, y0, x0, sy, sx, background = params
    return amplitude * np.exp(-0.5 * (((yy - y0) / sy) ** 2 + ((xx - x0) / sx) ** 2)) + background


def fit_gaussian_2d(patch: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Fit an axis-aligned 2-D Gaussian plus constant to ``patch``.

    Returns
    -------
    params : ndarray
        ``(amplitude, y0, x0, sigma_y, sigma_x, background)``, positions relative to the patch.
    r_squared : float
        Coefficient of determination of the fit.
    at_bound : bool
        True when a sigma ended on its bound (the fit is unreliable).
    """
    from scipy.optimize import least_squares

    ny, nx = patch.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    background0 = float(np.percentile(patch, 10))
    amplitude0 = float(patch.max() - background0)
    weights = np.clip(patch - background0, 0, None)
    total = float(weights.sum())
    if total > 0:
        y0, x0 = float((weights * yy).sum() / total), float((weights * xx).sum() / total)
        half = weights >= 0.5 * weights.max()
        sigma0 = max(0.5, math.sqrt(half.sum() / math.pi) / (FWHM_PER_SIGMA / 2.0))
    else:
        y0, x0, sigma0 = (ny - 1) / 2, (nx - 1) / 2, 1.0
    lower_sigma, upper_sigma = 0.2, max(ny, nx)
    sigma0 = float(np.clip(sigma0, lower_sigma * 1.01, upper_sigma * 0.99))
    p0 = np.array([max(amplitude0, 1e-12), y0, x0, sigma0, sigma0, background0])
    span = float(patch.max() - patch.min()) or 1.0
    lower = [0.0, -0.5, -0.5, lower_sigma, lower_sigma, float(patch.min()) - span]
    upper = [4.0 * span + 1e-12, ny - 0.5, nx - 0.5, upper_sigma, upper_sigma, float(patch.max())]
    p0 = np.clip(p0, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
    result = least_squares(lambda p: (_gaussian(p, yy, xx) - patch).ravel(), p0,
                           bounds=(lower, upper), x_scale="jac")
    params = result.x
    residual = result.fun
    ss_tot = float(((patch - patch.mean()) ** 2).sum())
    r_squared = 1.0 - float(residual @ residual) / ss_tot if ss_tot > 0 else 0.0
    at_bound = any(math.isclose(params[i], b, rel_tol=1e-3, abs_tol=1e-3)
                   for i in (3, 4) for b in (lower_sigma, upper_sigma))
    return params, r_squared, at_bound


def _estimate_fwhm_px(smoothed: np.ndarray, peak: tuple[int, int], level: float) -> float:
    from scipy.ndimage import label

    height = smoothed[peak] - level
    if height <= 0:
        return 2.0
    labels, _ = label(smoothed >= level + 0.5 * height)
    area = int((labels == labels[peak]).sum())
    return max(1.0, 2.0 * math.sqrt(area / math.pi))


def bead_fwhm(image: np.ndarray, *, pixel_nm: float | None = None, min_distance_px: int | None = None,
              window_radius_px: int | None = None, threshold_rel: float = 0.2, max_beads: int = 100,
              smoothing_px: float = 1.0) -> BeadFWHMResult:
    """Lateral FWHM of isolated beads by 2-D Gaussian fits (module docstring).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        Bead image or stack (one channel).
    pixel_nm : float, optional
        Lateral pixel size; adds the nm values.
    min_distance_px : int, optional
        Minimum distance between detected maxima (default: half the estimated FWHM, at least 2).
    window_radius_px : int, optional
        Half-width of the fit window (default: 2x the estimated FWHM, at least 3).
    threshold_rel : float
        Minimum spot height as a fraction of the brightest spot's height above background.
    max_beads : int
        Fit at most this many (brightest first).
    smoothing_px : float
        Gaussian sigma (px) of the smoothing used for detection and best-plane choice only.

    Returns
    -------
    BeadFWHMResult
    """
    from scipy.ndimage import gaussian_filter
    from skimage.feature import peak_local_max

    data = as_float_image(image)
    stack = data if data.ndim == 3 else None
    projection = data.max(axis=0) if stack is not None else data
    smoothed = gaussian_filter(projection, smoothing_px) if smoothing_px > 0 else projection
    level = float(np.median(smoothed))
    noise = robust_sigma(projection)
    brightest = np.unravel_index(int(np.argmax(smoothed)), smoothed.shape)
    top = float(smoothed[brightest]) - level
    result = BeadFWHMResult(pixel_nm=pixel_nm)
    if top <= 0:
        return result
    fwhm_estimate = _estimate_fwhm_px(smoothed, brightest, level)
    if window_radius_px is None:
        window_radius_px = max(3, int(math.ceil(2.0 * fwhm_estimate)))
    if min_distance_px is None:
        min_distance_px = max(2, int(round(fwhm_estimate / 2.0)))
    radius = int(window_radius_px)
    result.window_radius_px = radius
    threshold = level + max(threshold_rel * top, 5.0 * noise)
    peaks = peak_local_max(smoothed, min_distance=max(1, int(min_distance_px)),
                           threshold_abs=threshold, exclude_border=False)
    if peaks.size == 0:
        return result
    order = np.argsort(-smoothed[peaks[:, 0], peaks[:, 1]])
    peaks = peaks[order]
    smoothed_stack = gaussian_filter(stack, smoothing_px) if stack is not None and smoothing_px > 0 else stack
    ny, nx = projection.shape
    for i, (py, px) in enumerate(peaks):
        if len(result.beads) >= max_beads:
            break
        if py < radius or px < radius or py >= ny - radius or px >= nx - radius:
            continue
        others = np.delete(peaks, i, axis=0)
        if others.size and np.min(np.hypot(others[:, 0] - py, others[:, 1] - px)) < 2 * radius:
            continue
        z = int(np.argmax(smoothed_stack[:, py, px])) if smoothed_stack is not None else None
        plane = stack[z] if stack is not None else projection
        patch = plane[py - radius:py + radius + 1, px - radius:px + radius + 1]
        params, r2, at_bound = fit_gaussian_2d(patch)
        amplitude, y0, x0, sy, sx, background = (float(v) for v in params)
        off_centre = math.hypot(y0 - radius, x0 - radius) > radius / 2
        fwhm_y, fwhm_x = FWHM_PER_SIGMA * sy, FWHM_PER_SIGMA * sx
        result.beads.append(BeadFit(
            y=py - radius + y0, x=px - radius + x0, z=z, fwhm_x_px=fwhm_x, fwhm_y_px=fwhm_y,
            fwhm_x_nm=fwhm_x * pixel_nm if pixel_nm is not None else None,
            fwhm_y_nm=fwhm_y * pixel_nm if pixel_nm is not None else None,
            amplitude=amplitude, background=background, r_squared=r2,
            ok=bool(r2 >= MIN_R_SQUARED and not off_centre and not at_bound)))
    good = [b for b in result.beads if b.ok]
    if good:
        result.median_fwhm_x_px = float(np.median([b.fwhm_x_px for b in good]))
        result.median_fwhm_y_px = float(np.median([b.fwhm_y_px for b in good]))
        result.median_fwhm_px = float(np.median([(b.fwhm_x_px + b.fwhm_y_px) / 2 for b in good]))
        if pixel_nm is not None:
            result.median_fwhm_x_nm = result.median_fwhm_x_px * pixel_nm
            result.median_fwhm_y_nm = result.median_fwhm_y_px * pixel_nm
            result.median_fwhm_nm = result.median_fwhm_px * pixel_nm
    return result
