"""The Fiji adapters (decongan.app.fiji) with a fake bridge client: the exact blocks, PSFs, pixel sizes
and parameters they send, and the engine's quality rule applied to what comes back."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from decongan.app.fiji.client import FijiUnavailable
from decongan.app.fiji.crosscheck import read_turboreg_transform
from decongan.app.fiji.deconvolve import fiji_deconvolve_image
from decongan.app.fiji.register import iter_fiji_register
from decongan.engine.io import MicroscopyImage
from decongan.engine.optics.psf import psf_focal_plane
from decongan.engine.optics.registration import (
    RegistrationError,
    Transform2D,
    apply_transform,
    normalised_cross_correlation,
)
from decongan.engine.progress import drain
from tests.app.fake_fiji import FakeFijiClient, install


def _psf3d(nz: int = 5, n: int = 7) -> np.ndarray:
    z = np.hanning(nz + 2)[1:-1]
    yx = np.outer(np.hanning(n + 2)[1:-1], np.hanning(n + 2)[1:-1])
    return (z[:, None, None] * yx[None]).astype(np.float32)


def test_tzcyx_with_a_3d_psf_sends_one_zyx_volume_per_time_point_and_channel(monkeypatch):
    fake = install(monkeypatch)
    rng = np.random.default_rng(0)
    data = rng.uniform(1, 100, (2, 4, 3, 32, 32)).astype(np.float32)
    image = MicroscopyImage(data, "TZCYX", pixel_size_um=0.1, z_step_um=0.3)
    psf = _psf3d()
    result = fiji_deconvolve_image(image, psf, iterations=7)  # no client given: the injected get_client
    assert len(fake.rl_calls) == 6
    expected_order = [(t, c) for t in range(2) for c in range(3)]
    for call, (t, c) in zip(fake.rl_calls, expected_order, strict=True):
        assert call["image"].shape == (4, 32, 32)  # Z planes of one channel, never (C, Y, X)
        np.testing.assert_array_equal(call["image"], data[t, :, c])
        np.testing.assert_array_equal(call["psf"], psf)
        assert call["iterations"] == 7 and call["tv_lambda"] is None
    np.testing.assert_array_equal(result.image.data, 2 * data)  # every block back in its place
    assert result.image.axes == "TZCYX" and result.image.z_step_um == pytest.approx(0.3)
    parameters = result.provenance.parameters
    assert parameters["blocks"] == 6 and parameters["volume_axes"] == "ZYX"
    assert parameters["edges"] == "circular" and "DeconvolutionLab2" in parameters["convention"]
    assert parameters["fiji_macro"].startswith('run("DeconvolutionLab2 Run"') and "RL 7" in parameters["fiji_macro"]
    assert result.provenance.backend == "fake-fiji (test)"


def test_z_stack_with_a_2d_psf_goes_plane_by_plane_and_per_channel_psfs_stay_with_their_channel(monkeypatch):
    fake = install(monkeypatch)
    rng = np.random.default_rng(1)
    data = rng.uniform(1, 50, (3, 2, 16, 16)).astype(np.float32)
    image = MicroscopyImage(data, "ZCYX", pixel_size_um=0.1, z_step_um=0.3)
    psfs = [np.outer(np.hanning(5), np.hanning(5)).astype(np.float32),
            np.outer(np.hanning(7), np.hanning(7)).astype(np.float32)]
    result = fiji_deconvolve_image(image, psfs, iterations=2, tv_lambda=0.01)
    assert [call["image"].shape for call in fake.rl_calls] == [(16, 16)] * 6
    for call, (c, z) in zip(fake.rl_calls, [(c, z) for c in range(2) for z in range(3)], strict=True):
        np.testing.assert_array_equal(call["image"], data[z, c])
        np.testing.assert_array_equal(call["psf"], psfs[c])
        assert call["tv_lambda"] == 0.01
    np.testing.assert_array_equal(result.image.data, 2 * data)
    assert any("plane by plane" in note for note in result.provenance.notes)


def test_2d_image_with_a_3d_psf_sends_the_in_focus_plane(monkeypatch):
    fake = install(monkeypatch)
    data = np.random.default_rng(2).uniform(1, 50, (2, 24, 24)).astype(np.float32)
    psf = _psf3d(nz=5, n=9)
    fiji_deconvolve_image(MicroscopyImage(data, "CYX", pixel_size_um=0.1), psf, iterations=1)
    assert len(fake.rl_calls) == 2
    for c, call in enumerate(fake.rl_calls):
        np.testing.assert_array_equal(call["image"], data[c])
        np.testing.assert_array_equal(call["psf"], psf_focal_plane(psf).astype(np.float32))
        assert call["psf"].shape == (9, 9)


def test_wrong_psf_count_is_refused_before_fiji_runs(monkeypatch):
    fake = install(monkeypatch)
    image = MicroscopyImage(np.ones((3, 16, 16), np.float32), "CYX", pixel_size_um=0.1)
    kernel = np.outer(np.hanning(5), np.hanning(5)).astype(np.float32)
    with pytest.raises(ValueError, match="2 PSFs were given for an image with 3 channels"):
        fiji_deconvolve_image(image, [kernel, kernel], iterations=1)
    assert fake.rl_calls == []


# -- registration ------------------------------------------------------------------------------------

def _bin2(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    return image.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).astype(np.float32)


def test_pixel_sizes_resample_the_moving_image_and_the_scale_is_folded_in(monkeypatch, golden_dir):
    fixed = tifffile.imread(golden_dir / "reg_target_256.tif").astype(np.float32)
    moving = _bin2(fixed)  # a x2 binned scan of the same field: 0.318 um pixels vs 0.159 um
    fake = install(monkeypatch)  # "TurboReg" finds the identity on what it is given
    result = drain(iter_fiji_register(moving=moving, fixed=fixed, transform="rigid", moving_pixel_size_um=0.318,
                                      fixed_pixel_size_um=0.159, min_ncc=0.5))
    (call,) = fake.register_calls
    assert call["moving"].shape == (256, 256) and call["transform"] == "rigid"  # resampled to the fixed pixel size
    np.testing.assert_array_equal(call["fixed"], fixed)
    assert result.transform.scale == pytest.approx(2.0, abs=1e-12)
    assert result.transform.angle_deg == pytest.approx(0.0, abs=1e-12)
    assert result.transform.moving_shape == (128, 128)
    naive, naive_mask = apply_transform(moving, Transform2D.same_field_of_view(fixed.shape, moving.shape))
    assert result.ncc_before == pytest.approx(normalised_cross_correlation(fixed, naive, naive_mask), abs=1e-12)
    assert result.ncc_after > 0.95  # before the fix: scale 1, the binned image on a quarter of the grid
    assert any("resampled by x2" in note for note in result.details["notes"])


def test_a_failed_fiji_registration_is_refused_with_the_engines_rule(monkeypatch, golden_dir):
    fixed = tifffile.imread(golden_dir / "reg_target_256.tif").astype(np.float32)
    moving = tifffile.imread(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif").astype(np.float32)
    install(monkeypatch, FakeFijiClient(turboreg_matrix=np.array([[60.0, 1.0, 0.0], [-45.0, 0.0, 1.0]])))
    with pytest.raises(RegistrationError, match=r"registration failed: .*NCC") as caught:
        drain(iter_fiji_register(moving=moving, fixed=fixed, transform="rigid", min_ncc=0.5))
    assert caught.value.result is not None and caught.value.result.ncc_after < 0.5


def test_min_ncc_is_the_callers_threshold(monkeypatch, golden_dir):
    fixed = tifffile.imread(golden_dir / "reg_target_256.tif").astype(np.float32)
    moving = tifffile.imread(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif").astype(np.float32)
    golden = read_turboreg_transform(golden_dir / "turboreg_rigidBody_transform.txt")
    install(monkeypatch, FakeFijiClient(turboreg_matrix=golden))
    result = drain(iter_fiji_register(moving=moving, fixed=fixed, transform="rigid", min_ncc=0.5))
    assert result.ncc_after > 0.998
    with pytest.raises(RegistrationError, match=r"NCC 0\.99\d < 0\.9999"):
        drain(iter_fiji_register(moving=moving, fixed=fixed, transform="rigid", min_ncc=0.9999))


def test_unavailable_fiji_raises_before_anything_is_sent(monkeypatch):
    from decongan.app.fiji import client as fiji_client

    def unavailable(fiji_dir=None, **_):
        raise FijiUnavailable("no Fiji/ImageJ backend: test")

    monkeypatch.setattr(fiji_client, "get_client", unavailable)
    image = MicroscopyImage(np.ones((16, 16), np.float32), "YX", pixel_size_um=0.1)
    with pytest.raises(FijiUnavailable, match="no Fiji/ImageJ backend: test"):
        fiji_deconvolve_image(image, np.ones((3, 3), np.float32), iterations=1)


def test_the_fiji_registration_takes_its_images_by_keyword_like_the_engine():
    """A positional (moving, fixed) call fails before anything runs, so the two cannot be swapped."""
    from decongan.imagej_bridge.client import FijiClient

    image = np.zeros((16, 16), np.float32)
    with pytest.raises(TypeError, match="positional argument"):
        iter_fiji_register(image, image)
    with pytest.raises(TypeError, match="positional argument"):
        FijiClient.register(object(), image, image)  # type: ignore[arg-type]
