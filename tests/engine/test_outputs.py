"""engine.outputs: output safety checks (refuse before computing), Unicode-keeping names, memory estimate."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from decongan.engine import outputs
from decongan.engine.io import ImageReadError, MicroscopyImage, read_image, safe_stem
from decongan.engine.outputs import (
    MemoryEstimateError,
    OutputError,
    check_distinct,
    check_memory,
    check_new_file,
    check_not_inside,
    check_results_folder,
    check_writable,
    safe_filename,
)


def test_safe_filename_keeps_unicode_and_strips_only_illegal_characters():
    assert safe_filename("Kern 日本") == "Kern 日本"
    assert safe_filename("Kern 中国") == "Kern 中国"
    assert safe_filename("a/b\0c") == "a_b_c"
    assert safe_filename('a<b>c:d"e\\f|g?h*i', windows=False) == 'a<b>c:d"e\\f|g?h*i'
    assert safe_filename('a<b>c:d"e\\f|g?h*i', windows=True) == "a_b_c_d_e_f_g_h_i"
    assert safe_filename("..") == "image" and safe_filename(".hidden") == "hidden"
    assert safe_filename("line\nbreak") == "line_break"


def test_safe_stem_keeps_letters_of_every_script():
    assert safe_stem("Kern 日本") == "Kern_日本" != safe_stem("Kern 中国")
    assert safe_stem("RL 5 it (engine)") == "RL_5_it_engine"


def test_check_distinct_refuses_a_collision_and_names_both_sources(tmp_path):
    check_distinct([("a.tif", tmp_path / "a_s1.tif"), ("b.tif", tmp_path / "b_s1.tif")])
    with pytest.raises(OutputError) as err:
        check_distinct([("in/Kern.tif", tmp_path / "Kern_s1.tif"), ("in/kern.TIF", tmp_path / "kern_s1.tif")])
    assert "in/Kern.tif and in/kern.TIF would both be written to" in str(err.value)
    assert "one result would be lost" in str(err.value)


def test_check_new_file_refuses_an_existing_file_unless_overwrite(tmp_path):
    existing = tmp_path / "x.tif"
    existing.write_bytes(b"keep")
    with pytest.raises(OutputError, match=r"x\.tif exists; choose another name or allow overwriting to replace it"):
        check_new_file(existing)
    assert check_new_file(existing, overwrite=True) == existing
    assert existing.read_bytes() == b"keep"
    with pytest.raises(OutputError, match="is a folder"):
        check_new_file(tmp_path, overwrite=True)


def test_check_not_inside_refuses_the_input_folder_and_folders_inside_it(tmp_path):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    for out in (inputs, inputs / "sub", inputs / "new" / "deeper"):
        with pytest.raises(OutputError, match="input folder"):
            check_not_inside(out, [inputs])
    check_not_inside(tmp_path / "out", [inputs])
    check_not_inside(tmp_path / "in2", [inputs])  # a sibling whose name starts the same is fine


def test_check_results_folder(tmp_path):
    check_results_folder(tmp_path / "new")
    empty = tmp_path / "empty"
    empty.mkdir()
    check_results_folder(empty)
    (empty / "report.html").write_text("old")
    with pytest.raises(OutputError, match="already holds files"):
        check_results_folder(empty)
    check_results_folder(empty, overwrite=True)


def test_check_writable_refuses_a_folder_without_write_permission(tmp_path, monkeypatch):
    real_access = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    with pytest.raises(OutputError, match=r"locked is not writable, so the results cannot be written there"):
        check_writable(locked / "out", what="the results")


def test_check_writable_refuses_when_the_probe_file_cannot_be_created():
    # /proc is read-only even for root: os.access may say yes, the probe file says no
    with pytest.raises(OutputError, match="is not writable"):
        check_writable("/proc/decongan-out")


def test_check_writable_refuses_when_the_disk_is_too_full(tmp_path):
    free = outputs.shutil.disk_usage(tmp_path).free
    check_writable(tmp_path, need_bytes=1000)
    with pytest.raises(OutputError, match=r"GiB free but the output needs about"):
        check_writable(tmp_path, need_bytes=free * 2 + 2**30)


def test_check_memory(monkeypatch):
    monkeypatch.setattr(outputs, "available_memory", lambda: (2**30, "test bound"))
    check_memory(2**29, what="x", fix="y")
    with pytest.raises(MemoryEstimateError) as err:
        check_memory(3 * 2**30, what="reading a.tif", fix="crop it")
    assert str(err.value) == ("reading a.tif needs about 3.0 GiB of memory, but only 1.0 GiB is available "
                              "(test bound); crop it")
    available, bound = outputs.available_memory()
    assert available > 0 and bound


def _huge_header_tiff(path: Path, side: int) -> Path:
    """A 2 x 2 uint16 TIFF whose header claims side x side pixels."""
    tifffile.imwrite(path, np.zeros((2, 2), np.uint16))
    with tifffile.TiffFile(path) as tif:
        byteorder = tif.byteorder
        offsets = [tif.pages[0].tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
        types = [tif.pages[0].tags[name].dtype for name in ("ImageWidth", "ImageLength")]
    with open(path, "r+b") as handle:
        for offset, kind in zip(offsets, types, strict=True):
            handle.seek(offset)
            handle.write(struct.pack(byteorder + ("H" if kind == 3 else "I"), side))
    return path


def test_read_image_refuses_a_huge_header_before_reading(tmp_path, monkeypatch):
    path = _huge_header_tiff(tmp_path / "huge.tif", 60000)
    monkeypatch.setattr(outputs, "available_memory", lambda: (2**30, "test bound"))
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert str(err.value).startswith(f"{path}: reading it (uint16, shape (60000, 60000)) needs about 6.7 GiB")
    assert "(test bound)" in str(err.value) and "crop or bin it first" in str(err.value)


def test_negative_input_refused_and_offset_equals_deconvolving_the_shifted_image(tmp_path):
    from decongan.engine.optics.deconvolution import NegativeImageError, deconvolve_image
    from decongan.engine.optics.psf import gaussian_psf

    rng = np.random.default_rng(3)
    data = rng.uniform(-50, 1005, (24, 24)).astype(np.float32)
    image = MicroscopyImage(data, "YX", path=tmp_path / "offset.tif")
    psf = gaussian_psf(fwhm_nm=250, pixel_nm=100, size=9)
    with pytest.raises(NegativeImageError) as err:
        deconvolve_image(image, psf, iterations=2)
    assert str(err.value).startswith(f"{tmp_path / 'offset.tif'}: has negative values (minimum -")
    assert "offset" in str(err.value)
    signed = MicroscopyImage(np.array([[-3, 5], [7, 9]] * 4, np.int8).reshape(8, 2).repeat(4, 1), "YX",
                             path=tmp_path / "i8.tif")
    with pytest.raises(NegativeImageError, match=r"i8\.tif: has negative values \(minimum -3, maximum 9, int8\)"):
        deconvolve_image(signed, psf, iterations=1)

    low = float(data.min())
    auto = deconvolve_image(image, psf, iterations=2, offset="auto")
    shifted = deconvolve_image(image.with_data((data.astype(np.float64) - low).astype(np.float32)), psf, iterations=2)
    np.testing.assert_array_equal(auto.image.data, shifted.image.data)
    assert auto.provenance.parameters["offset"] == {"requested": "auto", "subtracted": low}
    assert any("offset" in note and "subtracted" in note for note in auto.provenance.notes)
    with pytest.raises(NegativeImageError, match="still has negative values after subtracting the offset 10"):
        deconvolve_image(image, psf, iterations=1, offset=10)
