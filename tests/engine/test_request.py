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


# ---------------------------------------------------------------------------------------------
# Optics with sources
# ---------------------------------------------------------------------------------------------
def _image(axes="ZYX", shape=(5, 16, 16), pixel_um=0.1, z_um=0.2, path="/data/cells.tif"):
    from pathlib import Path

    from decongan.engine.io import MicroscopyImage

    return MicroscopyImage(np.ones(shape, np.float32), axes, pixel_size_um=pixel_um, z_step_um=z_um,
                           path=Path(path) if path else None)


def test_optics_for_image_merges_user_values_over_metadata_and_records_sources():
    from decongan.engine.optics.request import Optics, Quantity

    optics = Optics.for_image(_image(), na=1.4, ni=Quantity(1.515, source="assumption", note="oil objective"),
                              wavelength_nm=520, z_step_nm=250)
    assert optics.pixel_nm == Quantity(100.0, "nm", "metadata")  # 0.1 um from the file
    assert optics.z_step_nm.value == 250.0 and optics.z_step_nm.source == "user"  # the user's wins over 0.2 um
    assert optics.na.source == "user" and optics.ni.source == "assumption"
    prov = optics.provenance()
    assert prov["pixel_nm"] == {"value": 100.0, "unit": "nm", "source": "metadata"}
    assert prov["ni"] == {"value": 1.515, "unit": "", "source": "assumption", "note": "oil objective"}
    assert optics.summary() == ("NA 1.4 (user), ni 1.515 (assumption), emission 520 nm (user), pixel 100 nm (metadata), "
                                "z step 250 nm (user)")


def test_optics_require_names_the_file_and_the_option():
    from decongan.engine.optics.request import Optics, OpticsError

    optics = Optics.for_image(_image(pixel_um=None), na=1.4, ni=1.515)
    with pytest.raises(OpticsError) as err:
        optics.require("na", "wavelength_nm", "pixel_nm")
    assert str(err.value) == ("/data/cells.tif: a Born & Wolf PSF needs the emission wavelength, lateral pixel size, "
                              "which are unknown (not in the file's metadata); give the emission wavelength in nm, the "
                              "lateral pixel size in nm (Python: wavelength_nm=, pixel_nm=)")
    assert err.value.missing == ("wavelength_nm", "pixel_nm")  # a front-end names its own options from these
    optics.require("na", "ni", "z_step_nm")  # known: no error


def test_optics_refuses_na_above_immersion_index():
    from decongan.engine.optics.request import Optics, OpticsError

    with pytest.raises(OpticsError) as err:
        Optics.for_image(_image(), na=1.4, ni=1.33)
    assert str(err.value) == ("/data/cells.tif: NA 1.4 (user) must be smaller than the immersion index ni 1.33 (user); "
                              "check the objective's numerical aperture and its immersion medium")
    with pytest.raises(ValueError, match="must be a positive number in nm, got -5"):
        Optics.for_image(_image(), pixel_nm=-5)


# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------
def test_settings_defaults_are_the_engine_defaults():
    import inspect

    from decongan.engine.optics.deconvolution import iter_deconvolve_image
    from decongan.engine.optics.request import DEFAULT_SETTINGS, DeconvolutionSettings

    assert DEFAULT_SETTINGS.edges == "padded" and DEFAULT_SETTINGS.iterations == 10
    assert DEFAULT_SETTINGS.initial == "input" and DEFAULT_SETTINGS.method == "rl"
    signature = inspect.signature(iter_deconvolve_image).parameters
    for key, value in DeconvolutionSettings().as_options().items():
        assert signature[key].default == value, key


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"edges": "wrap"}, "edges must be one of circular, padded, zero, got 'wrap'"),
    ({"iterations": -1}, "iterations must be a non-negative integer, got -1"),
    ({"method": "rltv", "tv_variant": "dl2"}, "tv_variant='dl2' reproduces DeconvolutionLab2 and needs edges='circular'"),
    ({"initial": 0}, "initial must be 'input', 'flat' or a positive number, got 0"),
    ({"device": "gpu"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
])
def test_settings_validation(kwargs, message):
    from decongan.engine.optics.request import DeconvolutionSettings

    with pytest.raises(ValueError) as err:
        DeconvolutionSettings(**kwargs)
    assert str(err.value) == message


# ---------------------------------------------------------------------------------------------
# psf_for_grid
# ---------------------------------------------------------------------------------------------
def _ring_energy(plane: np.ndarray, side: int) -> float:
    c = plane.shape[0] // 2
    h = side // 2
    return float(plane[c - h:c + h + 1, c - h:c + h + 1].sum(dtype=np.float64))


def test_psf_for_grid_2d_holds_99_percent_of_the_in_focus_energy_and_no_more_than_needed():
    from decongan.engine.optics.psf import born_wolf_psf
    from decongan.engine.optics.request import Optics, psf_for_grid

    optics = Optics(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100)
    psf = psf_for_grid(optics, yx_shape=(512, 512))
    assert psf.dtype == np.float32 and psf.ndim == 2 and psf.shape[0] % 2 == 1
    assert abs(float(psf.sum(dtype=np.float64)) - 1) < 1e-6
    # the same PSF on the image-sized reference square: the chosen square holds >= 99 %, 2 px less holds less
    reference = born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100, size=511, normalize="sum")
    n = psf.shape[0]
    assert _ring_energy(reference, n) >= 0.99 > _ring_energy(reference, n - 2)
    assert n == 55  # 2.75 um: ~3.2 lambda/NA each side of the axis
    small = psf_for_grid(optics, yx_shape=(6, 8))
    assert small.shape[0] <= 7 and small.shape[0] % 2 == 1  # capped by the image (largest odd <= 8)


def test_psf_for_grid_3d_is_not_as_deep_as_a_256_plane_stack():
    from decongan.engine.optics.request import Optics, psf_for_grid

    optics = Optics(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100, z_step_nm=200)
    psf = psf_for_grid(optics, yx_shape=(256, 256), nz=256)
    assert psf.shape == (21, 61, 61)  # not 256 (or 257) planes
    peaks = psf.reshape(psf.shape[0], -1).max(axis=1)
    assert int(np.argmax(peaks)) == 10 and peaks[0] >= 0.01 * peaks[10]  # outermost kept planes still >= 1 % of focus
    full = psf_for_grid(optics, yx_shape=(64, 64), nz=9, full_depth=True)
    assert full.shape[0] == 9
    with pytest.raises(ValueError, match="image: a Born & Wolf PSF needs the z step"):
        psf_for_grid(Optics(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100), yx_shape=(64, 64), nz=9)


def test_focal_plane_is_the_peak_plane_not_the_middle_one():
    from decongan.engine.optics.request import focal_plane

    psf = np.zeros((6, 5, 5), np.float32)
    psf[1, 2, 2] = 1.0
    psf[3, 2, 2] = 0.5  # the middle plane (6 // 2 = 3) is not the focus
    assert focal_plane(psf) is not None and float(focal_plane(psf)[2, 2]) == 1.0
