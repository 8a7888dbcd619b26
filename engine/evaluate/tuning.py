"""Tuning the classical baselines without peeking: calibration pairs, a grid, the report's metric; tuned.json.

:func:`iter_tune` picks every baseline's parameters (:mod:`decongan.engine.optics.classical`) on
**calibration pairs** (LQ and ground truth of fields that are *not* evaluated later: a GAN's training
pairs, or a split of the data that the caller records) by the metric the report uses
(:func:`decongan.engine.metrics.reference.reference_metrics`, the one normalisation policy; SSIM by
default). Every point of the method's grid (:attr:`Parameter.grid`, the product over parameters that
have more than one value) is run on every pair; the score of a point is the **median** over pairs
(the report's summary statistic) and the best point wins (ties: the first in grid order).

The result is written as ``tuned.json`` (:meth:`TuningResult.write`): the chosen parameters, the
calibration files (names, paths, sha256 of LQ and GT), the metric and every grid point's scores.
:func:`calibration_overlap` tells a comparison which of its fields were calibration fields (same LQ
sha256), so a door can refuse, or label as optimistic, a baseline tuned on the fields it evaluates.

Without pairs (:func:`default_tuning`) the denoisers keep their stated defaults (labelled
``"default (not tuned)"``) and every RL step stops by the discrepancy principle
(:mod:`decongan.engine.evaluate.discrepancy`).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.io import MicroscopyImage, read_image
from decongan.engine.optics.classical import BASELINES, BaselineSpec, restore_array
from decongan.engine.optics.request import DEFAULT_SETTINGS, DeconvolutionSettings
from decongan.engine.progress import Progress, drain

TUNED_FORMAT = "decongan-tuned-baselines"
TUNED_VERSION = 1
#: provenance label of each way a baseline's parameters were chosen
SOURCES = {"calibration": "tuned on calibration pairs", "default": "default (not tuned)",
           "discrepancy": "RL stopped by the discrepancy principle (no reference)"}
TUNING_METRICS = ("ssim", "psnr", "nrmse", "mse")


class TuningError(DeconganError, ValueError):
    """Calibration pairs or a tuned file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class CalibrationPair:
    """One calibration field: LQ and ground truth on the same grid.

    Attributes
    ----------
    name : str
        Field name (file stem).
    lq, gt : Path
        The two files.
    lq_sha256, gt_sha256 : str
        Hex SHA-256 of the files' bytes (filled in by :func:`calibration_pair`).
    """

    name: str
    lq: Path
    gt: Path
    lq_sha256: str
    gt_sha256: str

    def as_dict(self) -> dict[str, str]:
        """JSON form: name, paths and digests."""
        return {"name": self.name, "lq": str(self.lq), "lq_sha256": self.lq_sha256, "gt": str(self.gt),
                "gt_sha256": self.gt_sha256}


def calibration_pair(name: str, lq: str | Path, gt: str | Path) -> CalibrationPair:
    """A :class:`CalibrationPair` with the files' SHA-256.

    Parameters
    ----------
    name : str
        Field name.
    lq, gt : str or Path
        LQ input and ground truth of the field.

    Returns
    -------
    CalibrationPair
    """
    from decongan.engine.evaluate.batch import sha256_file

    return CalibrationPair(name, Path(lq), Path(gt), sha256_file(lq), sha256_file(gt))


def calibration_pairs(lq_dir: str | Path, gt_dir: str | Path, *, names: Sequence[str] | None = None
                      ) -> list[CalibrationPair]:
    """The pairs of an LQ folder and a GT folder matched by name, optionally only ``names``.

    Parameters
    ----------
    lq_dir, gt_dir : str or Path
        Folders of LQ inputs and ground truths (same file stems).
    names : sequence of str, optional
        Keep only these stems (e.g. a training run's training fields); every one must have a pair.

    Returns
    -------
    list of CalibrationPair
        Sorted by name.

    Raises
    ------
    TuningError
        No pair, or a requested name without a pair (named).
    """
    from decongan.engine.evaluate.compare import ComparisonError
    from decongan.engine.evaluate.dataset import match_dataset

    try:
        fields, _ = match_dataset(lq_dir, gt_dir=gt_dir)
    except ComparisonError as err:
        raise TuningError(str(err), path=lq_dir) from err
    by_name = {f.name: f for f in fields}
    if names is not None:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise TuningError(f"calibration fields {', '.join(missing)} have no LQ/GT pair in {lq_dir} and {gt_dir}",
                              path=lq_dir, value=missing)
        by_name = {n: by_name[n] for n in names}
    return [calibration_pair(n, f.lq, f.gt) for n, f in sorted(by_name.items())]  # type: ignore[arg-type]


