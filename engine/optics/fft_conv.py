"""FFT convolution helpers: where the PSF goes on the FFT grid, and plain circular convolution.

Kernel placement decides where a deconvolved or blurred image ends up, to the pixel:

* ``"dl2"`` (DeconvolutionLab2 2.1.2): the PSF is put into an image-sized array at integer offset
  ``(N - n) // 2`` per axis (cropped when larger), then circularly shifted by ``-(N // 2)``. The
  PSF element that lands on index 0 is therefore ``N // 2 - (N - n) // 2``; for a PSF with its peak
  at ``(n - 1) / 2`` (odd ``n``) inside an even-sized image that is one past the peak, so the result
  is displaced by -1 pixel along that axis (``dl2_conv_delta256.tif`` shows it).
* ``"centred"``: element ``n // 2`` lands on index 0 (numpy's ``ifftshift`` convention); for odd
  ``n`` the PSF peak, so nothing moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Placement = Literal["dl2", "centred"]


def _is_smooth(n: int, primes: tuple[int, ...] = (2, 3, 5, 7, 11)) -> bool:
    for p in primes:
        while n % p == 0:
            n //= p
    return n == 1


def fast_length(n: int) -> int:
    """Smallest even length >= ``n`` whose prime factors are all <= 11 (fast for MKL, cuFFT, pocketfft)."""
    if n <= 2:
        return max(1, int(n))
    m = int(n) + (int(n) % 2)
    while not _is_smooth(m):
        m += 2
    return m


def fast_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """:func:`fast_length` of every axis."""
    return tuple(fast_length(int(n)) for n in shape)


def _java_div2(value: int) -> int:
    """``value / 2`` with Java's integer division (rounds towards zero)."""
    return int(value / 2)


