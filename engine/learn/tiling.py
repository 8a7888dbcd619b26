"""Tiled processing of large 2-D planes with overlapping tiles and tapered (raised-cosine) blending.

A network is applied to overlapping tiles of a plane; each tile's output is weighted by a
separable window and the weighted outputs are summed and divided by the summed weights, so the
weights of every output pixel sum to exactly one.

Why the tiled output equals the whole-image output
--------------------------------------------------
A convolutional network's output near a tile edge differs from the whole-image output because the
zero ("same") padding of its convolutions replaces image content there; the difference is exactly
zero beyond the network's receptive-field radius ``r`` from the edge (and decays well before it).
The window of a tile is therefore **zero** in a guard band of ``(overlap - overlap // 4) // 2``
pixels (about 3/8 of the overlap) along every edge it shares with a neighbouring tile, rises as a
raised cosine over the middle ``overlap // 4`` pixels of the overlap, and is one elsewhere; the
neighbour's window is the exact complement (``sin**2 + cos**2 = 1``). Edges on the image border keep
weight one (the whole-image result has the same border there). With a guard band of at least
``r`` the tiled output equals the whole-image output up to float rounding:
:func:`overlap_for_radius` gives that overlap (``decongan predict --overlap auto`` uses it with the
radius measured by :func:`engine.learn.inference.receptive_field_radius`). Smaller overlaps give
differences that decay with the guard width (see ``benchmarks/bench_inference.py``).

Networks that down-sample (average pooling, strided convolutions) are only shift-equivariant for
shifts that are multiples of their total stride ``multiple`` (16 for a 4-level U-Net). The plane is
therefore padded at the bottom/right to a multiple of ``multiple`` (reflect, like the models' own
padding), tile sizes and overlaps are rounded to multiples of it, and every tile starts at a
multiple of it; the result is cropped back at the end.

Memory: the plane, its padded copy, the output and the weight sum are held (4 float32 arrays of
the output size at most), plus ``batch`` tiles at a time in the network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from decongan.engine.progress import CancelToken, Progress, drain

#: ``fn(tiles) -> outputs``: (B, h, w) float32 -> (B, h * scale, w * scale) float32
TileFunction = Callable[[np.ndarray], np.ndarray]


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one (padded) plane go.

    Attributes
    ----------
    shape : (int, int)
        Padded plane shape (multiples of ``multiple``).
    original_shape : (int, int)
        Plane shape before padding.
    tile : (int, int)
        Tile shape (every tile has it).
    overlap : int
        Minimum overlap between neighbouring tiles, in input pixels.
    starts_y, starts_x : tuple of int
        Tile origins along each axis (multiples of ``multiple``), in the padded plane.
    multiple : int
        Alignment of tile origins and sizes.
    """

    shape: tuple[int, int]
    original_shape: tuple[int, int]
    tile: tuple[int, int]
    overlap: int
    starts_y: tuple[int, ...]
    starts_x: tuple[int, ...]
    multiple: int

    @property
    def n_tiles(self) -> int:
        return len(self.starts_y) * len(self.starts_x)

    @property
    def is_whole(self) -> bool:
        return self.n_tiles == 1

    def origins(self) -> list[tuple[int, int]]:
        """Tile origins ``(y0, x0)`` in row-major order."""
        return [(y, x) for y in self.starts_y for x in self.starts_x]

    def window(self, y0: int, x0: int, *, scale: int = 1) -> np.ndarray:
        """Blending weights of the tile at ``(y0, x0)`` on the output grid (``scale`` x tile), float32."""
        wy = _axis_window(self.starts_y, self.starts_y.index(y0), self.tile[0], scale)
        wx = _axis_window(self.starts_x, self.starts_x.index(x0), self.tile[1], scale)
        return np.outer(wy, wx).astype(np.float32)


def _ramp(overlap: int) -> np.ndarray:
    """Rising edge of length ``overlap``: zeros, raised cosine, ones (see module doc)."""
    if overlap <= 0:
        return np.ones(0)
    zero = guard_width(overlap)
    width = overlap - 2 * zero
    t = (np.arange(width) + 0.5) / width
    return np.concatenate([np.zeros(zero), 0.5 - 0.5 * np.cos(np.pi * t), np.ones(zero)])


