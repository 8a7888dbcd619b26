"""Small helpers shared by the metric modules: input checks, percentile scaling, apodisation,
frequency grids and radial cumulative sums in Fourier space."""

from __future__ import annotations

import numpy as np

#: Percentiles of the ground truth (or of the image, for no-reference metrics) mapped to 0 and 1.
#: These are the values CSBDeep's ``norm_minmse`` uses for the ground truth (CARE evaluation).
LOW_PERCENTILE = 0.1
HIGH_PERCENTILE = 99.9


def as_float_image(image: np.ndarray, *, name: str = "image", ndims: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Return ``image`` as float64, after checking its dimensionality, size and finiteness.

    Parameters
    ----------
    image : array_like
        Intensities, shape (Y, X) or (Z, Y, X) by default, any real (bool, int, float) dtype.
    name : str
        What to call the array in error messages (e.g. ``"prediction"``).
    ndims : tuple of int
        Accepted numbers of dimensions.

    Returns
    -------
    ndarray, float64
        Same shape and values (no copy when it already is float64).

    Raises
    ------
    ValueError
        When the array is complex or not numeric, has the wrong number of dimensions, has an axis
        shorter than 2 px, or holds NaN/Inf; the message names ``name``.
    """
    array = np.asarray(image)
    if array.dtype.kind == "c":
        raise ValueError(f"{name} is complex; a real-valued intensity image is needed")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {array.dtype}; a numeric intensity image is needed")
    if array.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} is {array.ndim}-D with shape {array.shape}; a {wanted} array is needed "
                         "(select one channel / time point first)")
    if min(array.shape) < 2:
        raise ValueError(f"{name} has shape {array.shape}; every axis needs at least 2 pixels")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def percentile_scale(image: np.ndarray, *, low_percentile: float = LOW_PERCENTILE,
                     high_percentile: float = HIGH_PERCENTILE) -> tuple[np.ndarray, float, float]:
    """Map the ``low_percentile`` value of ``image`` to 0 and the ``high_percentile`` value to 1.

    No clipping: values outside the percentiles land below 0 / above 1. When the two percentiles are
    equal (a flat image) the image is only shifted (divisor 1).

    Parameters
    ----------
    image : ndarray, any shape
        Intensities (any units, e.g. counts).
    low_percentile, high_percentile : float
        Percentiles in [0, 100] (0.1 and 99.9 by default), ``low < high``.

    Returns
    -------
    scaled : ndarray
        ``(image - low) / (high - low)``, float64.
    low, high : float
        The two percentile values, in the input's units.

    Raises
    ------
    ValueError
        When the percentiles are not ``0 <= low < high <= 100``.
    """
    if not 0.0 <= low_percentile < high_percentile <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low_percentile}, {high_percentile}")
    low, high = (float(v) for v in np.percentile(image, [low_percentile, high_percentile]))
    spread = high - low
    if not spread > 0:
        spread = 1.0
    return (image - low) / spread, low, high


def edge_taper(shape: tuple[int, int], width_px: int) -> np.ndarray:
    """Separable raised-sine window that is 1 inside and falls to 0 over ``width_px`` pixels at each edge.

    This is the edge apodisation of Descloux et al. (2019): a half sine period over the outer
    ``width_px`` pixels. ``width_px`` is limited to a quarter of each axis.

    Parameters
    ----------
    shape : tuple of int
        Image shape, e.g. (Y, X) or (Z, Y, X); every axis is tapered.
    width_px : int
        Taper width in px at each edge (negative = 0, no taper).

    Returns
    -------
    ndarray, float64, shape ``shape``
        Values in (0, 1], 1 in the interior.
    """
    window = np.ones(shape, dtype=np.float64)
    for axis, n in enumerate(shape):
        w = int(min(max(width_px, 0), n // 4))
        if w == 0:
            continue
        ramp = 0.5 * (1.0 - np.cos(np.pi * (np.arange(w) + 0.5) / w))  # 0 -> 1, excluding the end points
        profile = np.ones(n)
        profile[:w] = ramp
        profile[n - w:] = ramp[::-1]
        window *= profile.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    return window


def apodize(image: np.ndarray, width_px: int, *, towards: float | None = None) -> np.ndarray:
    """Taper the edges of a 2-D image towards ``towards`` (default: the image mean) with :func:`edge_taper`.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Intensities (any units); (Z, Y, X) works too and tapers Z as well.
    width_px : int
        Taper width in px at each edge (at most a quarter of each axis).
    towards : float, optional
        The level the edges fall to, in the image's units; default its mean.

    Returns
    -------
    ndarray, float64, same shape
        ``(image - level) * window + level``.
    """
    level = float(image.mean()) if towards is None else float(towards)
    return (image - level) * edge_taper(image.shape, width_px) + level


def frequency_radius(shape: tuple[int, int]) -> np.ndarray:
    """Radial spatial frequency of every FFT bin (unshifted layout), in cycles per pixel.

    ``sqrt(fy**2 + fx**2)`` with ``fy, fx`` from :func:`numpy.fft.fftfreq`; 0.5 is the Nyquist
    frequency along an axis.
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    return np.sqrt(fy * fy + fx * fx)


def half_frequency_radius(shape: tuple[int, int]) -> np.ndarray:
    """:func:`frequency_radius` for the half spectrum of :func:`numpy.fft.rfft2` (cycles per pixel)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(fy * fy + fx * fx)


def half_spectrum_weights(shape: tuple[int, int]) -> np.ndarray:
    """Multiplicity of each :func:`numpy.fft.rfft2` bin in the full spectrum of a real image.

    Columns that stand for a conjugate pair count twice; the zero column (and the Nyquist column
    of an even width) count once. Sums over rotationally symmetric regions of the full spectrum
    equal the weighted sums over the half spectrum, at half the memory and time.
    """
    nx_half = shape[1] // 2 + 1
    weights = np.full(nx_half, 2.0)
    weights[0] = 1.0
    if shape[1] % 2 == 0:
        weights[-1] = 1.0
    return np.broadcast_to(weights[None, :], (shape[0], nx_half))


#: ``1 / Phi^-1(3/4)``: the median absolute deviation of a Gaussian sample times this is its
#: standard deviation (Phi^-1(3/4) = 0.67449, the normal distribution's upper quartile).
MAD_TO_SIGMA = 1.482602218505602


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated as :data:`MAD_TO_SIGMA` x the median absolute deviation.

    Parameters
    ----------
    values : ndarray, any shape
        Samples (any real dtype); NaN is not allowed.

    Returns
    -------
    float
        In the units of ``values``; 0.0 for an empty array.
    """
    values = np.asarray(values)
    if values.size == 0:
        return 0.0
    return MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))


