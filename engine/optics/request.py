"""One request layer: what is deconvolved, with which optics, settings and PSF, block by block.

Every door (``decongan deconvolve``, ``batch``, ``compare``, ``demo``, ``psf``, the GUI, the Fiji
adapter) builds its request from the pieces here, so the same image and PSF give the same result
whichever door is used:

:func:`plan_blocks`
    The one block planner: which planes or volumes of a (T, Z, C, Y, X) image go through
    deconvolution together, and with which PSF (per channel).

Numpy only at import time; torch is never imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: axes a MicroscopyImage may have, in their canonical order
CANONICAL_AXES = "TZCYX"

BlockAxes = Literal["ZYX", "YX"]
PsfUse = Literal["as_is", "focal_plane"]


# ---------------------------------------------------------------------------------------------
# block planning
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One plane or volume that goes through deconvolution on its own.

    Attributes
    ----------
    index : tuple of (int or slice(None))
        Index into the image's data array (one entry per image axis); ``data[index]`` has the
        axes ``axes``.
    channel : int
        Channel index (0 when the image has no C axis): picks the PSF of that channel.
    axes : {"ZYX", "YX"}
        Axes of ``data[index]``.
    psf : {"as_is", "focal_plane"}
        "as_is": the channel's PSF has the block's dimensions; "focal_plane": the channel's PSF is
        3-D but the block is a 2-D image (no Z axis), so the PSF's in-focus (peak) plane is used
        (:func:`decongan.engine.optics.psf.psf_focal_plane`).
    t, z : int or None
        Time point and plane of the block (None when the image has no such axis or the block
        spans it), for labels.
    """

    index: tuple[int | slice, ...]
    channel: int
    axes: BlockAxes
    psf: PsfUse = "as_is"
    t: int | None = None
    z: int | None = None

    @property
    def label(self) -> str:
        """``"t=0 c=1"``-style description (empty for a single-block image)."""
        parts = [f"t={self.t}" if self.t is not None else "", f"z={self.z}" if self.z is not None else "",
                 f"c={self.channel}"]
        return " ".join(p for p in parts if p)


def _psf_ndims(psf_ndim_per_channel: int | Sequence[int], n_channels: int) -> list[int]:
    ndims = [psf_ndim_per_channel] if isinstance(psf_ndim_per_channel, (int, np.integer)) else list(psf_ndim_per_channel)
    if len(ndims) == 1:
        ndims = ndims * n_channels
    if len(ndims) != n_channels:
        raise ValueError(f"{len(ndims)} PSFs were given for an image with {n_channels} channels (give 1 or {n_channels})")
    for n in ndims:
        if isinstance(n, bool) or n not in (2, 3):
            raise ValueError(f"a PSF must be 2-D (YX) or 3-D (ZYX), got a {n!r}-D one")
    return [int(n) for n in ndims]


def plan_blocks(axes: str, shape: Sequence[int], psf_ndim_per_channel: int | Sequence[int]) -> list[Block]:
    """The blocks of an image that are deconvolved independently, in processing order.

    Rules (one PSF per channel, or one for all channels):

    * image with Z + 3-D PSF: one ZYX volume per (T, C);
    * image with Z + 2-D PSF: one YX plane per (T, Z, C);
    * image without Z + 3-D PSF: one YX plane per (T, C), deconvolved with the PSF's in-focus
      (peak) plane (``Block.psf == "focal_plane"``);
    * image without Z + 2-D PSF: one YX plane per (T, C).

    Channels and time points are never mixed into a block, and never become Z planes.

    Parameters
    ----------
    axes : str
        The image's axes, a subset of ``"TZCYX"`` in that order ending with ``"YX"``
        (:attr:`decongan.engine.io.MicroscopyImage.axes`).
    shape : sequence of int
        The data's shape, one entry per axis.
    psf_ndim_per_channel : int or sequence of int
        Number of dimensions (2 or 3) of the PSF of each channel; a single value (or a 1-element
        sequence) applies to every channel.

    Returns
    -------
    list of Block
        Ordered by T, then C, then Z (plane by plane).

    Raises
    ------
    ValueError
        Axes not a canonical subset, shape of another length, PSF count not 1 or the number of
        channels, PSF dimension not 2 or 3.
    """
    axes = str(axes)
    shape = tuple(int(n) for n in shape)
    if (any(a not in CANONICAL_AXES for a in axes) or len(set(axes)) != len(axes)
            or "".join(sorted(axes, key=CANONICAL_AXES.index)) != axes or not axes.endswith("YX")):
        raise ValueError(f"axes {axes!r} must be a subset of {CANONICAL_AXES!r} in that order, ending with 'YX'")
    if len(shape) != len(axes):
        raise ValueError(f"axes {axes!r} do not match a shape of {len(shape)} dimensions {shape}")
    if any(n < 1 for n in shape):
        raise ValueError(f"shape {shape} has an empty axis")
    size = {a: n for a, n in zip(axes, shape, strict=True)}
    n_c = size.get("C", 1)
    ndims = _psf_ndims(psf_ndim_per_channel, n_c)
    has_z = "Z" in axes
    blocks: list[Block] = []
    for t in range(size.get("T", 1)):
        t_label = t if "T" in axes else None
        for c in range(n_c):
            if has_z and ndims[c] == 2:  # plane by plane
                for z in range(size["Z"]):
                    index = tuple(t if a == "T" else c if a == "C" else z if a == "Z" else slice(None) for a in axes)
                    blocks.append(Block(index, c, "YX", "as_is", t_label, z))
                continue
            index = tuple(t if a == "T" else c if a == "C" else slice(None) for a in axes)
            if has_z:
                blocks.append(Block(index, c, "ZYX", "as_is", t_label, None))
            else:
                blocks.append(Block(index, c, "YX", "focal_plane" if ndims[c] == 3 else "as_is", t_label, None))
    return blocks


__all__ = [
    "Block",
    "plan_blocks",
]
