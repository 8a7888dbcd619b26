"""Where a figure looks: the brightest structure, the default profile line and zoom inset (the same in
every panel), line profiles, and planes mapped onto the reference's scale (the metric normalisation)."""

from __future__ import annotations

import math

import numpy as np


def brightest_point(image: np.ndarray, *, sigma: float = 2.0, margin: int = 0) -> tuple[int, int]:
    """(y, x) of the maximum of the Gaussian-smoothed image (a robust 'brightest structure').

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Intensities.
    sigma : float
        Gaussian sigma of the smoothing in px.
    margin : int
        Border in px excluded from the search (ignored when the image is too small for it).

    Returns
    -------
    (int, int)
        Row and column in px.
    """
    from scipy.ndimage import gaussian_filter

    smoothed = gaussian_filter(np.asarray(image, dtype=np.float64), sigma)
    if margin > 0 and min(smoothed.shape) > 2 * margin + 1:
        inner = np.full(smoothed.shape, -np.inf)
        inner[margin:-margin, margin:-margin] = smoothed[margin:-margin, margin:-margin]
        smoothed = inner
    y, x = np.unravel_index(int(np.argmax(smoothed)), smoothed.shape)
    return int(y), int(x)


def default_line(reference: np.ndarray, *, length: int = 128) -> tuple[tuple[float, float], tuple[float, float]]:
    """A ~``length`` px line through the brightest structure, oriented to cross the most structure.

    Returns ``((y0, x0), (y1, x1))`` inside the image. The length shrinks to 80 % of the smaller side
    on small images. Among 0/45/90/135 degrees the orientation with the largest profile variance wins.

    Parameters
    ----------
    reference : ndarray, shape (Y, X)
        The image the line is chosen on (ground truth, else the input).
    length : int
        Wanted line length in px.

    Returns
    -------
    ((float, float), (float, float))
        End points (row, column) in px.
    """
    ny, nx = reference.shape
    length = int(min(length, 0.8 * min(ny, nx)))
    cy, cx = brightest_point(reference, margin=min(ny, nx) // 10)
    best, best_var = None, -1.0
    for angle in (0.0, 45.0, 90.0, 135.0):
        dy, dx = math.sin(math.radians(angle)), math.cos(math.radians(angle))
        half = length / 2.0
        # shift the centre so the line stays inside the image
        y0, x0, y1, x1 = cy - dy * half, cx - dx * half, cy + dy * half, cx + dx * half
        sy = _shift_inside(min(y0, y1), max(y0, y1), ny)
        sx = _shift_inside(min(x0, x1), max(x0, x1), nx)
        line = ((y0 + sy, x0 + sx), (y1 + sy, x1 + sx))
        var = float(np.var(line_profile(reference, line)))
        if var > best_var:
            best, best_var = line, var
    assert best is not None
    return best


def _shift_inside(lo: float, hi: float, n: int) -> float:
    if lo < 0:
        return -lo
    if hi > n - 1:
        return (n - 1) - hi
    return 0.0


def line_profile(image: np.ndarray, line: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    """Values along ``line`` ((y0, x0), (y1, x1)), one sample per pixel of length, linear interpolation.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Intensities.
    line : ((float, float), (float, float))
        End points (row, column) in px; positions outside take the nearest edge value.

    Returns
    -------
    ndarray, float64, shape (n,)
        ``n = round(length in px) + 1`` samples (at least 2), in the image's units.
    """
    from scipy.ndimage import map_coordinates

    (y0, x0), (y1, x1) = line
    n = max(2, int(round(math.hypot(y1 - y0, x1 - x0))) + 1)
    ys = np.linspace(y0, y1, n)
    xs = np.linspace(x0, x1, n)
    return map_coordinates(np.asarray(image, dtype=np.float64), [ys, xs], order=1, mode="nearest")


def default_inset(reference: np.ndarray, *, fraction: float = 0.2) -> tuple[int, int, int]:
    """(y0, x0, size) of a square zoom region around the brightest structure, inside the image.

    Parameters
    ----------
    reference : ndarray, shape (Y, X)
        The image the region is chosen on.
    fraction : float
        Side of the square as a fraction of the image's smaller side (at least 8 px).

    Returns
    -------
    (int, int, int)
        Top-left row, top-left column and side, in px.
    """
    ny, nx = reference.shape
    size = max(8, int(round(fraction * min(ny, nx))))
    cy, cx = brightest_point(reference, margin=min(ny, nx) // 10)
    y0 = int(min(max(cy - size // 2, 0), ny - size))
    x0 = int(min(max(cx - size // 2, 0), nx - size))
    return y0, x0, size


def _inset_corner(region: tuple[int, int, int], shape: tuple[int, int]) -> str:
    """The panel corner farthest from the zoomed region (matplotlib 'loc' string)."""
    y0, x0, size = region
    cy, cx = y0 + size / 2, x0 + size / 2
    vertical = "lower" if cy < shape[0] / 2 else "upper"
    horizontal = "right" if cx < shape[1] / 2 else "left"
    return f"{vertical} {horizontal}"


def matched_planes(planes: dict[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """Map every plane onto the reference's normalised scale (the metric normalisation policy).

    Parameters
    ----------
    planes : dict of str to ndarray
        Method name -> plane, all the same shape (Y, X) (or (Z, X) sections).
    reference : str
        The key of the reference plane (ground truth, else the input).

    Returns
    -------
    dict of str to ndarray
        Same keys; the reference percentile-normalised (0.1 -> 0, 99.9 -> 1), every other plane
        least-squares gain/offset-matched to it (float64, dimensionless).
    """
    from decongan.engine.metrics.reference import normalize_pair

    ref = planes[reference]
    out = {}
    for name, plane in planes.items():
        if name == reference:
            _, ref_n, _ = normalize_pair(prediction=plane, reference=ref)
            out[name] = ref_n
        else:
            pred_n, _, _ = normalize_pair(prediction=plane, reference=ref)
            out[name] = pred_n
    return out


def normalised_profiles(planes: dict[str, np.ndarray], line: tuple[tuple[float, float], tuple[float, float]],
                        reference: str) -> dict[str, np.ndarray]:
    """Line profiles of every plane on the reference's normalised scale (as the comparison figure plots them).

    Parameters
    ----------
    planes : dict of str to ndarray
        Method name -> plane, all the same shape (Y, X).
    line : ((float, float), (float, float))
        End points (row, column) in px.
    reference : str
        The key of the reference plane (ground truth, else the input).

    Returns
    -------
    dict of str to ndarray
        Same keys; float64 profiles of :func:`line_profile` after :func:`matched_planes` (dimensionless:
        the reference's 0.1th percentile is 0, its 99.9th is 1).
    """
    return {name: line_profile(plane, line) for name, plane in matched_planes(planes, reference).items()}