def _dot64(a: np.ndarray, b: np.ndarray, *, chunk: int = 1 << 20) -> float:
    """``sum(a * b)`` of two equal-length 1-D arrays, accumulated in float64 chunk by chunk.

    float32 BLAS dot products of ~10^7 elements lose several digits; converting the whole arrays
    to float64 would double their memory. Chunks of ``chunk`` elements keep the extra memory fixed.
    """
    total = 0.0
    for start in range(0, a.size, chunk):
        total += float(np.dot(a[start:start + chunk].astype(np.float64), b[start:start + chunk].astype(np.float64)))
    return total


def fit_gain_offset(*, model: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
                    nonnegative: bool = False) -> tuple[float, float]:
    """Least-squares ``gain``, ``offset`` with ``target ~ gain * model + offset``.

    The one implementation of this fit in the engine (metrics normalisation, data consistency).

    Parameters
    ----------
    model, target : ndarray, same shape
        Any real dtype; sums are accumulated in float64.
    mask : ndarray of bool, same shape, optional
        Only these pixels enter the fit.
    nonnegative : bool
        Clip a negative gain to 0 (then ``offset`` is the target's mean).

    Returns
    -------
    gain : float
        Units of ``target`` per unit of ``model``; 0.0 when ``model`` is constant over the fit.
    offset : float
        Units of ``target``.
    """
    m = np.asarray(model)[mask] if mask is not None else np.asarray(model).ravel()
    t = np.asarray(target)[mask] if mask is not None else np.asarray(target).ravel()
    if m.shape != t.shape:
        raise ValueError(f"model and target differ in size ({m.size} vs {t.size} pixels)")
    if m.size == 0:
        raise ValueError("no pixels to fit a gain and offset to (empty image or mask)")
    m_mean = float(np.mean(m, dtype=np.float64))
    t_mean = float(np.mean(t, dtype=np.float64))
    dm = m - m.dtype.type(m_mean) if m.dtype.kind == "f" else m - m_mean
    dt = t - t.dtype.type(t_mean) if t.dtype.kind == "f" else t - t_mean
    var = _dot64(dm, dm)
    gain = _dot64(dm, dt) / var if var > 0 else 0.0
    if nonnegative:
        gain = max(gain, 0.0)
    return gain, t_mean - gain * m_mean
