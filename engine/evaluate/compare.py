"""Comparison sets and metric tables: LQ | restorations | ground truth, measured the same way.

A :class:`ComparisonSet` holds one field of view: the LQ input, any number of restored images
(Richardson-Lucy via the engine or Fiji, GAN runs, ...; each with its :class:`Provenance`) and the
ground truth when there is one, all on one **evaluation grid**:

* the LQ grid when there is no ground truth, or when the ground truth is registered onto it
  (``register_gt=``; engine.optics.registration, then every image is cropped to the common valid area);
* otherwise the ground truth's grid (the LQ is resampled onto it, cubic, and that is noted).

A restoration on another grid (e.g. a x4 super-resolution GAN) is resampled onto the evaluation
grid (anti-aliased linear when shrinking, cubic when enlarging) with a note.

:func:`evaluate_set` measures every column with the same rules:

* reference metrics (MSE, NRMSE, PSNR, SSIM) against the ground truth with the single normalisation
  policy of :mod:`engine.metrics.reference` (``NORMALISATION_POLICY`` quotes it) -- the LQ input is
  scored too, as the method ``"LQ (input)"``;
* no-reference metrics (BGSTD, CUF, SNR, decorrelation resolution) of every column **including the
  input and the ground truth**, so an "improvement" can always be read against the input's own value
  (decorrelation and FRC reward invented high frequencies);
* the data-consistency scores (:mod:`engine.evaluate.consistency`) of every restoration and of the ground
  truth, against the LQ input on its own grid, when a forward-model PSF is given;
* error maps ``|pred_n - gt_n|`` on the common normalised scale.

For a Z stack, reference metrics cover the whole volume (SSIM averaged over planes, see
engine.metrics.reference) and no-reference metrics the **same** plane in every column (the focus
plane: the ground truth's brightest, else the input's), so no method is judged on a different plane.

A :class:`MetricTable` holds one row per (field, method, channel), exports CSV/JSON, and gives the
per-method summaries (median, IQR) and the statistics of :mod:`engine.evaluate.stats`.

Why this module is long
-----------------------
A comparison set, its evaluation and the metric table share the evaluation-grid rules
(registration, resampling, the focus plane) and the row format; folder matching and field-by-field
evaluation already live in :mod:`engine.evaluate.dataset`, figures in
:mod:`engine.evaluate.figures`. :class:`MetricTable` is the next piece to move to its own module
should this one grow.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.io import MicroscopyImage
from decongan.engine.provenance import Provenance

LQ_NAME = "LQ (input)"
GT_NAME = "GT"
REFERENCE_KEYS = ("mse", "nrmse", "psnr", "ssim")
NO_REFERENCE_KEYS = ("bgstd", "cuf", "snr", "decorrelation_px", "decorrelation_nm")
CONSISTENCY_KEYS = ("dc_flagged_fraction", "dc_unsupported_fraction", "dc_rsp", "dc_chi_rms")
SPLIT_HALF_KEYS = ("sh_flagged_fraction",)  # engine.evaluate.trust_maps: methods the comparison runs itself
ENSEMBLE_KEYS = ("ens_flagged_fraction",)  # engine.evaluate.trust_maps: a member against the other models/seeds
SEGMENTATION_KEYS = ("seg_dice", "seg_jaccard", "seg_f1")
#: Direction of every metric in tables and box plots (None: neither is "better").
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "mse": False, "nrmse": False, "psnr": True, "ssim": True, "bgstd": False, "cuf": None, "snr": True,
    "decorrelation_px": False, "decorrelation_nm": False, "dc_flagged_fraction": False,
    "dc_unsupported_fraction": False, "dc_rsp": True, "dc_chi_rms": False, "sh_flagged_fraction": False,
    "ens_flagged_fraction": False,
    "seg_dice": True, "seg_jaccard": True, "seg_f1": True,
}
METRIC_LABELS = {
    "mse": "MSE", "nrmse": "NRMSE", "psnr": "PSNR (dB)", "ssim": "SSIM", "bgstd": "BGSTD", "cuf": "CUF (cycles/px)",
    "snr": "SNR", "decorrelation_px": "decorrelation res. (px)", "decorrelation_nm": "decorrelation res. (nm)",
    "dc_flagged_fraction": "flagged area (consistency)", "dc_unsupported_fraction": "unsupported area",
    "dc_rsp": "RSP (consistency)", "dc_chi_rms": "chi RMS (consistency)", "sh_flagged_fraction": "flagged area (split-half)",
    "ens_flagged_fraction": "flagged area (vs other models/seeds)",
    "seg_dice": "segmentation Dice", "seg_jaccard": "segmentation Jaccard", "seg_f1": "object F1 (IoU 0.5)",
}

Role = Literal["input", "restored", "reference"]


class ComparisonError(DeconganError, ValueError):
    """Images that cannot be compared (shapes, axes, missing files); the message says which and why."""


@dataclass
class Column:
    """One column of a comparison: the input, a restoration or the ground truth.

    ``data`` is float32 with the set's axes on the evaluation grid.
    """

    name: str
    data: np.ndarray
    provenance: Provenance
    role: Role


@dataclass
class ComparisonSet:
    """One field of view: LQ input, restorations and ground truth on one evaluation grid.

    Attributes
    ----------
    field : str
        Name of the field of view (file stem).
    axes : str
        Axes of every column's data: ``"YX"``, ``"ZYX"``, ``"CYX"`` or ``"ZCYX"``.
    columns : list of Column
        Input first, restorations in the order given, ground truth last.
    lq_native : ndarray
        The LQ input as acquired (float32, its own grid), for the data-consistency map.
    pixel_size_um, z_step_um : float or None
        Calibration of the evaluation grid.
    lq_pixel_size_um : float or None
        Pixel size of ``lq_native``.
    notes : list of str
        Everything done to the images (registration, crops, resampling).
    registration : dict or None
        The ground-truth registration (transform and quality) when one was done.
    """

    field: str
    axes: str
    columns: list[Column]
    lq_native: np.ndarray
    pixel_size_um: float | None = None
    z_step_um: float | None = None
    lq_pixel_size_um: float | None = None
    notes: list[str] = field(default_factory=list)
    registration: dict[str, Any] | None = None
    channel_names: list[str] | None = None

    @property
    def lq(self) -> Column:
        return self.columns[0]

    @property
    def gt(self) -> Column | None:
        last = self.columns[-1]
        return last if last.role == "reference" else None

    @property
    def restored(self) -> list[Column]:
        return [c for c in self.columns if c.role == "restored"]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.field}: no column named {name!r} (have {[c.name for c in self.columns]})")

    @property
    def n_channels(self) -> int:
        return self.columns[0].data.shape[self.axes.index("C")] if "C" in self.axes else 1

    @property
    def has_z(self) -> bool:
        return "Z" in self.axes

    @property
    def yx_shape(self) -> tuple[int, int]:
        shape = self.columns[0].data.shape
        return int(shape[-2]), int(shape[-1])

    def volume(self, column: Column | str, *, c: int = 0) -> np.ndarray:
        """One channel: (Z, Y, X) or (Y, X)."""
        col = self.column(column) if isinstance(column, str) else column
        return _channel(col.data, self.axes, c)

    def native_lq(self, *, c: int = 0) -> np.ndarray:
        return _channel(self.lq_native, self.axes, c)

    def focus_plane(self, *, c: int = 0) -> int | None:
        """The plane shown and used for no-reference metrics of a stack (GT's brightest, else the LQ's)."""
        if not self.has_z:
            return None
        return focus_plane(self.volume(self.gt if self.gt is not None else self.lq, c=c))

    def plane(self, column: Column | str, *, c: int = 0, z: int | None = None) -> np.ndarray:
        """A 2-D (Y, X) plane: ``z`` (default: :meth:`focus_plane`) of channel ``c``."""
        vol = self.volume(column, c=c)
        if vol.ndim == 2:
            return vol
        return vol[self.focus_plane(c=c) if z is None else z]


def focus_plane(stack: np.ndarray) -> int:
    """The plane a comparison of a stack shows: the one with the largest mean intensity (the in-focus
    plane of a fluorescent object; the figures label it ``z=<index>``, counted from 0).

    Parameters
    ----------
    stack : ndarray, shape (Z, Y, X)
        One channel, one time point, of the reference (the ground truth, else the input).

    Returns
    -------
    int
        Plane index, 0-based.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"focus_plane needs a (Z, Y, X) stack, got shape {stack.shape}")
    return int(np.argmax(stack.reshape(stack.shape[0], -1).mean(axis=1, dtype=np.float64)))


