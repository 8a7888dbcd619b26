"""Task-based score: does a restoration segment like the ground truth?

A restoration is useful when the analysis a biologist runs on it gives the answer the ground truth
gives. For nuclei (or any compact bright objects) that analysis is a segmentation, so each image
(the LQ input, every restoration, the ground truth) is segmented with the **same** classical
pipeline and compared with the ground truth's segmentation, or with masks shipped with the data:

1. Gaussian smoothing (``smoothing_px``, default 1 px; 0 turns it off), then Otsu's threshold
   (:func:`skimage.filters.threshold_otsu`) of that image alone -- so a global gain or offset of
   a method changes nothing;
2. holes filled, objects smaller than ``min_size_px`` removed;
3. touching objects split by a watershed of the distance transform, seeded at its local maxima at
   least ``min_distance_px`` apart (:func:`skimage.segmentation.watershed`).

Scores (``seg_*`` keys, all in [0, 1], higher is better):

- ``seg_dice`` = ``2 |A and B| / (|A| + |B|)`` and ``seg_jaccard`` = ``|A and B| / |A or B|`` of
  the foreground pixels (A: prediction, B: reference);
- ``seg_f1``: object-level F1 at IoU >= 0.5: predicted and reference objects are matched one to
  one (Hungarian assignment on IoU, :func:`scipy.optimize.linear_sum_assignment`) and a match
  counts when its IoU is at least 0.5; ``F1 = 2 TP / (n_pred + n_ref)``, with precision
  ``TP / n_pred`` and recall ``TP / n_ref`` alongside.

Scores are NaN (undefined) when both images have no foreground / no objects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from decongan.engine.metrics._common import as_float_image

SEGMENTATION_KEYS = ("seg_dice", "seg_jaccard", "seg_f1")
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class SegmentationParameters:
    """The segmenter's settings (all in pixels of the image segmented).

    Attributes
    ----------
    smoothing_px : float
        Gaussian sigma applied before thresholding (0: none).
    min_size_px : int
        Smallest object kept (area in px).
    min_distance_px : int
        Smallest distance between two watershed seeds; objects narrower than that are not split.
    """

    smoothing_px: float = 1.0
    min_size_px: int = 20
    min_distance_px: int = 7

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def segment_nuclei(image: np.ndarray, parameters: SegmentationParameters | None = None) -> np.ndarray:
    """Label compact bright objects: smoothing, Otsu threshold, hole filling, watershed split.

    Parameters
    ----------
    image : ndarray
        One 2-D plane (Y, X), any real dtype and intensity scale.
    parameters : SegmentationParameters, optional
        The segmenter's settings (module docstring).

    Returns
    -------
    ndarray of int32, shape (Y, X)
        0 for background, 1..n for the objects.

    Raises
    ------
    ValueError
        Not a finite 2-D real image.
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    p = parameters or SegmentationParameters()
    data = as_float_image(image, name="image", ndims=(2,))
    if p.smoothing_px > 0:
        data = ndimage.gaussian_filter(data, p.smoothing_px)
    if np.ptp(data) == 0:
        return np.zeros(data.shape, np.int32)
    foreground = ndimage.binary_fill_holes(data > threshold_otsu(data))
    components, n = ndimage.label(foreground)
    sizes = np.bincount(components.ravel(), minlength=n + 1)
    small = sizes < p.min_size_px
    small[0] = True
    foreground = ~small[components]
    components = np.where(foreground, components, 0)
    if not foreground.any():
        return np.zeros(data.shape, np.int32)
    distance = ndimage.distance_transform_edt(foreground)
    peaks = peak_local_max(distance, min_distance=max(1, p.min_distance_px), labels=components, exclude_border=False)
    markers = np.zeros(data.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # an object without a seed (possible on a flat distance maximum) is seeded at its deepest pixel
    unseeded = sorted(set(np.unique(components[foreground]).tolist()) - set(np.unique(components[markers > 0]).tolist()))
    for k, lab in enumerate(unseeded, start=len(peaks) + 1):
        inside = np.where(components == lab, distance, -1.0)
        markers[np.unravel_index(int(np.argmax(inside)), inside.shape)] = k
    labels = watershed(-distance, markers, mask=foreground)
    return labels.astype(np.int32)


def segmentation_scores(*, prediction_labels: np.ndarray, reference_labels: np.ndarray,
                        iou_threshold: float = IOU_THRESHOLD) -> dict[str, float]:
    """Pixel Dice/Jaccard of the foregrounds and object F1 of two label images.

    Parameters
    ----------
    prediction_labels, reference_labels : ndarray of int, same shape
        0 = background, other values = objects (a binary mask is one object per connected blob
        only after :func:`scipy.ndimage.label`; here every distinct value is one object).
    iou_threshold : float
        Smallest IoU of a matched pair counted as a true positive.

    Returns
    -------
    dict of str to float
        ``seg_dice``, ``seg_jaccard``, ``seg_f1``, ``seg_precision``, ``seg_recall``,
        ``seg_n_objects`` (prediction) and ``seg_n_reference``; NaN where undefined.
    """
    from scipy.optimize import linear_sum_assignment

    pred = np.asarray(prediction_labels)
    ref = np.asarray(reference_labels)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction labels {pred.shape} and reference labels {ref.shape} differ in shape")
    a, b = pred > 0, ref > 0
    inter, total, union = float(np.sum(a & b)), float(a.sum() + b.sum()), float(np.sum(a | b))
    nan = float("nan")
    scores = {"seg_dice": 2 * inter / total if total else nan, "seg_jaccard": inter / union if union else nan}
    pred_ids, pred_idx = np.unique(pred, return_inverse=True)
    ref_ids, ref_idx = np.unique(ref, return_inverse=True)
    overlap = np.zeros((pred_ids.size, ref_ids.size))
    np.add.at(overlap, (pred_idx.ravel(), ref_idx.ravel()), 1.0)
    keep_p, keep_r = pred_ids != 0, ref_ids != 0
    overlap = overlap[np.ix_(keep_p, keep_r)]
    n_pred, n_ref = int(keep_p.sum()), int(keep_r.sum())
    tp = 0
    if n_pred and n_ref:
        areas_p = np.bincount(pred_idx.ravel(), minlength=pred_ids.size)[keep_p].astype(float)
        areas_r = np.bincount(ref_idx.ravel(), minlength=ref_ids.size)[keep_r].astype(float)
        iou = overlap / (areas_p[:, None] + areas_r[None, :] - overlap)
        rows, cols = linear_sum_assignment(-iou)
        tp = int(np.sum(iou[rows, cols] >= iou_threshold))
    scores["seg_f1"] = 2 * tp / (n_pred + n_ref) if n_pred + n_ref else nan
    scores["seg_precision"] = tp / n_pred if n_pred else nan
    scores["seg_recall"] = tp / n_ref if n_ref else nan
    scores["seg_n_objects"] = float(n_pred)
    scores["seg_n_reference"] = float(n_ref)
    return scores


def segmentation_agreement(*, prediction: np.ndarray, reference: np.ndarray | None = None,
                           reference_mask: np.ndarray | None = None,
                           parameters: SegmentationParameters | None = None) -> dict[str, float]:
    """Segment a restoration and score it against the ground truth's segmentation or a given mask.

    Parameters
    ----------
    prediction : ndarray, shape (Y, X)
        The image to score (any intensity scale).
    reference : ndarray, shape (Y, X), optional
        The ground-truth image, segmented with the same pipeline; ignored when ``reference_mask`` is given.
    reference_mask : ndarray, shape (Y, X), optional
        Annotations shipped with the data: a label image, or a binary mask whose connected
        components become the objects.
    parameters : SegmentationParameters, optional
        The segmenter's settings, applied to both images.

    Returns
    -------
    dict of str to float
        :func:`segmentation_scores` of the two segmentations.

    Raises
    ------
    ValueError
        Neither a reference nor a mask, shapes that differ, or an image that is not finite 2-D.
    """
    from scipy import ndimage

    pred_labels = segment_nuclei(prediction, parameters)
    if reference_mask is not None:
        mask = np.asarray(reference_mask)
        if mask.shape != pred_labels.shape:
            raise ValueError(f"the reference mask is {mask.shape} but the image is {pred_labels.shape}")
        unique = np.unique(mask)
        ref_labels = ndimage.label(mask > 0)[0] if unique.size <= 2 else mask.astype(np.int64)
    elif reference is not None:
        ref_labels = segment_nuclei(reference, parameters)
    else:
        raise ValueError("a reference image or a reference mask is needed")
    return segmentation_scores(prediction_labels=pred_labels, reference_labels=ref_labels)


def looks_like_nuclei(labels: np.ndarray, *, min_objects: int = 3, min_solidity: float = 0.9,
                      min_median_area_px: float = 300.0) -> tuple[bool, str]:
    """Whether a segmentation looks like compact objects (nuclei, cells) rather than fibres or rings.

    The defaults accept the FMD BPAE nuclei (median solidity 0.95-0.98, median area ~1400-1800 px)
    and reject the TA-GAN F-actin rings and fibres (solidity 0.87-0.89, median area 50-100 px).

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        A segmentation (e.g. of the ground truth) from :func:`segment_nuclei`.
    min_objects : int
        Fewest objects.
    min_solidity : float
        Smallest median solidity (area / convex-hull area) of the objects.
    min_median_area_px : float
        Smallest median object area in pixels.

    Returns
    -------
    (bool, str)
        The decision and a sentence with the numbers it rests on.
    """
    from skimage.measure import regionprops

    props = regionprops(np.asarray(labels))
    if len(props) < min_objects:
        return False, f"{len(props)} object(s) found (fewer than {min_objects})"
    solidity = float(np.median([p.solidity for p in props]))
    area = float(np.median([p.area for p in props]))
    ok = solidity >= min_solidity and area >= min_median_area_px
    verb = "look" if ok else "do not look"
    return ok, (f"ground-truth objects {verb} like nuclei: {len(props)} objects, median solidity {solidity:.2f} "
                f"(needs >= {min_solidity}), median area {area:.0f} px (needs >= {min_median_area_px:g})")


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None when it is NaN or infinite (for tables).

    Parameters
    ----------
    value : float
        A score.

    Returns
    -------
    float or None
    """
    value = float(value)
    return value if math.isfinite(value) else None