@dataclass
class GridPoint:
    """One parameter combination and its scores (one per calibration pair, in pair order)."""

    parameters: dict[str, float]
    scores: list[float]

    @property
    def median(self) -> float:
        """Median score over the pairs."""
        return float(statistics.median(self.scores))


@dataclass
class TunedBaseline:
    """A baseline with its chosen parameters, how they were chosen and (when tuned) every grid point.

    Attributes
    ----------
    spec : BaselineSpec
    source : {"calibration", "default", "discrepancy"}
        Key of :data:`SOURCES`.
    score : float or None
        Median metric of the chosen point on the calibration pairs.
    grid : list of GridPoint
    """

    spec: BaselineSpec
    source: str
    score: float | None = None
    grid: list[GridPoint] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Column title: the spec's label, with the rule or ``(default)`` when not tuned."""
        if self.source == "discrepancy":
            shown = " ".join(w for w in self.spec.label.split() if not w.startswith("iterations="))
            return f"{shown} (discrepancy stop)"
        return self.spec.label + (" (default)" if self.source == "default" else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        data: dict[str, Any] = {"name": self.label, **self.spec.as_dict(), "source": self.source,
                                "how": SOURCES[self.source], "score": self.score}
        if self.source == "discrepancy":
            from decongan.engine.evaluate.discrepancy import DISCREPANCY_GRID

            data["rule"] = {"iterations": "discrepancy", "grid": list(DISCREPANCY_GRID)}
        if self.grid:
            data["grid"] = [{"parameters": p.parameters, "scores": p.scores, "median": p.median} for p in self.grid]
        return data


@dataclass
class TuningResult:
    """What :func:`iter_tune` or :func:`default_tuning` returns, and what ``tuned.json`` holds."""

    metric: str
    pairs: list[CalibrationPair]
    baselines: list[TunedBaseline]
    psf: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The ``tuned.json`` content."""
        return {"format": TUNED_FORMAT, "version": TUNED_VERSION, "metric": self.metric, "aggregate": "median",
                "calibration": [p.as_dict() for p in self.pairs], "psf": self.psf,
                "baselines": [b.as_dict() for b in self.baselines], "notes": self.notes}

    def write(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``tuned.json`` atomically (refusing an existing file unless ``overwrite``).

        Parameters
        ----------
        path : str or Path
            Destination.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        Path
        """
        from decongan.engine.outputs import check_new_file, write_json_atomic

        dest = check_new_file(path, overwrite=overwrite, label="the tuned-baselines file")
        return write_json_atomic(dest, self.as_dict())


def load_tuned(path: str | Path) -> TuningResult:
    """Read a ``tuned.json`` written by :meth:`TuningResult.write`.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    TuningResult
        Grid points are not read back (only what running the baselines needs).

    Raises
    ------
    TuningError
        Missing file, not JSON, another format or version, an invalid baseline (all naming the file).
    """
    import json

    from decongan.engine.optics.classical import BaselineError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TuningError(f"{path}: file not found; write it with the tuning step first", path=path) from None
    except (OSError, ValueError) as err:
        raise TuningError(f"{path}: not a readable JSON file ({err})", path=path) from err
    if not isinstance(data, dict) or data.get("format") != TUNED_FORMAT or data.get("version") != TUNED_VERSION:
        raise TuningError(f"{path}: not a tuned-baselines file (format {TUNED_FORMAT!r} version {TUNED_VERSION})",
                          path=path)
    try:
        pairs = [CalibrationPair(p["name"], Path(p["lq"]), Path(p["gt"]), p["lq_sha256"], p["gt_sha256"])
                 for p in data.get("calibration") or []]
        baselines = []
        for entry in data["baselines"]:
            source = entry.get("source")
            if source not in SOURCES:
                raise TuningError(f"{path}: baseline {entry.get('name')!r} has an unknown source {source!r}", path=path)
            baselines.append(TunedBaseline(BaselineSpec.from_dict(entry), source, entry.get("score")))
    except (KeyError, TypeError, BaselineError) as err:
        raise TuningError(f"{path}: invalid tuned-baselines file ({err})", path=path) from err
    if not baselines:
        raise TuningError(f"{path}: lists no baseline", path=path)
    return TuningResult(str(data.get("metric")), pairs, baselines, psf=data.get("psf"), notes=list(data.get("notes") or []))


def calibration_overlap(tuned: TuningResult, lq_files: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """The evaluated LQ files that are calibration files of ``tuned`` (same SHA-256 of the bytes).

    Parameters
    ----------
    tuned : TuningResult
    lq_files : sequence of str or Path
        The LQ inputs a comparison evaluates.

    Returns
    -------
    list of (Path, str)
        Each evaluated file found among the calibration files, with the calibration field's name.
    """
    from decongan.engine.evaluate.batch import sha256_file

    known = {p.lq_sha256: p.name for p in tuned.pairs}
    if not known:
        return []
    found = []
    for path in lq_files:
        name = known.get(sha256_file(path))
        if name is not None:
            found.append((Path(path), name))
    return found


# ---------------------------------------------------------------------------------------------
# the grid search
# ---------------------------------------------------------------------------------------------
def grid_points(spec: BaselineSpec, grids: Mapping[str, Sequence[float]] | None = None) -> list[BaselineSpec]:
    """Every parameter combination a tuning of ``spec``'s method tries.

    Parameters
    ----------
    spec : BaselineSpec
        Its parameters are the values of the parameters that are not searched.
    grids : mapping of str to sequence of float, optional
        Parameter name -> values, replacing the method's own grid for that parameter.

    Returns
    -------
    list of BaselineSpec
        The product over parameters with more than one value, first parameter varying slowest.
    """
    grids = dict(grids or {})
    entry = spec.entry
    unknown = sorted(set(grids) - {p.name for p in entry.parameters})
    if unknown:
        raise TuningError(f"{spec.method} has no parameter {', '.join(unknown)}; it has "
                          f"{', '.join(p.name for p in entry.parameters)}", value=unknown)
    axes = [(p.name, tuple(grids.get(p.name, p.grid))) for p in entry.parameters]
    searched = [(n, v) for n, v in axes if len(v) > 1 or n in grids]
    return [spec.with_parameters(**dict(zip([n for n, _ in searched], combo, strict=True)))
            for combo in itertools.product(*[v for _, v in searched])]


def _read_pair(pair: CalibrationPair, pixel_size_um: float | None) -> tuple[MicroscopyImage, np.ndarray, np.ndarray]:
    lq = read_image(pair.lq, pixel_size_um=pixel_size_um)
    gt = read_image(pair.gt, pixel_size_um=pixel_size_um)
    for image, path in ((lq, pair.lq), (gt, pair.gt)):
        if image.axes not in ("YX", "ZYX"):
            raise TuningError(f"{path}: calibration images must be one channel, one time point (axes YX or ZYX), "
                              f"got {image.axes}; split channels and time points into separate files", path=path)
    if lq.data.shape != gt.data.shape:
        raise TuningError(f"calibration pair {pair.name}: LQ {pair.lq} is {lq.data.shape} but the ground truth "
                          f"{pair.gt} is {gt.data.shape}; tuning needs both on the same grid (register them first)",
                          path=pair.lq)
    return lq, lq.data.astype(np.float32), gt.data.astype(np.float32)


def _better(metric: str) -> Callable[[float, float], bool]:
    from decongan.engine.evaluate.compare import HIGHER_IS_BETTER

    higher = HIGHER_IS_BETTER[metric]
    return (lambda a, b: a > b) if higher else (lambda a, b: a < b)


def iter_tune(
    pairs: Sequence[CalibrationPair],
    methods: Sequence[str],
    *,
    psf_for: Callable[[MicroscopyImage], np.ndarray] | None = None,
    metric: str = "ssim",
    grids: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    settings: DeconvolutionSettings = DEFAULT_SETTINGS,
    pixel_size_um: float | None = None,
) -> Generator[Progress, None, TuningResult]:
    """Tune every baseline in ``methods`` on ``pairs``; yields a Progress per grid point.

    Parameters
    ----------
    pairs : sequence of CalibrationPair
        Calibration fields (not the fields to be evaluated), LQ and GT on the same grid.
    methods : sequence of str
        Names from :data:`decongan.engine.optics.classical.BASELINES`.
    psf_for : callable, optional
        ``psf_for(lq_image) -> PSF`` on the image's grid; needed by deconvolution baselines.
    metric : {"ssim", "psnr", "nrmse", "mse"}
        The report's reference metric to optimise (median over pairs).
    grids : mapping, optional
        Method -> {parameter -> values} replacing the methods' own grids.
    settings : DeconvolutionSettings
        RL settings other than iterations / TV weight.
    pixel_size_um : float, optional
        Calibration override for the pairs (micrometres), used by ``psf_for``.

    Returns
    -------
    TuningResult

    Raises
    ------
    TuningError
        No pairs, an unknown metric or method, a deconvolution baseline without a PSF, pairs of different
        shapes.
    """
    from decongan.engine.metrics.reference import reference_metrics

    if not pairs:
        raise TuningError("tuning needs at least one calibration pair (LQ and ground truth)")
    if metric not in TUNING_METRICS:
        raise TuningError(f"metric must be one of {', '.join(TUNING_METRICS)}, got {metric!r}", value=metric)
    specs = [BaselineSpec(m) if m in BASELINES else None for m in methods]
    unknown = [m for m, s in zip(methods, specs, strict=True) if s is None]
    if unknown:
        raise TuningError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINES)}", value=unknown)
    if psf_for is None and any(s.entry.needs_psf for s in specs if s is not None):
        raise TuningError("deconvolution baselines need the PSF of the LQ system; give one or tune only the "
                          "denoisers (gaussian, nlm, tv)")
    loaded = [_read_pair(p, pixel_size_um) for p in pairs]
    psfs = [psf_for(lq) if psf_for is not None else None for lq, _, _ in loaded]
    candidates = [(s, grid_points(s, (grids or {}).get(s.method))) for s in specs if s is not None]
    total = sum(len(points) for _, points in candidates)
    better = _better(metric)
    done = 0
    tuned: list[TunedBaseline] = []
    notes: list[str] = []
    for spec, points in candidates:
        grid: list[GridPoint] = []
        for point in points:
            scores = []
            for (_, lq, gt), psf in zip(loaded, psfs, strict=True):
                restored = restore_array(point, lq, psf if point.entry.needs_psf else None, settings=settings)
                scores.append(float(reference_metrics(prediction=restored, reference=gt)[metric]))
            grid.append(GridPoint(dict(point.parameters), scores))
            done += 1
            yield Progress(done, total, f"{point.label}: median {metric} {grid[-1].median:.4f}")
        best = grid[0]
        for candidate in grid[1:]:
            if better(candidate.median, best.median):
                best = candidate
        tuned.append(TunedBaseline(spec.with_parameters(**best.parameters), "calibration", best.median, grid))
        notes.extend(_edge_notes(spec.method, grid, best))
    return TuningResult(metric, list(pairs), tuned, notes=notes)


