"""Gaussian pyramids of a fixed/moving pair and the coordinate maps between their levels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Level:
    """One pyramid level of a pair.

    Attributes
    ----------
    index : int
        0 = full resolution, each level halves both images.
    fixed : ndarray, float64, shape (h_f, w_f)
    moving_coeffs : ndarray, float64, shape (h_m, w_m)
        Cubic B-spline coefficients of the moving image (``scipy.ndimage.spline_filter``, mode
        "reflect"), so it can be sampled many times with ``prefilter=False``.
    fixed_from_full, moving_from_full : ndarray (3, 3)
        Map full-resolution pixel coordinates (x, y, 1) to this level's coordinates.
    """

    index: int
    fixed: np.ndarray
    moving_coeffs: np.ndarray
    fixed_from_full: np.ndarray
    moving_from_full: np.ndarray

    @property
    def moving_shape(self) -> tuple[int, int]:
        return self.moving_coeffs.shape  # type: ignore[return-value]

    def to_level(self, matrix_full: np.ndarray) -> np.ndarray:
        """A full-resolution fixed->moving matrix expressed in this level's coordinates."""
        return self.moving_from_full @ matrix_full @ np.linalg.inv(self.fixed_from_full)

    def to_full(self, matrix_level: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_level`."""
        return np.linalg.inv(self.moving_from_full) @ matrix_level @ self.fixed_from_full


def resize_matrix(full_shape: tuple[int, int], level_shape: tuple[int, int]) -> np.ndarray:
    """Full -> level pixel coordinates for ``skimage.transform.resize`` (pixel-centre convention).

    Parameters
    ----------
    full_shape, level_shape : (int, int)
        (height, width) of the full-resolution image and of its resized layer.

    Returns
    -------
    ndarray, shape (3, 3)
        Maps full-resolution (x, y, 1) to level (x, y, 1): ``x_level = s x + (s - 1) / 2`` with
        ``s = level / full`` per axis.
    """
    sy, sx = level_shape[0] / full_shape[0], level_shape[1] / full_shape[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def number_of_levels(shape: tuple[int, int], *, min_size: int = 48, max_levels: int = 6) -> int:
    """Levels (including full resolution) so that the smaller side stays >= ``min_size`` px.

    Parameters
    ----------
    shape : (int, int)
        (height, width) of the full-resolution image in px.
    min_size : int
        Smallest side in px allowed on the coarsest level.
    max_levels : int
        Cap on the number of levels.

    Returns
    -------
    int
        At least 1 (full resolution only, even when the image is smaller than ``min_size``).
    """
    smallest = min(shape)
    levels = 1
    while levels < max_levels and smallest / 2**levels >= min_size:
        levels += 1
    return levels


def build_pyramid(*, fixed: np.ndarray, moving: np.ndarray, min_fixed_size: int = 48,
                  min_moving_size: int = 24) -> list[Level]:
    """Gaussian pyramids (``skimage.transform.pyramid_gaussian``, factor 2) of both images, finest first.

    The number of levels follows the fixed image (coarsest smaller side >= ``min_fixed_size``).
    The moving image is halved alongside it while its smaller side stays >= ``min_moving_size``;
    beyond that its coarsest layer is reused, so a small low-resolution scan (e.g. 64 px for a x8
    scan of a 512 px field) is not shrunk to nothing while the fixed image still is.

    Parameters
    ----------
    fixed, moving : ndarray, shape (H, W)
        The two images (any real dtype; converted to float64, intensities kept).
    min_fixed_size, min_moving_size : int
        Smallest side in px of the coarsest fixed / moving layer.

    Returns
    -------
    list of Level
        Index 0 is full resolution.
    """
    from scipy import ndimage
    from skimage.transform import pyramid_gaussian

    n_levels = number_of_levels(fixed.shape, min_size=min_fixed_size)
    n_moving = min(n_levels, number_of_levels(moving.shape, min_size=min_moving_size))
    fixed_layers = list(pyramid_gaussian(fixed, max_layer=n_levels - 1, downscale=2, preserve_range=True))
    moving_layers = list(pyramid_gaussian(moving, max_layer=n_moving - 1, downscale=2, preserve_range=True))
    coeffs = [ndimage.spline_filter(np.asarray(m, dtype=np.float64), order=3, mode="reflect") for m in moving_layers]
    levels = []
    for i, f in enumerate(fixed_layers):
        j = min(i, n_moving - 1)
        levels.append(Level(
            index=i,
            fixed=np.asarray(f, dtype=np.float64),
            moving_coeffs=coeffs[j],
            fixed_from_full=resize_matrix(fixed.shape, f.shape),
            moving_from_full=resize_matrix(moving.shape, moving_layers[j].shape),
        ))
    return levels
