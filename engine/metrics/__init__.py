"""Image-quality metrics for comparing restorations (public API re-exported here).

- :mod:`engine.metrics.reference`: MSE, NRMSE, PSNR, SSIM against ground truth, with the ONE
  normalisation policy applied to every method (read that module's docstring; the report quotes it).
- :mod:`engine.metrics.noref`: BGSTD, CUF, SNR and the combined no-reference report.
- :mod:`engine.metrics.resolution`: decorrelation analysis (Descloux 2019) and FRC.
- :mod:`engine.metrics.beads`: bead FWHM by 2-D Gaussian fits.
- :mod:`engine.metrics.segmentation`: task-based score (Otsu + watershed nuclei, Dice, object F1).

Argument order: a function that compares two images in different roles takes them by keyword
(``reference_metrics(prediction=..., reference=...)``), never by position, so they cannot be swapped
(scikit-image puts the reference first, DeconGAN used to put the prediction first).
"""

from decongan.engine.metrics.beads import BeadFit, BeadFWHMResult, bead_fwhm, fit_gaussian_2d
from decongan.engine.metrics.noref import (
    background_mask,
    bgstd,
    cuf,
    no_reference_metrics,
    object_free_background,
    radial_energy_fraction,
    sharpest_plane,
    snr,
)
from decongan.engine.metrics.reference import (
    REFERENCE_METRIC_KEYS,
    SSIM_PARAMETERS,
    NormalizationInfo,
    fit_affine,
    normalize_pair,
    reference_metrics,
    reference_metrics_with_info,
)
from decongan.engine.metrics.resolution import DecorrelationResult, FRCResult, decorrelation_resolution, frc
from decongan.engine.metrics.segmentation import (
    SEGMENTATION_KEYS,
    SegmentationParameters,
    segment_nuclei,
    segmentation_agreement,
)

__all__ = [
    "SEGMENTATION_KEYS", "SegmentationParameters", "segment_nuclei", "segmentation_agreement",
    "REFERENCE_METRIC_KEYS", "SSIM_PARAMETERS", "BeadFWHMResult", "BeadFit", "DecorrelationResult",
    "FRCResult", "NormalizationInfo", "background_mask", "bead_fwhm", "bgstd", "cuf",
    "decorrelation_resolution", "fit_affine", "fit_gaussian_2d", "frc", "no_reference_metrics",
    "normalize_pair", "object_free_background", "radial_energy_fraction", "reference_metrics", "reference_metrics_with_info",
    "sharpest_plane", "snr",
]
