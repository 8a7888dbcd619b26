"""Engine calls behind the viewer's analysis views (run in worker threads; no Qt here).

Metrics rows, error maps and data-consistency maps for the planes on screen. Everything is
computed by engine functions -- the same ones the CLI and the exported report use.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from engine.progress import Progress

PlaneMap = dict[str, np.ndarray]


def field_metrics(planes: PlaneMap, *, reference: str | None, image_name: str,
                  pixel_size_um: float | None = None, only: set[str] | None = None
                  ) -> Generator[Progress, None, list[dict[str, Any]]]:
    """Metric rows (one per method) for the planes of one field.

    Parameters
    ----------
    planes : dict
        Layer name -> 2-D plane, all on the same grid.
    reference : str or None
        Name of the ground-truth layer (reference metrics for every other layer), or None.
    image_name : str
        Field name written in the ``image`` column.
    pixel_size_um : float, optional
        Lateral pixel size, for the resolution metrics in nm.
    only : set of str, optional
        Compute rows for these layers only (the others serve as reference).
    """
    from engine.metrics import no_reference_metrics, reference_metrics

    rows: list[dict[str, Any]] = []
    names = [n for n in planes if only is None or n in only]
    pixel_nm = pixel_size_um * 1000.0 if pixel_size_um else None
    for i, name in enumerate(names):
        yield Progress(i, len(names), f"metrics of {name}")
        row: dict[str, Any] = {"image": image_name, "method": name}
        plane = planes[name]
        if reference is not None and name != reference and reference in planes \
                and planes[reference].shape == plane.shape:
            row.update(reference_metrics(plane, planes[reference]))
            yield Progress(i, len(names), f"metrics of {name}")  # a cancel point between the two halves
        row.update(no_reference_metrics(plane, pixel_size_nm=pixel_nm))
        rows.append(row)
    yield Progress(len(names), len(names), "metrics done")
    return rows


def error_maps(planes: PlaneMap, *, reference: str) -> Generator[Progress, None, PlaneMap]:
    """``|method - GT|`` for every layer, after the metrics' normalisation policy (one common scale)."""
    from engine.metrics import normalize_pair

    ref = planes[reference]
    out: PlaneMap = {}
    others = [n for n in planes if n != reference]
    for i, name in enumerate(others):
        yield Progress(i, len(others), f"error map of {name}")
        if planes[name].shape != ref.shape:
            continue
        pred_n, ref_n, _ = normalize_pair(planes[name], ref)
        out[name] = np.abs(pred_n - ref_n).astype(np.float32)
    return out


def consistency_maps(planes: PlaneMap, *, lq: str, psf_for: Callable[[tuple[int, int]], np.ndarray | None]
                     ) -> Generator[Progress, None, tuple[PlaneMap, dict[str, dict[str, float]]]]:
    """Data-consistency detection maps (signed; see :mod:`engine.consistency`) of every layer vs the LQ input.

    ``psf_for(shape)`` returns the LQ system's PSF sampled on the grid of a layer of that shape.
    """
    from engine.consistency import data_consistency

    lq_plane = planes[lq]
    maps: PlaneMap = {}
    scores: dict[str, dict[str, float]] = {}
    others = [n for n in planes if n != lq]
    for i, name in enumerate(others):
        yield Progress(i, len(others), f"consistency of {name}")
        plane = planes[name]
        if plane.shape[0] < lq_plane.shape[0] or plane.shape[1] < lq_plane.shape[1]:
            continue
        result = data_consistency(plane, lq_plane, psf=psf_for(plane.shape))
        maps[name] = result.detection.astype(np.float32)
        scores[name] = result.scores
    return maps, scores
