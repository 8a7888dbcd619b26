"""OME-Zarr reading and writing (engine.zarr_io, through engine.io.read_image): real calibrated images
round-trip with their axes and micrometre calibration; the official ome-zarr reader sees the right scale
at every pyramid level; units are converted or refused; outputs are never replaced silently."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from decongan.engine.io import ImageReadError, MicroscopyImage, read_image
from decongan.engine.zarr_io import OmeZarrWriter, ZarrWriteError, open_ome_zarr, write_ome_zarr

GOLGI = "other_fluorescence/neubias_xyz_calibrated_16bit__golgi_bfa.tif"  # ZYX, 0.3514 um, z 0.3876 um
HELA = "other_fluorescence/neubias_xyc_16bit__hela-cells.tif"  # CYX, 0.0515 um


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_zyx_round_trip_keeps_values_and_calibration(shared_data, tmp_path, version):
    image = read_image(shared_data / GOLGI)
    out = write_ome_zarr(tmp_path / "golgi.ome.zarr", image, chunks=64, ngff_version=version)
    back = read_image(out)
    assert back.axes == "ZYX" and back.data.dtype == np.uint16
    np.testing.assert_array_equal(back.data, image.data)
    assert back.pixel_size_um == pytest.approx(0.3514352968960532, rel=1e-12)
    assert back.z_step_um == pytest.approx(0.3876, rel=1e-9)
    assert back.metadata["ngff_version"] == version


def test_official_reader_sees_the_pyramid_scales(shared_data, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    image = read_image(shared_data / HELA)  # CYX 3 x 512 x 672
    write_ome_zarr(tmp_path / "hela.ome.zarr", image, levels=3, chunks=128)
    node = next(iter(Reader(parse_url(str(tmp_path / "hela.ome.zarr")))()))
    assert [a["name"] for a in node.metadata["axes"]] == ["c", "y", "x"]
    assert [a.get("unit") for a in node.metadata["axes"]] == [None, "micrometer", "micrometer"]
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    px = image.pixel_size_um
    assert scales == [[1.0, px, px], [1.0, 2 * px, 2 * px], [1.0, 4 * px, 4 * px]]
    levels = [np.asarray(d) for d in node.data]
    assert [lv.shape for lv in levels] == [(3, 512, 672), (3, 256, 336), (3, 128, 168)]
    # level 1 is the rounded 2 x 2 mean of level 0
    expected = np.rint(image.data.astype(np.float64).reshape(3, 256, 2, 336, 2).mean(axis=(2, 4)))
    np.testing.assert_array_equal(levels[1], expected)
    # our reader at level 2: pixel size 4x, data the official reader's
    coarse = read_image(tmp_path / "hela.ome.zarr", level=2)
    assert coarse.pixel_size_um == pytest.approx(4 * px) and coarse.axes == "CYX"
    np.testing.assert_array_equal(coarse.data, levels[2])
    with pytest.raises(ImageReadError, match=r"hela.ome.zarr: has scale levels 0..2; level 3 does not exist"):
        open_ome_zarr(tmp_path / "hela.ome.zarr", level=3)


def test_czyx_is_stored_in_ngff_order_and_read_back_canonical(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(3, 2, 4, 5)  # Z C Y X
    image = MicroscopyImage(data, "ZCYX", pixel_size_um=0.1, z_step_um=0.3)
    write_ome_zarr(tmp_path / "a.ome.zarr", image)
    stored = zarr.open_group(str(tmp_path / "a.ome.zarr"), mode="r")["0"]
    assert stored.shape == (2, 3, 4, 5)  # c z y x
    np.testing.assert_array_equal(np.asarray(stored[1, 2]), data[2, 1])
    back = read_image(tmp_path / "a.ome.zarr")
    assert back.axes == "ZCYX"
    np.testing.assert_array_equal(back.data, data)


def _hand_written(path, unit, scale=(0.25, 0.065, 0.065)):
    """A store written by ome-zarr's own writer (NGFF 0.4) with the given unit on every axis."""
    from ome_zarr.writer import write_image

    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    write_image(np.ones((2, 8, 8), np.uint16), group, axes="zyx", scale=dict(zip("zyx", scale, strict=True)),
                axes_units=dict.fromkeys("zyx", unit), scale_factors=[])
    return path


def test_units_are_converted_or_refused(tmp_path):
    nm = read_image(_hand_written(tmp_path / "nm.ome.zarr", "nanometer", (250.0, 65.0, 65.0)))
    assert nm.pixel_size_um == pytest.approx(0.065) and nm.z_step_um == pytest.approx(0.25)
    with pytest.raises(ImageReadError, match=r"furlong.ome.zarr: axis z has unit 'parsec'.*known: angstrom"):
        read_image(_hand_written(tmp_path / "furlong.ome.zarr", "parsec"))


def test_outputs_are_never_replaced_silently(tmp_path):
    image = MicroscopyImage(np.ones((16, 16), np.uint16), "YX", pixel_size_um=0.1)
    out = write_ome_zarr(tmp_path / "x.ome.zarr", image)
    with pytest.raises(ZarrWriteError, match=r"x.ome.zarr exists; choose another name"):
        write_ome_zarr(out, image)
    write_ome_zarr(out, MicroscopyImage(np.full((16, 16), 7, np.uint16), "YX", pixel_size_um=0.1), overwrite=True)
    assert int(read_image(out).data[0, 0]) == 7
    (tmp_path / "notes.zarr").mkdir()
    (tmp_path / "notes.zarr" / "mine.txt").write_text("keep")
    with pytest.raises(ZarrWriteError, match="not a Zarr store; it is never replaced"):
        write_ome_zarr(tmp_path / "notes.zarr", image, overwrite=True)
    assert (tmp_path / "notes.zarr" / "mine.txt").read_text() == "keep"
    # values a uint16 store cannot hold are refused, and nothing is left behind
    with pytest.raises(ZarrWriteError, match=r"outside uint16's range"):
        with OmeZarrWriter(tmp_path / "neg.ome.zarr", (16, 16), np.uint16, "YX", pixel_size_um=0.1) as writer:
            writer.write((slice(0, 16), slice(0, 16)), -np.ones((16, 16)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.zarr", "x.ome.zarr"]
