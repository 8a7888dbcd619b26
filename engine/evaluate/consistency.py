"""Data-consistency map: does the low-quality input support what a restoration shows?

A restoration (GAN output, deconvolution, even a ground-truth acquisition) claims what the object
looks like. Imaged by the LQ system it should reproduce the LQ input up to noise. This module
re-images the restoration through a forward model of the LQ system and measures, pixel by pixel,
how far the LQ input is from that prediction, in units of the expected spread. It is the idea of
SQUIRREL (Culley et al., Nat. Methods 15, 263-266, 2018; "resolution-scaled error/Pearson"),
extended by a noise-normalised map and a detection step that outlines unsupported structure.

Algorithm (every number is returned in :class:`ConsistencyResult` so a report can quote it)
-------------------------------------------------------------------------------------------
1. **Forward model.** ``model = blur(restored, psf)``: convolution with the LQ system's PSF
   (normalised to sum 1; reflect-padded edges, so no wrap-around). ``psf=None`` means an identity
   forward model (restoration and input share the optics, e.g. denoising). When the restored image
   is on a finer grid than the LQ input, the blurred image is integrated onto the LQ grid (block mean
   for integer factors, anti-aliased linear resampling otherwise); the PSF must then be sampled on
   the *restored* grid.
2. **Gain and offset.** The restoration's intensity units are arbitrary, so ``lq ~ gain * model +
   offset`` is fitted by least squares; the fit is repeated once without the pixels whose residual
   exceeds 3 robust standard deviations, so the structure being tested does not bias the fit.
3. **Residual.** ``r = lq - (gain * model + offset)`` (LQ units). Negative: the restoration is
   brighter than the input supports (invented structure); positive: it misses signal in the input.
4. **Expected spread.** ``sigma`` per pixel: the robust spread of ``r`` (standard deviation after
   iterative 3-sigma clipping around the median; unlike the MAD it does not collapse on quantised,
   zero-inflated 8-bit backgrounds) in 16 quantile bins of the **LQ input's own local intensity**
   (the input smoothed at the PSF scale), made non-decreasing with intensity and interpolated. It
   holds the LQ noise *and* the typical model mismatch at that brightness (PSF error, modality
   difference), so only structure that is unusual for its brightness stands out. Binning by the
   input rather than by the prediction matters: invented structure sits where the input is dark,
   among many consistent dark pixels, so it cannot inflate the spread it is judged against. The
   spread is never below the Poisson-Gaussian noise floor ``sqrt(a m + b + q)`` at the predicted
   intensity ``m``, with ``a, b`` estimated from the LQ input alone (:func:`estimate_noise_model`,
   on the native grid when the input is nearest-neighbour upsampled) and ``q = 1/12`` quantisation
   noise for integer data. ``z = r / sigma`` is the per-pixel **normalised residual map**.
   (``spread_model="noise"`` instead uses the noise floor times one global robust inflation factor.)
5. **Detection.** Unsupported or missing structure is spatially coherent over at least a PSF, noise
   is not. ``z`` is band-passed: trends wider than 4x the largest filter (at least 10 px; flat-field
   or background differences) are removed, then matched Gaussian filters are applied for structures
   of intrinsic size 0, 2 and 4 LQ pixels seen through the PSF (sigma ``hypot(s_psf, size)``,
   ``s_psf >= 1`` px), each divided by its own robust spread (which absorbs correlated noise), and
   the largest magnitude over the scales is kept (the **detection map**). Pixels within 3 PSF sigmas
   of the border are not evaluated (the object outside the field is unknown). A pixel is flagged when,
   at some scale, the filtered residual is both significant (``> threshold``, default 5, after the
   robust normalisation) and large (its unnormalised value, the weighted mean of ``z`` over the
   filter's support, at least ``min_effect`` = 1 expected spread): significance alone would also flag
   faint, wide haze of a slightly wrong PSF, which is statistically certain but not invented
   structure. Components smaller than ``min_area_px`` (default: half the area of a disc of radius
   ``s_psf``, at least 4 px) are dropped; the rest is the **flagged map**.

Why these thresholds: for Gaussian noise ``P(|z| > 5) = 5.7e-7`` per independent sample, so a
512 x 512 image expects far less than one false component; the real residual has heavier tails than
Gaussian (model mismatch, sub-pixel misregistration), which is why 5 and not 3 is the default, and
the minimum area rejects isolated hot pixels; the minimum effect keeps faint, wide mismatch
(Richardson-Lucy with an approximate PSF leaves ~0.5 spread of haze over hundreds of pixels) from
being reported as invented structure. Checked on real data (tests/engine/test_consistency.py):
FMD confocal single frames with the 50-frame average as the "restoration" (identity forward model)
and TA-GAN confocal images with their Richardson-Lucy result: >= 90 % of planted blobs (sigma 2-4 px,
re-imaged peak half the input's bright-structure level) are flagged, while < 1 % of the area of the
unmodified restorations is flagged.

Scores
------
``flagged_fraction`` (and its ``unsupported_fraction``/``missing_fraction`` parts), ``n_regions``,
``rse`` (RMS residual, LQ units; SQUIRREL's RSE), ``rsp`` (Pearson correlation of prediction and
input; SQUIRREL's RSP), ``chi_rms`` (RMS of ``r`` divided by the LQ-only noise floor: ~1 when the
restoration explains the input down to the noise), ``gain`` and ``offset``.

Why this module is long
-----------------------
About 100 of its lines are this docstring: the algorithm, step by step, that the report quotes
with every threshold. The code is one forward model, one intensity-dependent spread model and one
matched-filter detector that together make one map; their helpers are private to it and are
tested through :func:`data_consistency` against known inserted structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decongan.engine.metrics._common import fit_gain_offset, robust_sigma
from decongan.engine.optics.fft_conv import convolve_reflect

#: Default detection threshold on the smoothed, robustly normalised residual (module docstring).
DEFAULT_THRESHOLD = 5.0
#: Smallest |mean z| over a matched filter's support that is flagged: significance alone would flag
#: faint but wide, statistically significant mismatch (e.g. a slightly wrong PSF's haze).
DEFAULT_MIN_EFFECT = 1.0
#: Trends of the residual wider than this many detection sigmas are not flagged (band-pass).
BACKGROUND_SCALE = 4.0
#: Intrinsic sizes (sigma, LQ pixels) of the structures the matched filters look for; each filter has
#: sigma = hypot(detection sigma, size): a small scale-space detector.
DETECTION_EXTRA_SIZES_PX = (0.0, 2.0, 4.0)
#: Quantile bins of the input's local intensity used for the spread model.
N_BINS = 16
#: Per-axis variance, in units of sigma^2, of a 2-D Gaussian restricted to its half-maximum disc
#: (what :func:`psf_sigma_px` measures). With u = r^2 / (2 sigma^2) the Gaussian's weight over the
#: plane is e^-u du (u exponential), the half-maximum disc is u < ln 2, and
#: E[u | u < ln 2] = (1 - e^-ln2 (1 + ln 2)) / (1 - e^-ln2) = (1 - (1 + ln 2) / 2) / (1 / 2) = 1 - ln 2,
#: so E[r^2] = 2 sigma^2 (1 - ln 2) and the per-axis variance E[r^2] / 2 = (1 - ln 2) sigma^2 = 0.3069 sigma^2.
#: (0.2797, the 1-D value for x^2 over |x| < 1.177 sigma, overestimated sigma by 4.8 %.)
HALF_MAX_DISC_VARIANCE = 1.0 - float(np.log(2.0))


@dataclass(frozen=True)
class NoiseModel:
    """Poisson-Gaussian noise ``variance = a * mean + b`` of an image (LQ units)."""

    a: float
    b: float

    def sigma(self, mean: np.ndarray) -> np.ndarray:
        """Noise standard deviation at intensity ``mean`` (LQ units; float32 for a float32 ``mean``)."""
        mean = np.asarray(mean)
        if mean.dtype != np.float32:
            mean = mean.astype(np.float64)
        return np.sqrt(np.maximum(self.a * mean + self.b, 0.0))


@dataclass
class ConsistencyResult:
    """Output of :func:`data_consistency` (arrays on the LQ grid, same shape as the LQ input).

    Attributes
    ----------
    prediction : ndarray
        ``gain * blur(restored) + offset``: what the LQ system would have recorded (LQ units).
    residual : ndarray
        ``lq - prediction`` (LQ units).
    zmap : ndarray
        ``residual / sigma(prediction)``: the normalised residual map (dimensionless).
    detection : ndarray
        ``zmap`` smoothed by the detection filter and robustly re-normalised.
    flagged : ndarray of bool
        ``|detection| > threshold`` after removing components smaller than ``min_area_px``.
    scores : dict
        See the module docstring.
    parameters : dict
        Threshold, detection sigma, minimum area, noise model, resampling used.
    """

    prediction: np.ndarray
    residual: np.ndarray
    zmap: np.ndarray
    detection: np.ndarray
    flagged: np.ndarray
    scores: dict[str, float]
    parameters: dict[str, Any] = field(default_factory=dict)
    noise_floor: np.ndarray | None = None
    evaluated: np.ndarray | None = None

    def plane(self, z: int) -> ConsistencyResult:
        """Plane ``z`` of a 3-D result, with the per-plane scores recomputed (gain/offset stay the stack's)."""
        if self.zmap.ndim != 3:
            raise ValueError("plane() needs a 3-D consistency result")
        lq = self.prediction[z] + self.residual[z]
        floor = self.noise_floor[z] if self.noise_floor is not None else None
        evaluated = self.evaluated[z] if self.evaluated is not None else np.ones(lq.shape, dtype=bool)
        scores = _scores(self.prediction[z], self.residual[z], lq, self.detection[z], self.flagged[z], floor, evaluated,
                         self.scores["gain"], self.scores["offset"])
        params = dict(self.parameters, plane=int(z))
        return ConsistencyResult(self.prediction[z], self.residual[z], self.zmap[z], self.detection[z], self.flagged[z],
                                 scores, params, floor, evaluated)

    @property
    def unsupported(self) -> np.ndarray:
        """Flagged pixels where the restoration is brighter than the input supports."""
        return self.flagged & (self.detection < 0)

    @property
    def missing(self) -> np.ndarray:
        """Flagged pixels where the input holds signal the restoration lacks."""
        return self.flagged & (self.detection > 0)


def _as_float(name: str, array: np.ndarray) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2-D (Y, X) or 3-D (Z, Y, X); got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {arr.dtype}; a real-valued image is needed")
    arr = arr.astype(np.float32, copy=False)  # never written to
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def blur(image: np.ndarray, psf: np.ndarray | None) -> np.ndarray:
    """Convolve ``image`` with ``psf`` (normalised to sum 1), reflect-padded, same shape as ``image``.

    A 2-D PSF applied to a 3-D image blurs every plane; a 3-D PSF needs a 3-D image. A true
    convolution (:func:`decongan.engine.optics.fft_conv.convolve_reflect`: PSF element ``k // 2`` at
    the origin), in float32 with FFTs of the image padded by the PSF's size only.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    psf : ndarray, shape (y, x) or (z, y, x), or None (identity: a float32 copy is returned)

    Returns
    -------
    ndarray, float32, shape of ``image``
    """
    image = np.asarray(image, dtype=np.float32)
    if psf is None:
        return image.copy()
    kernel = np.asarray(psf)
    if kernel.ndim == 2 and image.ndim == 3:
        kernel = kernel[None]
    if kernel.ndim != image.ndim:
        raise ValueError(f"a {kernel.ndim}-D PSF cannot blur a {image.ndim}-D image")
    total = float(np.sum(kernel, dtype=np.float64))
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the PSF must have a positive, finite sum")
    return convolve_reflect(image, (kernel / total).astype(np.float32))


def resample_to(image: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """Integrate ``image`` onto a grid of ``shape``: block mean for integer factors, else anti-aliased linear.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        The image (e.g. a restoration on a finer grid than the measured data).
    shape : tuple of int
        The target shape, same number of dimensions as ``image``.

    Returns
    -------
    resampled : ndarray, shape ``shape``
        The image on the target grid, in the same intensity units (a mean, not a sum). ``image``
        itself when the shapes already match.
    how : str
        ``"none"``, ``"block mean xKxK"`` (the integer factors), or ``"linear resampling (anti-aliased)"``.
    """
    if image.shape == tuple(shape):
        return image, "none"
    factors = [a / b for a, b in zip(image.shape, shape, strict=True)]
    if all(f >= 1 and abs(f - round(f)) < 1e-9 for f in factors):
        f = [int(round(v)) for v in factors]
        view_shape: list[int] = []
        for n, k in zip(shape, f, strict=True):
            view_shape += [n, k]
        out = image.reshape(view_shape).mean(axis=tuple(range(1, 2 * len(shape), 2)))
        return out, f"block mean x{'x'.join(str(v) for v in f)}"
    from skimage.transform import resize

    out = resize(image, shape, order=1, anti_aliasing=any(v > 1 for v in factors), preserve_range=True)
    return out, "linear resampling (anti-aliased)"


_robust_sigma = robust_sigma  # MAD-based; one implementation in engine.metrics._common


def _clipped_sigma(values: np.ndarray, *, clip: float = 3.0, iterations: int = 3) -> float:
    """Standard deviation after iterative ``clip``-sigma clipping around the median.

    Starts from the MAD estimate, or from the plain standard deviation when the MAD is 0 (quantised,
    zero-inflated data such as a dark 8-bit background, where the MAD collapses). Corrected for the
    truncation of a Gaussian at ``clip`` sigma (factor 0.9733 at 3 sigma).
    """
    if values.size < 2:
        return 0.0
    centre = float(np.median(values))
    dev = values - centre
    s = _robust_sigma(values) or float(np.std(values))
    for _ in range(iterations):
        kept = dev[np.abs(dev) <= clip * s]
        if kept.size < 2:
            break
        new = float(np.sqrt(np.mean(kept ** 2))) / 0.9733
        if new == 0 or abs(new - s) <= 1e-6 * s:
            s = new or s
            break
        s = new
    return s


def estimate_noise_model(image: np.ndarray, *, n_bins: int = N_BINS) -> NoiseModel:
    """Estimate Poisson-Gaussian noise ``var = a * mean + b`` from one image (2-D or per plane of 3-D).

    The noise is isolated with the separable second-difference filter ``[1, -2, 1] x [1, -2, 1] / 6``
    (unit gain for white noise, zero response to linear trends); its robust variance is measured in
    quantile bins of the local mean (3 x 3) and a line is fitted (weighted by bin size), with
    ``a >= 0``. Edges of structures inflate a few bins; the robust statistics and the fit keep them
    from dominating. Where the noise is spatially correlated (e.g. nearest-neighbour upsampled data)
    the estimate is too low; :func:`data_consistency` only uses it as a floor. Nearest-neighbour
    upsampled images are measured on their native grid.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
        The measured image, in its own intensity units (e.g. camera counts).
    n_bins : int
        Number of quantile bins of the local mean.

    Returns
    -------
    NoiseModel
        ``a`` (gain, intensity units) and ``b`` (signal-independent variance, intensity units squared);
        ``a = 0`` (``b`` the overall robust variance) when the image has too few distinct levels or
    fewer than two bins of at least 50 pixels, or when the fitted slope is negative.
    """
    from scipy.ndimage import convolve1d, uniform_filter

    img = _as_float("image", image)
    block = replication_factor(img)
    if block is not None:  # nearest-neighbour upsampled data: measure the noise on the native grid
        (ky, oy), (kx, ox) = block
        img = img[..., oy::ky, ox::kx]
    axes = (-2, -1)
    d = img
    for axis in axes:
        d = convolve1d(d, np.array([1.0, -2.0, 1.0]), axis=axis, mode="reflect")
    d /= 6.0
    size = (1, 3, 3) if img.ndim == 3 else 3
    mean = uniform_filter(img, size=size, mode="reflect", output=np.float64)
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 3:
        s = _robust_sigma(d)
        return NoiseModel(0.0, s * s)
    which = np.searchsorted(edges, mean, side="right").astype(np.int16)  # 16 bins: int16, not 8-byte indices
    which = np.clip(which - 1, 0, edges.size - 2, out=which)
    mus, variances, weights = [], [], []
    for k in range(edges.size - 1):
        sel = which == k
        if sel.sum() < 50:
            continue
        mus.append(float(np.median(mean[sel])))
        variances.append(_robust_sigma(d[sel]) ** 2)
        weights.append(float(sel.sum()))
    if len(mus) < 2:
        s = _robust_sigma(d)
        return NoiseModel(0.0, s * s)
    mu, var, w = np.array(mus), np.array(variances), np.sqrt(np.array(weights))
    a, b = np.polyfit(mu, var, 1, w=w)
    if a < 0:
        a, b = 0.0, float(np.average(var, weights=w))
    return NoiseModel(float(a), float(b))


def _replicated_axis(image: np.ndarray, axis: int, *, max_factor: int = 8) -> tuple[int, int]:
    """(factor, offset) of nearest-neighbour replication along ``axis``; (1, 0) when there is none."""
    moved = np.moveaxis(image, axis, -1)
    same = np.all(moved[..., 1:] == moved[..., :-1], axis=tuple(range(moved.ndim - 1)))  # per boundary
    n = same.size + 1
    for k in range(max_factor, 1, -1):
        if n < 4 * k:
            continue
        for offset in range(k):
            boundary = np.arange(n - 1)
            inside = (boundary + 1 - offset) % k != 0  # boundary between two pixels of one block
            if same[inside].all() and not same[~inside].all():
                return k, offset
    return 1, 0


def replication_factor(image: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Detect nearest-neighbour upsampling: ``((ky, oy), (kx, ox))`` block factors and offsets, or None.

    E.g. TA-GAN's synaptic-protein confocal images were acquired at 60 nm and replicated 4 x 4 onto the
    15 nm STED grid starting at offset (3, 3). Noise statistics must then be measured on the native grid.
    """
    arr = np.asarray(image)
    y = _replicated_axis(arr, -2)
    x = _replicated_axis(arr, -1)
    if y[0] == 1 and x[0] == 1:
        return None
    return y, x


def _spread_model(residual: np.ndarray, prediction: np.ndarray, floor: np.ndarray, *,
                  n_bins: int = N_BINS) -> np.ndarray:
    """Per-pixel expected spread: binned robust sigma of the residual vs prediction, >= ``floor``."""
    edges = np.unique(np.quantile(prediction, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 3:
        return np.maximum(np.full(prediction.shape, _clipped_sigma(residual)), floor)
    which = np.searchsorted(edges, prediction, side="right").astype(np.int16)  # 16 bins: int16, not 8-byte indices
    which = np.clip(which - 1, 0, edges.size - 2, out=which)
    centres, sigmas = [], []
    for k in range(edges.size - 1):
        sel = which == k
        if sel.sum() < 20:
            continue
        centres.append(float(np.median(prediction[sel])))
        sigmas.append(_clipped_sigma(residual[sel]))
    if not centres:
        return np.maximum(np.full(prediction.shape, _clipped_sigma(residual)), floor)
    sig = np.maximum.accumulate(np.array(sigmas))
    spread = np.interp(prediction, np.array(centres), sig).astype(prediction.dtype, copy=False)
    spread = np.maximum(spread, floor)
    positive = spread[spread > 0]
    tiny = (float(positive.min()) if positive.size else 1.0) * 1e-3
    return np.maximum(spread, tiny)


def psf_sigma_px(psf: np.ndarray | None) -> float:
    """Lateral standard deviation (pixels) of a PSF from its second moment in the focal plane."""
    if psf is None:
        return 0.0
    from decongan.engine.optics.psf import psf_focal_plane

    plane = np.clip(np.asarray(psf_focal_plane(np.asarray(psf)), dtype=np.float64), 0, None)
    total = plane.sum()
    if total <= 0:
        return 0.0
    # the central lobe: moments of a Born & Wolf PSF diverge with its rings, so use the half-maximum core
    core = np.where(plane >= 0.5 * plane.max(), plane, 0.0)
    yy, xx = np.indices(plane.shape, dtype=np.float64)
    w = core / core.sum()
    cy, cx = (w * yy).sum(), (w * xx).sum()
    var = (w * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / 2.0
    # a Gaussian's half-maximum core has per-axis variance (1 - ln 2) sigma^2 (HALF_MAX_DISC_VARIANCE)
    return float(np.sqrt(var / HALF_MAX_DISC_VARIANCE)) if var > 0 else 0.0


def data_consistency(
    *,
    restored: np.ndarray,
    lq: np.ndarray,
    psf: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    detection_sigma_px: float | None = None,
    min_area_px: int | None = None,
    min_effect: float = DEFAULT_MIN_EFFECT,
    spread_model: str = "binned",
) -> ConsistencyResult:
    """Compare a restoration, re-imaged through the LQ system, with the LQ input.

    Parameters
    ----------
    restored : ndarray, shape (Y, X) or (Z, Y, X)
        The restored image. Same grid as ``lq``, or a finer grid by a common factor per axis
        (e.g. x4 super-resolution), in which case ``psf`` must be sampled on the restored grid.
    lq : ndarray, same number of dimensions
        The low-quality input the restoration was made from.
    psf : ndarray, optional
        PSF of the LQ system on the restored grid (2-D, or 3-D for 3-D images; any normalisation).
        None = identity forward model (restoration and input share optics, e.g. denoising).
    threshold : float
        Detection threshold on the smoothed, robustly normalised residual (default 5).
    detection_sigma_px : float, optional
        Sigma (LQ pixels) of the matched filter. Default: the PSF's lateral sigma on the LQ grid, >= 1.
    min_area_px : int, optional
        Smallest flagged component kept (pixels, or voxels for 3-D). Default: half the area of a disc
        of radius ``detection_sigma_px`` (at least 4).
    min_effect : float
        Smallest mean normalised residual over a filter's support that is flagged (default 1: the
        structure departs from the input by at least one expected spread on average).
    spread_model : {"binned", "noise"}
        How the expected spread of the residual is modelled (module docstring, step 4).

    Returns
    -------
    ConsistencyResult
    """
    from scipy.ndimage import gaussian_filter

    restored_f = _as_float("restored image", restored)
    lq_f = _as_float("LQ input", lq)
    if restored_f.ndim != lq_f.ndim:
        raise ValueError(f"restored image {restored_f.shape} and LQ input {lq_f.shape} differ in dimensionality")
    if any(a < b for a, b in zip(restored_f.shape, lq_f.shape, strict=True)):
        raise ValueError(f"restored image {restored_f.shape} is on a coarser grid than the LQ input {lq_f.shape}; "
                         "resample it to the LQ grid first")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")

    blurred = blur(restored_f, psf)
    model, resampling = resample_to(blurred, lq_f.shape)
    zoom = restored_f.shape[-1] / lq_f.shape[-1]

    gain, offset = fit_gain_offset(model=model, target=lq_f)
    residual = lq_f - (gain * model + offset)
    keep = np.abs(residual - np.median(residual)) <= 3.0 * max(_robust_sigma(residual), 1e-12)
    if keep.sum() > 0.5 * keep.size:
        gain, offset = fit_gain_offset(model=model, target=lq_f, mask=keep)
    prediction = gain * model + offset
    residual = lq_f - prediction

    noise = estimate_noise_model(lq_f)
    # integer data carry at least quantisation noise (1/12 LSB^2)
    integer_valued = np.asarray(lq).dtype.kind in "biu" or bool(np.all(lq_f == np.round(lq_f)))
    quantum = 1.0 / 12.0 if integer_valued else 0.0
    floor = np.sqrt(noise.sigma(np.maximum(prediction, 0.0)) ** 2 + quantum)
    psf_sigma = psf_sigma_px(psf) / zoom
    if spread_model == "binned":
        # binned by the LQ's own local intensity: invented structure sits where the input is dark, among
        # many consistent dark pixels, so it cannot inflate the spread it is measured against
        local = gaussian_filter(lq_f, (0.0, max(1.0, psf_sigma), max(1.0, psf_sigma)) if lq_f.ndim == 3
                                else max(1.0, psf_sigma), mode="reflect")
        spread = _spread_model(residual, local, floor)
    elif spread_model == "noise":
        inflation = max(1.0, _clipped_sigma(residual / floor))
        spread = inflation * floor
    else:
        raise ValueError(f"spread_model must be 'binned' or 'noise', got {spread_model!r}")
    zmap = residual / spread

    sigma_det = detection_sigma_px if detection_sigma_px is not None else max(1.0, psf_sigma)
    # hallucinations of intrinsic size 0, 2 and 4 LQ pixels, blurred by the PSF
    scales = sorted({round(float(np.hypot(sigma_det, extra)), 3) for extra in DETECTION_EXTRA_SIZES_PX})
    sigma_bg = max(BACKGROUND_SCALE * scales[-1], 10.0)
    # the forward model is unreliable within ~3 PSF sigmas of the border (unknown object outside)
    margin = int(np.ceil(3.0 * psf_sigma)) if psf is not None else 0
    margin = min(margin, (min(lq_f.shape[-2:]) - 1) // 4)
    evaluated = np.zeros(lq_f.shape, dtype=bool)
    inner = (Ellipsis, slice(margin, lq_f.shape[-2] - margin), slice(margin, lq_f.shape[-1] - margin))
    evaluated[inner] = True

    def lateral(s: float) -> float | tuple[float, float, float]:
        return (0.0, s, s) if zmap.ndim == 3 else s

    # band-pass: drop slow trends of the normalised residual (flat-field or background differences),
    # then matched filters from the PSF scale up; each scale normalised by its own robust spread
    z_inner = np.where(evaluated, zmap, 0.0)
    highpass = z_inner - gaussian_filter(z_inner, lateral(sigma_bg), mode="reflect")
    detection = np.zeros_like(zmap)
    candidates = np.zeros(zmap.shape, dtype=bool)
    for scale in scales:
        effect = gaussian_filter(highpass, lateral(scale), mode="reflect")  # weighted mean of z over the support
        spread_s = _clipped_sigma(effect[evaluated])
        significance = effect / spread_s if spread_s > 0 else effect
        candidates |= (np.abs(significance) > threshold) & (np.abs(effect) >= min_effect)
        detection = np.where(np.abs(significance) > np.abs(detection), significance, detection)
    detection[~evaluated] = 0.0
    candidates &= evaluated
    if min_area_px is None:
        min_area_px = max(4, int(round(0.5 * np.pi * sigma_det ** 2)))
    flagged = _remove_small(candidates, min_area_px)

    scores = _scores(prediction, residual, lq_f, detection, flagged, floor, evaluated, gain, offset)
    parameters = {
        "threshold": float(threshold), "min_effect": float(min_effect), "detection_sigma_px": float(sigma_det),
        "background_sigma_px": float(sigma_bg), "border_margin_px": margin, "min_area_px": int(min_area_px),
        "noise_model": {"a": noise.a, "b": noise.b}, "resampling": resampling,
        "forward_model": "identity" if psf is None else f"PSF {tuple(np.shape(psf))} (sum-normalised, reflect edges)",
        "spread_model": spread_model, "spread_bins": N_BINS, "detection_scales_px": [float(v) for v in scales],
    }
    return ConsistencyResult(prediction=prediction, residual=residual, zmap=zmap, detection=detection,
                             flagged=flagged, scores=scores, parameters=parameters, noise_floor=floor,
                             evaluated=evaluated)


def _scores(prediction: np.ndarray, residual: np.ndarray, lq: np.ndarray, detection: np.ndarray, flagged: np.ndarray,
            floor: np.ndarray | None, evaluated: np.ndarray, gain: float, offset: float) -> dict[str, float]:
    chi_rms = float("nan")
    if floor is not None and np.any(floor > 0):
        with np.errstate(divide="ignore", invalid="ignore"):
            chi = residual / floor
        chi_rms = float(np.sqrt(np.mean(chi[np.isfinite(chi)] ** 2)))
    return {
        "flagged_fraction": float(flagged.mean()),
        "evaluated_fraction": float(evaluated.mean()),
        "unsupported_fraction": float((flagged & (detection < 0)).mean()),
        "missing_fraction": float((flagged & (detection > 0)).mean()),
        "n_regions": float(_label(flagged)[1]),
        "rse": float(np.sqrt(np.mean(residual ** 2))),
        "rsp": _pearson(prediction, lq),
        "chi_rms": chi_rms,
        "gain": float(gain),
        "offset": float(offset),
    }


def _label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy.ndimage import label

    labels, n = label(mask)
    return labels, int(n)


def _remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    labels, n = _label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denom = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / denom) if denom > 0 else float("nan")


SCORE_KEYS = ("flagged_fraction", "unsupported_fraction", "missing_fraction", "n_regions", "rse", "rsp", "chi_rms")
