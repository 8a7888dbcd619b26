"""A bioimage.io package's domain check: the image's pixel size against the one its axes declare, with the
run folder check's tolerated ratio (engine.learn.domain.PIXEL_SIZE_RATIO)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from decongan.engine.learn.bioimageio_describe import check_bioimageio_pixel_size
from decongan.engine.learn.domain import PIXEL_SIZE_RATIO


def test_a_pixel_size_outside_the_tolerated_ratio_warns_with_both_sizes():
    package = SimpleNamespace(pixel_size_um=0.2)
    check = check_bioimageio_pixel_size(package, 0.1)
    assert check.measurements["pixel_size_ratio"] == pytest.approx(0.5)
    assert check.warnings == ["pixel size 0.1 um is 0.50x the package's declared pixel size 0.2 um (outside "
                              "0.8-1.25x): the objects' size in pixels differs from what the model was made for"]
    assert PIXEL_SIZE_RATIO == (0.8, 1.25)
    # at the edges of the ratio: no warning; inside but more than 1 % off: a note (run as it is, not resampled)
    for pixel in (0.2 * 0.8, 0.2 * 1.25):
        assert check_bioimageio_pixel_size(package, pixel).warnings == []
    near = check_bioimageio_pixel_size(package, 0.21)
    assert near.warnings == [] and "differs from the package's 0.2 um by 5 %" in near.notes[-1]
    same = check_bioimageio_pixel_size(package, 0.2)
    assert same.warnings == [] and same.notes == ["intensity not checked: a bioimage.io package records no "
                                                  "statistics of its training inputs"]


def test_an_unknown_pixel_size_on_either_side_is_said():
    assert check_bioimageio_pixel_size(SimpleNamespace(pixel_size_um=0.2), None).warnings == [
        "the image states no pixel size, so it cannot be compared with the package's declared pixel size 0.2 um; "
        "give the pixel size"]
    check = check_bioimageio_pixel_size(SimpleNamespace(pixel_size_um=None), 0.1)
    assert check.warnings == [] and "declares no pixel size" in check.notes[-1]
    assert "pixel_size_ratio" not in check.measurements
