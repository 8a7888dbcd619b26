"""Richardson-Lucy on whole microscopy images: offset, planes/volumes, channels, time points, provenance.

:func:`iter_deconvolve_image` / :func:`deconvolve_image` run the engine's RL core
(:mod:`decongan.engine.optics.deconvolution`) on every block of a :class:`engine.io.MicroscopyImage`
that :func:`decongan.engine.optics.request.plan_blocks` plans, after :func:`subtract_offset` has
refused negative intensities (or subtracted the offset asked for) and the memory estimate of
:mod:`decongan.engine.optics.rl_memory` has been checked; :func:`record_offset` writes the offset
into a result's provenance for every backend (engine and Fiji).

The names are also reachable as ``decongan.engine.optics.deconvolution.<name>`` (where they lived first).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from decongan.engine.io import ImageReadError, MicroscopyImage
from decongan.engine.optics import deconvolution as _rl
from decongan.engine.optics.deconvolution import (
    Edges,
    Initial,
    Method,
    TvVariant,
    _check_common,
    _check_image,
)
from decongan.engine.optics.psf import check_psf
from decongan.engine.optics.request import DEFAULT_SETTINGS, block_psfs, plan_blocks
from decongan.engine.optics.rl_acceleration import Acceleration
from decongan.engine.optics.rl_memory import estimate_rl_memory
from decongan.engine.progress import Progress, drain
from decongan.engine.provenance import Provenance


class DeconvolvedImage(NamedTuple):
    """A deconvolved image (float32, same axes and calibration as the input) and how it was made."""

    image: MicroscopyImage
    provenance: Provenance


class NegativeImageError(ImageReadError):
    """An image with negative values was given to Richardson-Lucy without an offset to subtract."""


def subtract_offset(image: MicroscopyImage, offset: float | Literal["auto"] | None = None
                    ) -> tuple[MicroscopyImage, dict[str, Any] | None]:
    """Refuse negative intensities before RL, or subtract an explicit offset.

    RL models photon counts: negative values (an over-subtracted camera offset, signed-integer
    data) make ``y / Hx`` change sign and the iterations blow up (values -50..1005 become
    -19165..28838). Without ``offset`` such an image is refused; with it, ``offset`` (or the
    minimum, for ``"auto"``) is subtracted and the result must be non-negative.

    Parameters
    ----------
    image : MicroscopyImage
        Input, any real dtype.
    offset : float or "auto", optional
        Value to subtract, in the image's intensity units; "auto": the image minimum.

    Returns
    -------
    (MicroscopyImage, dict or None)
        The image (float32 when shifted; unchanged without ``offset``) and the provenance record
        ``{"requested": ..., "subtracted": ...}`` (None without ``offset``).

    Raises
    ------
    NegativeImageError
        Negative values and no offset, or still negative after the offset. Names the file.
    """
    data = image.data
    where = image.path if image.path is not None else "image"
    if offset is None:
        if data.dtype.kind in "if" and data.size:
            low = float(np.min(data))
            if low < 0:
                raise NegativeImageError(
                    where, f"has negative values (minimum {low:g}, maximum {float(np.max(data)):g}, {data.dtype}); "
                    "Richardson-Lucy needs non-negative intensities and would amplify them into artefacts. "
                    "Subtract the camera offset/background correctly first, or give an offset to subtract "
                    "(a value in the image's units, or 'auto' for its minimum); the offset is recorded")
        return image, None
    if isinstance(offset, str):
        if offset != "auto":
            raise ValueError(f"offset must be a number or 'auto', got {offset!r}")
        value = float(np.min(data))
    else:
        value = float(offset)
        if not math.isfinite(value):
            raise ValueError(f"offset must be finite, got {offset!r}")
    shifted = (data.astype(np.float64) - value).astype(np.float32)
    low = float(np.min(shifted))
    if low < 0:
        raise NegativeImageError(
            where, f"still has negative values after subtracting the offset {value:g} (minimum {low:g}); "
            "give a smaller offset, or 'auto' to subtract the image minimum")
    return image.with_data(shifted), {"requested": offset, "subtracted": value}


def record_offset(provenance: Provenance, record: dict[str, Any] | None) -> None:
    """Write what :func:`subtract_offset` did into a result's provenance, whichever backend ran.

    Parameters
    ----------
    provenance : Provenance
        Updated in place: ``parameters["offset"] = record`` and a note saying the result is in
        offset-subtracted units.
    record : dict or None
        The record returned by :func:`subtract_offset` (None: no offset, nothing to write).
    """
    if record is None:
        return
    provenance.parameters["offset"] = record
    provenance.notes.append(f"offset {record['subtracted']:g} subtracted from the input before deconvolution "
                            f"(asked: {record['requested']}); the result is in offset-subtracted units")


def iter_deconvolve_image(
    image: MicroscopyImage,
    psf: np.ndarray | Sequence[np.ndarray],
    *,
    iterations: int = DEFAULT_SETTINGS.iterations,
    method: Method = DEFAULT_SETTINGS.method,  # type: ignore[assignment]
    tv_lambda: float = DEFAULT_SETTINGS.tv_lambda,
    tv_variant: TvVariant = DEFAULT_SETTINGS.tv_variant,  # type: ignore[assignment]
    edges: Edges = DEFAULT_SETTINGS.edges,  # type: ignore[assignment]
    device: str = DEFAULT_SETTINGS.device,
    epsilon: float = DEFAULT_SETTINGS.epsilon,
    initial: Initial | float = DEFAULT_SETTINGS.initial,  # type: ignore[assignment]
    psf_source: str | None = None,
    offset: float | Literal["auto"] | None = None,
    acceleration: Acceleration = DEFAULT_SETTINGS.acceleration,  # type: ignore[assignment]
) -> Generator[Progress, None, DeconvolvedImage]:
    """Deconvolve every volume of a :class:`MicroscopyImage`, yielding progress over all of them.

    The blocks (planes or volumes) come from :func:`decongan.engine.optics.request.plan_blocks`.
    "YX" images need a 2-D PSF (a 3-D PSF contributes its in-focus plane, noted in the provenance).
    Images with a Z axis are deconvolved in 3-D with a 3-D PSF, or plane by plane with a 2-D PSF.
    Channels and time points are processed one at a time (``psf`` may be one PSF per channel).
    The defaults are :data:`decongan.engine.optics.request.DEFAULT_SETTINGS` (``edges="padded"``
    for real images; pass ``edges="circular"`` for DeconvolutionLab2 parity); pass
    ``**settings.as_options()`` of a :class:`~decongan.engine.optics.request.DeconvolutionSettings`.

    Parameters
    ----------
    offset : float or "auto", optional
        Subtracted from every pixel before RL (intensity units of the image); ``"auto"`` subtracts
        the image minimum. Without it an image with negative values (over-subtracted camera offset,
        signed integers) is refused, see :func:`subtract_offset`. Recorded in the provenance.
    acceleration : {"none", "biggs"}
        "biggs": Biggs-Andrews accelerated RL (:mod:`decongan.engine.optics.rl_acceleration`), recorded
        in the provenance and the method label; "none": plain RL.

    Returns
    -------
    DeconvolvedImage
        ``image``: float32, same axes and calibration; ``provenance``: method, backend, parameters.
    """
    import torch

    from decongan.engine.device import resolve_device

    if not isinstance(image, MicroscopyImage):
        raise TypeError("iter_deconvolve_image needs an engine.io.MicroscopyImage (use iter_richardson_lucy for arrays)")
    if image.metadata.get("rgb"):
        image.require_single_channel()  # raises a clear ImageReadError
    input_itemsize = image.data.dtype.itemsize
    image, offset_record = subtract_offset(image, offset)
    psfs = [check_psf(p, source=psf_source) for p in ([psf] if isinstance(psf, np.ndarray) else psf)]
    data = image.data
    plan = plan_blocks(image.axes, data.shape, [p.ndim for p in psfs])
    prepared, notes = block_psfs(plan, psfs)
    volume_axes = "ZYX" if "Z" in image.axes else "YX"
    out = np.empty(data.shape, dtype=np.float32)
    # the blocks that go through RL: (index into data, psf)
    blocks: list[tuple[tuple[Any, ...], np.ndarray]] = [(b.index, prepared[b.channel]) for b in plan]

    for ndim in sorted({k.ndim for _, k in blocks}):
        _check_common(method, tv_lambda, tv_variant, edges, iterations, epsilon, ndim, acceleration)
    if not isinstance(initial, str) and not np.isscalar(initial):
        raise ValueError("initial must be 'input', 'flat' or a positive number for whole images")
    total = iterations * len(blocks)
    done = 0
    dev = resolve_device(device)
    # refuse, before any RL, an image whose working memory cannot fit (the one estimate, engine.optics.rl_memory)
    memory = estimate_rl_memory(image.axes, data.shape, [p.shape for p in psfs], edges=edges, method=method,
                                tv_variant=tv_variant, input_itemsize=input_itemsize,
                                offset=offset_record is not None, acceleration=acceleration)
    memory.check(what=str(image.path or "the image"), device=str(dev),
                 device_available=torch.cuda.mem_get_info(dev)[0] if dev.type == "cuda" else None)
    otf_cache: dict[Any, Any] = {}
    for b, (index, kernel) in enumerate(blocks):
        where = f"block {b + 1}/{len(blocks)}" if len(blocks) > 1 else ""
        gen = _rl._iter_rl_checked(_check_image(data[index]), kernel, iterations=iterations, method=method,
                               tv_lambda=tv_lambda, tv_variant=tv_variant, edges=edges, device=str(dev),
                               epsilon=epsilon, initial=initial, normalize_psf=True, label=where,
                               otf_cache=otf_cache, acceleration=acceleration)
        try:
            while True:
                event = next(gen)
                done += 1
                yield Progress(step=done, total=total, message=event.message)
        except StopIteration as stop:
            out[index] = stop.value
        finally:
            gen.close()
    if dev.type == "cuda":
        torch.cuda.empty_cache()

    name = "RL-TV" if method == "rltv" else "RL"
    parameters: dict[str, Any] = {
        "iterations": iterations, "method": method, "edges": edges, "epsilon": epsilon,
        "initial": initial if isinstance(initial, (str, int, float)) else "array",
        "psf_shapes": sorted({tuple(p.shape) for p in prepared.values()}), "volume_axes": volume_axes,
        "device": str(dev),
    }
    if method == "rltv":
        parameters.update(tv_lambda=tv_lambda, tv_variant=tv_variant)
    accelerated = ""
    if acceleration != "none":  # plain RL keeps the provenance it always had
        parameters["acceleration"] = acceleration
        accelerated = ", Biggs-Andrews accelerated"
        notes.append("Biggs-Andrews accelerated RL: further converged than plain RL after as many iterations")
    if psf_source:
        parameters["psf"] = str(psf_source)
    provenance = Provenance(method=f"{name} {iterations} it ({edges} edges{accelerated})", backend=f"engine/{dev.type}",
                            parameters=parameters, notes=notes)
    record_offset(provenance, offset_record)
    return DeconvolvedImage(image.with_data(out), provenance)


def deconvolve_image(image: MicroscopyImage, psf: np.ndarray | Sequence[np.ndarray], **options: Any) -> DeconvolvedImage:
    """Deconvolve every volume of a :class:`MicroscopyImage`: :func:`iter_deconvolve_image` run to the end.

    Parameters
    ----------
    image : MicroscopyImage
        The image (axes among T, Z, C, Y, X; calibration kept in the result).
    psf : ndarray or sequence of ndarray
        A 2-D ``(Y, X)`` or 3-D ``(Z, Y, X)`` PSF sampled on the image's grid, or one per channel.
    **options
        ``iterations``, ``method``, ``tv_lambda``, ``tv_variant``, ``edges``, ``device``, ``epsilon``,
        ``initial``, ``psf_source``, ``offset``, ``acceleration``, as in :func:`iter_deconvolve_image`.

    Returns
    -------
    DeconvolvedImage
        ``image``: float32, same axes, shape and calibration; ``provenance``: method, backend, parameters.

    Raises
    ------
    NegativeImageError
        The image has negative values and no ``offset`` was given.
    ValueError
        Bad parameters or a PSF that does not fit the image (see :func:`iter_deconvolve_image`).
    """
    return drain(iter_deconvolve_image(image, psf, **options))


__all__ = [
    "DeconvolvedImage",
    "NegativeImageError",
    "deconvolve_image",
    "iter_deconvolve_image",
    "record_offset",
    "subtract_offset",
]
