"""Resolution from the image's own spectrum: decorrelation analysis and Fourier ring correlation.

Decorrelation analysis (Descloux, Grussmayer & Radenovic, Nat. Methods 16, 918-924, 2019)
------------------------------------------------------------------------------------------
One image, no reference. With ``I(k)`` the Fourier transform of the edge-apodised,
mean-free and std-normalised image and ``I_n(k) = F(k)/|F(k)|`` the phase-only spectrum of the
apodised image, the decorrelation function is the Pearson correlation, in Fourier space, of ``I``
with ``I_n`` restricted to the disc ``|k| < r``::

    d(r) = sum_{|k|<r} Re(I(k) I_n*(k)) / ( ||I|| * sqrt(sum_{|k|<r} |I_n(k)|^2) )

``r`` is the normalised frequency (1 = Nyquist). Noise decorrelates ``I`` from ``I_n`` above the
highest frequency that carries signal, so ``d`` peaks there. The analysis computes ``d0`` on
``n_r`` radii in [0, 1], then ``d`` of ``n_g`` high-pass-filtered copies of ``I`` (image minus its
Gaussian blur of sigma ``g`` pixels, ``g`` log-spaced from ``2 / r_peak(d0)`` down to 0.15 px), refines
the high-pass range and the radius sampling once (second ``n_g`` curves), keeps the local maxima whose
amplitude is >= 0.05, and takes the highest peak frequency ``k_c``::

    resolution = 2 * pixel size / k_c

Implementation notes (our own code, following the published description and the authors'
MATLAB defaults): edges apodised with a raised sine over 20 px towards the mean; frequencies are
exact FFT frequencies (``fftfreq``), not ``linspace(-1, 1, N)``; the Gaussian high-pass is applied in
Fourier space (periodic boundary) instead of MATLAB's ``imgaussfilt`` (replicated boundary); every
d(r) curve is a cumulative sum over the half spectrum (``rfft2``, each bin weighted by its
multiplicity in the full spectrum) sorted once by radius, instead of one mask per radius. Because
``Re(F conj(F/|F|)) = |F|`` and the high-pass filters are real, each curve costs one pass over the
magnitudes (tests check the curves against the literal masked-sum formula).

Fourier ring correlation (FRC)
------------------------------
Two independent acquisitions of the same field (e.g. two noisy frames): each is made mean-free,
apodised with the same 20-px raised-sine window, and Fourier transformed; for rings of width
``1/min(Y, X)`` cycles/px, ``FRC(q) = Re sum F1 F2* / sqrt(sum |F1|^2 sum |F2|^2)``. The curve is
smoothed with a 3-ring moving average and the resolution is ``1 / q_c`` (pixels) at the first
crossing below the threshold (fixed 1/7 by default, or the half-bit curve). Note that FRC is blind
to a linear filter applied identically to both images (it cancels in the ratio): it measures the
frequency where *independent* noise takes over, so compare blurred acquisitions, not blurred copies.

Both measures reward invented high frequencies (a GAN can hallucinate them): always report them
next to the input's own value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from decongan.engine.metrics._common import (
    apodize,
    as_float_image,
    edge_taper,
    half_frequency_radius,
    half_spectrum_weights,
)

#: Edge apodisation width (pixels), as in the authors' example script.
APODIZATION_PX = 20
#: Peaks of d(r) below this amplitude are ignored (authors' value).
MIN_PEAK_AMPLITUDE = 0.05
#: A maximum at the last radius is accepted as a peak only if it rises this much above the later minimum.
PEAK_SIGNIFICANCE = 1e-3


@dataclass
class DecorrelationResult:
    """Outcome of :func:`decorrelation_resolution`.

    Attributes
    ----------
    resolution_px : float
        ``2 / kc``, pixels (``inf`` when no peak was found).
    resolution_nm : float or None
        ``resolution_px * pixel_nm`` when the pixel size is known.
    kc : float
        Highest accepted peak frequency, normalised (1 = Nyquist).
    a0 : float
        Amplitude of the peak of the unfiltered curve ``d0`` (the authors' SNR estimate).
    radii : ndarray, shape (n_r,)
        Radii of ``d0`` (normalised frequency).
    d0 : ndarray, shape (n_r,)
        Decorrelation curve without high-pass filtering.
    curves : list of (radii, d, g_px, peak_index, amplitude)
        Every high-pass-filtered curve with its Gaussian sigma and peak.
    """

    resolution_px: float
    resolution_nm: float | None
    kc: float
    a0: float
    radii: np.ndarray
    d0: np.ndarray
    curves: list[tuple[np.ndarray, np.ndarray, float, int, float]] = field(default_factory=list)


@dataclass
class FRCResult:
    """Outcome of :func:`frc`.

    Attributes
    ----------
    frequencies : ndarray, shape (n,)
        Ring centres in cycles per pixel (0 ... 0.5).
    curve : ndarray, shape (n,)
        Smoothed FRC values.
    raw_curve : ndarray, shape (n,)
        FRC before smoothing.
    threshold : ndarray, shape (n,)
        Threshold curve (constant 1/7, or half-bit).
    resolution_px : float
        ``1 / frequency`` at the first crossing (pixels); 2 (Nyquist) when the curve never crosses.
    resolution_nm : float or None
    crossed : bool
        False when the FRC stays above the threshold up to Nyquist (resolution limited by sampling).
    """

    frequencies: np.ndarray
    curve: np.ndarray
    raw_curve: np.ndarray
    threshold: np.ndarray
    resolution_px: float
    resolution_nm: float | None
    crossed: bool


# ---------------------------------------------------------------------------------------------
# decorrelation analysis
# ---------------------------------------------------------------------------------------------
def _highest_local_max(d: np.ndarray) -> tuple[int, float]:
    """Index and amplitude of the highest local maximum of ``d`` (the authors' rule).

    A maximum at the end of the curve is not a peak (the curve is still rising); it is dropped and
    the next candidate is accepted only if it stands more than :data:`PEAK_SIGNIFICANCE` above the
    minimum of the curve after it.
    """
    index = int(np.argmax(d))
    t = d.copy()
    while index == t.size - 1:
        t = t[:-1]
        if t.size == 0:
            return 0, 0.0
        index = int(np.argmax(t))
        tail_min = float(d[index:].min())
        if t[index] - tail_min > PEAK_SIGNIFICANCE:
            break
        t[index] = tail_min
        index = t.size - 1
    return index, float(t[index])


class _SortedSpectrum:
    """Half spectra (rfft2) restricted to |k| < Nyquist and sorted by radius, for fast nested-disc sums.

    Every sum is weighted by the bin's multiplicity in the full spectrum, so the results equal the
    full-spectrum sums of the published method.
    """

    def __init__(self, image: np.ndarray) -> None:
        spectrum = np.fft.rfft2(image)
        radius = 2.0 * half_frequency_radius(image.shape)  # 1 = Nyquist
        inside = radius < 1.0
        inside[0, 0] = False  # the mean is not part of the analysis
        order = np.argsort(radius[inside], kind="stable")
        self.radius = radius[inside][order]
        self.weight = half_spectrum_weights(image.shape)[inside][order]
        magnitude = np.abs(spectrum[inside][order])
        # Re(F conj(F/|F|)) = |F| and |F/|F||^2 = 1 where F != 0: with real high-pass filters every curve
        # reduces to weighted cumulative sums of |F| and |F|^2 (the std normalisation cancels in d(r)).
        self.phase_energy = np.cumsum(self.weight * (magnitude > 0))
        self.cross = self.weight * magnitude
        self.energy = self.weight * magnitude ** 2
        self.f2 = (math.pi * self.radius / 2.0) ** 2  # (pi f)^2, f in cycles per pixel

    def curve(self, radii: np.ndarray, g_px: float | None = None) -> np.ndarray:
        """d(r) at ``radii`` of the image, or of the image minus its Gaussian blur of sigma ``g_px`` px."""
        if g_px is None:
            cross, energy = self.cross, self.energy
        else:
            transfer = -np.expm1(-2.0 * g_px * g_px * self.f2)  # 1 - exp(-2 pi^2 g^2 f^2)
            cross, energy = transfer * self.cross, transfer * transfer * self.energy
        norm = math.sqrt(float(energy.sum()))
        cumulative = np.cumsum(cross)
        count = np.searchsorted(self.radius, radii, side="left")  # bins with radius < r
        out = np.zeros(radii.shape)
        valid = (count > 0) & (norm > 0)
        idx = count[valid] - 1
        denominator = norm * np.sqrt(self.phase_energy[idx])
        out[valid] = np.divide(cumulative[idx], denominator, out=np.zeros(idx.shape), where=denominator > 0)
        return out


def decorrelation_resolution(image: np.ndarray, *, pixel_nm: float | None = None, n_r: int = 50,
                             n_g: int = 10, apodization_px: int = APODIZATION_PX) -> DecorrelationResult:
    """Image resolution by decorrelation analysis (Descloux et al. 2019; module docstring).

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        One plane, at least 16 x 16 pixels.
    pixel_nm : float, optional
        Lateral pixel size, to report ``resolution_nm``.
    n_r : int
        Radii sampled per curve (the authors' default 50; at least 30).
    n_g : int
        High-pass filters per refinement step (default 10; at least 10).
    apodization_px : int
        Width of the raised-sine edge apodisation.

    Returns
    -------
    DecorrelationResult
    """
    image = as_float_image(image, ndims=(2,))
    if min(image.shape) < 16:
        raise ValueError(f"image of shape {image.shape} is too small for decorrelation analysis (>= 16 px)")
    n_r, n_g = max(int(n_r), 30), max(int(n_g), 10)
    image = apodize(image, apodization_px)
    spec = _SortedSpectrum(image)

    radii0 = np.linspace(0.0, 1.0, n_r)
    d0 = spec.curve(radii0)
    index0, a0 = _highest_local_max(d0)
    kc0 = float(radii0[index0])

    g_max = 2.0 / kc0 if kc0 > 0 else max(image.shape) / 2.0
    sigmas = np.exp(np.linspace(math.log(g_max), math.log(0.15), n_g))
    radii = radii0
    kcs: list[float] = []
    amplitudes: list[float] = []
    curves: list[tuple[np.ndarray, np.ndarray, float, int, float]] = []
    for step in (1, 2):
        step_kc, step_amp, step_gm = [], [], []
        for g in sigmas:
            d = spec.curve(radii, float(g))
            index, amplitude = _highest_local_max(d)
            kc = float(radii[index])
            curves.append((radii, d, float(g), index, amplitude))
            step_kc.append(kc)
            step_amp.append(amplitude)
            step_gm.append(math.sqrt(max(kc * amplitude, 0.0)))
        kcs += step_kc
        amplitudes += step_amp
        if step == 1:
            kc_arr, amp_arr, gm_arr = np.array(step_kc), np.array(step_amp), np.array(step_gm)
            weak = amp_arr < MIN_PEAK_AMPLITUDE
            kc_arr[weak] = 0.0
            gm_arr[weak | (kc_arr == 0)] = 0.0
            i_gm, i_max = int(np.argmax(gm_arr)), int(np.argmax(kc_arr))
            i1, i2 = min(i_gm, i_max), max(i_gm, i_max)
            if i1 == 0:
                i2 = 0
            elif i2 == n_g - 1:
                i2 = n_g - 2
            sigmas = np.exp(np.linspace(math.log(sigmas[i1]), math.log(sigmas[i2 + 1]), n_g))
            centre = float(kc_arr[i_gm])
            radii = np.linspace(max(centre - 0.05, 0.0), min(centre + 0.3, 1.0), n_r)

    kcs.append(kc0)
    amplitudes.append(a0)
    kc_all = np.array(kcs)
    kc_all[np.array(amplitudes) < MIN_PEAK_AMPLITUDE] = 0.0
    kc_max = float(kc_all.max()) if kc_all.size else 0.0
    resolution_px = 2.0 / kc_max if kc_max > 0 else math.inf
    resolution_nm = resolution_px * float(pixel_nm) if pixel_nm is not None else None
    return DecorrelationResult(resolution_px=resolution_px, resolution_nm=resolution_nm, kc=kc_max, a0=a0,
                               radii=radii0, d0=d0, curves=curves)


# ---------------------------------------------------------------------------------------------
# Fourier ring correlation
# ---------------------------------------------------------------------------------------------
def _threshold_curve(kind: str | float, ring_counts: np.ndarray) -> np.ndarray:
    if isinstance(kind, (int, float)) and not isinstance(kind, bool):
        return np.full(ring_counts.shape, float(kind))
    if kind == "1/7":
        return np.full(ring_counts.shape, 1.0 / 7.0)
    if kind == "half-bit":
        # van Heel & Schatz (2005): information of half a bit per ring
        root = np.sqrt(np.maximum(ring_counts, 1))
        return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)
    raise ValueError(f"unknown FRC threshold {kind!r}; use '1/7', 'half-bit' or a number in (0, 1)")


def frc(image_a: np.ndarray, image_b: np.ndarray, *, pixel_nm: float | None = None,
        threshold: str | float = "1/7", apodization_px: int = APODIZATION_PX,
        smoothing_rings: int = 3) -> FRCResult:
    """Fourier ring correlation of two independent acquisitions of the same field (module docstring).

    Parameters
    ----------
    image_a, image_b : ndarray, shape (Y, X)
        Same shape, at least 16 x 16; independent noise.
    pixel_nm : float, optional
        Lateral pixel size, to report ``resolution_nm``.
    threshold : "1/7", "half-bit" or float
        Crossing criterion.
    apodization_px : int
        Width of the raised-sine edge window applied to both (mean-free) images.
    smoothing_rings : int
        Width of the moving average over rings (1 = none).

    Returns
    -------
    FRCResult
    """
    if np.shape(image_a) != np.shape(image_b):
        raise ValueError(f"FRC needs two images of the same shape, got {np.shape(image_a)} and {np.shape(image_b)}")
    a = as_float_image(image_a, name="image_a", ndims=(2,))
    b = as_float_image(image_b, name="image_b", ndims=(2,))
    if min(a.shape) < 16:
        raise ValueError(f"images of shape {a.shape} are too small for FRC (>= 16 px)")
    window = edge_taper(a.shape, apodization_px)
    fa = np.fft.rfft2((a - a.mean()) * window)
    fb = np.fft.rfft2((b - b.mean()) * window)
    weight = half_spectrum_weights(a.shape).ravel()
    n = min(a.shape)
    rings = np.rint(half_frequency_radius(a.shape) * n).astype(np.int64).ravel()
    n_rings = n // 2 + 1
    keep = rings < n_rings
    rings, weight = rings[keep], weight[keep]
    cross = np.bincount(rings, weights=weight * (fa * np.conj(fb)).real.ravel()[keep], minlength=n_rings)
    power_a = np.bincount(rings, weights=weight * (np.abs(fa) ** 2).ravel()[keep], minlength=n_rings)
    power_b = np.bincount(rings, weights=weight * (np.abs(fb) ** 2).ravel()[keep], minlength=n_rings)
    counts = np.bincount(rings, weights=weight, minlength=n_rings)
    denominator = np.sqrt(power_a * power_b)
    raw = np.divide(cross, denominator, out=np.zeros(n_rings), where=denominator > 0)
    raw[0] = 1.0  # the mean was removed; ring 0 is perfect correlation by definition
    width = max(int(smoothing_rings), 1)
    if width > 1:
        padded = np.pad(raw, width // 2, mode="edge")
        curve = np.convolve(padded, np.ones(width) / width, mode="valid")[:n_rings]
    else:
        curve = raw.copy()
    frequencies = np.arange(n_rings) / n
    thresholds = _threshold_curve(threshold, counts)
    below = np.nonzero(curve[1:] < thresholds[1:])[0]
    if below.size:
        k = int(below[0]) + 1
        # linear interpolation of the crossing between rings k-1 and k
        over_prev = curve[k - 1] - thresholds[k - 1]
        over_here = curve[k] - thresholds[k]
        t = over_prev / (over_prev - over_here) if over_prev != over_here else 0.0
        q = frequencies[k - 1] + t * (frequencies[k] - frequencies[k - 1])
        resolution_px = 1.0 / q if q > 0 else math.inf
        crossed = True
    else:
        resolution_px = 2.0
        crossed = False
    resolution_nm = resolution_px * float(pixel_nm) if pixel_nm is not None else None
    return FRCResult(frequencies=frequencies, curve=curve, raw_curve=raw, threshold=thresholds,
                     resolution_px=resolution_px, resolution_nm=resolution_nm, crossed=crossed)
