"""The lateral tile planner of the request layer (:mod:`decongan.engine.optics.request` re-exports it):
how an image too large for memory is deconvolved tile by tile with results equal to whole-image RL.

Why the halo is ``(2 * iterations + 1) * r`` (``r`` = the PSF's lateral half-width, ``n // 2`` of its
largest lateral side): one RL iteration blurs the estimate with the PSF (reach ``r``), divides, and
correlates back (reach ``r``), so after ``N`` iterations a pixel depends only on the input within
``2 N r`` of it; the edge model (padded / zero / circular weights) touches pixels within ``r`` of a
tile's border before the first iteration. A tile read with this halo therefore gives, in its core,
the whole-image result up to floating-point rounding, whatever the PSF's tails. A smaller halo may be
asked for (faster) but is then labelled as not exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LateralTile", "plan_lateral_tiles", "rl_exact_halo"]


@dataclass(frozen=True)
class LateralTile:
    """One lateral tile: the region written and the larger region read.

    Attributes
    ----------
    core : tuple of slice
        (rows, columns) of the image this tile's result is written to.
    read : tuple of slice
        (rows, columns) read: ``core`` widened by the halo, cut at the image's borders.
    """

    core: tuple[slice, slice]
    read: tuple[slice, slice]

    @property
    def inner(self) -> tuple[slice, slice]:
        """``core`` in the coordinates of the ``read`` block."""
        return tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(self.core, self.read, strict=True))  # type: ignore[return-value]

    @property
    def read_shape(self) -> tuple[int, int]:
        """(rows, columns) of the region read."""
        return self.read[0].stop - self.read[0].start, self.read[1].stop - self.read[1].start


def rl_exact_halo(psf_shape: Sequence[int], iterations: int) -> int:
    """The halo (pixels) that makes tiled RL equal whole-image RL in every tile's core.

    Parameters
    ----------
    psf_shape : sequence of int
        The PSF's shape, (Y, X) or (Z, Y, X) pixels.
    iterations : int
        RL iterations (>= 1).

    Returns
    -------
    int
        ``(2 * iterations + 1) * (max(Y, X) // 2)`` pixels (see the module docstring).
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    radius = max(int(n) for n in tuple(psf_shape)[-2:]) // 2
    return (2 * int(iterations) + 1) * radius


def plan_lateral_tiles(yx_shape: Sequence[int], *, tile: int, halo: int) -> list[LateralTile]:
    """Cover an image's (rows, columns) with ``tile x tile`` cores, each read with ``halo`` around it.

    Cores start at multiples of ``tile`` (so a tile equal to the output's chunk edge writes whole
    chunks); the last row and column of tiles are cut at the image's border.

    Parameters
    ----------
    yx_shape : sequence of int
        (rows, columns) of the image, pixels.
    tile : int
        Core edge, pixels (>= 1).
    halo : int
        Extra pixels read on every side (>= 0), e.g. :func:`rl_exact_halo`.

    Returns
    -------
    list of LateralTile
        Row by row.
    """
    ny, nx = (int(n) for n in yx_shape)
    if tile < 1 or halo < 0:
        raise ValueError(f"tile must be >= 1 and halo >= 0 pixels, got tile {tile}, halo {halo}")
    tiles = []
    for y0 in range(0, ny, tile):
        for x0 in range(0, nx, tile):
            y1, x1 = min(y0 + tile, ny), min(x0 + tile, nx)
            tiles.append(LateralTile(
                core=(slice(y0, y1), slice(x0, x1)),
                read=(slice(max(0, y0 - halo), min(ny, y1 + halo)), slice(max(0, x0 - halo), min(nx, x1 + halo))),
            ))
    return tiles
