"""Microscopy I/O: round trips with calibration, real files, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from decongan.engine.io import (
    ImageReadError,
    ImageWriteError,
    MicroscopyImage,
    list_images,
    read_image,
    write_tiff,
)


def test_float32_2d_round_trip_keeps_values_and_pixel_size(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(100, 30, (37, 53)).astype(np.float32)
    path = write_tiff(tmp_path / "a.tif", data, pixel_size_um=0.159)
    img = read_image(path)
    assert img.axes == "YX"
    assert img.data.dtype == np.float32
    np.testing.assert_array_equal(img.data, data)
    assert img.pixel_size_um == pytest.approx(0.159, rel=1e-6)
    assert img.z_step_um is None


def test_uint16_3d_round_trip_is_an_imagej_hyperstack_with_z_spacing(tmp_path):
    data = np.arange(5 * 16 * 24, dtype=np.uint16).reshape(5, 16, 24) * 7
    path = write_tiff(tmp_path / "z.tif", data, axes="ZYX", pixel_size_um=0.5, z_step_um=0.2, dtype="uint16")
    with tifffile.TiffFile(path) as tif:  # what Fiji reads: ImageJ description with slices and spacing
        assert tif.is_imagej
        assert tif.imagej_metadata["slices"] == 5
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.2)
        assert tif.imagej_metadata["unit"] == "micron"
    img = read_image(path)
    assert img.axes == "ZYX" and img.data.dtype == np.uint16
    np.testing.assert_array_equal(img.data, data)
    assert (img.pixel_size_um, img.z_step_um) == (pytest.approx(0.5), pytest.approx(0.2))


def test_five_d_hyperstack_round_trip(tmp_path):
    data = np.random.default_rng(1).random((2, 3, 2, 8, 9)).astype(np.float32)
    path = write_tiff(tmp_path / "t.tif", data, axes="TZCYX", pixel_size_um=0.1, z_step_um=0.3, time_interval_s=2.0)
    img = read_image(path)
    assert img.axes == "TZCYX"
    np.testing.assert_array_equal(img.data, data)
    assert img.time_interval_s == pytest.approx(2.0)
    assert img.n_channels == 2 and img.n_z == 3 and img.n_t == 2
    planes = list(img.iter_planes())
    assert len(planes) == 12
    assert planes[5][0] == {"t": 0, "z": 2, "c": 1}
    np.testing.assert_array_equal(img.plane(t=1, z=2, c=0), data[1, 2, 0])


def test_write_uint16_refuses_to_clip(tmp_path):
    with pytest.raises(ImageWriteError, match=r"outside the uint16 range"):
        write_tiff(tmp_path / "neg.tif", np.array([[-1.0, 5.0]], np.float32), dtype="uint16")
    with pytest.raises(ImageWriteError, match=r"70000"):
        write_tiff(tmp_path / "big.tif", np.array([[70000.0, 5.0]]), dtype="uint16")
    assert not list(tmp_path.iterdir()), "a failed write must leave nothing behind"


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = write_tiff(tmp_path / "keep.tif", np.ones((4, 4), np.float32))
    with pytest.raises(ImageWriteError):
        write_tiff(path, np.full((4, 4), 1e6), dtype="uint16")
    np.testing.assert_array_equal(read_image(path).data, np.ones((4, 4), np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


def test_ome_tiff_physical_size_in_nm_is_converted_to_um(tmp_path):
    path = tmp_path / "x.ome.tif"
    data = np.zeros((3, 10, 12), np.uint16)
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 65.0, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 65.0, "PhysicalSizeYUnit": "nm", "PhysicalSizeZ": 0.25, "PhysicalSizeZUnit": "µm"})
    img = read_image(path)
    assert img.axes == "ZYX"
    assert img.pixel_size_um == pytest.approx(0.065)
    assert img.z_step_um == pytest.approx(0.25)
    assert img.name == "x"


def test_user_overrides_axes_and_calibration(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((4, 8, 8), np.uint16), photometric="minisblack")
    assert read_image(path).axes == "ZYX"  # tifffile calls an unlabelled stack 'Q'/'I': read as Z by default
    img = read_image(path, axes="CYX", pixel_size_um=0.2)
    assert img.axes == "CYX" and img.pixel_size_um == 0.2 and img.n_channels == 4


def test_real_neubias_stack_calibration(shared_data):
    img = read_image(shared_data / "neubias_widefield_vs_confocal_3d" / "lq" / "nucleus_widefield.tif")
    assert img.axes == "ZYX" and img.data.shape == (45, 130, 133) and img.data.dtype == np.uint16
    assert img.pixel_size_um == pytest.approx(0.512, abs=1e-3)
    assert img.z_step_um == pytest.approx(0.4994, abs=1e-3)


def test_real_png_pair_reads_as_grey_uint8(shared_data):
    folder = shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq"
    files = list_images(folder)
    assert len(files) == 14 and files[0].name == "fov01.png"
    img = read_image(files[0])
    assert img.axes == "YX" and img.data.shape == (512, 512) and img.data.dtype == np.uint8
    assert img.require_single_channel() is img


def test_real_hela_rgb_tiff_is_read_as_channels(shared_data):
    img = read_image(shared_data / "other_fluorescence" / "neubias_xyc_16bit__hela-cells.tif")
    assert img.axes == "CYX" and img.n_channels == 3 and img.data.dtype == np.uint16
    with pytest.raises(ImageReadError, match="3 channels"):
        img.require_single_channel()


# -- bad input: every error names the file and the problem -----------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"nope\.tif: file not found"):
        read_image(tmp_path / "nope.tif")


def test_empty_file(tmp_path):
    (tmp_path / "e.tif").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"e\.tif: is empty"):
        read_image(tmp_path / "e.tif")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("these are my lab notes, not a TIFF\n" * 20)
    with pytest.raises(ImageReadError, match=r"notes\.tif: is not a TIFF image"):
        read_image(path)
    png = tmp_path / "fake.png"
    png.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(ImageReadError, match=r"fake\.png: is not a readable image"):
        read_image(png)


def test_truncated_tiff(tmp_path):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, np.random.default_rng(0).integers(0, 60000, (256, 256), dtype=np.uint16))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[: 256 * 256])  # half the pixel bytes
    with pytest.raises(ImageReadError, match=r"cut\.tif: .*(truncated|corrupt|not a TIFF)"):
        read_image(cut)


def test_rgb_png_where_grey_is_needed(tmp_path):
    import imageio.v3 as iio

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 1] = 10
    path = tmp_path / "colour.png"
    iio.imwrite(path, rgb)
    img = read_image(path)
    assert img.metadata["rgb"] and img.axes == "CYX"
    with pytest.raises(ImageReadError, match=r"colour\.png: is an RGB colour image"):
        img.require_single_channel()
    grey_rgb = np.repeat(np.arange(64, dtype=np.uint8).reshape(8, 8, 1), 3, axis=2)
    iio.imwrite(tmp_path / "grey.png", grey_rgb)
    assert read_image(tmp_path / "grey.png").axes == "YX"


def test_nan_and_inf_are_rejected(tmp_path):
    data = np.ones((6, 6), np.float32)
    data[1, 1] = np.nan
    data[2, 2] = np.inf
    path = write_tiff(tmp_path / "nan.tif", data)
    with pytest.raises(ImageReadError, match=r"nan\.tif: contains 2 non-finite values \(1 NaN, 1 Inf\)"):
        read_image(path)
    assert np.isnan(read_image(path, allow_nonfinite=True).data[1, 1])


def test_zero_size_image(tmp_path):
    path = tmp_path / "zero.tif"
    tifffile.imwrite(path, np.zeros((0, 5), np.float32))
    with pytest.raises(ImageReadError, match=r"zero\.tif: (contains no pixels|TIFF)"):
        read_image(path)


def test_six_d_is_rejected(tmp_path):
    path = tmp_path / "six.tif"
    tifffile.imwrite(path, np.zeros((2, 2, 2, 2, 4, 4), np.uint8))
    with pytest.raises(ImageReadError, match=r"six\.tif: has 6 non-trivial dimensions"):
        read_image(path)


def test_microscopy_image_validates_axes():
    with pytest.raises(ValueError, match="TZCYX"):
        MicroscopyImage(np.zeros((2, 3, 4)), axes="YZX")


def test_atomic_outputs_get_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = write_tiff(tmp_path / "perm.tif", np.zeros((4, 4), np.float32))
    finally:
        os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_uncalibrated_write_reads_back_uncalibrated(tmp_path):
    img = read_image(write_tiff(tmp_path / "u.tif", np.zeros((5, 6), np.float32)))
    assert img.pixel_size_um is None and img.z_step_um is None


def test_multichannel_refusal_says_it_in_words():
    """The engine names no command-line option: 'choose one (e.g. channel 0)', never '--channel 0'."""
    from pathlib import Path

    from decongan.engine.io import ImageReadError, MicroscopyImage

    image = MicroscopyImage(data=np.zeros((3, 4, 4), np.float32), axes="CYX", path=Path("/data/cells.tif"))
    with pytest.raises(ImageReadError) as err:
        image.require_single_channel()
    assert str(err.value).endswith("has 3 channels; choose one (e.g. channel 0) or process them separately")
    assert "--" not in str(err.value)
