"""A trained generator applied to an OME-Zarr image region by region, written as OME-Zarr, never whole.

Each lateral region (:func:`decongan.engine.optics.tile_plan.plan_lateral_tiles`: a ``region``-pixel
core, read with a halo of the generator's receptive-field radius rounded up to its stride) goes
through the same tiler as whole-image prediction (:func:`decongan.engine.learn.tiling.iter_tiled`
with the same tile, overlap and stride), and its core is written to the output store. Because a
pixel of a convolutional generator depends only on the input within its receptive-field radius, and
the region origins are multiples of the stride, the result equals whole-image prediction up to
rounding (generators with whole-input statistics are labelled as not exact).

Normalisation is made global first: with ``per_image`` normalisation the percentiles come from the
same strided sample of the whole plane that whole-image prediction uses (read band by band), so the
regions share one affine map. Pixel-size resampling is not done here: a level whose pixel size
differs from the training pixel size is refused, naming the levels that would match better.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.learn.inference import (
    PIXEL_SIZE_TOLERANCE,
    LoadedModel,
    generator_multiple,
    has_global_context,
    load_model,
    make_tile_function,
    receptive_field_radius,
)
from decongan.engine.learn.normalization import _MAX_SAMPLES_PER_IMAGE, ChannelNorm
from decongan.engine.learn.tiling import iter_tiled, overlap_for_radius
from decongan.engine.optics.tile_plan import plan_lateral_tiles
from decongan.engine.progress import Progress
from decongan.engine.provenance import Provenance, software_versions
from decongan.engine.zarr_io import OmeZarrImage, OmeZarrWriter, check_zarr_output

__all__ = ["ZarrPredictionError", "iter_predict_zarr", "plane_sample"]


class ZarrPredictionError(DeconganError, ValueError):
    """An OME-Zarr image cannot be restored region by region as asked (pixel size, axes)."""


@dataclass
class ZarrPrediction:
    """What :func:`iter_predict_zarr` wrote: the output folder and its provenance."""

    path: Path
    provenance: Provenance


def plane_sample(source: OmeZarrImage, lead: tuple[int, ...], *, band: int = 1024) -> np.ndarray:
    """The strided pixel sample whole-image normalisation takes from one plane, read band by band.

    Parameters
    ----------
    source : OmeZarrImage
        The level.
    lead : tuple of int
        Index of the plane along the canonical non-YX axes.
    band : int
        Rows read at once.

    Returns
    -------
    ndarray, float64
        ``plane.reshape(-1)[::k]`` with ``k = ceil(n / 2**20)`` (the whole plane when smaller), as
        :func:`decongan.engine.learn.normalization.percentile_norm` takes it.
    """
    ny, nx = source.yx_shape
    n = ny * nx
    step = int(np.ceil(n / _MAX_SAMPLES_PER_IMAGE)) if n > _MAX_SAMPLES_PER_IMAGE else 1
    parts = []
    for y0 in range(0, ny, band):
        y1 = min(ny, y0 + band)
        rows = source.read_yx(slice(y0, y1), slice(0, nx))[lead].reshape(-1)
        first = (-(y0 * nx)) % step  # first flat index >= y0 * nx that is a multiple of step
        parts.append(rows[first::step].astype(np.float64))
    return np.concatenate(parts)


def iter_predict_zarr(
    model: LoadedModel | str | os.PathLike[str],
    source: OmeZarrImage,
    out: str | os.PathLike[str],
    *,
    region: int = 512,
    tile: int = 0,
    overlap: int | str = "auto",
    device: str = "auto",
    batch: int = 1,
    levels: int = 1,
    ngff_version: str = "0.4",
    overwrite: bool = False,
) -> Generator[Progress, None, ZarrPrediction]:
    """Restore an OME-Zarr level with a trained generator region by region into a float32 OME-Zarr.

    Parameters
    ----------
    model : LoadedModel or path
        A loaded model or a run folder.
    source : OmeZarrImage
        The input level, any of t, c, z with y, x (each plane restored on its own).
    out : path
        Output ``NAME.ome.zarr`` folder (checked before any computation).
    region : int
        Core edge of a region, input pixels (a multiple of the generator's stride); the output's chunk
        edge is ``region * scale``.
    tile, overlap, batch
        The tiler's settings inside a region, as whole-image prediction (``tile=0``: the region with its
        halo in one pass; ``overlap="auto"``: from the measured receptive field).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    levels : int
        Pyramid levels of the output.
    ngff_version : str
        ``"0.4"`` or ``"0.5"``.
    overwrite : bool
        Replace an existing OME-Zarr output.

    Yields
    ------
    Progress
        One event per region of every plane.

    Returns
    -------
    ZarrPrediction
        The output folder and the provenance (region, halo, tile, overlap, normalisation per plane).

    Raises
    ------
    ZarrPredictionError
        The level's pixel size differs from the training pixel size (the message names better levels),
        or ``region`` is not a multiple of the generator's stride.
    ZarrWriteError
        The output exists (without ``overwrite``) or is not an OME-Zarr image.
    """
    from decongan.engine.device import resolve_device

    out = check_zarr_output(out, overwrite=overwrite, label="the output", allow="allow overwriting")
    dev = resolve_device(device)
    if not isinstance(model, LoadedModel):
        model = load_model(model, device=dev)
    generator = model.generator.to(dev).eval()
    scale, norm, multiple = model.scale, model.normalization, generator_multiple(generator)
    train_px = model.config.pixel_size_um if model.config is not None else None
    notes: list[str] = []
    if source.pixel_size_um and train_px and abs(source.pixel_size_um / train_px - 1.0) > PIXEL_SIZE_TOLERANCE:
        raise ZarrPredictionError(
            f"{source.path}: level {source.level} has pixels of {source.pixel_size_um:g} um but the model was trained "
            f"at {train_px:g} um; region-by-region prediction does not resample: choose the scale level closest "
            f"to {train_px:g} um (level k has {source.pixel_size_um:g} x 2^(k - {source.level}) um) or resample "
            "the image first", path=source.path)
    if train_px and not source.pixel_size_um:
        notes.append(f"the input states no pixel size; assumed equal to the training pixel size {train_px:g} um")
    if region % multiple:
        raise ZarrPredictionError(f"the region edge {region} px must be a multiple of the generator's stride "
                                  f"{multiple} px", value=region)
    radius = receptive_field_radius(generator, device=dev)
    if overlap == "auto":
        overlap = overlap_for_radius(radius, multiple=multiple) if radius is not None else max(multiple, tile // 4)
        if radius is not None and 0 < tile < 2 * overlap:
            tile = -(-2 * overlap // multiple) * multiple
    overlap = int(overlap)
    halo = -(-(radius if radius is not None else overlap) // multiple) * multiple
    if radius is None or has_global_context(generator):
        notes.append("this generator uses whole-input statistics: regions and tiles see local statistics, so the "
                     "result differs slightly from whole-image prediction")
    plan = plan_lateral_tiles(source.yx_shape, tile=region, halo=halo)
    axes, shape = source.canonical_axes, source.canonical_shape
    lead_shape = shape[:-2]
    out_shape = lead_shape + (shape[-2] * scale, shape[-1] * scale)
    runner = make_tile_function(generator, dev)
    leads = list(np.ndindex(*lead_shape)) if lead_shape else [()]
    channel_axis = axes.index("C") if "C" in axes else None
    norms: dict[tuple[int, ...], tuple[ChannelNorm, ChannelNorm]] = {}
    for lead in leads:
        channel = int(lead[channel_axis]) if channel_axis is not None else 0
        sample = plane_sample(source, lead) if norm.mode == "per_image" else np.zeros(1)
        in_norm = norm.input_norm(sample, channel=channel)
        norms[lead] = (in_norm, norm.output_norm(in_norm, channel=channel))
    total, done = len(plan) * len(leads), 0
    with OmeZarrWriter(out, out_shape, np.float32, axes,
                       pixel_size_um=(source.pixel_size_um or train_px or 0) / scale or None,
                       z_step_um=source.z_step_um, levels=levels, chunks=region * scale,
                       ngff_version=ngff_version, overwrite=overwrite) as writer:
        for k, part in enumerate(plan):
            block = source.read_yx(*part.read)
            iy, ix = part.inner
            for lead in leads:
                in_norm, out_norm = norms[lead]
                x_n = in_norm.normalize(np.asarray(block[lead], dtype=np.float32))
                events = iter_tiled(x_n, runner, tile=tile, overlap=overlap, multiple=multiple, scale=scale,
                                    batch=batch)
                try:
                    while True:
                        next(events)
                except StopIteration as stop:
                    y = out_norm.denormalize(stop.value)
                core = tuple(slice(i, i + 1) for i in lead) + tuple(slice(s.start * scale, s.stop * scale)
                                                                    for s in part.core)
                writer.write(core, y[iy.start * scale: iy.stop * scale, ix.start * scale: ix.stop * scale]
                             .reshape((1,) * len(lead) + (-1, (ix.stop - ix.start) * scale)))
                done += 1
                yield Progress(done, total, f"region {k + 1}/{len(plan)}" + (f", plane {lead}" if lead else ""))
        parameters: dict[str, Any] = {
            "run_dir": str(model.run_dir) if model.run_dir else None, "which": model.which,
            "preset": model.config.preset_name if model.config else None, "scale": scale,
            "input": str(source.path), "level": source.level, "region_px": region, "halo_px": halo,
            "receptive_field_radius_px": radius, "tile": tile, "overlap": overlap, "stride_multiple": multiple,
            "regions": len(plan), "normalization": norm.model_dump(mode="json"),
            "plane_norms": {str(lead): [n.model_dump(mode="json") for n in pair] for lead, pair in norms.items()},
        }
        provenance = Provenance(method=model.label, backend=f"engine/{dev.type}", parameters=parameters,
                                versions=software_versions("torch"), notes=notes)
        path = writer.finish(provenance=json.loads(provenance.model_dump_json()))
    return ZarrPrediction(path, provenance)
