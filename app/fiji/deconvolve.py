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
from collections.abc import Callable
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
                  "tv_lambda": tv_lambda, "psf_shape": list(kernel.shape)}
    method = f"{_rl_method(iterations, tv_lambda)} ({plugin_label(result)})"
    return Restored(result.image, provenance_from_bridge(method, result.provenance, parameters, fiji))


def engine_richardson_lucy(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10,
                           tv_lambda: float | None = None, device: str = "auto") -> Any:
    """The engine's RL with DeconvolutionLab2's conventions (periodic edges, DL2's RL-TV variant)."""
    from decongan.engine.optics.deconvolution import richardson_lucy
    from decongan.engine.provenance import Provenance, Restored

    options: dict[str, Any] = {"iterations": iterations, "edges": "circular", "device": device}
    if tv_lambda is not None:
        options.update(method="rltv", tv_lambda=tv_lambda, tv_variant="dl2")
    else:
        options["method"] = "rl"
    restored = richardson_lucy(np.asarray(image, dtype=np.float32), np.asarray(psf, dtype=np.float32), **options)
    method = f"{_rl_method(iterations, tv_lambda)} (engine, DeconvolutionLab2 conventions)"
    return Restored(restored, Provenance(method=method, backend="engine", parameters=options))


def fiji_deconvolve_image(image: Any, psf: np.ndarray, *, iterations: int = 10, tv_lambda: float | None = None,
                          psf_source: str | None = None, fiji_dir: str | os.PathLike[str] | None = None,
                          client: FijiClient | None = None,
                          progress: Callable[[Any], None] | None = None) -> Any:
    """Deconvolve every volume of an ``engine.io.MicroscopyImage`` with DeconvolutionLab2.

    Same block rules as ``engine.optics.deconvolution.iter_deconvolve_image``: a Z stack with a 3-D PSF
    in 3-D, with a 2-D PSF plane by plane; a 2-D image with a 3-D PSF uses its in-focus plane;
    channels and time points one at a time. Returns ``engine.optics.deconvolution.DeconvolvedImage``.
    """
    from decongan.engine.optics.deconvolution import DeconvolvedImage
    from decongan.engine.optics.psf import psf_focal_plane
    from decongan.engine.progress import Progress

    fiji = resolve_client(client, fiji_dir)
    kernel = np.asarray(psf, dtype=np.float32)
    has_z = "Z" in image.axes
    notes: list[str] = []
    if not has_z and kernel.ndim == 3:
        kernel = psf_focal_plane(kernel).astype(np.float32)
        notes.append("2-D image, so the in-focus plane of the 3-D PSF was used")
    per_plane = has_z and kernel.ndim == 2
    if per_plane:
        notes.append("2-D PSF, so the Z stack was deconvolved plane by plane")
    block_axes = "YX" if (per_plane or not has_z) else "ZYX"
    lead_axes = image.axes[: len(image.axes) - len(block_axes)]
    data = image.data
    out = np.empty(data.shape, dtype=np.float32)
    lead_shape = data.shape[: len(lead_axes)]
    indices = list(np.ndindex(*lead_shape)) if lead_shape else [()]
    bridge: dict[str, Any] = {}
    for step, index in enumerate(indices):
        result: BridgeResult = call_bridge(lambda index=index: fiji.richardson_lucy(
            np.ascontiguousarray(data[index], dtype=np.float32), kernel, iterations, tv_lambda))
        out[index] = result.image
        bridge = result.provenance
        if progress is not None:
            progress(Progress(step=step + 1, total=len(indices), message=f"Fiji block {step + 1}/{len(indices)}"))
    parameters: dict[str, Any] = {"iterations": iterations, "method": "rltv" if tv_lambda is not None else "rl",
                                  "tv_lambda": tv_lambda, "volume_axes": block_axes, "blocks": len(indices)}
    if psf_source:
        parameters["psf"] = str(psf_source)
    provenance = provenance_from_bridge(f"{_rl_method(iterations, tv_lambda)} ({bridge.get('plugin', 'Fiji')})",
                                        bridge, parameters, fiji)
    provenance.notes.extend(notes)
    return DeconvolvedImage(image.with_data(out), provenance)


def richardson_lucy_with_fallback(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10,
                                  tv_lambda: float | None = None,
                                  fiji_dir: str | os.PathLike[str] | None = None) -> Any:
    """:func:`fiji_richardson_lucy`, else the engine's DL2-convention RL labelled "engine (Fiji unavailable)"."""
    return with_engine_fallback(
        lambda: fiji_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda, fiji_dir=fiji_dir),
        lambda: engine_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda))


