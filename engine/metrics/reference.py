"""Reference (full-reference) metrics: MSE, NRMSE, PSNR and SSIM of a prediction against ground truth.

Normalisation policy (the same for every method compared)
---------------------------------------------------------
Fluorescence intensities have no common scale: a GAN, a Richardson-Lucy result and a confocal
ground truth can differ by an arbitrary gain and offset. Metrics that compare raw numbers would
then measure the gain, not the restoration. DeconGAN therefore applies ONE policy to every
prediction (low-quality input, deconvolution, every GAN) before any reference metric:

1. **Ground truth**: percentile-normalised, ``gt_n = (gt - p0.1) / (p99.9 - p0.1)``, where ``p0.1``
   and ``p99.9`` are the 0.1th and 99.9th percentiles of the ground truth (not clipped; so
   ``gt_n`` lies in about [0, 1]). These percentiles are those of CSBDeep's ``norm_minmse``
   (the CARE evaluation).
2. **Prediction**: the affine map ``pred_n = a * pred + b`` that minimises ``sum (pred_n - gt_n)**2``
   (ordinary least squares, as CSBDeep's ``norm_minmse``; the mean is kept rather than subtracted),
   with the scale constrained to ``a >= 0`` so that an intensity-inverted image is not rewarded
   (it gets ``a = 0``, i.e. a flat image at the ground-truth mean). Consequently every reference
   metric is invariant to a global gain and offset of the prediction, and the prediction is never
   punished for them.
3. **Data range** for PSNR and SSIM: 1.0, the percentile range of the normalised ground truth
   (p0.1 -> 0, p99.9 -> 1), passed explicitly to scikit-image. It is deliberately not
   ``gt_n.max() - gt_n.min()``: one hot pixel in the ground truth would then shift every PSNR.

The fit is done once per image (for a Z stack: once for the whole volume).

Metrics (on ``pred_n`` and ``gt_n``)
------------------------------------
- ``mse``: mean of ``(pred_n - gt_n)**2``.
- ``nrmse``: ``||pred_n - gt_n|| / ||gt_n||`` (scikit-image's default "euclidean" normalisation).
- ``psnr``: ``10 log10(data_range**2 / mse)`` in dB (scikit-image's ``peak_signal_noise_ratio``).
- ``ssim``: scikit-image's ``structural_similarity`` with the parameters of Wang et al. (2004):
  Gaussian window sigma 1.5 px (truncated at 3.5 sigma, 11 px), K1 = 0.01, K2 = 0.03, population
  covariance. For a Z stack SSIM is computed **per plane (2-D) and averaged**: axial sampling is
  usually 2-6x coarser than lateral, so a cubic 3-D window would mix unlike scales. MSE, NRMSE and
  PSNR are computed over the whole volume.

With ``normalize=False`` the arrays are compared as given, with ``data_range`` (default: the
reference's max - min); the numbers are then identical to scikit-image's on the same input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from decongan.engine.metrics._common import (
    HIGH_PERCENTILE,
    LOW_PERCENTILE,
    as_float_image,
    fit_gain_offset,
    percentile_scale,
)

#: Parameters passed to :func:`skimage.metrics.structural_similarity` (Wang et al. 2004).
SSIM_PARAMETERS: dict[str, object] = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "K1": 0.01,
    "K2": 0.03,
}

REFERENCE_METRIC_KEYS = ("mse", "nrmse", "psnr", "ssim")


@dataclass(frozen=True)
class NormalizationInfo:
    """What :func:`normalize_pair` did, in the input units.

    Attributes
    ----------
    low_percentile, high_percentile : float
        Percentiles of the reference mapped to 0 and 1 (e.g. 0.1 and 99.9).
    reference_low, reference_high : float
        The reference's values at those percentiles.
    scale, offset : float
        ``pred_n = scale * prediction + offset`` (scale >= 0).
    data_range : float
        Data range used by PSNR and SSIM: 1.0, the normalised span between the two percentiles
        (unless the reference is flat at those percentiles, then its max - min).
    """

    low_percentile: float
    high_percentile: float
    reference_low: float
    reference_high: float
    scale: float
    offset: float
    data_range: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _check_pair(prediction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred_shape, ref_shape = np.shape(prediction), np.shape(reference)
    if pred_shape != ref_shape:
        raise ValueError(f"prediction shape {pred_shape} differs from reference shape {ref_shape}; "
                         "register/crop the images to the same grid first")
    pred = as_float_image(prediction, name="prediction")
    ref = as_float_image(reference, name="reference")
    return pred, ref


def fit_affine(*, prediction: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares ``scale >= 0`` and ``offset`` so that ``scale * prediction + offset`` ~ ``target``.

    Parameters
    ----------
    prediction, target : ndarray, same shape
        Any real dtype; every pixel enters the fit.

    Returns
    -------
    scale : float
        Units of ``target`` per unit of ``prediction``; a negative fit is clipped to 0.
    offset : float
        Units of ``target``.
    """
    return fit_gain_offset(model=prediction, target=target, nonnegative=True)


