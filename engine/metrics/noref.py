"""No-reference image-quality metrics: BGSTD, CUF and SNR (and the combined no-reference report).

Conventions (quoted by the comparison/report layer)
---------------------------------------------------
- **Intensity scale.** BGSTD is measured after percentile scaling *of the image itself*:
  ``(x - p0.1) / (p99.9 - p0.1)``, so 0 ~ darkest and 1 ~ brightest structure of that image
  (the percentiles of the reference-metric policy, applied per image because there is no
  reference). CUF and SNR do not depend on a global gain or offset at all.
- **Background** = pixels at or below Otsu's threshold (scikit-image ``threshold_otsu``) of the
  image (Trujillo et al. 2024, S3).
- **BGSTD** = standard deviation of the background pixels on the scale above (S3; lower is cleaner).
- **CUF** (cut-off frequency) = the radius of the centred disc in the power spectrum that holds
  95 % of the spectral energy, with the mean removed first (otherwise the zero frequency alone
  holds most of the energy of any fluorescence image) and no apodisation. The radius is expressed
  in cycles per pixel: radius in frequency pixels divided by the image size (for a non-square image
  each axis is divided by its own size), so 0.5 is the Nyquist frequency along an axis. Higher means
  more energy at high frequency: finer detail **or more noise**. (S3 states "radius normalised by
  image size"; whether it also removed the mean could not be checked here, so compare CUF values
  only within DeconGAN, not with the paper's 0.22.)
- **SNR** = ``|s - b| / sigma_b`` (Huang et al. 2023, S2), ``b`` and ``sigma_b`` the mean and standard
  deviation of the *object-free* background: pixels below Otsu's threshold of the 1-px-smoothed
  image that are more than 4 px (``margin_px``) from any pixel above it (the dim flanks of objects
  would otherwise count as noise; if that leaves < 5 % of the image, the plain Otsu background is
  used); ``s`` the peak signal, defined robustly as the mean of the
  brightest 0.1 % of pixels (at least 9) of the image smoothed with a Gaussian of sigma 1 px (so a
  single hot pixel or the noise itself does not set the peak). S2 used fitted bead peaks; for bead
  images :func:`engine.metrics.beads.bead_fwhm` reports fitted amplitudes.
- **Z stacks**: the no-reference report uses the sharpest plane (largest variance of the Laplacian of
  the percentile-scaled plane) and reports its index as ``z_plane``.
"""

from __future__ import annotations

import numpy as np

from decongan.engine.metrics._common import (
    as_float_image,
    half_frequency_radius,
    half_spectrum_weights,
    percentile_scale,
)

#: Fraction of the (mean-free) spectral energy inside the CUF disc.
CUF_ENERGY_FRACTION = 0.95
#: Fraction of brightest (smoothed) pixels averaged as the SNR peak signal.
SNR_PEAK_FRACTION = 0.001


def background_mask(image: np.ndarray) -> np.ndarray:
    """Boolean mask of background pixels: values at or below Otsu's threshold of ``image``."""
    from skimage.filters import threshold_otsu

    image = as_float_image(image)
    if float(image.max()) == float(image.min()):
        return np.ones(image.shape, dtype=bool)
    return image <= threshold_otsu(image)


def bgstd(image: np.ndarray) -> float:
    """Background standard deviation (S3's BGSTD) on the image's own percentile scale.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)

    Returns
    -------
    float
        Standard deviation of the pixels at or below Otsu's threshold, after mapping the image's
        0.1th/99.9th percentiles to 0/1 (dimensionless; lower = cleaner background).
    """
    scaled, _, _ = percentile_scale(as_float_image(image))
    return float(scaled[background_mask(scaled)].std())


