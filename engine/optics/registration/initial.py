"""Coarse initial estimates: Fourier-Mellin (rotation, scale) and phase correlation (translation).

Both work on a common grid: the moving image is first resampled onto the fixed grid of one
pyramid level with a candidate 2x2 part ``A`` (centres on centres), so the remaining misalignment
is a small rotation/scale (found from the log-polar magnitude spectra, which do not depend on
translation) plus a translation (found by sub-pixel phase correlation). Several candidates (scale
from the pixel sizes or from the image shapes, the 180-degree ambiguity of the spectrum, "no
rotation") are scored by the normalised cross-correlation they reach and the best one wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from decongan.engine.optics.registration.pyramid import Level
from decongan.engine.optics.registration.quality import normalised_cross_correlation
from decongan.engine.optics.registration.transform import image_centre, sample_coordinates


@dataclass(frozen=True)
class Candidate:
    """One initial estimate: its matrix, the NCC it reaches and a label saying how it was found."""

    matrix_full: np.ndarray  # 3x3 fixed->moving, full-resolution coordinates
    ncc: float
    label: str


def centred_matrix(linear: np.ndarray, shift: np.ndarray, fixed_shape: tuple[int, int],
                   moving_shape: tuple[int, int]) -> np.ndarray:
    """``p_m = c_m + shift + linear (q_f - c_f)`` as a 3x3 matrix.

    Parameters
    ----------
    linear : ndarray, shape (2, 2)
        The linear part acting on (x, y) offsets from the fixed centre.
    shift : ndarray, shape (2,)
        (x, y) position of the fixed centre in the moving image relative to the moving centre, in
        moving px.
    fixed_shape, moving_shape : (int, int)
        (height, width) of the two grids; centres ``c = ((width - 1) / 2, (height - 1) / 2)``.

    Returns
    -------
    ndarray, shape (3, 3)
        Fixed (x, y, 1) -> moving (x, y, 1), the convention of ``transform.py``.
    """
    c_f, c_m = image_centre(fixed_shape), image_centre(moving_shape)
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = c_m + shift - linear @ c_f
    return m


def warp_to_grid(level: Level, matrix_level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moving image of ``level`` sampled on its fixed grid, outside filled with the inside mean.

    Parameters
    ----------
    level : Level
        The pyramid level (fixed image and cubic spline coefficients of the moving image).
    matrix_level : ndarray, shape (3, 3)
        Fixed -> moving matrix in this level's pixel coordinates.

    Returns
    -------
    warped : ndarray, float64, shape of ``level.fixed``
        Cubic-spline samples of the moving image.
    inside : ndarray of bool, same shape
        True where the sampled position lies inside the moving image.
    """
    from scipy import ndimage

    x, y = sample_coordinates(matrix_level, level.fixed.shape)
    h, w = level.moving_shape
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    warped = ndimage.map_coordinates(level.moving_coeffs, [y, x], order=3, mode="reflect", prefilter=False)
    if inside.any():
        warped = np.where(inside, warped, warped[inside].mean())
    return warped, inside


def _windowed(image: np.ndarray) -> np.ndarray:
    from skimage.filters import window

    return (image - image.mean()) * window("hann", image.shape)