def normalize_pair(*, prediction: np.ndarray, reference: np.ndarray,
                   low_percentile: float = LOW_PERCENTILE,
                   high_percentile: float = HIGH_PERCENTILE) -> tuple[np.ndarray, np.ndarray, NormalizationInfo]:
    """Apply the normalisation policy (module docstring) to one prediction / reference pair.

    Parameters
    ----------
    prediction, reference : ndarray, shape (Y, X) or (Z, Y, X)
        Same shape, any real dtype, finite values.
    low_percentile, high_percentile : float
        Reference percentiles mapped to 0 and 1.

    Returns
    -------
    pred_n, ref_n : ndarray, float64
        The least-squares-fitted prediction and the percentile-normalised reference.
    info : NormalizationInfo
    """
    pred, ref = _check_pair(prediction, reference)
    ref_n, low, high = percentile_scale(ref, low_percentile=low_percentile, high_percentile=high_percentile)
    scale, offset_n = fit_affine(prediction=pred, target=ref_n)
    pred_n = scale * pred + offset_n
    info = NormalizationInfo(low_percentile=float(low_percentile), high_percentile=float(high_percentile),
                             reference_low=low, reference_high=high, scale=scale, offset=offset_n,
                             data_range=1.0 if high > low else float(ref_n.max() - ref_n.min()))
    return pred_n, ref_n, info


def _ssim(pred: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    from skimage.metrics import structural_similarity

    if ref.ndim == 2:
        return float(structural_similarity(ref, pred, data_range=data_range, **SSIM_PARAMETERS))
    return float(np.mean([structural_similarity(r, p, data_range=data_range, **SSIM_PARAMETERS)
                          for r, p in zip(ref, pred, strict=True)]))


def reference_metrics_with_info(*, prediction: np.ndarray, reference: np.ndarray, normalize: bool = True,
                                data_range: float | None = None,
                                low_percentile: float = LOW_PERCENTILE,
                                high_percentile: float = HIGH_PERCENTILE,
                                ) -> tuple[dict[str, float], NormalizationInfo | None]:
    """:func:`reference_metrics` plus the :class:`NormalizationInfo` (None when ``normalize=False``).

    Parameters
    ----------
    prediction, reference : ndarray, shape (Y, X) or (Z, Y, X)
        Same shape; one channel, one time point.
    normalize : bool
        Apply the normalisation policy of this module (default). False compares the raw arrays.
    data_range : float, optional
        Data range for PSNR/SSIM; default 1.0 after normalisation, else the reference's max - min.
    low_percentile, high_percentile : float
        Reference percentiles of the policy (0.1, 99.9).

    Returns
    -------
    metrics : dict
        ``{"mse", "nrmse", "psnr", "ssim"}`` as floats (``psnr`` in dB, ``inf`` for identical images).
    info : NormalizationInfo or None
        The percentiles, their values and the fitted scale/offset.

    Raises
    ------
    ValueError
        Shapes differ, wrong dimensionality, NaN/Inf, flat reference, or planes smaller than 11 px.
    """
    from skimage.metrics import mean_squared_error, normalized_root_mse, peak_signal_noise_ratio

    info: NormalizationInfo | None = None
    if normalize:
        pred, ref, info = normalize_pair(prediction=prediction, reference=reference, low_percentile=low_percentile,
                                         high_percentile=high_percentile)
        if data_range is None:
            data_range = info.data_range
    else:
        pred, ref = _check_pair(prediction, reference)
        if data_range is None:
            data_range = float(ref.max() - ref.min())
    if not data_range > 0:
        raise ValueError(f"data range must be > 0 (got {data_range}); the reference image is flat")
    if ref.ndim == 3 and min(ref.shape[1:]) < 11:
        raise ValueError(f"planes of shape {ref.shape[1:]} are too small for SSIM (11x11 Gaussian window)")
    if ref.ndim == 2 and min(ref.shape) < 11:
        raise ValueError(f"image of shape {ref.shape} is too small for SSIM (11x11 Gaussian window)")
    mse = float(mean_squared_error(ref, pred))
    with np.errstate(divide="ignore"):
        psnr = float(peak_signal_noise_ratio(ref, pred, data_range=data_range)) if mse > 0 else float("inf")
        nrmse = float(normalized_root_mse(ref, pred)) if np.any(ref) else float("inf")
    metrics = {"mse": mse, "nrmse": nrmse, "psnr": psnr, "ssim": _ssim(pred, ref, float(data_range))}
    return metrics, info


def reference_metrics(*, prediction: np.ndarray, reference: np.ndarray, normalize: bool = True,
                      data_range: float | None = None,
                      low_percentile: float = LOW_PERCENTILE,
                      high_percentile: float = HIGH_PERCENTILE) -> dict[str, float]:
    """MSE, NRMSE, PSNR (dB) and SSIM of one prediction against its reference.

    Parameters
    ----------
    prediction, reference : ndarray, shape (Y, X) or (Z, Y, X)
        Same shape; one channel, one time point.
    normalize : bool
        Apply the normalisation policy of this module (default). False compares the raw arrays.
    data_range : float, optional
        Data range for PSNR/SSIM. Default: 1.0, the normalised reference's percentile span (or the
        raw reference's max - min when ``normalize=False``).
    low_percentile, high_percentile : float
        Reference percentiles of the policy (0.1, 99.9).

    Returns
    -------
    dict
        ``{"mse", "nrmse", "psnr", "ssim"}`` as floats (``psnr`` is ``inf`` for identical images).

    Raises
    ------
    ValueError
        Shapes differ, wrong dimensionality, NaN/Inf, flat reference, or planes smaller than 11 px.
    """
    metrics, _ = reference_metrics_with_info(prediction=prediction, reference=reference, normalize=normalize, data_range=data_range,
                                             low_percentile=low_percentile, high_percentile=high_percentile)
    return metrics
