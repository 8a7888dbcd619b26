"""The real worker with Debian's ImageJ 1.x: exact transfers, real ImageJ operations, errors, recovery."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from scipy import ndimage

from decongan.imagej_bridge import errors
from decongan.imagej_bridge.macros import quote_string

RNG = np.random.default_rng(20240607)


def smooth_test_image(shape=(96, 128)) -> np.ndarray:
    """Spots and a ramp on a photon-like scale (structure at every scale, no flat areas)."""
    image = RNG.poisson(20.0, shape).astype(np.float32)
    image[shape[0] // 3, shape[1] // 4] += 500
    image[2 * shape[0] // 3, 3 * shape[1] // 4] += 300
    image += np.linspace(0, 50, shape[1], dtype=np.float32)[None, :]
    return image


# -- exact transfers ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "uint16", "uint8"])
@pytest.mark.parametrize("shape", [(37, 53), (4, 21, 19)])
def test_round_trip_is_bit_exact(ij1_client, dtype, shape):
    info = np.iinfo(dtype) if dtype != "float32" else None
    if info is None:
        data = RNG.normal(size=shape).astype(np.float32) * 1e3
        flat = data.reshape(-1)
        flat[:6] = [np.nan, np.inf, -np.inf, -0.0, np.float32(1e-45), np.finfo(np.float32).max]
    else:
        data = RNG.integers(0, int(info.max) + 1, size=shape, dtype=dtype)
        data.reshape(-1)[:2] = [0, info.max]  # full range, incl. values that are negative as Java shorts/bytes
    from decongan.imagej_bridge import ImageArray

    sent = ImageArray(data, pixel_size_um=0.159, z_step_um=0.2 if len(shape) == 3 else None)
    back = ij1_client.echo({"img": sent})["img"]
    assert back.data.dtype == data.dtype and back.data.shape == data.shape
    assert np.array_equal(back.data.view(f"u{data.itemsize}"), data.view(f"u{data.itemsize}"))  # bits, NaN included
    assert back.pixel_size_um == pytest.approx(0.159)
    assert back.z_step_um == (pytest.approx(0.2) if len(shape) == 3 else None)


def test_calibration_reaches_imagej(ij1_client):
    from decongan.imagej_bridge import ImageArray

    image = ImageArray(np.zeros((8, 10, 12), np.float32), pixel_size_um=0.065, z_step_um=0.3)
    macro = 'getVoxelSize(w, h, d, unit); return "" + w + " " + h + " " + d + " " + unit + " " + nSlices;'
    result = ij1_client.run_macro(macro, {"stack": image}).result
    assert result.split() == ["0.065", "0.065", "0.3", "microns", "8"]  # getVoxelSize gives the plural


# -- real ImageJ operations -----------------------------------------------------------------------

def test_gaussian_blur_matches_scipy(ij1_client):
    """ImageJ's Gaussian Blur extends edge pixels (scipy mode="nearest") and, for float images, uses a
    kernel long enough (down to 2e-4 of its peak, tail smoothed, then normalised) to agree with an
    exact Gaussian: measured 1.4e-7 of the image range at sigma 2 (limit here 1e-6)."""
    image = smooth_test_image()
    out = ij1_client.run_macro('run("Gaussian Blur...", "sigma=2");', {"img": image}, ["img"]).images["img"].data
    expected = ndimage.gaussian_filter(image.astype(np.float64), sigma=2.0, mode="nearest", truncate=8.0)
    scale = float(image.max() - image.min())
    assert np.abs(out - expected).max() < 1e-6 * scale
    # a real blur happened (far from the input), and a wrong sigma would be caught
    assert np.abs(out - image).max() > 0.1 * scale
    wrong = ndimage.gaussian_filter(image.astype(np.float64), sigma=2.2, mode="nearest", truncate=8.0)
    assert np.abs(out - wrong).max() > 20 * np.abs(out - expected).max()


def test_gaussian_blur_scaled_units_use_calibration(ij1_client):
    """sigma=0.318 "scaled" on 0.159 um pixels is sigma 2 px: proves the calibration travelled."""
    from decongan.imagej_bridge import ImageArray

    image = smooth_test_image((64, 64))
    macro = 'run("Gaussian Blur...", "sigma=0.318 scaled");'
    out = ij1_client.run_macro(macro, {"img": ImageArray(image, pixel_size_um=0.159)}, ["img"]).images["img"].data
    in_pixels = ij1_client.run_macro('run("Gaussian Blur...", "sigma=2");', {"img": image}, ["img"]).images["img"].data
    np.testing.assert_allclose(out, in_pixels, rtol=0, atol=1e-4)


def test_plugin_from_plugins_folder_with_jar_dependency(ij1_client):
    """Add Constant (plugins/Test_Plugins.jar) calls a helper class from plugins/jars/."""
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = ij1_client.run_macro('run("Add Constant", "value=2.5");', {"x": image}, ["x"]).images["x"].data
    np.testing.assert_array_equal(out, image + 2.5)


def test_plugin_with_dialog(ij1_client):
    """A GenericDialog answered by macro options: works with a display; headless it is a clear NeedsDisplay."""
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    macro = 'run("Scale By Factor", "factor=3");'
    if ij1_client.info["headless"]:
        with pytest.raises(errors.NeedsDisplay, match="Xvfb"):
            ij1_client.run_macro(macro, {"x": image}, ["x"])
    else:
        out = ij1_client.run_macro(macro, {"x": image}, ["x"]).images["x"].data
        np.testing.assert_array_equal(out, image * 3)


def test_macro_return_value_and_log(ij1_client):
    result = ij1_client.run_macro('print("hello from ImageJ"); return "" + (6 * 7);')
    assert result.result == "42"
    assert "hello from ImageJ" in result.log


# -- errors -----------------------------------------------------------------------------------------

def test_macro_syntax_error_carries_imagej_message(ij1_client):
    with pytest.raises(errors.MacroError) as caught:
        ij1_client.run_macro("x = 1 / ;")
    assert "Number or numeric function expected" in caught.value.message


def test_unknown_command_is_a_macro_error(ij1_client):
    with pytest.raises(errors.MacroError, match='Unrecognized command: "No Such Command 123"'):
        ij1_client.run_macro(f"run({quote_string('No Such Command 123')});")


def test_exit_with_message_is_an_error(ij1_client):
    with pytest.raises(errors.MacroError, match="stopped on purpose"):
        ij1_client.run_macro('exit("stopped on purpose");')


def test_missing_output_names_the_open_images(ij1_client):
    with pytest.raises(errors.MacroError, match=r"no image titled 'result'.*'input'"):
        ij1_client.run_macro("x = 1;", {"input": np.zeros((4, 4), np.float32)}, ["result"])


def test_bad_dtype_is_refused_before_sending(ij1_client):
    with pytest.raises(TypeError, match="float32, uint16 or uint8"):
        ij1_client.echo({"x": np.zeros((4, 4), np.float64)})


def test_missing_plugins_raise_plugin_missing_with_install_hint(ij1_client):
    image = smooth_test_image((32, 32))
    with pytest.raises(errors.PluginMissing, match="PSF Generator.*psfgenerator"):
        ij1_client.born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=159, size=33)
    with pytest.raises(errors.PluginMissing, match="DeconvolutionLab2.*update site"):
        ij1_client.richardson_lucy(image, np.ones((5, 5), np.float32), iterations=3)
    with pytest.raises(errors.PluginMissing, match="TurboReg.*BIG-EPFL"):
        ij1_client.register(moving=image, fixed=image, transform="rigid")
    assert ij1_client.ping() < 5  # the worker survived all three


def test_describe_reports_versions_and_plugins(ij1_client):
    info = ij1_client.describe()
    assert info["imagej_version"].startswith("1.")
    assert info["java_version"].split(".")[0].isdigit()
    assert info["plugins_dir"] and info["plugins_dir"].rstrip("/").endswith("plugins")
    assert set(info["plugins"]) == {"psf_generator", "deconvolutionlab2", "turboreg", "stackreg", "sift"}
    assert not any(p["present"] for p in info["plugins"].values())


# -- recovery ---------------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_killed_worker_is_replaced_by_the_next_call(fresh_client):
    first = fresh_client.start()["pid"]
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    assert fresh_client.ping() < 30
    assert fresh_client.pid not in (None, first)


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_worker_killed_during_a_request_raises_crashed(fresh_client):
    fresh_client.start()
    pid = fresh_client.pid
    threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(errors.WorkerCrashed, match="signal 9"):
        fresh_client.run_macro("wait(20000);", timeout=60)
    result = fresh_client.run_macro('return "alive";').result
    assert result == "alive" and fresh_client.pid != pid


def test_timeout_kills_and_replaces_the_worker(fresh_client):
    fresh_client.start()
    pid = fresh_client.pid
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):  # errors.WorkerTimeout is a TimeoutError
        fresh_client.run_macro("wait(30000);", timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert fresh_client.pid is None  # killed
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert fresh_client.run_macro('return "next";').result == "next"


def test_cancel_from_another_thread(fresh_client):
    fresh_client.start()
    threading.Timer(0.5, fresh_client.cancel).start()
    with pytest.raises(errors.WorkerCancelled):
        fresh_client.run_macro("wait(30000);", timeout=60)
    assert fresh_client.ping() < 30