def guard_width(overlap: int) -> int:
    """Pixels of zero weight along a tile edge shared with a neighbour: ``(overlap - overlap // 4) // 2``."""
    return (overlap - overlap // 4) // 2


def overlap_for_radius(radius: int, *, multiple: int = 1) -> int:
    """Smallest overlap (a multiple of ``multiple``) whose guard band is at least ``radius`` pixels.

    Parameters
    ----------
    radius : int
        Receptive-field radius of the network in input px (see :func:`guard_width`).
    multiple : int
        Total stride of the network; the overlap is rounded up to a multiple of it.

    Returns
    -------
    int
        Overlap in input px; 0 when ``radius`` <= 0.
    """
    overlap = max(0, int(radius))
    while guard_width(overlap) < radius:
        overlap += 1
    return _round_up(overlap, multiple) if overlap else 0


def _axis_window(starts: tuple[int, ...], index: int, size: int, scale: int) -> np.ndarray:
    window = np.ones(size * scale)
    if index > 0:
        overlap = (starts[index - 1] + size - starts[index]) * scale
        window[:overlap] *= _ramp(overlap)
    if index < len(starts) - 1:
        overlap = (starts[index] + size - starts[index + 1]) * scale
        window[size * scale - overlap:] *= _ramp(overlap)[::-1]
    return window


def _axis_starts(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, ...]:
    if length <= tile:
        return (0,)
    max_step = tile - overlap - multiple  # spacing after rounding to `multiple` stays <= tile - overlap
    if max_step < 1:
        max_step = tile - overlap
    n = 1 + int(math.ceil((length - tile) / max_step))
    positions = np.linspace(0, length - tile, n)
    starts = sorted({int(round(p / multiple)) * multiple for p in positions})
    starts = [min(max(0, s), length - tile) for s in starts]
    return tuple(sorted(set(starts)))


def plan_tiles(shape: tuple[int, int], *, tile: int, overlap: int, multiple: int = 1) -> TilePlan:
    """Plan the tiles of a plane.

    Parameters
    ----------
    shape : (int, int)
        Plane shape (Y, X) before padding.
    tile : int
        Tile side in pixels (rounded down to a multiple of ``multiple``); 0 = the whole plane.
    overlap : int
        Overlap in pixels between neighbouring tiles (rounded up to a multiple of ``multiple``);
        must leave a positive step (``tile > overlap + multiple``).
    multiple : int
        Total stride of the network (tile origins and sizes are multiples of it).

    Raises
    ------
    ValueError
        Negative sizes, or a tile that is not larger than the overlap.
    """
    height, width = int(shape[0]), int(shape[1])
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty plane of shape {shape}")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if tile < 0 or overlap < 0:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must be >= 0")
    padded = (_round_up(height, multiple), _round_up(width, multiple))
    if tile == 0:
        return TilePlan(padded, (height, width), padded, 0, (0,), (0,), multiple)
    tile = (tile // multiple) * multiple
    overlap = _round_up(overlap, multiple) if overlap else 0
    if tile < multiple or tile - overlap < multiple:
        raise ValueError(
            f"tile size {tile} px must exceed the overlap {overlap} px by at least the network stride {multiple} px; "
            "use a larger tile or a smaller overlap"
        )
    tile_y, tile_x = min(tile, padded[0]), min(tile, padded[1])
    return TilePlan(
        shape=padded,
        original_shape=(height, width),
        tile=(tile_y, tile_x),
        overlap=overlap,
        starts_y=_axis_starts(padded[0], tile_y, overlap, multiple),
        starts_x=_axis_starts(padded[1], tile_x, overlap, multiple),
        multiple=multiple,
    )


def pad_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pad ``plane`` at the bottom/right to ``shape`` (reflect; edge when the plane is too small).

    Parameters
    ----------
    plane : ndarray, shape (Y, X)
        The plane to pad.
    shape : (int, int)
        Target (Y', X') with Y' >= Y and X' >= X, e.g. :attr:`TilePlan.shape`.

    Returns
    -------
    ndarray, shape (Y', X')
        ``plane`` itself when no padding is needed, else a padded copy (same dtype).
    """
    pad_y, pad_x = shape[0] - plane.shape[0], shape[1] - plane.shape[1]
    if pad_y == 0 and pad_x == 0:
        return plane
    mode = "reflect" if pad_y < plane.shape[0] and pad_x < plane.shape[1] else "edge"
    return np.pad(plane, ((0, pad_y), (0, pad_x)), mode=mode)


def iter_tiled(
    plane: np.ndarray,
    fn: TileFunction,
    *,
    tile: int,
    overlap: int,
    multiple: int = 1,
    scale: int = 1,
    batch: int = 1,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, np.ndarray]:
    """Apply ``fn`` to a plane tile by tile; yields one :class:`Progress` per batch of tiles.

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        Input plane (converted to float32).
    fn : callable
        ``fn(tiles)`` with tiles of shape (B, h, w) float32 returns (B, h * scale, w * scale).
    tile, overlap, multiple
        See :func:`plan_tiles`.
    scale : int
        Output pixels per input pixel.
    batch : int
        Tiles per call of ``fn``.
    cancel : CancelToken, optional
        Checked before every batch.

    Returns
    -------
    ndarray, float32, shape (H * scale, W * scale)
    """
    plane = np.asarray(plane, dtype=np.float32)
    if plane.ndim != 2:
        raise ValueError(f"a 2-D plane is needed, got shape {plane.shape}")
    plan = plan_tiles(plane.shape, tile=tile, overlap=overlap, multiple=multiple)
    padded = pad_plane(plane, plan.shape)
    th, tw = plan.tile
    out_shape = (plan.shape[0] * scale, plan.shape[1] * scale)
    origins = plan.origins()
    if plan.is_whole:
        result = _call(fn, padded[None], (th * scale, tw * scale))[0]
        yield Progress(1, 1, "whole image")
        return np.ascontiguousarray(result[: plane.shape[0] * scale, : plane.shape[1] * scale])
    output = np.zeros(out_shape, dtype=np.float32)
    weights = np.zeros(out_shape, dtype=np.float32)
    batch = max(1, int(batch))
    for first in range(0, len(origins), batch):
        if cancel is not None:
            cancel.raise_if_cancelled()
        chunk = origins[first: first + batch]
        tiles = np.stack([padded[y: y + th, x: x + tw] for y, x in chunk])
        results = _call(fn, tiles, (th * scale, tw * scale))
        for (y, x), res in zip(chunk, results, strict=True):
            win = plan.window(y, x, scale=scale)
            oy, ox = y * scale, x * scale
            output[oy: oy + th * scale, ox: ox + tw * scale] += res * win
            weights[oy: oy + th * scale, ox: ox + tw * scale] += win
        done = min(first + batch, len(origins))
        yield Progress(done, len(origins), f"tile {done}/{len(origins)}")
    if float(weights.min()) <= 0:  # cannot happen for a valid plan; guard against silent holes
        raise RuntimeError("tile blending left pixels without weight; this is a bug in the tile plan")
    np.divide(output, weights, out=output)
    return np.ascontiguousarray(output[: plane.shape[0] * scale, : plane.shape[1] * scale])


def _call(fn: TileFunction, tiles: np.ndarray, expected: tuple[int, int]) -> np.ndarray:
    result = np.asarray(fn(tiles), dtype=np.float32)
    if result.shape != (tiles.shape[0], *expected):
        raise ValueError(f"tile function returned shape {result.shape}, expected {(tiles.shape[0], *expected)}")
    return result


def process_tiled(plane: np.ndarray, fn: TileFunction, *, tile: int, overlap: int, multiple: int = 1,
                  scale: int = 1, batch: int = 1, cancel: CancelToken | None = None) -> np.ndarray:
    """:func:`iter_tiled` run to completion.

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        Input plane (converted to float32).
    fn : callable
        ``fn(tiles)`` with tiles of shape (B, h, w) float32 returns (B, h * scale, w * scale).
    tile, overlap, multiple : int
        Tile side, overlap and network stride in input px; see :func:`plan_tiles`.
    scale : int
        Output pixels per input pixel.
    batch : int
        Tiles per call of ``fn``.
    cancel : CancelToken, optional
        Checked before every batch.

    Returns
    -------
    ndarray, float32, shape (H * scale, W * scale)
        The blended output plane.

    Raises
    ------
    ValueError
        When ``plane`` is not 2-D, the tile does not exceed the overlap by the network stride, or
        ``fn`` returns the wrong shape.
    Cancelled
        When ``cancel`` is set.
    """
    return drain(iter_tiled(plane, fn, tile=tile, overlap=overlap, multiple=multiple, scale=scale,
                            batch=batch, cancel=cancel))


def tile_memory_bytes(shape: tuple[int, int], *, tile: int, scale: int = 1, batch: int = 1) -> int:
    """Bytes of the float32 arrays :func:`iter_tiled` holds (input, padded copy, output, weights, tiles).

    Excludes the network's own activations (which scale with ``batch * tile**2``).

    Parameters
    ----------
    shape : (int, int)
        Plane shape (H, W) in input px.
    tile : int
        Tile side in input px; 0 = the whole plane (counted as a ``max(H, W)`` square).
    scale : int
        Output pixels per input pixel.
    batch : int
        Tiles per call of the network.

    Returns
    -------
    int
        Estimate in bytes.
    """
    h, w = shape
    plane = h * w * 4
    out = h * w * scale * scale * 4
    tiles = batch * (tile or max(h, w)) ** 2 * 4 * (1 + 2 * scale * scale)
    return int(2 * plane + 2 * out + tiles)


__all__ = ["TilePlan", "TileFunction", "guard_width", "iter_tiled", "overlap_for_radius", "pad_plane", "plan_tiles",
           "process_tiled", "tile_memory_bytes"]