def radial_energy_fraction(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative fraction of mean-free spectral energy inside discs of growing radius.

    Parameters
    ----------
    image : ndarray, shape (Y, X)

    Returns
    -------
    radius : ndarray
        Disc radii in cycles per pixel (sorted, one entry per distinct frequency bin).
    fraction : ndarray
        Energy inside each radius divided by the total (ends at 1).
    """
    image = as_float_image(image, ndims=(2,))
    power = np.abs(np.fft.rfft2(image - image.mean())) ** 2 * half_spectrum_weights(image.shape)
    rho = half_frequency_radius(image.shape).ravel()
    order = np.argsort(rho, kind="stable")
    radius = rho[order]
    cumulative = np.cumsum(power.ravel()[order])
    total = cumulative[-1]
    fraction = cumulative / total if total > 0 else np.zeros_like(cumulative)
    return radius, fraction


def cuf(image: np.ndarray, *, energy_fraction: float = CUF_ENERGY_FRACTION) -> float:
    """Cut-off frequency (S3's CUF): radius of the centred disc holding ``energy_fraction`` of the energy.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
    energy_fraction : float
        0.95 by default.

    Returns
    -------
    float
        Radius in cycles per pixel (0.5 = Nyquist along an axis); 0 for a flat image.
    """
    if not 0 < energy_fraction <= 1:
        raise ValueError(f"energy_fraction must be in (0, 1], got {energy_fraction}")
    radius, fraction = radial_energy_fraction(image)
    if fraction[-1] == 0:
        return 0.0
    index = int(np.searchsorted(fraction, energy_fraction, side="left"))
    return float(radius[min(index, radius.size - 1)])


def object_free_background(image: np.ndarray, *, margin_px: int = 4, smoothing_px: float = 1.0) -> np.ndarray:
    """Background pixels at least ``margin_px`` from the Otsu foreground of the smoothed image.

    Falls back to :func:`background_mask` of the smoothed image when fewer than 5 % of the pixels remain.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        Intensities, any real dtype, finite values.
    margin_px : int
        Lateral distance in px kept between the foreground and the returned pixels (a disk in Y, X;
        Z is not dilated); <= 0 gives the plain Otsu background.
    smoothing_px : float
        Gaussian sigma in px of the smoothing before thresholding; 0 = none.

    Returns
    -------
    ndarray of bool, same shape as ``image``
        True on background pixels.

    Raises
    ------
    ValueError
        When ``image`` is not a finite real 2-D or 3-D array (see :func:`as_float_image`).
    """
    from scipy.ndimage import binary_dilation, gaussian_filter

    image = as_float_image(image)
    smoothed = gaussian_filter(image, smoothing_px) if smoothing_px > 0 else image
    plain = background_mask(smoothed)
    if margin_px <= 0:
        return plain
    radius = int(margin_px)
    grid = np.ogrid[tuple(slice(-radius, radius + 1) for _ in range(2))]
    disk = sum(g * g for g in grid) <= radius * radius
    structure = disk if image.ndim == 2 else disk[None]
    mask = ~binary_dilation(~plain, structure=structure)
    return mask if mask.mean() >= 0.05 else plain


def snr(image: np.ndarray, *, peak_fraction: float = SNR_PEAK_FRACTION, smoothing_px: float = 1.0,
        margin_px: int = 4) -> float:
    """Signal-to-noise ratio ``|s - b| / sigma_b`` (S2's definition, robust peak; module docstring).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    peak_fraction : float
        Fraction of brightest smoothed pixels averaged as the signal ``s`` (at least 9 pixels).
    smoothing_px : float
        Gaussian sigma (pixels) of the smoothing used to find the peak signal and the foreground.
    margin_px : int
        Distance (pixels) kept between the foreground and the background pixels.

    Returns
    -------
    float
        Dimensionless; ``inf`` when the background is perfectly flat.
    """
    from scipy.ndimage import gaussian_filter

    image = as_float_image(image)
    if not 0 < peak_fraction <= 1:
        raise ValueError(f"peak_fraction must be in (0, 1], got {peak_fraction}")
    background = image[object_free_background(image, margin_px=margin_px, smoothing_px=smoothing_px)]
    b, sigma_b = float(background.mean()), float(background.std())
    smoothed = gaussian_filter(image, smoothing_px) if smoothing_px > 0 else image
    n_peak = max(9, int(round(peak_fraction * image.size)))
    n_peak = min(n_peak, image.size)
    s = float(np.partition(smoothed.ravel(), image.size - n_peak)[image.size - n_peak:].mean())
    if sigma_b == 0:
        return float("inf") if s != b else 0.0
    return abs(s - b) / sigma_b


def sharpest_plane(stack: np.ndarray) -> int:
    """Index of the plane of a (Z, Y, X) stack with the largest variance of the Laplacian."""
    from scipy.ndimage import laplace

    stack = as_float_image(stack, name="stack", ndims=(3,))
    scaled, _, _ = percentile_scale(stack)
    return int(np.argmax([laplace(plane).var() for plane in scaled]))


def no_reference_metrics(image: np.ndarray, *, pixel_nm: float | None = None) -> dict[str, float]:
    """All no-reference metrics of one image (module docstring for the conventions).

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        One channel, one time point. For a stack the sharpest plane is used.
    pixel_nm : float, optional
        Lateral pixel size; adds ``decorrelation_nm``.

    Returns
    -------
    dict
        ``bgstd``, ``cuf`` (cycles/px), ``snr``, ``decorrelation_px`` (resolution, pixels; ``inf`` when
        no decorrelation peak is found), ``decorrelation_nm`` (with a pixel size) and ``z_plane``
        (for a stack).
    """
    from decongan.engine.metrics.resolution import decorrelation_resolution

    image = as_float_image(image)
    out: dict[str, float] = {}
    if image.ndim == 3:
        z = sharpest_plane(image)
        image = image[z]
        out["z_plane"] = z
    decorrelation = decorrelation_resolution(image, pixel_nm=pixel_nm)
    out.update({"bgstd": bgstd(image), "cuf": cuf(image), "snr": snr(image),
                "decorrelation_px": decorrelation.resolution_px})
    if pixel_nm is not None:
        out["decorrelation_nm"] = decorrelation.resolution_nm
    return out
