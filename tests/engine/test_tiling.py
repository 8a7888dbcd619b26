"""Tile plans and blending: aligned origins, enough overlap, weights that sum to one, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.learn.tiling import plan_tiles, process_tiled, tile_memory_bytes


@pytest.mark.parametrize(("shape", "tile", "overlap", "multiple"), [
    ((300, 517), 128, 32, 16), ((1000, 77), 256, 64, 16), ((513, 513), 100, 30, 1), ((64, 64), 32, 8, 8),
])
def test_plan_covers_the_plane_with_aligned_tiles_and_the_requested_overlap(shape, tile, overlap, multiple):
    plan = plan_tiles(shape, tile=tile, overlap=overlap, multiple=multiple)
    assert plan.shape[0] % multiple == 0 and plan.shape[1] % multiple == 0
    assert plan.shape[0] >= shape[0] and plan.shape[1] >= shape[1]
    for starts, size, length in ((plan.starts_y, plan.tile[0], plan.shape[0]), (plan.starts_x, plan.tile[1], plan.shape[1])):
        assert size % multiple == 0 and size <= max(tile, multiple)
        assert starts[0] == 0 and starts[-1] + size == length
        assert all(s % multiple == 0 for s in starts)
        gaps = np.diff(starts)
        if len(starts) > 1:
            assert (size - gaps >= plan.overlap).all()  # every neighbour pair overlaps at least `overlap`


def _upsample(scale):
    return lambda batch: np.repeat(np.repeat(batch, scale, axis=1), scale, axis=2)


@pytest.mark.parametrize(("shape", "tile", "overlap", "multiple", "scale"), [
    ((300, 517), 128, 32, 16, 1), ((200, 77), 64, 16, 16, 2), ((130, 140), 48, 24, 4, 3),
])
def test_blending_weights_sum_to_one(shape, tile, overlap, multiple, scale):
    """A pointwise function must come out unchanged: the blended weights are a partition of unity."""
    image = np.random.default_rng(0).random(shape).astype(np.float32) * 1000
    fn = _upsample(scale)
    tiled = process_tiled(image, fn, tile=tile, overlap=overlap, multiple=multiple, scale=scale, batch=3)
    np.testing.assert_allclose(tiled, fn(image[None])[0], rtol=1e-6, atol=1e-4)


def test_window_is_zero_next_to_interior_edges_and_one_inside():
    plan = plan_tiles((256, 256), tile=128, overlap=64, multiple=16)
    first = plan.window(0, 0)
    assert first[0, 0] == 1.0  # image border: full weight
    assert (first[:, -16:] == 0).all() and (first[-16:, :] == 0).all()  # guard band of overlap // 4
    assert first[:64, :64].min() == 1.0


def test_tile_zero_means_whole_plane_and_a_tile_not_larger_than_the_overlap_is_refused():
    plan = plan_tiles((123, 45), tile=0, overlap=64, multiple=16)
    assert plan.is_whole and plan.shape == (128, 48)
    with pytest.raises(ValueError, match="must exceed the overlap"):
        plan_tiles((512, 512), tile=64, overlap=64, multiple=16)


def test_tile_function_with_a_wrong_shape_is_reported():
    with pytest.raises(ValueError, match="expected"):
        process_tiled(np.zeros((64, 64)), lambda b: b[:, :10], tile=32, overlap=8)


def test_memory_of_a_3072_plane_with_512_tiles_is_far_below_4_gib():
    bytes_needed = tile_memory_bytes((3072, 3072), tile=512, scale=1)
    assert bytes_needed < 0.25 * 2**30  # arrays of the tiling itself; the network adds one tile's activations
    assert tile_memory_bytes((3072, 3072), tile=0) > bytes_needed