def _channel(data: np.ndarray, axes: str, c: int) -> np.ndarray:
    if "C" not in axes:
        if c != 0:
            raise IndexError(f"no channel {c} in single-channel data")
        return data
    return np.take(data, c, axis=axes.index("C"))


# ---------------------------------------------------------------------------------------------
# building a set
# ---------------------------------------------------------------------------------------------
def _as_image_and_provenance(name: str, item: Any, like: MicroscopyImage) -> tuple[MicroscopyImage, Provenance]:
    """Accept Restored, DeconvolvedImage, (image, provenance), MicroscopyImage or a bare array."""
    provenance: Provenance | None = getattr(item, "provenance", None)
    image: Any = getattr(item, "image", item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Provenance):
        image, provenance = item
    if provenance is None:
        source = getattr(image, "path", None)
        provenance = Provenance(method=name, backend="file", parameters={"path": str(source)} if source else {})
    if not isinstance(image, MicroscopyImage):
        array = np.asarray(image)
        if array.ndim != like.data.ndim:
            raise ComparisonError(f"{name}: array of shape {array.shape} does not match the LQ axes {like.axes}")
        image = like.with_data(array)
    return image, provenance


def _check_axes(name: str, image: MicroscopyImage, axes: str) -> None:
    if "T" in image.axes:
        raise ComparisonError(f"{name} ({image.path or 'array'}): time series are not compared; choose one time point")
    if image.metadata.get("rgb"):
        raise ComparisonError(f"{name} ({image.path or 'array'}): RGB colour images cannot be compared; "
                              "use the fluorescence channels as a multichannel TIFF")
    if image.axes != axes:
        raise ComparisonError(f"{name} ({image.path or 'array'}) has axes {image.axes} {image.data.shape} but the "
                              f"LQ input has {axes}; compare images of the same dimensionality")


