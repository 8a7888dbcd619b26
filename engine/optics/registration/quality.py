"""Quality of an alignment and the common valid area of an aligned pair."""

from __future__ import annotations

import numpy as np


def normalised_cross_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of ``a`` and ``b`` over ``mask`` (all pixels when None), in [-1, 1].

    Returns NaN when fewer than 2 pixels are in the mask or one image is constant there.

    Parameters
    ----------
    a, b : ndarray, same shape
        Images, any real dtype (computed in float64).
    mask : ndarray of bool, same shape, optional
        The pixels compared.

    Returns
    -------
    float
        Dimensionless, in [-1, 1], or NaN.

    Raises
    ------
    ValueError
        When the shapes differ.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        a, b = a[m], b[m]
    else:
        a, b = a.ravel(), b.ravel()
    if a.size < 2:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if denom == 0 or not np.isfinite(denom):
        return float("nan")
    return float(np.dot(a, b) / denom)


def alignment_problem(ncc_before: float, ncc_after: float, min_ncc: float) -> str | None:
    """Why an alignment must be refused, or None when it passes: the one quality rule of DeconGAN.

    Parameters
    ----------
    ncc_before : float
        NCC of the fixed image vs the unregistered moving image (NaN when unknown).
    ncc_after : float
        NCC of the fixed image vs the aligned image over its valid mask.
    min_ncc : float
        The lowest acceptable ``ncc_after``.

    Returns
    -------
    str or None
        The problem in words: no overlap to score, ``ncc_after < min_ncc``, or worse than no
        registration (``ncc_after < ncc_before - 0.01``).
    """
    if not np.isfinite(ncc_after):
        return "the aligned image does not overlap the fixed image enough to score it"
    if ncc_after < min_ncc:
        return f"the best alignment found correlates poorly (NCC {ncc_after:.3f} < {min_ncc:g})"
    if np.isfinite(ncc_before) and ncc_after < ncc_before - 0.01:
        return f"the alignment found is worse than no registration (NCC {ncc_before:.3f} -> {ncc_after:.3f})"
    return None


def largest_valid_rectangle(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The largest-area axis-aligned rectangle whose pixels are all True.

    Method: the exact dynamic-programming "maximal rectangle" algorithm, vectorised over columns.
    Scanning rows top to bottom, keep for every column ``j`` the number ``height[j]`` of consecutive
    True pixels ending at the current row, and the widest interval ``[left[j], right[j])`` over
    which all those ``height[j]`` rows are True around ``j``. Every maximal all-True rectangle is
    ``height[j] x (right[j] - left[j])`` for some row and column, so the best over all rows and
    columns is the answer. Cost O(height x width). Ties keep the top-most bottom edge, then the
    left-most column.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    (y0, y1, x0, x1) : tuple of int
        Half-open bounds: ``mask[y0:y1, x0:x1]`` is all True. ``(0, 0, 0, 0)`` when nothing is True.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    h, w = m.shape
    cols = np.arange(w)
    height = np.zeros(w, dtype=np.int64)
    left = np.zeros(w, dtype=np.int64)
    right = np.full(w, w, dtype=np.int64)
    best_area, best = 0, (0, 0, 0, 0)
    for row in range(h):
        on = m[row]
        height = np.where(on, height + 1, 0)
        # first column of the run of True pixels containing j in this row, and one past its end
        run_left = np.maximum.accumulate(np.where(on, 0, cols + 1))
        run_right = np.minimum.accumulate(np.where(on, w, cols)[::-1])[::-1]
        left = np.where(on, np.maximum(left, run_left), 0)
        right = np.where(on, np.minimum(right, run_right), w)
        area = height * (right - left)
        j = int(np.argmax(area))
        if area[j] > best_area:
            best_area = int(area[j])
            best = (row - int(height[j]) + 1, row + 1, int(left[j]), int(right[j]))
    return best


def crop_to_common_valid_area(
    fixed: np.ndarray, aligned: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Crop an aligned pair to the largest axis-aligned rectangle fully inside the valid mask.

    Parameters
    ----------
    fixed : ndarray, shape (..., H, W)
        The reference image (or stack) on the fixed grid.
    aligned : ndarray, shape (..., H, W)
        The moving image resampled onto the fixed grid.
    mask : ndarray of bool, shape (H, W)
        True where ``aligned`` holds data (see :func:`apply_transform`).

    Returns
    -------
    fixed_crop, aligned_crop : ndarray
        Views ``[..., y0:y1, x0:x1]`` of the inputs.
    bbox : tuple of int
        ``(y0, y1, x0, x1)``, half-open, in fixed-grid pixels (see :func:`largest_valid_rectangle`).

    Raises
    ------
    ValueError
        Shapes disagree, or the mask holds no valid pixel (the images do not overlap).
    """
    fixed = np.asarray(fixed)
    aligned = np.asarray(aligned)
    mask = np.asarray(mask, dtype=bool)
    if fixed.shape[-2:] != mask.shape or aligned.shape[-2:] != mask.shape:
        raise ValueError(f"fixed {fixed.shape}, aligned {aligned.shape} and mask {mask.shape} must share (H, W)")
    y0, y1, x0, x1 = largest_valid_rectangle(mask)
    if y1 <= y0 or x1 <= x0:
        raise ValueError("the aligned image does not overlap the fixed image: no common valid area to crop")
    return fixed[..., y0:y1, x0:x1], aligned[..., y0:y1, x0:x1], (y0, y1, x0, x1)
