"""Input domain of a trained model: what its training inputs looked like, and whether an image does.

A learned model is only trustworthy on inputs like the ones it learned from. This module records
the training inputs' domain with the run and warns, before a result is trusted, when an image lies
outside it.

The record (``RUN_DIR/domain.json``, written when training starts)
------------------------------------------------------------------
Per channel, over every training input plane (LQ; validation planes excluded):

* ``raw``: intensity statistics in the images' own units (percentiles 0.1, 1, 50, 99, 99.8, 99.9,
  mean, standard deviation; planes subsampled to at most 2**20 pixels each, as the normalisation does);
* ``network``: the same statistics in network units, i.e. after the run's normalisation
  (:mod:`engine.learn.normalization`), which is what the generator actually saw;
* ``log_histogram``: a 32-bin histogram of ``log10(1 + max(x - p1, 0))`` of the raw values (their
  shape on a log scale; fractions summing to 1);
* the training pixel size (um) and the normalisation mode.

Runs without the record (older runs, the bundled model in ``resources/models/``) get one *derived*
from ``config.json``: the pixel size and, in ``dataset`` mode, the pooled LQ percentiles
``p_low``/``p_high`` (network units 0 and 1); the record says it was derived. In ``per_image`` mode a
run stores nothing about its inputs' intensities, so intensity is then not checked (and a note says so).

The check (:func:`check_domain`)
--------------------------------
Warnings (each names the quantity, the image's value and the training value):

* **pixel size**: image / training pixel size outside [0.8, 1.25] (``PIXEL_SIZE_RATIO``); an image
  or a run without a pixel size cannot be compared (a warning too: the domain is then unknown);
* **intensity outside the training range**: the fraction of the image's pixels (in network units,
  normalised exactly as inference will) outside the training inputs' widest recorded range
  ([p0.1, p99.9] measured, [p_low, p_high] derived) exceeds ``max(10 %, 5 x`` the fraction the
  training data itself has there``)``;
* **dynamic range** (dataset normalisation only): the image's ``p99.8 - p1`` in network units is
  below 1/4 of the smallest or above 4x the largest of a training plane (derived records: of the
  pooled training inputs, 1 by construction). Sparse fields have small ranges, so only a range far
  below every training plane's is warned about.

Why these limits: on the bundled nucleus model the 45 planes of its own stack (training planes and the
held-out middle planes alike) have at most 6 % of their pixels outside the training [p1, p99.8] range
and spans 0.5-1.5, so none is warned about; an FMD confocal frame (8-bit, 0..255, vs a 16-bit
widefield trained on 631..4579) has 100 % of its pixels below the training range and a span of 0.04.
tests/engine/test_domain.py checks both, and the command line prints the warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from decongan.engine.errors import DeconganError
from decongan.engine.io import MicroscopyImage
from decongan.engine.learn.checkpoint.layout import DOMAIN_NAME, RunConfig, load_run_config
from decongan.engine.learn.normalization import ChannelNorm, NormalizationConfig
from decongan.engine.outputs import write_text_atomic

DOMAIN_FORMAT = "decongan-domain/1"
#: Accepted image / training pixel-size ratio.
PIXEL_SIZE_RATIO = (0.8, 1.25)
#: Percentiles recorded (%).
PERCENTILES = (0.1, 1.0, 50.0, 99.0, 99.8, 99.9)
#: Warn when more than this fraction of an image's pixels lies outside the training range ...
MIN_OUTSIDE_FRACTION = 0.10
#: ... or more than this many times the fraction of the training data itself outside it.
OUTSIDE_FACTOR = 5.0
#: Accepted image / training dynamic-range ratio (dataset normalisation).
SPAN_RATIO = (0.25, 4.0)
N_HISTOGRAM_BINS = 32
_MAX_SAMPLES_PER_PLANE = 1 << 20
#: At most this many pixels of all training planes together enter a run's record (strided per plane).
_MAX_SAMPLES_PER_RUN = 1 << 23


class DomainError(DeconganError, ValueError):
    """A domain record cannot be read or computed."""


class IntensityStats(BaseModel):
    """Pooled intensity statistics of a set of planes (one unit: raw or network)."""

    model_config = ConfigDict(extra="forbid")

    percentiles: dict[str, float] = Field(description="percentile (%, as text) -> value")
    mean: float
    std: float


class ChannelDomain(BaseModel):
    """The training inputs of one channel."""

    model_config = ConfigDict(extra="forbid")

    channel: int
    n_planes: int
    raw: IntensityStats | None = None
    network: IntensityStats | None = None
    log_histogram: list[float] = Field(default_factory=list)
    log_histogram_edges: list[float] = Field(default_factory=list)
    #: network-unit range [low, high] the check compares with, and the training's own fraction outside it
    reference_range: tuple[float, float] | None = None
    reference_outside: float | None = None
    reference_percentiles: tuple[float, float] | None = None
    #: smallest and largest dynamic range (p99.8 - p1, network units) of one training plane
    plane_spans: tuple[float, float] | None = None


class TrainingDomain(BaseModel):
    """The input domain of a trained model (``RUN_DIR/domain.json``).

    Attributes
    ----------
    source : str
        How the record was made: measured on the training inputs, or derived from ``config.json``.
    pixel_size_um : float or None
        Pixel size of the training inputs, micrometres.
    normalization_mode : str
        ``"dataset"`` or ``"per_image"`` (see :mod:`engine.learn.normalization`).
    channels : list of ChannelDomain
    """

    model_config = ConfigDict(extra="forbid")

    format: str = DOMAIN_FORMAT
    source: str
    derived: bool = False
    pixel_size_um: float | None = None
    normalization_mode: str = "dataset"
    channels: list[ChannelDomain] = Field(default_factory=list)


def _strided(plane: np.ndarray, budget: int) -> np.ndarray:
    """``plane`` flattened, every k-th pixel so that at most ``budget`` remain (the plane itself when it fits)."""
    flat = np.asarray(plane).reshape(-1)
    return flat if flat.size <= budget else flat[:: int(np.ceil(flat.size / budget))]


def _samples(planes: Iterable[np.ndarray]) -> np.ndarray:
    parts = []
    for plane in planes:
        flat = np.asarray(plane, dtype=np.float64).reshape(-1)
        if flat.size > _MAX_SAMPLES_PER_PLANE:
            flat = flat[:: int(np.ceil(flat.size / _MAX_SAMPLES_PER_PLANE))]
        parts.append(flat[np.isfinite(flat)])
    return np.concatenate(parts) if parts else np.zeros(0)


def _stats(values: np.ndarray) -> IntensityStats:
    q = np.percentile(values, PERCENTILES)
    return IntensityStats(percentiles={f"{p:g}": float(v) for p, v in zip(PERCENTILES, q, strict=True)},
                          mean=float(values.mean()), std=float(values.std()))


def _span(network: np.ndarray) -> float:
    low, high = np.percentile(network, [1.0, 99.8])
    return float(high - low)


def measure_domain(
    planes: Sequence[tuple[int, np.ndarray, ChannelNorm]],
    *,
    normalization: NormalizationConfig,
    pixel_size_um: float | None,
) -> TrainingDomain:
    """Record the domain of a model's training inputs.

    Parameters
    ----------
    planes : sequence of (channel, plane, norm)
        Every training input plane: its channel index, its raw pixels (a 2-D (Y, X) plane or a
        flattened, evenly strided subsample of it; the images' own intensity units) and the
        :class:`ChannelNorm` that normalised it for training.
    normalization : NormalizationConfig
        The run's normalisation (its mode is recorded).
    pixel_size_um : float or None
        Pixel size of the training inputs, micrometres.

    Returns
    -------
    TrainingDomain

    Raises
    ------
    DomainError
        When there is no plane.
    """
    if not planes:
        raise DomainError("no training input plane to record the input domain from")
    channels = []
    for c in sorted({int(ch) for ch, _, _ in planes}):
        mine = [(plane, norm) for ch, plane, norm in planes if ch == c]
        raw = _samples(plane for plane, _ in mine)
        network = _samples(norm.normalize(plane) for plane, norm in mine)
        if raw.size == 0:
            raise DomainError(f"the training inputs of channel {c} hold no finite pixel", value=c)
        raw_stats, net_stats = _stats(raw), _stats(network)
        base = raw_stats.percentiles["1"]
        logs = np.log10(1.0 + np.maximum(raw - base, 0.0))
        counts, edges = np.histogram(logs, bins=N_HISTOGRAM_BINS)
        low, high = net_stats.percentiles["0.1"], net_stats.percentiles["99.9"]
        spans = [_span(norm.normalize(plane)) for plane, norm in mine]
        channels.append(ChannelDomain(
            channel=c, n_planes=len(mine), raw=raw_stats, network=net_stats,
            log_histogram=[float(v) for v in counts / counts.sum()], log_histogram_edges=[float(v) for v in edges],
            reference_range=(low, high), reference_outside=float(np.mean((network < low) | (network > high))),
            reference_percentiles=(0.1, 99.9), plane_spans=(min(spans), max(spans))))
    n = sum(ch.n_planes for ch in channels)
    return TrainingDomain(source=f"measured on the {n} training input plane(s)", derived=False,
                          pixel_size_um=pixel_size_um, normalization_mode=normalization.mode, channels=channels)


def domain_path(run_dir: str | Path) -> Path:
    """The path of a run's domain record, ``RUN_DIR/domain.json`` (it may not exist).

    Parameters
    ----------
    run_dir : str or Path
        The run folder.

    Returns
    -------
    Path
    """
    return Path(run_dir) / DOMAIN_NAME


def save_domain(run_dir: str | Path, domain: TrainingDomain) -> Path:
    """Write ``RUN_DIR/domain.json`` atomically (the run's own file).

    Parameters
    ----------
    run_dir : str or Path
        The run folder; it must exist.
    domain : TrainingDomain
        The record (:func:`measure_domain`).

    Returns
    -------
    Path
        The written file.
    """
    return write_text_atomic(domain_path(run_dir), domain.model_dump_json(indent=2) + "\n")


def record_training_domain(run_dir: str | Path, data: Any) -> Path:
    """Measure and save the input domain of a run's prepared training data.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (holding ``config.json``).
    data : TrainingData
        :func:`engine.learn.training.data.prepare_training_data`'s result: its training samples
        carry the normalised inputs and the parameters that normalised them.

    Returns
    -------
    Path
        The written ``domain.json``.
    """
    samples = [s for s in data.train if s.lq is not None and s.lq_norm is not None]
    # strided subsamples, so the record never holds a second copy of a large training set
    stride_for = max(1, _MAX_SAMPLES_PER_RUN // max(1, len(samples)))
    planes = [(s.channel, s.lq_norm.denormalize(_strided(s.lq, stride_for)), s.lq_norm) for s in samples]
    if planes:
        domain = measure_domain(planes, normalization=data.normalization, pixel_size_um=data.pixel_size_um)
    else:  # LQ made on the fly from the targets: no recorded input plane
        domain = TrainingDomain(source="no training input planes (LQ synthesised on the fly); intensity not recorded",
                                derived=True, pixel_size_um=data.pixel_size_um,
                                normalization_mode=data.normalization.mode)
    return save_domain(run_dir, domain)


def derive_domain(config: RunConfig) -> TrainingDomain:
    """A domain record from what ``config.json`` records (runs made before ``domain.json`` existed).

    Parameters
    ----------
    config : RunConfig
        The run's configuration.

    Returns
    -------
    TrainingDomain
        Pixel size, and in ``dataset`` mode the LQ percentile range (network units 0..1) per channel.
    """
    norm = config.normalization
    channels = []
    if norm.mode == "dataset":
        for c, params in enumerate(norm.lq):
            expected = (params.p_low + 100.0 - params.p_high) / 100.0
            channels.append(ChannelDomain(channel=c, n_planes=int(config.data.n_train_planes),
                                          reference_range=(0.0, 1.0), reference_outside=expected,
                                          reference_percentiles=(params.p_low, params.p_high),
                                          plane_spans=(1.0, 1.0)))
        what = "the pixel size and the LQ normalisation percentiles"
    else:
        what = "the pixel size only (per-image normalisation stores no intensity statistics)"
    return TrainingDomain(source=f"derived from config.json: {what}", derived=True,
                          pixel_size_um=config.pixel_size_um, normalization_mode=norm.mode, channels=channels)


def load_domain(run_dir: str | Path, config: RunConfig | None = None) -> TrainingDomain:
    """The run's domain record: ``domain.json`` when present, else derived from ``config.json``.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    config : RunConfig, optional
        The run's configuration, when already loaded.

    Returns
    -------
    TrainingDomain

    Raises
    ------
    DomainError
        When ``domain.json`` exists but cannot be read.
    """
    path = domain_path(run_dir)
    if path.is_file():
        try:
            return TrainingDomain.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as err:
            raise DomainError(f"{path}: invalid domain record ({err}); delete it to fall back to the run's "
                              "configuration", path=path) from err
    return derive_domain(config if config is not None else load_run_config(run_dir))


class DomainCheck(BaseModel):
    """Result of :func:`check_domain`: warnings (outside the training domain) and notes (what was not checked)."""

    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    measurements: dict[str, Any] = Field(default_factory=dict)


def _channel_planes(image: MicroscopyImage | np.ndarray) -> dict[int, list[np.ndarray]]:
    if isinstance(image, MicroscopyImage):
        out: dict[int, list[np.ndarray]] = {}
        for where, plane in image.iter_planes():
            out.setdefault(int(where.get("c", 0)), []).append(plane)
        return out
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise DomainError(f"an image of shape {array.shape} was given; a 2-D plane or a (Z, Y, X) stack is needed "
                          "(or a read image with its axes)", value=array.shape)
    return {0: [array] if array.ndim == 2 else list(array)}


def check_domain(run: Any, image: MicroscopyImage | np.ndarray, pixel_size_um: float | None = None) -> DomainCheck:
    """Warn when ``image`` lies outside the input domain a model was trained on (module docstring).

    Parameters
    ----------
    run : str, Path or LoadedModel
        The run folder, or a loaded model (anything with ``run_dir`` and ``config``).
    image : MicroscopyImage or ndarray, shape (Y, X) or (Z, Y, X)
        The image about to be restored, in its own intensity units.
    pixel_size_um : float, optional
        Its pixel size, micrometres. Default: the image's own (``MicroscopyImage.pixel_size_um``).

    Returns
    -------
    DomainCheck
        ``warnings`` (empty when the image looks like the training inputs), ``notes`` (how the domain
        was known, what could not be checked) and the ``measurements`` behind them.
    """
    run_dir = getattr(run, "run_dir", None)
    config = getattr(run, "config", None)
    if run_dir is None and config is None:
        if not isinstance(run, (str, Path)):
            raise DomainError("this model carries no run configuration, so its training domain is unknown; "
                              "use the run folder it was trained in", value=type(run).__name__)
        run_dir = Path(run)
    if config is None:
        config = load_run_config(run_dir)
    domain = load_domain(run_dir, config) if run_dir is not None else derive_domain(config)
    if pixel_size_um is None and isinstance(image, MicroscopyImage):
        pixel_size_um = image.pixel_size_um
    result = DomainCheck()
    if domain.derived:
        result.notes.append(f"the model's training domain is {domain.source}")

    trained_px = domain.pixel_size_um
    if trained_px and pixel_size_um:
        ratio = float(pixel_size_um) / float(trained_px)
        result.measurements["pixel_size_ratio"] = ratio
        if not PIXEL_SIZE_RATIO[0] <= ratio <= PIXEL_SIZE_RATIO[1]:
            result.warnings.append(
                f"pixel size {pixel_size_um:.4g} um is {ratio:.2f}x the training pixel size {trained_px:.4g} um "
                f"(outside {PIXEL_SIZE_RATIO[0]}-{PIXEL_SIZE_RATIO[1]}x): the objects' size in pixels, and the "
                "optics, differ from what the model learned")
    elif trained_px:
        result.warnings.append(f"the image states no pixel size, so it cannot be compared with the training pixel "
                               f"size {trained_px:.4g} um; give the pixel size")
    elif pixel_size_um:
        result.warnings.append("the model records no training pixel size, so the image's pixel size "
                               f"{pixel_size_um:.4g} um cannot be compared with it")

    norm = config.normalization
    if not domain.channels:
        why = ("a per-image normalised run made before domain records stores no statistics of its training inputs"
               if norm.mode == "per_image" else "the run records no statistics of its training inputs")
        result.notes.append(f"intensity not checked: {why}")
    for c, planes in _channel_planes(image).items():
        if not domain.channels:
            break
        trained = domain.channels[c] if c < len(domain.channels) else domain.channels[0]
        label = f"channel {c}: " if c > 0 or len(domain.channels) > 1 else ""
        network = _samples(norm.input_norm(plane, channel=c).normalize(plane) for plane in planes)
        if network.size == 0 or trained.reference_range is None:
            continue
        low, high = trained.reference_range
        below, above = float(np.mean(network < low)), float(np.mean(network > high))
        outside = below + above
        expected = float(trained.reference_outside or 0.0)
        limit = max(MIN_OUTSIDE_FRACTION, OUTSIDE_FACTOR * expected)
        result.measurements[f"channel {c} outside fraction"] = outside
        if outside > limit:
            p_lo, p_hi = trained.reference_percentiles or (0.0, 100.0)
            result.warnings.append(
                f"{label}{100 * outside:.0f} % of the image's pixels ({100 * below:.0f} % below, {100 * above:.0f} % "
                f"above) lie outside the training inputs' {p_lo:g}-{p_hi:g} percentile range, where the training "
                f"data has {100 * expected:.1f} % (warning above {100 * limit:.0f} %): its intensities are unlike "
                "the training data's")
        if norm.mode == "dataset" and trained.plane_spans is not None:
            span = _span(network)
            smallest, largest = trained.plane_spans
            result.measurements[f"channel {c} span"] = span
            if not SPAN_RATIO[0] * smallest <= span <= SPAN_RATIO[1] * largest:
                what = "pooled training inputs'" if trained.plane_spans == (1.0, 1.0) else "training planes' range of"
                result.warnings.append(
                    f"{label}the image's dynamic range (1-99.8 percentile) is {span:.2f} in network units, against "
                    f"the {what} {smallest:.2f}-{largest:.2f} (warning outside {SPAN_RATIO[0]}x-{SPAN_RATIO[1]}x): "
                    "its contrast is unlike the training data's")
    return result


__all__ = ["DOMAIN_NAME", "ChannelDomain", "DomainCheck", "DomainError", "IntensityStats", "TrainingDomain",
           "check_domain", "derive_domain", "domain_path", "load_domain", "measure_domain", "record_training_domain",
           "save_domain"]
