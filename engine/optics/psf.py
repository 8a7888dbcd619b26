"""Point spread functions: Born & Wolf (PSF Generator's convention), Gaussian, and PSF files.

Born & Wolf
-----------
:func:`born_wolf_psf` reproduces EPFL's PSF Generator ("Born & Wolf 3D Optical Model", 2017 release)
sample for sample (checked against its real outputs in ``../shared/golden/fiji``). The scalar model
with paraxial defocus is::

    h(r, z) = | int_0^1 J0(k0 NA r rho) exp(-i k0 NA^2 z rho^2 / (2 ni)) rho d rho |^2,   k0 = 2 pi / lambda

NA enters the Bessel argument directly; the immersion index ``ni`` only enters the defocus phase.
Sampling follows the plugin exactly: the radial profile is evaluated at integer pixel radii
``r_n = n * pixel`` and each pixel gets the linear interpolation of that profile at its distance from
the centre ``((N - 1) / 2, (N - 1) / 2)`` (between pixels for even sizes); plane ``k`` of ``nz`` is
at defocus ``z = z_step * (k - (nz - 1) / 2)``. ``normalize="peak"`` divides by the maximum of the
whole volume (the plugin's "Linear" scale, peak = 1); ``"sum"`` makes the volume sum to 1 (what
deconvolution needs).

The plugin integrates with an adaptive Simpson rule; here a Gauss-Legendre rule whose size grows
with the largest Bessel argument and defocus phase does the same integral for every radius and
plane at once (a matrix product), to float32 rounding of the plugin's values.

Files
-----
:func:`read_psf` reads a 2-D (YX) or 3-D (ZYX) PSF image for deconvolution and checks it: finite,
not all zero, no substantial negative values, peak near the array centre.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from decongan.engine.io import ImageReadError, MicroscopyImage, read_image

Normalize = Literal["peak", "sum"]
Accuracy = Literal["good", "better", "best"]

#: FWHM of the in-focus Airy pattern in units of lambda / NA (2 * 1.61634 / (2 pi)); "~0.51 lambda/NA".
AIRY_FWHM_FACTOR = 0.5145

_ACCURACY_FACTOR = {"good": 1.0, "better": 1.5, "best": 2.0}


class PsfWarning(UserWarning):
    """A PSF is usable but probably not what the user meant (off-centre, clipped negatives...)."""


# ---------------------------------------------------------------------------------------------
# parameter checks
# ---------------------------------------------------------------------------------------------
def _positive(name: str, value: float | None, unit: str = "") -> float:
    if value is None:
        raise ValueError(f"{name} is required")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number{(' in ' + unit) if unit else ''}, got {value!r}")
    return number


def _shape_yx(size: int | Sequence[int]) -> tuple[int, int]:
    sizes = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(sizes) != 2:
        raise ValueError(f"size must be an int or (ny, nx), got {size!r}")
    out = []
    for n in sizes:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 3:
            raise ValueError(f"PSF size must be an integer >= 3 pixels, got {size!r}")
        out.append(int(n))
    return out[0], out[1]


def _check_nz(nz: int | None, z_step_nm: float | None, *, name: str = "z_step_nm") -> tuple[int | None, float | None]:
    if nz is None:
        return None, None
    if not isinstance(nz, (int, np.integer)) or isinstance(nz, bool) or nz < 1:
        raise ValueError(f"nz must be a positive integer (number of planes), got {nz!r}")
    if nz > 1:
        return int(nz), _positive(name, z_step_nm, "nm")
    return 1, (float(z_step_nm) if z_step_nm is not None else None)


def _normalize(volume: np.ndarray, normalize: str) -> np.ndarray:
    if normalize == "peak":
        peak = float(volume.max())
        return volume / peak if peak > 0 else volume
    if normalize == "sum":
        total = float(volume.sum())
        return volume / total if total > 0 else volume
    raise ValueError(f"normalize must be 'peak' or 'sum', got {normalize!r}")


# ---------------------------------------------------------------------------------------------
# Born & Wolf
# ---------------------------------------------------------------------------------------------
def born_wolf_profile(
    r_nm: np.ndarray | Sequence[float] | float,
    z_nm: np.ndarray | Sequence[float] | float = 0.0,
    *,
    na: float,
    ni: float,
    wavelength_nm: float,
    accuracy: Accuracy = "good",
) -> np.ndarray:
    """Unnormalised Born & Wolf intensity ``h(r, z)`` on a grid of radii and defocus values.

    Parameters
    ----------
    r_nm : array_like, shape (R,)
        Radial distances from the optical axis, nanometres (>= 0).
    z_nm : array_like, shape (Z,)
        Defocus values, nanometres.
    na, ni, wavelength_nm, accuracy
        As in :func:`born_wolf_psf`.

    Returns
    -------
    ndarray, float64, shape (Z, R)
        ``|int_0^1 J0(k0 NA r rho) exp(-i k0 NA^2 z rho^2 / (2 ni)) rho d rho|^2``; ``h(0, 0) = 1/4``.
    """
    from scipy.special import j0

    na, ni, wavelength_nm = _check_optics(na, ni, wavelength_nm)
    if accuracy not in _ACCURACY_FACTOR:
        raise ValueError(f"accuracy must be 'good', 'better' or 'best', got {accuracy!r}")
    r = np.atleast_1d(np.asarray(r_nm, dtype=np.float64))
    z = np.atleast_1d(np.asarray(z_nm, dtype=np.float64))
    if r.ndim != 1 or z.ndim != 1:
        raise ValueError("r_nm and z_nm must be scalars or 1-D arrays")
    if np.any(r < 0) or not np.all(np.isfinite(r)) or not np.all(np.isfinite(z)):
        raise ValueError("radii must be finite and >= 0, defocus values finite")
    k0 = 2.0 * np.pi / wavelength_nm
    bessel_arg = k0 * na * float(r.max(initial=0.0))  # largest J0 argument (rad)
    phase = k0 * na * na * float(np.abs(z).max(initial=0.0)) / (2.0 * ni)  # largest defocus phase (rad)
    # Gauss-Legendre is exact for polynomials of degree 2n-1; an oscillation of total phase P needs
    # n a little above P / 2. This choice gives float32-exact agreement with the plugin (checked).
    n_nodes = int(_ACCURACY_FACTOR[accuracy] * (0.6 * (bessel_arg + phase) + 64))
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    rho = 0.5 * (nodes + 1.0)
    weights = 0.5 * weights
    bessel = j0(k0 * na * np.outer(rho, r)) * (rho * weights)[:, None]  # (Q, R)
    defocus = np.exp(-1j * (k0 * na * na / (2.0 * ni)) * np.outer(z, rho * rho))  # (Z, Q)
    amplitude = defocus @ bessel
    return amplitude.real ** 2 + amplitude.imag ** 2


def _check_optics(na: float, ni: float, wavelength_nm: float) -> tuple[float, float, float]:
    na = _positive("na (numerical aperture)", na)
    ni = _positive("ni (immersion refractive index)", ni)
    wavelength_nm = _positive("wavelength_nm", wavelength_nm, "nm")
    if ni < 1.0:
        raise ValueError(f"ni (immersion refractive index) must be >= 1 (air 1.0, water 1.33, oil 1.515), got {ni}")
    if na >= ni:
        raise ValueError(f"na ({na}) must be smaller than the immersion index ni ({ni}); check the objective's NA and immersion medium")
    return na, ni, wavelength_nm


def born_wolf_psf(
    *,
    na: float,
    ni: float,
    wavelength_nm: float,
    pixel_nm: float,
    size: int | Sequence[int] = 65,
    nz: int | None = None,
    z_step_nm: float | None = None,
    normalize: Normalize = "peak",
    accuracy: Accuracy = "good",
) -> np.ndarray:
    """Born & Wolf PSF sampled exactly like PSF Generator's "Born & Wolf 3D Optical Model".

    Parameters
    ----------
    na : float
        Numerical aperture of the objective (0 < na < ni).
    ni : float
        Refractive index of the immersion medium (1.0 air, 1.33 water, 1.515 oil).
    wavelength_nm : float
        Emission wavelength, nanometres.
    pixel_nm : float
        Lateral pixel size in the sample plane, nanometres.
    size : int or (int, int)
        Lateral size in pixels (``N`` or ``(ny, nx)``); the centre is at ``(N - 1) / 2``.
    nz : int, optional
        Number of planes. None gives a 2-D in-focus PSF (identical to the plugin's focal plane).
    z_step_nm : float, optional
        Axial step between planes, nanometres (required when ``nz > 1``).
    normalize : {"peak", "sum"}
        "peak": the maximum of the whole volume is 1 (PSF Generator); "sum": it sums to 1.
    accuracy : {"good", "better", "best"}
        Quadrature effort (the plugin's setting). "good" already agrees with the plugin's "best"
        to float32 rounding; the others use more nodes.

    Returns
    -------
    ndarray, float32
        Shape ``(ny, nx)`` when ``nz`` is None, else ``(nz, ny, nx)``.

    Raises
    ------
    ValueError
        Non-positive or non-finite parameters, ``na >= ni``, size < 3, ``nz > 1`` without ``z_step_nm``.

    Notes
    -----
    Nyquist sampling needs ``pixel_nm <= wavelength_nm / (4 na)`` laterally; coarser pixels give a
    valid but aliased PSF, as in the plugin.
    """
    na, ni, wavelength_nm = _check_optics(na, ni, wavelength_nm)
    pixel_nm = _positive("pixel_nm", pixel_nm, "nm")
    ny, nx = _shape_yx(size)
    nz_checked, dz = _check_nz(nz, z_step_nm)
    planes = 1 if nz_checked is None else nz_checked
    z_nm = (dz or 0.0) * (np.arange(planes) - (planes - 1) / 2.0)

    yy = np.arange(ny, dtype=np.float64)[:, None] - (ny - 1) / 2.0
    xx = np.arange(nx, dtype=np.float64)[None, :] - (nx - 1) / 2.0
    radius_px = np.sqrt(yy * yy + xx * xx)  # (ny, nx), distance in pixels
    n_radii = int(np.floor(radius_px.max())) + 2
    profile = born_wolf_profile(np.arange(n_radii) * pixel_nm, z_nm, na=na, ni=ni,
                                wavelength_nm=wavelength_nm, accuracy=accuracy)  # (Z, R)
    index = np.floor(radius_px).astype(np.intp)
    frac = radius_px - index
    lower = profile[:, index]
    volume = lower + (profile[:, index + 1] - lower) * frac
    volume = _normalize(volume, normalize).astype(np.float32)
    return volume[0] if nz_checked is None else volume


def airy_fwhm_nm(*, na: float, wavelength_nm: float) -> float:
    """Analytic lateral FWHM of the in-focus Born & Wolf (Airy) PSF: ``0.5145 * lambda / NA`` (nm).

    The intensity ``(2 J1(v) / v)^2`` falls to one half at ``v = 1.6163``, ``v = k0 NA r``; this is
    the "~0.51 lambda / NA" rule. Useful to check a measured bead or PSF FWHM.

    Parameters
    ----------
    na : float
        Numerical aperture of the objective, > 0.
    wavelength_nm : float
        Emission wavelength in nm, > 0.

    Returns
    -------
    float
        Lateral FWHM in nm.

    Raises
    ------
    ValueError
        When ``na`` or ``wavelength_nm`` is missing, not a number or not positive.
    """
    return AIRY_FWHM_FACTOR * _positive("wavelength_nm", wavelength_nm, "nm") / _positive("na", na)


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def gaussian_psf(
    *,
    sigma_px: float | None = None,
    fwhm_nm: float | None = None,
    pixel_nm: float | None = None,
    size: int | Sequence[int] = 65,
    nz: int | None = None,
    sigma_z_px: float | None = None,
    fwhm_z_nm: float | None = None,
    z_step_nm: float | None = None,
    normalize: Normalize = "peak",
) -> np.ndarray:
    """Separable Gaussian PSF, sampled at pixel centres, centred at ``(N - 1) / 2``.

    Parameters
    ----------
    sigma_px : float, optional
        Lateral standard deviation in pixels. Give either this or ``fwhm_nm`` with ``pixel_nm``.
    fwhm_nm, pixel_nm : float, optional
        Lateral FWHM and pixel size, nanometres (``sigma = fwhm / 2.3548 / pixel``).
    size : int or (int, int)
        Lateral size in pixels.
    nz : int, optional
        Number of planes (None: 2-D). For ``nz > 1`` give ``sigma_z_px`` or ``fwhm_z_nm`` with
        ``z_step_nm``.
    normalize : {"peak", "sum"}
        Peak 1 or sum 1.

    Returns
    -------
    ndarray, float32, shape (ny, nx) or (nz, ny, nx)
    """
    if sigma_px is None:
        if fwhm_nm is None or pixel_nm is None:
            raise ValueError("give sigma_px, or fwhm_nm together with pixel_nm")
        sigma_px = _positive("fwhm_nm", fwhm_nm, "nm") / _FWHM_PER_SIGMA / _positive("pixel_nm", pixel_nm, "nm")
    elif fwhm_nm is not None:
        raise ValueError("give either sigma_px or fwhm_nm, not both")
    sigma = _positive("sigma_px", sigma_px, "pixels")
    ny, nx = _shape_yx(size)
    nz_checked, _ = _check_nz(nz, z_step_nm if z_step_nm is not None else 1.0)

    def axis(n: int, s: float) -> np.ndarray:
        t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        return np.exp(-0.5 * (t / s) ** 2)

    plane = axis(ny, sigma)[:, None] * axis(nx, sigma)[None, :]
    if nz_checked is None:
        volume = plane
    else:
        if nz_checked == 1:
            profile_z = np.ones(1)
        else:
            if sigma_z_px is None:
                if fwhm_z_nm is None or z_step_nm is None:
                    raise ValueError("a 3-D Gaussian PSF needs sigma_z_px, or fwhm_z_nm together with z_step_nm")
                sigma_z_px = _positive("fwhm_z_nm", fwhm_z_nm, "nm") / _FWHM_PER_SIGMA / _positive("z_step_nm", z_step_nm, "nm")
            profile_z = axis(nz_checked, _positive("sigma_z_px", sigma_z_px, "pixels"))
        volume = profile_z[:, None, None] * plane[None]
    return _normalize(volume, normalize).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# PSF arrays and files
# ---------------------------------------------------------------------------------------------
def check_psf(psf: np.ndarray, *, source: str | Path | None = None, negative_tolerance: float = 1e-3,
              max_offset_px: float = 1.0) -> np.ndarray:
    """Validate a PSF array for deconvolution and return it as float32 (not normalised).

    Parameters
    ----------
    psf : ndarray, shape (Y, X) or (Z, Y, X)
        The PSF.
    source : str or Path, optional
        Where it came from (named in messages).
    negative_tolerance : float
        Negative values down to ``-negative_tolerance * max`` (noise of a measured PSF after
        background subtraction) are set to 0 with a :class:`PsfWarning`; anything below is an error.
    max_offset_px : float
        A :class:`PsfWarning` is issued when the peak lies farther than this from the array centre
        ``(n - 1) / 2`` along any axis: the deconvolved image would be shifted by that offset.

    Raises
    ------
    ImageReadError
        Not 2-D/3-D, empty, non-finite, all zero or clearly negative values.
    """
    arr = np.asarray(psf)
    where = source if source is not None else "PSF"

    def fail(problem: str) -> ImageReadError:
        return ImageReadError(source, problem) if source is not None else ImageReadError(None, f"PSF {problem}")

    if arr.ndim not in (2, 3):
        raise fail(f"is {arr.ndim}-D (shape {arr.shape}); a PSF must be 2-D (Y, X) or 3-D (Z, Y, X)")
    if arr.size == 0:
        raise fail(f"has no pixels (shape {arr.shape})")
    if arr.dtype.kind not in "uif":
        raise fail(f"has unsupported pixel type {arr.dtype}")
    arr = arr.astype(np.float32, copy=True)
    if not np.all(np.isfinite(arr)):
        raise fail("contains NaN or Inf values")
    peak = float(arr.max())
    if peak <= 0:
        raise fail("has no positive values (all zero or negative); it cannot be used as a PSF")
    low = float(arr.min())
    if low < 0:
        if low < -negative_tolerance * peak:
            raise fail(f"has negative values down to {low:g} ({-low / peak:.2%} of its peak {peak:g}); "
                       "subtract the background so that it is non-negative")
        warnings.warn(f"{where}: negative values down to {low:g} ({-low / peak:.3%} of the peak) were set to 0",
                      PsfWarning, stacklevel=1)
        np.maximum(arr, 0, out=arr)
    peak_index = np.unravel_index(int(np.argmax(arr)), arr.shape)
    offsets = [float(i) - (n - 1) / 2.0 for i, n in zip(peak_index, arr.shape, strict=True)]
    if any(abs(o) > max_offset_px for o in offsets):
        centre = tuple((n - 1) / 2.0 for n in arr.shape)
        warnings.warn(
            f"{where}: the PSF peak is at index {tuple(int(i) for i in peak_index)}, "
            f"offset {tuple(round(o, 1) for o in offsets)} px from the array centre {centre}; "
            "the deconvolved image will be shifted by that much. Re-centre the PSF (peak in the middle).",
            PsfWarning, stacklevel=1,
        )
    return arr


def read_psf(path: str | Path, *, pixel_size_um: float | None = None, z_step_um: float | None = None) -> MicroscopyImage:
    """Read a PSF image (TIFF/PNG) for deconvolution and check it with :func:`check_psf`.

    Parameters
    ----------
    path : str or Path
        The PSF file.
    pixel_size_um, z_step_um : float, optional
        Override the lateral pixel size / z step (um) found in the file (see
        :func:`engine.io.read_image`).

    Returns
    -------
    MicroscopyImage
        Axes ``"YX"`` or ``"ZYX"``, float32 data (not normalised), calibration from the file.

    Raises
    ------
    ImageReadError
        Unreadable file, colour/multichannel/time-lapse data, or an invalid PSF (see :func:`check_psf`).
    """
    image = read_image(path, pixel_size_um=pixel_size_um, z_step_um=z_step_um)
    if image.metadata.get("rgb"):
        raise ImageReadError(image.path, "is an RGB colour image; a PSF must be a single-channel (grey) 2-D or 3-D image")
    if image.axes not in ("YX", "ZYX"):
        raise ImageReadError(image.path, f"has axes {image.axes} (shape {image.data.shape}); a PSF must be 2-D (YX) "
                                         "or a Z stack (ZYX) with one channel and one time point")
    data = check_psf(image.data, source=image.path)
    return image.with_data(data)


def psf_focal_plane(psf: np.ndarray) -> np.ndarray:
    """The plane of a (Z, Y, X) PSF that holds its maximum (the in-focus plane)."""
    arr = np.asarray(psf)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3:
        raise ValueError(f"a PSF must be 2-D or 3-D, got shape {arr.shape}")
    return arr[int(np.unravel_index(int(np.argmax(arr)), arr.shape)[0])]


__all__ = [
    "AIRY_FWHM_FACTOR",
    "PsfWarning",
    "airy_fwhm_nm",
    "born_wolf_profile",
    "born_wolf_psf",
    "check_psf",
    "gaussian_psf",
    "psf_focal_plane",
    "read_psf",
]
