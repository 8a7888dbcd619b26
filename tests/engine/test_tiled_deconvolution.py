"""Tiled RL from OME-Zarr to OME-Zarr (engine.optics.tiled_deconvolution, tile_plan): with the exact halo
the result equals whole-image RL on real data; a short halo is labelled and visibly differs; the CLI
writes an OME-Zarr the official reader opens with the input's calibration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine.io import MicroscopyImage, read_image, write_tiff
from decongan.engine.optics.image_deconvolution import deconvolve_image
from decongan.engine.optics.psf import gaussian_psf
from decongan.engine.optics.request import plan_lateral_tiles, rl_exact_halo
from decongan.engine.optics.tiled_deconvolution import iter_deconvolve_zarr
from decongan.engine.progress import drain
from decongan.engine.zarr_io import open_ome_zarr, write_ome_zarr

CELLS = "other_fluorescence/neubias_xy_calibrated_16bit__cells_eres_noisy.tif"  # 512 x 512 uint16, 0.2297 um


@pytest.fixture(scope="module")
def cells(shared_data) -> MicroscopyImage:
    image = read_image(shared_data / CELLS)
    return image.with_data(image.data[:200, :232])


def test_plan_covers_every_pixel_once_and_halo_rule():
    plan = plan_lateral_tiles((200, 232), tile=96, halo=40)
    count = np.zeros((200, 232), int)
    for part in plan:
        count[part.core] += 1
        assert part.read[0].start == max(0, part.core[0].start - 40) and part.read[1].stop == min(232, part.core[1].stop + 40)
    assert (count == 1).all() and len(plan) == 9
    assert rl_exact_halo((11, 11), 3) == 35 and rl_exact_halo((7, 65, 63), 10) == 21 * 32


def test_tiled_rl_equals_whole_image_rl(cells, tmp_path):
    psf = gaussian_psf(sigma_px=1.5, size=11, normalize="sum")
    whole = deconvolve_image(cells, psf, iterations=3, device="cpu").image.data
    write_ome_zarr(tmp_path / "in.ome.zarr", cells, chunks=64)
    source = open_ome_zarr(tmp_path / "in.ome.zarr")
    result = drain(iter_deconvolve_zarr(source, psf, tmp_path / "out.ome.zarr", tile=96, iterations=3, device="cpu"))
    tiled = read_image(result.path)
    assert result.provenance.parameters["tiling"]["halo_px"] == 35 and result.provenance.parameters["tiling"]["tiles"] == 9
    assert tiled.data.dtype == np.float32 and tiled.pixel_size_um == pytest.approx(cells.pixel_size_um)
    span = float(whole.max() - whole.min())
    assert np.abs(tiled.data - whole).max() <= 1e-5 * span
    # a halo of 2 px is labelled, and differs from whole-image RL near the tile borders
    short = drain(iter_deconvolve_zarr(source, psf, tmp_path / "short.ome.zarr", tile=96, halo=2, iterations=3,
                                       device="cpu"))
    assert any("less than the 35 px" in note for note in short.provenance.notes)
    assert np.abs(read_image(short.path).data - whole).max() > 1e-3 * span


def test_cli_zarr_to_zarr_with_pyramid(cells, tmp_path, capsys):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    write_ome_zarr(tmp_path / "in.ome.zarr", cells, chunks=64)
    write_tiff(tmp_path / "psf.tif", gaussian_psf(sigma_px=1.5, size=11, normalize="sum"), dtype="float32")
    args = ["deconvolve", str(tmp_path / "in.ome.zarr"), "--psf", str(tmp_path / "psf.tif"), "-n", "2",
            "--device", "cpu", "--tile", "128", "--pyramid", "2", "--out", str(tmp_path / "out.ome.zarr")]
    assert main(args) == 0
    assert "4 tiles of 128 px + 25 px halo" in capsys.readouterr().out
    node = next(iter(Reader(parse_url(str(tmp_path / "out.ome.zarr")))()))
    px = cells.pixel_size_um
    assert [t[0]["scale"] for t in node.metadata["coordinateTransformations"]] == [[px, px], [2 * px, 2 * px]]
    assert [np.asarray(d).shape for d in node.data] == [(200, 232), (100, 116)]
    whole = deconvolve_image(cells, gaussian_psf(sigma_px=1.5, size=11, normalize="sum"), iterations=2,
                             device="cpu").image.data
    np.testing.assert_allclose(np.asarray(node.data[0]), whole, rtol=0, atol=1e-5 * float(whole.max()))
    # an existing output is refused before any computation, and kept
    before = sorted(p.name for p in (tmp_path / "out.ome.zarr").rglob("*"))
    assert main(args) == 1
    assert "out.ome.zarr exists; choose another name or pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out.ome.zarr").rglob("*")) == before


MEASURE_TILED = """
import json, sys
import numpy as np
from decongan.engine.io import MicroscopyImage
from decongan.engine.optics.image_deconvolution import deconvolve_image
from decongan.engine.optics.psf import gaussian_psf
from decongan.engine.optics.rl_memory import estimate_rl_memory
from decongan.engine.optics.tiled_deconvolution import iter_deconvolve_zarr
from decongan.engine.progress import drain
from decongan.engine.zarr_io import open_ome_zarr
source, out = open_ome_zarr(sys.argv[1]), sys.argv[2]
psf = gaussian_psf(sigma_px=1.5, size=11, normalize="sum")
deconvolve_image(MicroscopyImage(np.ones((64, 64), np.float32), "YX"), psf, iterations=1, device="cpu")  # torch start-up
def status(key):  # this process's own memory (ru_maxrss would include the parent's at fork)
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key))
try:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # the peak RSS starts again from here
except OSError:
    pass
base = status("VmRSS:")
drain(iter_deconvolve_zarr(source, psf, out, tile=256, iterations=2, device="cpu", levels=3))
grown = status("VmHWM:") - base
whole = estimate_rl_memory("YX", source.yx_shape, [psf.shape], input_itemsize=2).total_bytes
print(json.dumps({"grown": grown, "whole_estimate": whole}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures the peak RSS through Linux's /proc")
def test_tiled_rl_peak_memory_is_set_by_the_tile_not_the_image(cells, tmp_path):
    """A 2048 x 2048 uint16 OME-Zarr (chunks 256^2), RL 2 iterations in 256 px tiles in a fresh interpreter:
    the peak RSS grows by at most 128 MiB (2 GiB for 8192^2 scaled by the area) and by less than half of
    what whole-image RL is estimated to need (measured: 110 of 307 MiB with 4 iterations)."""
    data = np.tile(np.block([[cells.data, cells.data[:, ::-1]], [cells.data[::-1], cells.data[::-1, ::-1]]]),
                   (6, 5))[:2048, :2048]
    assert data.shape == (2048, 2048)
    src = write_ome_zarr(tmp_path / "big.ome.zarr", cells.with_data(np.ascontiguousarray(data)), chunks=256)
    done = subprocess.run([sys.executable, "-c", MEASURE_TILED, str(src), str(tmp_path / "out.ome.zarr")],
                          capture_output=True, text=True, timeout=900, check=True)
    numbers = json.loads(done.stdout.strip().splitlines()[-1])
    print({k: round(v / 2**20) for k, v in numbers.items()}, "MiB")
    assert numbers["grown"] <= 128 * 2**20
    assert numbers["grown"] < numbers["whole_estimate"] / 2
    out = open_ome_zarr(tmp_path / "out.ome.zarr", level=2)
    assert out.yx_shape == (512, 512) and out.pixel_size_um == pytest.approx(4 * cells.pixel_size_um)
