"""Richardson-Lucy of an OME-Zarr image tile by tile, written as OME-Zarr, never holding the whole image.

Each lateral tile (:func:`decongan.engine.optics.tile_plan.plan_lateral_tiles`; every t, c, z of it)
is read with a halo, deconvolved by the one image-level wrapper
(:func:`decongan.engine.optics.image_deconvolution.iter_deconvolve_image`, same settings, PSF and
block plan as a whole image), and its core is written to the output store. With the default halo
(:func:`~decongan.engine.optics.tile_plan.rl_exact_halo`) the result equals whole-image RL up to
rounding; peak memory is set by the tile plan (checked before the first tile by
:func:`decongan.engine.optics.rl_memory.estimate_rl_memory` for the largest tile), not by the image.

What would be global is made global first: the offset (``"auto"`` = the minimum of the whole image)
and the negative-value check are computed in one pass over the input's chunks before RL starts. The
start estimate is the input (the default); a flat start would need the image mean and is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from decongan.engine.io import MicroscopyImage
from decongan.engine.optics.image_deconvolution import NegativeImageError, iter_deconvolve_image
from decongan.engine.optics.request import DEFAULT_SETTINGS
from decongan.engine.optics.rl_memory import estimate_rl_memory
from decongan.engine.optics.tile_plan import plan_lateral_tiles, rl_exact_halo
from decongan.engine.progress import Progress
from decongan.engine.provenance import Provenance
from decongan.engine.zarr_io import OmeZarrImage, OmeZarrWriter, check_zarr_output

__all__ = ["TiledResult", "iter_deconvolve_zarr", "zarr_value_range"]


@dataclass
class TiledResult:
    """What :func:`iter_deconvolve_zarr` wrote.

    Attributes
    ----------
    path : Path
        The output OME-Zarr folder.
    provenance : Provenance
        RL's provenance (from the wrapper) plus ``tiling``: tile, halo, how the halo was chosen, tiles.
    """

    path: Path
    provenance: Provenance


def zarr_value_range(image: OmeZarrImage, *, tile: int = 1024) -> tuple[float, float]:
    """Minimum and maximum of a level, read one lateral tile at a time.

    Parameters
    ----------
    image : OmeZarrImage
        The level (any axes).
    tile : int
        Lateral block edge read at once, pixels.

    Returns
    -------
    (float, float)
        The minimum and maximum over every pixel.
    """
    low, high = np.inf, -np.inf
    for part in plan_lateral_tiles(image.yx_shape, tile=tile, halo=0):
        block = image.read_yx(*part.core)
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    return low, high


def iter_deconvolve_zarr(
    source: OmeZarrImage,
    psf: np.ndarray,
    out: str | os.PathLike[str],
    *,
    tile: int = 1024,
    halo: int | None = None,
    iterations: int = DEFAULT_SETTINGS.iterations,
    method: str = DEFAULT_SETTINGS.method,
    tv_lambda: float = DEFAULT_SETTINGS.tv_lambda,
    tv_variant: str = DEFAULT_SETTINGS.tv_variant,
    edges: str = DEFAULT_SETTINGS.edges,
    device: str = DEFAULT_SETTINGS.device,
    epsilon: float = DEFAULT_SETTINGS.epsilon,
    offset: float | Literal["auto"] | None = None,
    levels: int = 1,
    ngff_version: str = "0.4",
    overwrite: bool = False,
    psf_source: str | None = None,
) -> Generator[Progress, None, TiledResult]:
    """Deconvolve an OME-Zarr level tile by tile into a float32 OME-Zarr with the same axes and calibration.

    Parameters
    ----------
    source : OmeZarrImage
        The input level (:func:`decongan.engine.zarr_io.open_ome_zarr`), axes a subset of t, c, z, y, x.
    psf : ndarray, shape (Y, X) or (Z, Y, X)
        PSF on the level's grid (normalised to sum 1 by RL).
    out : path
        Output ``NAME.ome.zarr`` folder (checked before any computation).
    tile : int
        Core edge of a tile and chunk edge of the output, pixels.
    halo : int, optional
        Pixels read around each core; default :func:`~decongan.engine.optics.tile_plan.rl_exact_halo`
        (exact). A smaller one is allowed and labelled in the provenance.
    iterations, method, tv_lambda, tv_variant, edges, device, epsilon
        As :func:`~decongan.engine.optics.image_deconvolution.iter_deconvolve_image`.
    offset : float or "auto", optional
        Subtracted before RL; "auto" = the minimum of the whole level (computed first).
    levels : int
        Pyramid levels of the output (1 = full resolution only).
    ngff_version : str
        ``"0.4"`` or ``"0.5"``.
    overwrite : bool
        Replace an existing OME-Zarr output.
    psf_source : str, optional
        The PSF's file, for the provenance.

    Yields
    ------
    Progress
        One event per RL iteration of every tile.

    Returns
    -------
    TiledResult
        The output folder and the provenance.

    Raises
    ------
    NegativeImageError
        Negative values without an offset (found before RL starts), naming the store.
    MemoryEstimateError
        The largest tile's RL does not fit in memory (before any computation).
    ZarrWriteError
        The output exists (without ``overwrite``) or is not an OME-Zarr image.
    """
    import torch

    from decongan.engine.device import resolve_device

    out = check_zarr_output(out, overwrite=overwrite, label="the output", allow="allow overwriting")
    psf = np.asarray(psf)
    exact = rl_exact_halo(psf.shape, iterations)
    halo = exact if halo is None else int(halo)
    plan = plan_lateral_tiles(source.yx_shape, tile=tile, halo=halo)
    axes, shape = source.canonical_axes, source.canonical_shape
    largest = max((t.read_shape for t in plan), key=lambda s: s[0] * s[1])
    dev = resolve_device(device)
    estimate_rl_memory(axes, shape[:-2] + largest, [psf.shape], edges=edges, method=method, tv_variant=tv_variant,
                       input_itemsize=source.dtype.itemsize, offset=offset is not None
                       ).check(what=f"{source.path} (largest tile {largest[0]} x {largest[1]} px)", device=str(dev),
                               device_available=torch.cuda.mem_get_info(dev)[0] if dev.type == "cuda" else None)
    value: float | None = None
    if offset is not None or source.dtype.kind in "if":
        low, high = zarr_value_range(source, tile=tile)
        if offset is None and low < 0:
            raise NegativeImageError(
                source.path, f"has negative values (minimum {low:g}, maximum {high:g}, {source.dtype}); "
                "Richardson-Lucy needs non-negative intensities. Subtract the camera offset/background first, "
                "or give an offset to subtract (a value in the image's units, or 'auto' for its minimum)")
        if offset is not None:
            value = low if offset == "auto" else float(offset)
            if low - value < 0:
                raise NegativeImageError(source.path, f"still has negative values after subtracting the offset "
                                                      f"{value:g} (minimum {low:g}); give a smaller offset or 'auto'")
    total = iterations * len(plan)
    done = 0
    first: Provenance | None = None
    with OmeZarrWriter(out, shape, np.float32, axes, pixel_size_um=source.pixel_size_um, z_step_um=source.z_step_um,
                       levels=levels, chunks=tile, ngff_version=ngff_version, overwrite=overwrite) as writer:
        for k, part in enumerate(plan):
            block = MicroscopyImage(source.read_yx(*part.read), axes, pixel_size_um=source.pixel_size_um,
                                    z_step_um=source.z_step_um, path=source.path)
            events = iter_deconvolve_image(block, psf, iterations=iterations, method=method, tv_lambda=tv_lambda,
                                           tv_variant=tv_variant, edges=edges, device=str(dev), epsilon=epsilon,
                                           psf_source=psf_source, offset=value)
            try:
                while True:
                    event = next(events)
                    done += 1
                    yield Progress(done, total, f"tile {k + 1}/{len(plan)}: {event.message}")
            except StopIteration as stop:
                result = stop.value
            first = first or result.provenance
            lead = (slice(None),) * (len(axes) - 2)
            writer.write(lead + part.core, result.image.data[lead + part.inner])
        assert first is not None
        first.parameters["tiling"] = _tiling_record(tile, halo, exact, len(plan), largest)
        if halo < exact:
            first.notes.append(f"tiles were read with a {halo} px halo, less than the {exact} px that makes tiled "
                               "RL equal whole-image RL: values near tile borders may differ from whole-image RL")
        if value is not None:
            first.notes.append(f"offset {value:g} subtracted from the whole image before RL (asked: {offset})")
        path = writer.finish(provenance=json.loads(first.model_dump_json()))
    return TiledResult(path, first)


def _tiling_record(tile: int, halo: int, exact: int, n_tiles: int, largest: tuple[int, int]) -> dict[str, Any]:
    return {"tile_px": tile, "halo_px": halo, "exact_halo_px": exact, "tiles": n_tiles,
            "largest_read_px": list(largest),
            "halo_rule": "(2 * iterations + 1) * (PSF lateral side // 2): the reach of RL's blur and correlation "
                         "per iteration plus the edge model; exact when halo >= this"}
