"""The request layer: block planner, optics with sources, deconvolution settings, PSF for an image grid."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.optics.request import Block, plan_blocks


# ---------------------------------------------------------------------------------------------
# plan_blocks
# ---------------------------------------------------------------------------------------------
def test_tzcyx_with_3d_psf_gives_one_zyx_volume_per_t_and_c():
    shape = (2, 5, 3, 64, 64)
    blocks = plan_blocks("TZCYX", shape, 3)
    assert len(blocks) == 6
    expected = [(t, c) for t in range(2) for c in range(3)]
    data = np.arange(np.prod(shape)).reshape(shape)
    for block, (t, c) in zip(blocks, expected, strict=True):
        assert block.index == (t, slice(None), c, slice(None), slice(None))
        assert block.channel == c and block.t == t and block.z is None
        assert block.axes == "ZYX" and block.psf == "as_is"
        # the block is the Z stack of that channel: channels never become Z planes
        assert data[block.index].shape == (5, 64, 64)
        np.testing.assert_array_equal(data[block.index], data[t, :, c])


def test_zyx_with_2d_psf_is_plane_by_plane():
    blocks = plan_blocks("ZYX", (4, 8, 8), [2])
    assert [b.index for b in blocks] == [(z, slice(None), slice(None)) for z in range(4)]
    assert {b.axes for b in blocks} == {"YX"} and [b.z for b in blocks] == [0, 1, 2, 3]


def test_2d_image_with_3d_psf_uses_the_focal_plane():
    (block,) = plan_blocks("YX", (32, 32), 3)
    assert block == Block((slice(None), slice(None)), 0, "YX", "focal_plane", None, None)
    blocks = plan_blocks("CYX", (2, 32, 32), [3, 2])
    assert [(b.index[0], b.psf) for b in blocks] == [(0, "focal_plane"), (1, "as_is")]


def test_mixed_psf_dimensions_per_channel():
    blocks = plan_blocks("ZCYX", (3, 2, 8, 8), [3, 2])
    assert [(b.channel, b.axes, b.z) for b in blocks] == [(0, "ZYX", None), (1, "YX", 0), (1, "YX", 1), (1, "YX", 2)]
    assert blocks[2].index == (1, 1, slice(None), slice(None))


@pytest.mark.parametrize(("args", "message"), [
    (("ZTYX", (2, 2, 8, 8), 3), "axes 'ZTYX' must be a subset of 'TZCYX' in that order, ending with 'YX'"),
    (("ZYX", (2, 8), 3), "axes 'ZYX' do not match a shape of 2 dimensions (2, 8)"),
    (("CYX", (3, 8, 8), [3, 3]), "2 PSFs were given for an image with 3 channels (give 1 or 3)"),
    (("YX", (8, 8), 4), "a PSF must be 2-D (YX) or 3-D (ZYX), got a 4-D one"),
])
def test_plan_blocks_errors(args, message):
    with pytest.raises(ValueError) as err:
        plan_blocks(*args)
    assert str(err.value) == message
