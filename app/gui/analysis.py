"""Engine calls behind the window's analysis views (run in worker threads; no Qt here).

The metrics table, the error maps and the data-consistency maps all come from one
:func:`engine.evaluate.compare.evaluate_set` of the current field -- the same code that writes the exported
tables, figures and report, so what the window shows is what the files say.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decongan.engine.io import MicroscopyImage
from decongan.engine.progress import Progress

#: viewer layer roles -> comparison column names (engine.evaluate.compare.LQ_NAME / GT_NAME)
LQ_COLUMN = "LQ (input)"
GT_COLUMN = "GT"


@dataclass
class FieldEvaluation:
    """An :class:`engine.evaluate.compare.SetEvaluation` plus the map from comparison columns to viewer layers."""

    evaluation: Any
    layer_of: dict[str, str]
    psf_note: str = ""
    notes: list[str] = field(default_factory=list)
    #: the PSF of the data-consistency maps on the evaluation grid (None: maps not computed)
    psf: np.ndarray | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.evaluation.rows

    def maps(self, kind: str, *, c: int = 0, z: int = 0) -> dict[str, np.ndarray]:
        """Layer name -> 2-D map of ``kind`` ("error" or "consistency") at channel ``c`` and plane ``z``."""
        ev = self.evaluation
        out: dict[str, np.ndarray] = {}
        for column, layer in self.layer_of.items():
            if kind == "error":
                volume = ev.error_maps.get((column, c))
            elif kind == "consistency":  # the normalised residual z, as the exported consistency figure
                result = ev.consistency.get((column, c))
                volume = None if result is None else result.zmap
            else:
                raise ValueError(f"unknown map kind {kind!r}")
            if volume is None:
                continue
            plane = volume if volume.ndim == 2 else volume[min(z, volume.shape[0] - 1)]
            out[layer] = np.asarray(plane, dtype=np.float32)
        return out

    def flagged(self, *, c: int = 0, z: int = 0) -> dict[str, tuple[np.ndarray, float, float]]:
        """Layer name -> (flagged mask of plane ``z``, flagged fraction of that plane, of the whole image).

        The fractions are the engine's (``ConsistencyResult.flagged``'s mean, as ``flagged_fraction``), so
        the outlines drawn and the numbers shown are one thing.
        """
        out: dict[str, tuple[np.ndarray, float, float]] = {}
        for (column, ch), result in self.evaluation.consistency.items():
            if ch != c or column not in self.layer_of:
                continue
            flagged = np.asarray(result.flagged, dtype=bool)
            if flagged.ndim == 3:
                flagged = flagged[min(z, flagged.shape[0] - 1)]
            out[self.layer_of[column]] = (flagged, float(flagged.mean()), float(result.scores["flagged_fraction"]))
        return out

    def consistency_summary(self, *, c: int = 0) -> dict[str, float]:
        """Layer name -> flagged fraction of its data-consistency map."""
        return {self.layer_of[col]: res.scores["flagged_fraction"]
                for (col, ch), res in self.evaluation.consistency.items() if ch == c and col in self.layer_of}


def without_time(image: MicroscopyImage, t: int) -> MicroscopyImage:
    """The image at time point ``t`` (comparison sets hold one time point)."""
    return image.select(t=min(t, image.n_t - 1)) if "T" in image.axes else image


def evaluate_field(field_name: str, lq: tuple[str, MicroscopyImage], *, gt: tuple[str, MicroscopyImage] | None,
                   restored: Mapping[str, tuple[MicroscopyImage, Any]], psf_parameters: dict[str, Any] | None,
                   t: int = 0, resample: bool = False) -> Generator[Progress, None, FieldEvaluation]:
    """Build the comparison set of one field and evaluate it (metrics, error maps, consistency maps).

    Parameters
    ----------
    field_name : str
    lq, gt : (layer name, image)
        The input and the ground truth (None when there is none).
    restored : mapping layer name -> (image, Provenance or None)
    psf_parameters : dict, optional
        The Deconvolve panel's PSF description (:func:`app.gui.panels.deconvolve.psf_from_parameters`):
        the LQ system's PSF for the data-consistency maps, sampled on the evaluation grid. None, or an
        unknown pixel size, skips the consistency maps (the note says why).
    t : int
        Time point of time-lapses.
    resample : bool
        An LQ and a ground truth of different sizes are compared by resampling the LQ onto the ground
        truth's grid (the notes say so); without it such a pair is refused, naming both files and the
        Data panel's option.
    """
    from decongan.app.gui.panels.deconvolve import psf_from_parameters
    from decongan.engine.evaluate.compare import ComparisonError, build_comparison_set, evaluate_set
    from decongan.engine.provenance import Provenance

    yield Progress(0, 2, f"comparing {field_name}")
    items = {name: (without_time(image, t), provenance or Provenance(method=name, backend="file"))
             for name, (image, provenance) in restored.items()}
    try:
        cset = build_comparison_set(field_name, without_time(lq[1], t),
                                    gt=without_time(gt[1], t) if gt is not None else None, restored=items,
                                    resample=resample)
    except ComparisonError as err:
        if resample or not (isinstance(err.value, tuple) and len(err.value) == 2):
            raise
        raise ComparisonError(f"{err} (in this window: tick 'Resample LQ onto the GT grid' in the Data panel)",
                              path=err.path, value=err.value) from None
    layer_of = {LQ_COLUMN: lq[0], **{name: name for name in restored}}
    if gt is not None:
        layer_of[GT_COLUMN] = gt[0]
    psf = None
    note = ""
    if psf_parameters is None:
        note = "no PSF: data-consistency maps not computed"
    elif not cset.pixel_size_um and psf_parameters.get("model") != "file":
        note = "pixel size unknown: set it (Data panel) to compute the data-consistency maps"
    elif psf_parameters.get("nz") and not psf_parameters.get("z_step_nm"):
        note = "z step unknown: set it (Deconvolve panel) to compute the data-consistency maps with a 3-D PSF"
    else:
        pixel_nm = cset.pixel_size_um * 1000.0 if cset.pixel_size_um else None
        psf = psf_from_parameters(psf_parameters, pixel_nm=pixel_nm)
        if not cset.has_z and psf.ndim == 3:
            from decongan.engine.optics.request import focal_plane

            psf = focal_plane(psf)  # the peak plane, the engine's one rule
        note = f"consistency PSF: {psf_parameters.get('model')} on {pixel_nm or '?'} nm pixels"
    yield Progress(1, 2, f"measuring {len(cset.columns)} images of {field_name}")
    evaluation = evaluate_set(cset, consistency_psf=psf, consistency=psf is not None)
    yield Progress(2, 2, "comparison done")
    return FieldEvaluation(evaluation, layer_of, note, list(cset.notes) + list(evaluation.notes), psf)