def fourier_mellin(*, fixed: np.ndarray, moving: np.ndarray, angle_rows: int = 720) -> tuple[float, float]:
    """Rotation and scale between two same-size images from their log-polar magnitude spectra.

    Band-pass (``skimage.filters.difference_of_gaussians``, sigma 2), Hann window, ``|FFT|``
    zero-padded to a square, ``skimage.transform.warp_polar`` with log radius over the lowest
    quarter of frequencies, then ``skimage.registration.phase_cross_correlation``. The spectrum is centro-symmetric, so the
    angle is only known modulo 180 degrees.

    Parameters
    ----------
    fixed, moving : ndarray, shape (H, W)
        Same-size images on one grid (the moving one already resampled onto the fixed grid).
    angle_rows : int
        Angular samples of the full-circle log-polar transform (720 = 0.5 degree steps, refined to
        a twentieth of that by the sub-pixel correlation).

    Returns
    -------
    angle_deg, scale : float
        In this package's convention for the map fixed -> moving (see ``transform.py``): the
        moving content is the fixed content rotated by ``angle_deg`` (clockwise on screen) and
        enlarged by ``1 / scale``.
    """
    from skimage.filters import difference_of_gaussians
    from skimage.registration import phase_cross_correlation
    from skimage.transform import warp_polar

    size = max(fixed.shape)

    def log_polar(image: np.ndarray) -> np.ndarray:
        band = difference_of_gaussians(image, 2.0, None)
        # zero-padded to a square so both frequency axes have the same spacing (a rotation of the
        # image is then a rotation of the spectrum, also for non-square images)
        spectrum = np.abs(np.fft.fftshift(np.fft.fft2(_windowed(band), s=(size, size))))
        radius = max(8, size // 4)
        out_shape = (angle_rows, 2 * radius)
        centre = (size // 2, size // 2)
        polar = warp_polar(spectrum, center=centre, radius=radius, output_shape=out_shape, scaling="log", order=1)
        return polar[: angle_rows // 2], radius, out_shape[1]

    lp_f, radius, columns = log_polar(fixed)
    lp_m, _, _ = log_polar(moving)
    shifts, _, _ = phase_cross_correlation(lp_f, lp_m, upsample_factor=20, normalization=None)
    angle = -float(shifts[0]) * 360.0 / angle_rows
    klog = columns / math.log(radius)
    scale = 1.0 / math.exp(float(shifts[1]) / klog)
    return angle, scale


def translation_by_phase_correlation(level: Level, matrix_level: np.ndarray) -> tuple[np.ndarray, float]:
    """Refine the shift of ``matrix_level`` by sub-pixel phase correlation on ``level``.

    Parameters
    ----------
    level : Level
        The pyramid level.
    matrix_level : ndarray, shape (3, 3)
        Fixed -> moving matrix in this level's pixel coordinates; its linear part is kept.

    Returns
    -------
    matrix : ndarray, shape (3, 3)
        The updated level matrix (to a tenth of a level px).
    ncc : float
        The NCC it reaches over the overlap (NaN when it is under 16 px).
    """
    from skimage.registration import phase_cross_correlation

    warped, _ = warp_to_grid(level, matrix_level)
    shift_rc, _, _ = phase_cross_correlation(_windowed(level.fixed), _windowed(warped), upsample_factor=10)
    # warped shifted by shift_rc matches fixed: warped(q) = fixed(q + d) with d = -shift (x, y)
    d = -np.array([shift_rc[1], shift_rc[0]], dtype=float)
    updated = matrix_level.copy()
    updated[:2, 2] += matrix_level[:2, :2] @ d
    return updated, overlap_ncc(level, updated)


def overlap_ncc(level: Level, matrix_level: np.ndarray) -> float:
    """NCC between the level's fixed image and the warped moving image over their overlap.

    Parameters
    ----------
    level : Level
        The pyramid level.
    matrix_level : ndarray, shape (3, 3)
        Fixed -> moving matrix in this level's pixel coordinates.

    Returns
    -------
    float
        Pearson correlation in [-1, 1]; NaN when fewer than 16 px overlap or an image is constant there.
    """
    warped, inside = warp_to_grid(level, matrix_level)
    if inside.sum() < 16:
        return float("nan")
    return normalised_cross_correlation(level.fixed, warped, inside)


def best_initial_estimate(
    level: Level,
    kind: str,
    scale_candidates: list[float],
    *,
    search_rotation: bool = True,
) -> Candidate:
    """Pick the best starting transform on ``level`` (a coarse level, ~128-256 px).

    For every candidate scale ``s`` (moving pixel size in fixed pixels): start from
    ``A = I / s``; for rigid/similarity/affine also try the Fourier-Mellin correction (both
    180-degree branches; for rigid only its rotation); find the translation by phase correlation;
    keep the candidate with the highest NCC over the overlap.

    Parameters
    ----------
    level : Level
        A coarse pyramid level.
    kind : {"translation", "rigid", "similarity", "affine"}
        The transform model; translation skips the rotation search, rigid keeps the scale.
    scale_candidates : list of float
        Moving pixel size in fixed pixels (dimensionless ratios) to try; never empty.
    search_rotation : bool
        Try the Fourier-Mellin rotation/scale correction too.

    Returns
    -------
    Candidate
        The best one, its matrix in full-resolution coordinates.
    """
    fixed_shape, moving_shape = level.fixed.shape, level.moving_shape
    # pixel-size ratio between the level grids relative to full resolution
    level_ratio = level.moving_from_full[:2, :2] @ np.diag(1.0 / np.diag(level.fixed_from_full[:2, :2]))
    best: Candidate | None = None
    for s in scale_candidates:
        base_linear = level_ratio @ (np.eye(2) / s)
        options = [(base_linear, f"scale {s:g}")]
        if search_rotation and kind != "translation":
            base = centred_matrix(base_linear, np.zeros(2), fixed_shape, moving_shape)
            warped, _ = warp_to_grid(level, base)
            angle, scale = fourier_mellin(fixed=level.fixed, moving=warped)
            if kind == "rigid":
                scale = 1.0
            for extra in (0.0, 180.0):
                theta = math.radians(angle + extra)
                corr = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]) / scale
                options.append((base_linear @ corr, f"scale {s:g}, Fourier-Mellin {angle + extra:.2f} deg, scale x{scale:.3f}"))
        for linear, label in options:
            start = centred_matrix(linear, np.zeros(2), fixed_shape, moving_shape)
            matrix_level, ncc = translation_by_phase_correlation(level, start)
            if best is None or (np.isfinite(ncc) and not ncc <= best.ncc):
                best = Candidate(level.to_full(matrix_level), ncc, label)
    if best is None:  # pragma: no cover - scale_candidates is never empty
        raise ValueError("no initial candidate")
    return best
