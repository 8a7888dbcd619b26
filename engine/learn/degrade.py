"""Synthetic low-quality images from high-quality ones, for training when only HQ images exist.

Three degradations, each seeded (pass a :class:`numpy.random.Generator`) and each returning a
float32 LQ image in the *same intensity units* as the HQ input, of shape
``(H // scale, W // scale)`` for an HQ image of shape ``(H, W)`` (``scale`` = HQ pixels per LQ pixel
of the model to be trained; 1 for restoration at constant sampling).

``gaussian`` (S3's "cGAN trained on degraded HR", Trujillo et al. 2024)
    Gaussian blur of ``sigma_px`` HQ pixels (default 1), down-sampling by ``factor`` (default 2,
    bilinear without further anti-aliasing, the blur is the anti-aliasing), then resampling to
    the LQ grid (bicubic; for ``scale == 1`` this is the "upsample back" of the paper). No noise.
``born_wolf`` (S3's "cGAN trained on simulated pairs")
    Convolution with the in-focus Born & Wolf PSF of the low-quality objective
    (:func:`engine.optics.psf.born_wolf_psf`; ``na``, immersion index ``ni``, emission ``wavelength_nm``,
    HQ pixel size ``pixel_nm``), resampling to the LQ grid, then Poisson noise at a target
    ``snr_db`` (default 45 dB, the paper's). The blur is a true convolution (reflect-padded edges,
    :func:`engine.optics.fft_conv.convolve_reflect`). The SNR is the power ratio
    ``10 log10(sum s**2 / sum (n - s)**2)`` of the clean LQ signal ``s`` (clipped at 0) and its
    noise: the image is scaled to expected photon counts ``k s`` with
    ``k = 10**(snr_db / 10) * sum(s) / sum(s**2)`` (for Poisson noise the expected noise power is
    ``sum(k s)``), drawn, and divided by ``k`` again, so the intensity units are kept.
``realesrgan`` (S5's synthetic fallback, after Wang et al. 2021 "Real-ESRGAN", grey-level version)
    Two stages of {Gaussian blur with a random (an)isotropic kernel, random resize, Gaussian or
    Poisson noise, JPEG-like quantisation}, then a resize to the LQ grid and a last JPEG-like
    quantisation. The ranges are the paper's first/second-order ranges (sigma 0.2-3 / 0.2-1.5 px,
    resize 0.15-1.5 / 0.3-1.2, Gaussian noise 1-30 / 1-25 grey levels of 255, Poisson scale
    0.05-3 / 0.05-2.5, JPEG quality 30-95), applied to the image percentile-scaled to [0, 1]
    (1st and 99.8th percentiles; values outside are kept, never clipped) and scaled back.
    The JPEG-like step is the lossy part of baseline JPEG (8x8 block DCT, the standard luminance
    quantisation table scaled by quality, rounding) without the entropy coding, so it needs no
    image codec and works on floats. The sinc (ringing) filter of Real-ESRGAN is not reproduced.

All resampling uses :func:`skimage.transform.resize` (order 1 = bilinear, 3 = bicubic) with
``mode="reflect"``; blurs use reflective boundaries.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

DegradationName = Literal["gaussian", "born_wolf", "realesrgan"]
DEGRADATIONS: tuple[str, ...] = ("gaussian", "born_wolf", "realesrgan")

#: Standard JPEG luminance quantisation table (ITU-T T.81, Annex K.1).
_JPEG_LUMA_TABLE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)


class DegradationSpec(BaseModel):
    """A synthetic degradation and its parameters (stored in a run's config.json).

    ``params`` are passed as keyword arguments to the function of that name
    (:func:`gaussian_degrade`, :func:`born_wolf_degrade`, :func:`realesrgan_degrade`).
    """

    model_config = ConfigDict(extra="forbid")

    method: DegradationName
    params: dict[str, Any] = Field(default_factory=dict)


def _check_plane(hq: np.ndarray, scale: int) -> np.ndarray:
    arr = np.asarray(hq)
    if arr.ndim != 2:
        raise ValueError(f"a 2-D (Y, X) plane is needed, got shape {arr.shape}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if arr.shape[0] < scale or arr.shape[1] < scale:
        raise ValueError(f"plane of shape {arr.shape} is smaller than the scale factor {scale}")
    return arr.astype(np.float32, copy=False)


def _resize(image: np.ndarray, shape: tuple[int, int], *, order: int, anti_aliasing: bool = False) -> np.ndarray:
    from skimage.transform import resize

    if tuple(image.shape) == tuple(shape):
        return image.astype(np.float32, copy=False)
    out = resize(image.astype(np.float64), shape, order=order, mode="reflect", anti_aliasing=anti_aliasing,
                 preserve_range=True)
    return out.astype(np.float32)


def _lq_shape(shape: tuple[int, ...], scale: int) -> tuple[int, int]:
    return int(shape[0]) // int(scale), int(shape[1]) // int(scale)


# ---------------------------------------------------------------------------------------------
# S3 cGAN2: Gaussian blur + down/up-sampling
# ---------------------------------------------------------------------------------------------
def gaussian_degrade(
    hq: np.ndarray,
    *,
    scale: int = 1,
    sigma_px: float = 1.0,
    factor: float = 2.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Gaussian blur, down-sampling by ``factor``, resampling to the LQ grid.

    Parameters
    ----------
    hq : ndarray, shape (H, W)
        High-quality plane, any real dtype.
    scale : int
        HQ pixels per LQ pixel of the returned image (output shape ``(H // scale, W // scale)``).
    sigma_px : float
        Blur standard deviation in HQ pixels (S3: 1).
    factor : float
        Down-sampling factor applied after the blur (S3: 2); ``>= scale``.
    rng : numpy Generator, optional
        Unused (the degradation is deterministic); accepted for a uniform signature.

    Returns
    -------
    ndarray, float32, shape (H // scale, W // scale)
    """
    from scipy.ndimage import gaussian_filter

    del rng
    plane = _check_plane(hq, scale)
    if sigma_px < 0 or not np.isfinite(sigma_px):
        raise ValueError(f"sigma_px must be >= 0, got {sigma_px}")
    if factor < scale:
        raise ValueError(f"factor ({factor}) must be >= scale ({scale})")
    blurred = gaussian_filter(plane.astype(np.float64), sigma_px, mode="reflect") if sigma_px > 0 else plane
    small_shape = (max(1, int(round(plane.shape[0] / factor))), max(1, int(round(plane.shape[1] / factor))))
    small = _resize(blurred, small_shape, order=1)
    return _resize(small, _lq_shape(plane.shape, scale), order=3)


# ---------------------------------------------------------------------------------------------
# S3 cGAN1: Born & Wolf PSF + Poisson noise at a target SNR
# ---------------------------------------------------------------------------------------------
def poisson_noise_at_snr(signal: np.ndarray, *, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise whose expected power ratio to ``signal`` is ``snr_db`` decibels (module doc).

    ``signal`` is clipped at 0; the result is in the same units (float32).

    Parameters
    ----------
    signal : ndarray, any shape
        Noise-free intensities (any units; only their ratio matters).
    snr_db : float
        Signal-to-noise power ratio in dB, ``10 log10(sum s**2 / sum var)``.
    rng : numpy.random.Generator
        Seeded generator.

    Returns
    -------
    ndarray, float32, same shape as ``signal``
        A noisy copy (the clipped signal itself when it is all zero).

    Raises
    ------
    ValueError
        When ``snr_db`` is not finite.
    """
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    s = np.clip(np.asarray(signal, dtype=np.float64), 0.0, None)
    total, power = float(s.sum()), float(np.square(s).sum())
    if power <= 0:
        return s.astype(np.float32)
    k = 10.0 ** (snr_db / 10.0) * total / power
    return (rng.poisson(s * k) / k).astype(np.float32)


def born_wolf_degrade(
    hq: np.ndarray,
    *,
    pixel_nm: float,
    scale: int = 1,
    na: float = 0.3,
    ni: float = 1.0,
    wavelength_nm: float = 520.0,
    snr_db: float = 45.0,
    psf_size: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Blur with the LQ objective's Born & Wolf PSF, resample to the LQ grid, add Poisson noise.

    Parameters
    ----------
    hq : ndarray, shape (H, W)
        High-quality plane.
    pixel_nm : float
        HQ pixel size in nanometres (needed to sample the PSF).
    scale : int
        HQ pixels per LQ pixel of the output.
    na, ni, wavelength_nm : float
        Low-quality objective: numerical aperture, immersion index, emission wavelength (nm).
        Defaults: S3's 10x/0.3 dry objective at 520 nm.
    snr_db : float
        Target SNR in dB (S3: 45).
    psf_size : int, optional
        PSF side in HQ pixels (odd); default covers four Airy radii (capped at 255).
    rng : numpy Generator
        Source of the Poisson noise (required; seed it for reproducible pairs).

    Returns
    -------
    ndarray, float32, shape (H // scale, W // scale)
    """
    from decongan.engine.optics.fft_conv import convolve_reflect
    from decongan.engine.optics.psf import born_wolf_psf

    if rng is None:
        raise ValueError("born_wolf_degrade needs rng= (a seeded numpy Generator) for the Poisson noise")
    plane = _check_plane(hq, scale)
    if not pixel_nm or pixel_nm <= 0:
        raise ValueError("born_wolf_degrade needs the HQ pixel size in nm (pixel_nm > 0); give the HQ pixel size in nm")
    if psf_size is None:
        airy_radius_px = 0.61 * wavelength_nm / na / pixel_nm
        psf_size = int(min(255, max(9, 2 * int(np.ceil(4 * airy_radius_px)) + 1)))
    psf = born_wolf_psf(na=na, ni=ni, wavelength_nm=wavelength_nm, pixel_nm=pixel_nm, size=int(psf_size),
                        normalize="sum")
    # a true convolution with reflect-padded edges (the engine's one implementation, float32 FFTs)
    blurred = convolve_reflect(plane, psf)
    lq_clean = _resize(blurred, _lq_shape(plane.shape, scale), order=1, anti_aliasing=scale > 1)
    return poisson_noise_at_snr(lq_clean, snr_db=snr_db, rng=rng)


# ---------------------------------------------------------------------------------------------
# S5: Real-ESRGAN-style two-stage degradation
# ---------------------------------------------------------------------------------------------
def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, angle_rad: float) -> np.ndarray:
    """Normalised (sum 1) anisotropic Gaussian kernel, ``size`` odd, rotated by ``angle_rad``.

    Parameters
    ----------
    size : int
        Side in px, odd (the centre pixel is the origin).
    sigma_x, sigma_y : float
        Standard deviations in px along the kernel's own axes, before rotation.
    angle_rad : float
        Rotation of the kernel's x axis from the image's x (column) axis, in radians.

    Returns
    -------
    ndarray, float64, shape (size, size)
        Indexed (Y, X), summing to 1.
    """
    half = size // 2
    yy, xx = np.mgrid[-half: half + 1, -half: half + 1].astype(np.float64)
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    u = cos * xx + sin * yy
    v = -sin * xx + cos * yy
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def jpeg_like(image01: np.ndarray, *, quality: int) -> np.ndarray:
    """Lossy part of baseline JPEG on a grey image scaled to [0, 1] (values outside kept).

    The image (times 255, minus 128) is cut into 8x8 blocks (edge-padded), each block's orthonormal
    DCT-II is divided by the luminance table scaled for ``quality`` (1-100, libjpeg's formula),
    rounded, multiplied back and inverted.

    Parameters
    ----------
    image01 : ndarray, shape (H, W)
        Grey image, 0 = black and 1 = white (no chroma subsampling, no 8-bit clipping).
    quality : int
        JPEG quality factor, 1 (worst) to 100.

    Returns
    -------
    ndarray, float32, shape (H, W)
        In the same [0, 1] units.

    Raises
    ------
    ValueError
        When ``quality`` is outside 1..100.
    """
    from scipy.fft import dctn, idctn

    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    q = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    table = np.clip(np.floor((_JPEG_LUMA_TABLE * q + 50.0) / 100.0), 1.0, 255.0)
    h, w = image01.shape
    ph, pw = (-h) % 8, (-w) % 8
    padded = np.pad(image01.astype(np.float64) * 255.0 - 128.0, ((0, ph), (0, pw)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // 8, 8, padded.shape[1] // 8, 8).transpose(0, 2, 1, 3)
    coeffs = dctn(blocks, axes=(2, 3), norm="ortho")
    coeffs = np.round(coeffs / table) * table
    restored = idctn(coeffs, axes=(2, 3), norm="ortho").transpose(0, 2, 1, 3).reshape(padded.shape)
    return ((restored[:h, :w] + 128.0) / 255.0).astype(np.float32)


#: Real-ESRGAN's ranges (first order, second order).
REALESRGAN_STAGES: tuple[dict[str, Any], ...] = (
    {"blur_prob": 1.0, "kernel_sizes": (7, 21), "sigma": (0.2, 3.0), "resize_probs": (0.2, 0.7, 0.1),
     "resize_range": (0.15, 1.5), "gaussian_noise_prob": 0.5, "noise_sigma": (1.0, 30.0),
     "poisson_scale": (0.05, 3.0), "jpeg_quality": (30, 95)},
    {"blur_prob": 0.8, "kernel_sizes": (7, 21), "sigma": (0.2, 1.5), "resize_probs": (0.3, 0.4, 0.3),
     "resize_range": (0.3, 1.2), "gaussian_noise_prob": 0.5, "noise_sigma": (1.0, 25.0),
     "poisson_scale": (0.05, 2.5), "jpeg_quality": (30, 95)},
)


def _stage(image: np.ndarray, stage: dict[str, Any], rng: np.random.Generator, base_shape: tuple[int, int]) -> np.ndarray:
    from scipy.ndimage import convolve

    out = image
    if rng.random() < stage["blur_prob"]:
        lo, hi = stage["kernel_sizes"]
        size = int(rng.integers(lo // 2, hi // 2 + 1)) * 2 + 1
        sx = float(rng.uniform(*stage["sigma"]))
        sy = sx if rng.random() < 0.5 else float(rng.uniform(*stage["sigma"]))  # isotropic / anisotropic
        kernel = gaussian_kernel(size, sx, sy, float(rng.uniform(-np.pi, np.pi)))
        out = convolve(out.astype(np.float64), kernel, mode="reflect").astype(np.float32)
    kind = rng.choice(3, p=np.asarray(stage["resize_probs"]))  # up, down, keep
    if kind == 0:
        factor = float(rng.uniform(1.0, stage["resize_range"][1]))
    elif kind == 1:
        factor = float(rng.uniform(stage["resize_range"][0], 1.0))
    else:
        factor = 1.0
    new_shape = (max(8, int(round(out.shape[0] * factor))), max(8, int(round(out.shape[1] * factor))))
    new_shape = (min(new_shape[0], 2 * base_shape[0]), min(new_shape[1], 2 * base_shape[1]))
    out = _resize(out, new_shape, order=int(rng.choice([0, 1, 3])) if factor != 1.0 else 1, anti_aliasing=factor < 1)
    if rng.random() < stage["gaussian_noise_prob"]:
        sigma = float(rng.uniform(*stage["noise_sigma"])) / 255.0
        out = out + rng.normal(0.0, sigma, size=out.shape).astype(np.float32)
    else:
        strength = float(rng.uniform(*stage["poisson_scale"]))
        counts = np.clip(out, 0.0, None).astype(np.float64) * 255.0
        out = out + strength * ((rng.poisson(counts) - counts) / 255.0).astype(np.float32)
    quality = int(rng.integers(stage["jpeg_quality"][0], stage["jpeg_quality"][1] + 1))
    return jpeg_like(out, quality=quality)


def realesrgan_degrade(
    hq: np.ndarray,
    *,
    scale: int = 1,
    rng: np.random.Generator | None = None,
    p_low: float = 1.0,
    p_high: float = 99.8,
) -> np.ndarray:
    """Two-stage Real-ESRGAN-style degradation (module doc), output on the LQ grid.

    Parameters
    ----------
    hq : ndarray, shape (H, W)
        High-quality plane.
    scale : int
        HQ pixels per LQ pixel of the output.
    rng : numpy Generator
        Draws every random choice (required).
    p_low, p_high : float
        Percentiles that map the plane to [0, 1] for the noise and JPEG levels (inverted at the end).

    Returns
    -------
    ndarray, float32, shape (H // scale, W // scale)
    """
    if rng is None:
        raise ValueError("realesrgan_degrade needs rng= (a seeded numpy Generator)")
    plane = _check_plane(hq, scale)
    low, high = np.percentile(plane, [p_low, p_high])
    span = float(high - low) if high > low else 1.0
    work = (plane - np.float32(low)) / np.float32(span)
    base_shape = (int(plane.shape[0]), int(plane.shape[1]))
    for stage in REALESRGAN_STAGES:
        work = _stage(work, stage, rng, base_shape)
    work = _resize(work, _lq_shape(plane.shape, scale), order=int(rng.choice([1, 3])), anti_aliasing=True)
    work = jpeg_like(work, quality=int(rng.integers(30, 96)))
    return (work * np.float32(span) + np.float32(low)).astype(np.float32)


def degrade(hq: np.ndarray, spec: DegradationSpec | str, *, scale: int = 1,
            rng: np.random.Generator | None = None, **params: Any) -> np.ndarray:
    """Apply the degradation named by ``spec`` (a :class:`DegradationSpec` or a method name).

    Parameters
    ----------
    hq : ndarray, shape (H, W)
        High-quality plane.
    spec : DegradationSpec or str
        The method and its parameters, or just a method name (``"gaussian"``, ``"born_wolf"`` or
        ``"born-wolf"``, ``"realesrgan"``) with default parameters.
    scale : int
        HQ pixels per LQ pixel of the output.
    rng : numpy.random.Generator, optional
        Seeded generator for the noise (and Real-ESRGAN's random choices); required by the methods
        that add noise.
    **params
        Override the spec's parameters (e.g. ``pixel_nm`` in nm for ``born_wolf``, ``snr_db`` in dB).

    Returns
    -------
    ndarray, float32, shape (H // scale, W // scale)
        The synthetic low-quality plane.

    Raises
    ------
    ValueError
        When the method is unknown (via :class:`DegradationSpec`) or a method's parameters are
        missing or invalid (the message says which).
    """
    if isinstance(spec, str):
        spec = DegradationSpec(method=spec.replace("-", "_"))  # type: ignore[arg-type]
    kwargs = {**spec.params, **params}
    function = {"gaussian": gaussian_degrade, "born_wolf": born_wolf_degrade, "realesrgan": realesrgan_degrade}[spec.method]
    return function(hq, scale=scale, rng=rng, **kwargs)


__all__ = [
    "DEGRADATIONS",
    "DegradationSpec",
    "born_wolf_degrade",
    "degrade",
    "gaussian_degrade",
    "gaussian_kernel",
    "jpeg_like",
    "poisson_noise_at_snr",
    "realesrgan_degrade",
]