def crop_kernel_to(psf: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Crop ``psf`` centrally along every axis where it is larger than ``shape`` (as DL2 does).

    The kept window starts at ``-((N - n) / 2)`` (Java integer division), i.e. the part of the PSF
    that DL2's offset ``(N - n) / 2`` leaves inside an ``N``-long array.

    Parameters
    ----------
    psf : ndarray, shape (Y, X) or (Z, Y, X)
        The kernel, in voxels of the image grid.
    shape : sequence of int
        The image (canvas) shape, same number of dimensions.

    Returns
    -------
    ndarray
        A view of ``psf``, no longer than ``shape`` along any axis (not renormalised).
    """
    index = []
    for n, size in zip(psf.shape, shape, strict=True):
        if n > size:
            start = -_java_div2(size - n)
            index.append(slice(start, start + size))
        else:
            index.append(slice(None))
    return psf[tuple(index)]


def kernel_centre(psf_shape: Sequence[int], canvas_shape: Sequence[int], placement: Placement) -> tuple[int, ...]:
    """Index of the PSF element that goes to the origin (index 0) of the FFT grid.

    ``psf_shape`` must already fit in ``canvas_shape`` (see :func:`crop_kernel_to`).

    Parameters
    ----------
    psf_shape, canvas_shape : sequence of int
        Shapes of the (cropped) PSF and of the FFT canvas, e.g. (Z, Y, X), in voxels.
    placement : {"dl2", "centred"}
        DL2's convention (the centre depends on the canvas size) or the PSF's own centre
        ``n // 2`` (module docstring).

    Returns
    -------
    tuple of int
        The PSF index, one per axis.

    Raises
    ------
    ValueError
        For an unknown ``placement``.
    """
    if placement == "dl2":
        return tuple(size // 2 - _java_div2(size - n) for n, size in zip(psf_shape, canvas_shape, strict=True))
    if placement == "centred":
        return tuple(n // 2 for n in psf_shape)
    raise ValueError(f"placement must be 'dl2' or 'centred', got {placement!r}")


def kernel_at_origin(psf: np.ndarray, canvas_shape: Sequence[int], centre: Sequence[int]) -> np.ndarray:
    """A ``canvas_shape`` array holding ``psf`` wrapped so that ``psf[centre]`` sits at index 0.

    Parameters
    ----------
    psf : ndarray, shape (Y, X) or (Z, Y, X)
        The kernel, no larger than the canvas along any axis.
    canvas_shape : sequence of int
        Shape of the FFT grid, same number of dimensions.
    centre : sequence of int
        The PSF index to put at the origin (see :func:`kernel_centre`).

    Returns
    -------
    ndarray, shape ``canvas_shape``, dtype of ``psf``
        Zero-padded and circularly shifted kernel, ready for an FFT.

    Raises
    ------
    ValueError
        If the PSF is larger than the canvas along an axis (crop it first).
    """
    psf = np.asarray(psf)
    if psf.ndim != len(canvas_shape) or any(n > size for n, size in zip(psf.shape, canvas_shape, strict=True)):
        raise ValueError(f"PSF of shape {psf.shape} does not fit a canvas of shape {tuple(canvas_shape)}")
    canvas = np.zeros(tuple(canvas_shape), dtype=psf.dtype)
    canvas[tuple(slice(0, n) for n in psf.shape)] = psf
    return np.roll(canvas, shift=[-int(c) for c in centre], axis=tuple(range(psf.ndim)))


def convolve_circular(image: np.ndarray, psf: np.ndarray, *, placement: Placement = "dl2",
                      normalize: bool = True) -> np.ndarray:
    """Circular (periodic) convolution of ``image`` with ``psf`` via float32 FFTs.

    With the defaults this is DeconvolutionLab2's "CONV" algorithm: the PSF is cropped to the image
    if larger, normalised to sum 1, placed with DL2's convention, and the output has the image's
    shape (no padding).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    psf : ndarray, same number of dimensions
    placement : {"dl2", "centred"}
        See the module docstring.
    normalize : bool
        Divide the (cropped) PSF by its sum first.

    Returns
    -------
    ndarray, float32, shape of ``image``
    """
    from scipy import fft

    img = np.asarray(image, dtype=np.float32)
    kernel = np.asarray(psf, dtype=np.float32)
    if img.ndim != kernel.ndim:
        raise ValueError(f"image is {img.ndim}-D but the PSF is {kernel.ndim}-D")
    kernel = crop_kernel_to(kernel, img.shape)
    if normalize:
        total = float(kernel.sum(dtype=np.float64))
        if total <= 0:
            raise ValueError("the PSF sums to zero or less; it cannot be normalised")
        kernel = kernel / np.float32(total)
    centre = kernel_centre(kernel.shape, img.shape, placement)
    otf = fft.rfftn(kernel_at_origin(kernel, img.shape, centre))
    return fft.irfftn(fft.rfftn(img) * otf, s=img.shape).astype(np.float32, copy=False)


def convolve_reflect(image: np.ndarray, kernel: np.ndarray, *, normalize: bool = False) -> np.ndarray:
    """Linear convolution of ``image`` with ``kernel``, reflect-padded edges, same shape as ``image``.

    The one reflect-padded convolution of the engine (data-consistency forward model, synthetic
    degradations). Orientation: a true **convolution** (not a correlation), with the kernel's
    element ``c = k // 2`` (per axis, ``k`` the kernel's length; the "centred" placement of the module
    docstring) at the origin::

        out[i] = sum_j image[i + c - j] * kernel[j]

    so a kernel that is a delta at ``j`` shifts the image by ``j - c`` towards higher indices.
    Outside the image, values are mirrored without repeating the edge pixel (numpy's ``"reflect"``;
    repeated for kernels wider than the image; an axis of length 1 is extended with its one value).

    Memory is bounded by the padded size: the image is padded by ``k - 1`` pixels per axis (no more),
    transformed with float32 real FFTs of length ``next_fast_len(n + k - 1)``, and cropped. Peak
    memory is about ``4 * prod((n + k - 1) / n)`` times the float32 image (padded copy, two
    complex64 half spectra, float32 output), plus the returned array.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X) (any number of axes)
        Any real dtype; computed in float32.
    kernel : ndarray, same number of axes as ``image``
        The PSF or blur kernel (any size; larger than the image is allowed).
    normalize : bool
        Divide the kernel by its sum first (refused unless the sum is positive and finite).

    Returns
    -------
    ndarray, float32, shape of ``image``
    """
    from scipy import fft

    img = np.asarray(image)
    ker = np.asarray(kernel)
    if img.ndim != ker.ndim:
        raise ValueError(f"a {ker.ndim}-D kernel cannot convolve a {img.ndim}-D image (add axes of length 1 first)")
    if img.dtype.kind not in "biuf" or ker.dtype.kind not in "biuf":
        raise ValueError(f"image ({img.dtype}) and kernel ({ker.dtype}) must be real-valued")
    ker = ker.astype(np.float32)
    if normalize:
        total = float(ker.sum(dtype=np.float64))
        if not np.isfinite(total) or total <= 0:
            raise ValueError("the kernel must have a positive, finite sum to be normalised")
        ker /= np.float32(total)
    centres = [k // 2 for k in ker.shape]
    pads = [(k - 1 - c, c) for k, c in zip(ker.shape, centres, strict=True)]
    padded = np.pad(img.astype(np.float32, copy=False), pads, mode="reflect")
    fshape = [fft.next_fast_len(int(p), real=True) for p in padded.shape]
    axes = tuple(range(img.ndim))
    spectrum = fft.rfftn(padded, fshape, axes=axes)
    del padded
    spectrum *= fft.rfftn(ker, fshape, axes=axes)
    full = fft.irfftn(spectrum, fshape, axes=axes)
    del spectrum
    # circular convolution of length >= n + k - 1: indices k-1 ... n+k-2 hold the linear result
    crop = tuple(slice(k - 1, k - 1 + n) for k, n in zip(ker.shape, img.shape, strict=True))
    return np.ascontiguousarray(full[crop], dtype=np.float32)


__all__ = ["Placement", "convolve_circular", "convolve_reflect", "crop_kernel_to", "fast_length", "fast_shape", "kernel_at_origin", "kernel_centre"]