def _resample_yx(data: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    if data.shape[-2:] == shape:
        return data
    lead = data.shape[:-2]
    fy, fx = data.shape[-2] // shape[0], data.shape[-1] // shape[1]
    if fy >= 1 and fx >= 1 and (fy, fx) != (1, 1) and (shape[0] * fy, shape[1] * fx) == data.shape[-2:]:
        # integer shrink factors: the block mean (exact integration over each coarse pixel)
        blocks = data.astype(np.float64).reshape(*lead, shape[0], fy, shape[1], fx)
        return blocks.mean(axis=(-3, -1)).astype(np.float32)
    shrinking = shape[0] < data.shape[-2] or shape[1] < data.shape[-1]
    out = resize(data.astype(np.float32), (*lead, *shape), order=1 if shrinking else 3, mode="reflect",
                 anti_aliasing=shrinking, preserve_range=True)
    return out.astype(np.float32)


def _proxy(data: np.ndarray, axes: str) -> np.ndarray:
    """2-D registration proxy: max projection over Z, sum over channels."""
    arr = data.astype(np.float32)
    if "C" in axes:
        arr = arr.sum(axis=axes.index("C"))
        axes = axes.replace("C", "")
    if "Z" in axes:
        arr = arr.max(axis=0)
    return arr


def build_comparison_set(
    field_name: str,
    lq: MicroscopyImage,
    *,
    gt: MicroscopyImage | None = None,
    restored: Mapping[str, Any] | None = None,
    register_gt: str | None = None,
    resample: bool = False,
) -> ComparisonSet:
    """Put an LQ input, its restorations and the ground truth on one evaluation grid.

    Parameters
    ----------
    field_name : str
        Name of the field of view (used in tables and file names).
    lq : MicroscopyImage
        The input; axes YX, ZYX, CYX or ZCYX.
    gt : MicroscopyImage, optional
        Ground truth of the same field (same axes).
    restored : mapping of name -> restoration
        Each value: ``engine.provenance.Restored``, ``engine.optics.deconvolution.DeconvolvedImage``, an
        ``(image, Provenance)`` pair, a ``MicroscopyImage`` read from a file, or an array with the LQ's
        axes. The name is the column title.
    register_gt : {"translation", "rigid", "similarity", "affine"}, optional
        Register the ground truth onto the LQ grid (2-D proxy: max projection over Z), then crop every
        image to the common valid area. None: use the images as they are.
    resample : bool
        Allow an LQ input and a ground truth of different Y, X sizes: the LQ is resampled onto the
        ground truth's grid, and that is noted. Without it (and without ``register_gt``) such a pair
        is refused, naming both files and shapes.

    Raises
    ------
    ComparisonError
        Mismatched axes or Z sizes, different LQ and ground-truth sizes without ``resample``, time series, RGB data, or a failed registration (with the scores).
    """
    restored = dict(restored or {})
    for reserved in (LQ_NAME, GT_NAME):
        if reserved in restored:
            raise ComparisonError(f"{reserved!r} is reserved for the input / ground truth; rename that method")
    axes = lq.axes
    _check_axes(LQ_NAME, lq, axes)
    notes: list[str] = []
    lq_data = lq.data.astype(np.float32)
    pixel_size = lq.pixel_size_um
    registration: dict[str, Any] | None = None
    gt_data = None
    if gt is not None:
        _check_axes(GT_NAME, gt, axes)
        if "Z" in axes and gt.n_z != lq.n_z:
            raise ComparisonError(f"{GT_NAME} has {gt.n_z} planes but the LQ input has {lq.n_z}")
        gt_data = gt.data.astype(np.float32)
    grid = lq.yx_shape
    crop: tuple[int, int, int, int] | None = None
    if gt_data is not None and register_gt:
        from decongan.engine.optics.registration import (
            RegistrationError,
            apply_transform,
            largest_valid_rectangle,
            register,
        )

        try:
            result = register(moving=_proxy(gt_data, axes), fixed=_proxy(lq_data, axes), transform=register_gt,
                              moving_pixel_size_um=gt.pixel_size_um if gt else None,
                              fixed_pixel_size_um=lq.pixel_size_um)
        except RegistrationError as err:
            raise ComparisonError(f"{field_name}: registering the ground truth onto the LQ input failed: {err}") from err
        gt_data, mask = apply_transform(gt_data, result.transform, grid)
        crop = largest_valid_rectangle(mask)
        registration = result.to_dict()
        notes.append(f"ground truth registered onto the LQ grid ({result.summary()}); all images cropped to the "
                     f"common valid area y {crop[0]}:{crop[1]}, x {crop[2]}:{crop[3]}")
    elif gt_data is not None and gt_data.shape[-2:] != grid:
        gt_grid = (int(gt_data.shape[-2]), int(gt_data.shape[-1]))
        if not resample:
            raise ComparisonError(
                f"{field_name}: the LQ input {lq.path or 'array'} is {grid[0]} x {grid[1]} px (Y x X) but the ground "
                f"truth {gt.path if gt is not None and gt.path else 'array'} is {gt_grid[0]} x {gt_grid[1]} px; "
                "they are not on one grid. Crop them to the same field, register the ground truth onto the LQ, "
                "or ask for resampling of the LQ onto the ground truth's grid (labelled in the results)",
                path=lq.path, value=(grid, gt_grid))
        grid = gt_grid
        notes.append(f"LQ input {lq.yx_shape} resampled onto the ground-truth grid {grid} (resampling asked for) "
                     "for display and metrics; the data-consistency map uses the LQ as acquired")
        if lq.pixel_size_um and gt is not None:
            pixel_size = gt.pixel_size_um or lq.pixel_size_um * lq.yx_shape[1] / grid[1]
    lq_eval = _resample_yx(lq_data, grid)

    columns = [Column(LQ_NAME, lq_eval, Provenance(method=LQ_NAME, backend="input",
                                                   parameters={"path": str(lq.path) if lq.path else None}), "input")]
    for name, item in restored.items():
        image, provenance = _as_image_and_provenance(name, item, lq)
        _check_axes(name, image, axes)
        data = image.data.astype(np.float32)
        if "Z" in axes and image.n_z != lq.n_z:
            raise ComparisonError(f"{name} has {image.n_z} planes but the LQ input has {lq.n_z}")
        if data.shape[-2:] != grid:
            notes.append(f"{name}: {data.shape[-2:]} resampled onto the evaluation grid {grid}")
            data = _resample_yx(data, grid)
        columns.append(Column(name, data, provenance, "restored"))
    if gt_data is not None:
        columns.append(Column(GT_NAME, gt_data.astype(np.float32), Provenance(
            method=GT_NAME, backend="reference", parameters={"path": str(gt.path) if gt and gt.path else None}),
            "reference"))
    if crop is not None:
        y0, y1, x0, x1 = crop
        for col in columns:
            col.data = np.ascontiguousarray(col.data[..., y0:y1, x0:x1])
        lq_native = np.ascontiguousarray(lq_data[..., y0:y1, x0:x1])
    else:
        lq_native = lq_data
    return ComparisonSet(field=field_name, axes=axes, columns=columns, lq_native=lq_native,
                         pixel_size_um=pixel_size, z_step_um=lq.z_step_um, lq_pixel_size_um=lq.pixel_size_um,
                         notes=notes, registration=registration,
                         channel_names=lq.metadata.get("channel_names"))


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------
@dataclass
class SetEvaluation:
    """Metrics, consistency maps and error maps of one comparison set.

    ``consistency[(method, channel)]`` and ``error_maps[(method, channel)]`` hold the arrays the
    figures draw (error maps: ``|pred_n - gt_n|`` with the normalisation policy, same shape as the data).
    """

    cset: ComparisonSet
    rows: list[dict[str, Any]]
    consistency: dict[tuple[str, int], Any] = field(default_factory=dict)
    error_maps: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    split_half: dict[tuple[str, int], Any] = field(default_factory=dict)  # engine.evaluate.trust_maps
    disagreement: dict[tuple[str, int], Any] = field(default_factory=dict)  # (models/seeds group, channel)


def _safe(fn: Any, notes: list[str], what: str) -> Any:
    try:
        return fn()
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
        notes.append(f"{what}: not computed ({err})")
        return None


def evaluate_set(
    cset: ComparisonSet,
    *,
    consistency_psf: np.ndarray | None = None,
    consistency: bool = True,
    no_reference: bool = True,
    segmentation: bool | None = None,
    segmentation_mask: np.ndarray | None = None,
) -> SetEvaluation:
    """Measure every column of ``cset`` (module docstring for the rules).

    Parameters
    ----------
    cset : ComparisonSet
    consistency_psf : ndarray, optional
        PSF of the LQ system sampled on the evaluation grid (2-D, or 3-D for stacks). None with
        ``consistency=True``: identity forward model (restorations of the same optics, e.g. denoising).
    consistency : bool
        Compute the data-consistency map of every restoration and of the ground truth.
    no_reference : bool
        Compute the no-reference metrics (the decorrelation analysis takes ~0.5 s per 512^2 plane).
    segmentation : bool, optional
        Task-based score (engine.metrics.segmentation: Otsu + watershed, Dice, object F1) of every
        column on the focus plane against the ground truth's segmentation. None: only when the
        ground truth's objects look like nuclei (the decision is noted), or when a mask is given.
    segmentation_mask : ndarray, optional
        Annotations shipped with the data, (Y, X) on the evaluation grid (the focus plane's), used as
        the reference segmentation instead of the ground truth's; the ground truth is then scored too.

    Returns
    -------
    SetEvaluation
        ``rows``: one dict per (method, channel) with ``image``, ``method``, ``role``, ``backend``,
        ``channel`` and every metric (None where it does not apply, e.g. reference metrics of the GT).
    """
    from decongan.engine.evaluate.consistency import data_consistency
    from decongan.engine.metrics.noref import no_reference_metrics
    from decongan.engine.metrics.reference import normalize_pair, reference_metrics

    notes: list[str] = []
    evaluation = SetEvaluation(cset=cset, rows=[], notes=notes)
    pixel_nm = cset.pixel_size_um * 1000.0 if cset.pixel_size_um else None
    for c in range(cset.n_channels):
        gt = cset.volume(cset.gt, c=c) if cset.gt is not None else None
        z = cset.focus_plane(c=c)
        segment = _segmentation_reference(cset, c, z, segmentation, segmentation_mask, notes)
        for col in cset.columns:
            vol = cset.volume(col, c=c)
            row: dict[str, Any] = {"image": cset.field, "method": col.name, "role": col.role,
                                   "backend": col.provenance.backend, "channel": c}
            if z is not None:
                row["z_plane"] = z
            for key in REFERENCE_KEYS:
                row[key] = None
            if gt is not None and col.role != "reference":
                values = _safe(lambda v=vol, g=gt: reference_metrics(prediction=v, reference=g), notes, f"{col.name} reference metrics")
                if values:
                    row.update({k: float(values[k]) for k in REFERENCE_KEYS})
                pair = _safe(lambda v=vol, g=gt: normalize_pair(prediction=v, reference=g), notes, f"{col.name} error map")
                if pair is not None:
                    evaluation.error_maps[(col.name, c)] = np.abs(pair[0] - pair[1]).astype(np.float32)
            if no_reference:
                plane = vol if z is None else vol[z]
                values = _safe(lambda p=plane: no_reference_metrics(p, pixel_nm=pixel_nm), notes,
                               f"{col.name} no-reference metrics")
                for key in NO_REFERENCE_KEYS:
                    row[key] = _finite_or_none(values.get(key)) if values else None
            if consistency and col.role != "input":
                lq_native = cset.native_lq(c=c)
                result = _safe(lambda v=vol, n=lq_native: data_consistency(restored=v, lq=n, psf=consistency_psf), notes,
                               f"{col.name} data consistency")
                if result is not None:
                    evaluation.consistency[(col.name, c)] = result
                    row.update({"dc_flagged_fraction": result.scores["flagged_fraction"],
                                "dc_unsupported_fraction": result.scores["unsupported_fraction"],
                                "dc_rsp": result.scores["rsp"], "dc_chi_rms": _finite_or_none(result.scores["chi_rms"])})
            if segment is not None and (col.role != "reference" or segmentation_mask is not None):
                row.update(_segmentation_scores(vol if z is None else vol[z], segment))
            evaluation.rows.append(row)
    return evaluation


def _segmentation_reference(cset: ComparisonSet, c: int, z: int | None, wanted: bool | None,
                            mask: np.ndarray | None, notes: list[str]) -> np.ndarray | None:
    """The reference label image of the task-based score for channel ``c`` (None: not scored)."""
    from decongan.engine.metrics.segmentation import looks_like_nuclei, segment_nuclei

    if wanted is False or (mask is None and cset.gt is None):
        return None
    if mask is not None:
        from scipy import ndimage

        mask = np.asarray(mask)
        if mask.shape != cset.yx_shape:
            raise ComparisonError(f"{cset.field}: the segmentation mask is {mask.shape} but the evaluation grid is "
                                  f"{cset.yx_shape}", value=mask.shape)
        return ndimage.label(mask > 0)[0] if np.unique(mask).size <= 2 else mask.astype(np.int64)
    gt_plane = cset.plane(cset.gt, c=c, z=z)  # type: ignore[arg-type]
    labels = segment_nuclei(gt_plane)
    if wanted is None:
        ok, why = looks_like_nuclei(labels)
        notes.append(f"task-based segmentation score {'computed' if ok else 'not computed'}: {why}")
        if not ok:
            return None
    return labels


def _segmentation_scores(plane: np.ndarray, reference_labels: np.ndarray) -> dict[str, float | None]:
    from decongan.engine.metrics.segmentation import segment_nuclei, segmentation_scores

    scores = segmentation_scores(prediction_labels=segment_nuclei(plane), reference_labels=reference_labels)
    return {k: _finite_or_none(scores[k]) for k in SEGMENTATION_KEYS}


def attach_consistency(evaluation: SetEvaluation, method: str, result: Any, *, channel: int = 0) -> None:
    """Add a data-consistency result computed elsewhere (e.g. one plane of a 3-D map) to an evaluation.

    Parameters
    ----------
    evaluation : SetEvaluation
        Updated in place: its consistency maps and the matching metrics row.
    method : str
        Column name the result belongs to.
    result : ConsistencyResult
        From :func:`decongan.engine.evaluate.consistency.data_consistency`.
    channel : int
        Channel index of the row.

    Raises
    ------
    KeyError
        The evaluation has no row for that method and channel.
    """
    evaluation.consistency[(method, channel)] = result
    for row in evaluation.rows:
        if row["method"] == method and row["channel"] == channel:
            row.update({"dc_flagged_fraction": result.scores["flagged_fraction"],
                        "dc_unsupported_fraction": result.scores["unsupported_fraction"],
                        "dc_rsp": result.scores["rsp"], "dc_chi_rms": _finite_or_none(result.scores["chi_rms"])})
            return
    raise KeyError(f"{evaluation.cset.field}: no row for method {method!r}, channel {channel}")


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------
BASE_COLUMNS = ("image", "method", "role", "backend", "channel", "z_plane")


@dataclass
class MetricTable:
    """One row per (image, method, channel); summaries and statistics per method."""

    rows: list[dict[str, Any]]

    @classmethod
    def from_evaluations(cls, evaluations: Iterable[SetEvaluation]) -> MetricTable:
        return cls([row for ev in evaluations for row in ev.rows])

    @property
    def methods(self) -> list[str]:
        """Method names in first-seen order, input first and ground truth last."""
        seen = list(dict.fromkeys(r["method"] for r in self.rows))
        return sorted(seen, key=lambda m: (m != LQ_NAME, m == GT_NAME))

    @property
    def images(self) -> list[str]:
        return list(dict.fromkeys(r["image"] for r in self.rows))

    @property
    def metrics(self) -> list[str]:
        """Metric columns that hold at least one value, in the canonical order."""
        keys = [*REFERENCE_KEYS, *SEGMENTATION_KEYS, *NO_REFERENCE_KEYS, *CONSISTENCY_KEYS, *SPLIT_HALF_KEYS,
                *ENSEMBLE_KEYS]
        return [k for k in keys if any(r.get(k) is not None for r in self.rows)]

    @property
    def columns(self) -> list[str]:
        base = [k for k in BASE_COLUMNS if any(k in r for r in self.rows)]
        return base + self.metrics

    def values(self, metric: str, method: str) -> list[float | None]:
        """Values of ``metric`` for ``method`` in image/channel order (None where missing)."""
        return [r.get(metric) for r in self.rows if r["method"] == method]

    def methods_with(self, metric: str) -> list[str]:
        return [m for m in self.methods if any(v is not None for v in self.values(metric, m))]

    def summary(self) -> dict[str, dict[str, Any]]:
        """``{method: {metric: Summary}}`` (median, quartiles, IQR ...; engine.evaluate.stats.summarize)."""
        from decongan.engine.evaluate.stats import summarize

        return {m: {k: summarize(self.values(k, m)) for k in self.metrics if any(v is not None for v in self.values(k, m))}
                for m in self.methods}

    def statistics(self, metric: str, *, p_adjust: str = "holm", alpha: float = 0.05) -> Any:
        """Kruskal-Wallis + Dunn (engine.evaluate.stats.compare_groups) across the methods that have ``metric``."""
        from decongan.engine.evaluate.stats import compare_groups

        groups = {m: self.values(metric, m) for m in self.methods_with(metric)}
        return compare_groups(groups, metric=metric, p_adjust=p_adjust, alpha=alpha)  # type: ignore[arg-type]

    def to_csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in self.columns})
        return buffer.getvalue()

    def write_csv(self, path: str | Path) -> Path:
        from decongan.engine.outputs import write_text_atomic

        return write_text_atomic(path, self.to_csv_text())

    def write_json(self, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
        from decongan.engine.outputs import write_json_atomic

        payload = {"columns": self.columns, "rows": [{k: r.get(k) for k in self.columns} for r in self.rows]}
        if extra:
            payload.update(extra)
        return write_json_atomic(path, payload)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def method_order(names: Sequence[str]) -> list[str]:
    """Input first, ground truth last, others in the given order."""
    return sorted(dict.fromkeys(names), key=lambda m: (m != LQ_NAME, m == GT_NAME))
