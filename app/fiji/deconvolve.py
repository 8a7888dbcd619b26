"""Richardson-Lucy / RL-TV with DeconvolutionLab2 through the Fiji bridge, or the engine with DL2's conventions.

DeconvolutionLab2 uses periodic ("circular") edges and normalises the PSF to sum 1 itself; the
adapters record that convention in the provenance (``edges = "circular"``, ``convention``), and the
engine's DL2-convention equivalent uses the same edges (the engine's own default is "padded").

:func:`fiji_deconvolve_image` sends exactly the blocks of the engine's one block planner,
:func:`decongan.engine.optics.request.plan_blocks` (a ZYX volume per (T, C) for a Z stack with a
3-D PSF; YX planes with a 2-D PSF; the in-focus PSF plane for a 2-D image): channels and time
points are never sent as Z planes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from decongan.app.fiji.client import (
    call_bridge,
    plugin_label,
    provenance_from_bridge,
    resolve_client,
    with_engine_fallback,
)
from decongan.imagej_bridge.client import BridgeResult, FijiClient

#: DeconvolutionLab2's boundary convention (see ../shared/golden/fiji/README.md)
DL2_EDGES = "circular"
DL2_CONVENTION = "DeconvolutionLab2: periodic (circular) edges, PSF normalised to sum 1 by DL2"


def _rl_method(iterations: int, tv_lambda: float | None) -> str:
    return f"RL-TV {iterations} it" if tv_lambda is not None else f"RL {iterations} it"


def fiji_richardson_lucy(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10, tv_lambda: float | None = None,
                         fiji_dir: str | os.PathLike[str] | None = None, client: FijiClient | None = None) -> Any:
    """DeconvolutionLab2 RL (``tv_lambda`` None) or RL-TV on a 2-D/3-D array, as an engine ``Restored``.

    The image is sent as float32; DL2 normalises the PSF to sum 1 itself and uses periodic
    boundaries (see ../shared/golden/fiji/README.md).
    """
    from decongan.engine.provenance import Restored

    fiji = resolve_client(client, fiji_dir)
    data = np.asarray(image, dtype=np.float32)
    kernel = np.asarray(psf, dtype=np.float32)
    result: BridgeResult = call_bridge(lambda: fiji.richardson_lucy(data, kernel, iterations, tv_lambda))
    parameters = {"iterations": iterations, "method": "rltv" if tv_lambda is not None else "rl",
                  "tv_lambda": tv_lambda, "psf_shape": list(kernel.shape), "edges": DL2_EDGES,
                  "convention": DL2_CONVENTION}
    method = f"{_rl_method(iterations, tv_lambda)} ({plugin_label(result)})"
    return Restored(result.image, provenance_from_bridge(method, result.provenance, parameters, fiji))


def engine_richardson_lucy(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10,
                           tv_lambda: float | None = None, device: str = "auto") -> Any:
    """The engine's RL with DeconvolutionLab2's conventions (periodic edges, DL2's RL-TV variant)."""
    from decongan.engine.optics.deconvolution import richardson_lucy
    from decongan.engine.provenance import Provenance, Restored

    options: dict[str, Any] = {"iterations": iterations, "edges": DL2_EDGES, "device": device}
    if tv_lambda is not None:
        options.update(method="rltv", tv_lambda=tv_lambda, tv_variant="dl2")
    else:
        options["method"] = "rl"
    restored = richardson_lucy(np.asarray(image, dtype=np.float32), np.asarray(psf, dtype=np.float32), **options)
    method = f"{_rl_method(iterations, tv_lambda)} (engine, DeconvolutionLab2 conventions)"
    return Restored(restored, Provenance(method=method, backend="engine", parameters=options))


def fiji_deconvolve_image(image: Any, psf: np.ndarray | Sequence[np.ndarray], *, iterations: int = 10,
                          tv_lambda: float | None = None, psf_source: str | None = None,
                          fiji_dir: str | os.PathLike[str] | None = None, client: FijiClient | None = None,
                          progress: Callable[[Any], None] | None = None, offset: float | str | None = None) -> Any:
    """Deconvolve an ``engine.io.MicroscopyImage`` with DeconvolutionLab2, block by block.

    The blocks are exactly those of :func:`decongan.engine.optics.request.plan_blocks` (the engine
    runs the same ones): a Z stack with a 3-D PSF as one ZYX volume per (T, C); with a 2-D PSF
    plane by plane; a 2-D image with a 3-D PSF with the PSF's in-focus plane. Channels and time
    points are never sent as Z planes.

    Parameters
    ----------
    image : MicroscopyImage
        Axes a subset of "TZCYX"; any real dtype (sent as float32).
    psf : ndarray, shape (Y, X) or (Z, Y, X), or a sequence of them
        One PSF for every channel, or one per channel; checked with
        :func:`decongan.engine.optics.psf.check_psf` (DL2 normalises it to sum 1 itself).
    iterations : int
    tv_lambda : float, optional
        RL-TV regularisation (DL2's ``RLTV``); None for plain RL.
    psf_source : str, optional
        Where the PSF came from (messages, provenance).
    fiji_dir, client
        Which Fiji (default: discovery) or an explicit client.
    progress : callable, optional
        Called with a ``Progress`` after each block.
    offset : float or "auto", optional
        Subtracted before DL2 runs, exactly as the engine does
        (:func:`decongan.engine.optics.deconvolution.subtract_offset`: negative input is refused
        without it); recorded in the provenance.

    Returns
    -------
    DeconvolvedImage
        float32, the image's axes and calibration; provenance with the plugin, its exact macro, the
        block plan (``blocks``, ``volume_axes``) and DL2's convention (``edges="circular"``).

    Raises
    ------
    NegativeImageError
        Negative values and no ``offset`` (before Fiji is started).
    FijiUnavailable
        No backend, or DeconvolutionLab2 (and ImageJ Ops) missing.
    ValueError
        A PSF count that is neither 1 nor the number of channels, or a PSF that is not 2-D/3-D.
    """
    from decongan.engine.optics.deconvolution import DeconvolvedImage, record_offset, subtract_offset
    from decongan.engine.optics.psf import check_psf
    from decongan.engine.optics.request import block_psfs, plan_blocks
    from decongan.engine.progress import Progress

    image, offset_record = subtract_offset(image, offset)
    given = [psf] if isinstance(psf, np.ndarray) else list(psf)
    psfs = [check_psf(p, source=psf_source) for p in given]
    data = image.data
    plan = plan_blocks(image.axes, data.shape, [p.ndim for p in psfs])
    kernels, notes = block_psfs(plan, psfs)
    kernels = {c: np.ascontiguousarray(k, dtype=np.float32) for c, k in kernels.items()}

    fiji = resolve_client(client, fiji_dir)
    out = np.empty(data.shape, dtype=np.float32)
    bridge: dict[str, Any] = {}
    for step, block in enumerate(plan):
        volume = np.ascontiguousarray(data[block.index], dtype=np.float32)
        kernel = kernels[block.channel]
        result: BridgeResult = call_bridge(lambda volume=volume, kernel=kernel: fiji.richardson_lucy(
            volume, kernel, iterations, tv_lambda))
        if result.image.shape != volume.shape:
            raise RuntimeError(f"DeconvolutionLab2 returned shape {result.image.shape} for a block of shape "
                               f"{volume.shape} ({block.label or 'whole image'}); the result would be misplaced")
        out[block.index] = result.image
        bridge = result.provenance
        if progress is not None:
            where = f" ({block.label})" if block.label else ""
            progress(Progress(step=step + 1, total=len(plan), message=f"Fiji block {step + 1}/{len(plan)}{where}"))
    parameters: dict[str, Any] = {"iterations": iterations, "method": "rltv" if tv_lambda is not None else "rl",
                                  "tv_lambda": tv_lambda, "edges": DL2_EDGES, "convention": DL2_CONVENTION,
                                  "volume_axes": plan[0].axes, "blocks": len(plan),
                                  "psf_shapes": sorted({tuple(k.shape) for k in kernels.values()})}
    if psf_source:
        parameters["psf"] = str(psf_source)
    provenance = provenance_from_bridge(f"{_rl_method(iterations, tv_lambda)} ({bridge.get('plugin', 'Fiji')})",
                                        bridge, parameters, fiji)
    provenance.notes.extend(notes)
    record_offset(provenance, offset_record)
    return DeconvolvedImage(image.with_data(out), provenance)


def richardson_lucy_with_fallback(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10,
                                  tv_lambda: float | None = None,
                                  fiji_dir: str | os.PathLike[str] | None = None) -> Any:
    """:func:`fiji_richardson_lucy`, else the engine's DL2-convention RL labelled "engine (Fiji unavailable)"."""
    return with_engine_fallback(
        lambda: fiji_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda, fiji_dir=fiji_dir),
        lambda: engine_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda))