def _edge_notes(method: str, grid: Sequence[GridPoint], best: GridPoint) -> list[str]:
    """A note for every searched parameter whose chosen value is the smallest or largest value tried
    (unless it is the smallest value the parameter allows, such as 1 iteration)."""
    notes = []
    for name, value in best.parameters.items():
        tried = sorted({p.parameters[name] for p in grid})
        lowest = BASELINES[method].parameter(name)
        at_limit = lowest.integer and value == lowest.low
        if len(tried) > 1 and value in (tried[0], tried[-1]) and not at_limit:
            notes.append(f"{method}: {name}={value:g} is at the edge of the values tried ({tried[0]:g} to {tried[-1]:g}); "
                         "the best value may lie beyond it: widen that parameter's grid")
    return notes


def tune(pairs: Sequence[CalibrationPair], methods: Sequence[str], **options: Any) -> TuningResult:
    """:func:`iter_tune` run to the end.

    Parameters
    ----------
    pairs : sequence of CalibrationPair
    methods : sequence of str
    **options
        ``psf_for``, ``metric``, ``grids``, ``settings``, ``pixel_size_um`` as in :func:`iter_tune`.

    Returns
    -------
    TuningResult
    """
    return drain(iter_tune(pairs, methods, **options))


# ---------------------------------------------------------------------------------------------
# no reference: stated defaults, and RL stopped by the discrepancy principle
# ---------------------------------------------------------------------------------------------
def default_tuning(methods: Sequence[str]) -> TuningResult:
    """Baselines without calibration pairs: stated defaults, RL iterations by the discrepancy rule.

    Parameters
    ----------
    methods : sequence of str
        Names from :data:`decongan.engine.optics.classical.BASELINES`.

    Returns
    -------
    TuningResult
        Source ``"discrepancy"`` for every baseline with RL iterations, ``"default"`` for the others.
    """
    baselines = []
    for method in methods:
        spec = BaselineSpec(method)
        source = "discrepancy" if "iterations" in spec.parameters else "default"
        baselines.append(TunedBaseline(spec, source))
    return TuningResult("none", [], baselines,
                        notes=["no calibration pairs: denoisers use their stated defaults; RL iterations are chosen "
                               "per image by the discrepancy principle (chi^2 per pixel <= 1 under a Poisson-Gaussian "
                               "noise model estimated from the image)"])


__all__ = [
    "SOURCES",
    "TUNED_FORMAT",
    "TUNING_METRICS",
    "CalibrationPair",
    "GridPoint",
    "TunedBaseline",
    "TuningError",
    "TuningResult",
    "calibration_overlap",
    "calibration_pair",
    "calibration_pairs",
    "default_tuning",
    "grid_points",
    "iter_tune",
    "load_tuned",
    "tune",
]
