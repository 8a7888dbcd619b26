"""``decongan psf`` and ``decongan deconvolve`` round trips on real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff

PSF_NAME = "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif"
INPUT_NAME = "input_filaments_256_blurred_poisson.tif"


def description_json(path: Path) -> dict:
    with tifffile.TiffFile(path) as tif:
        return json.loads(tif.imagej_metadata["Info"])


def test_psf_command_writes_the_golden_born_wolf_psf(tmp_path, golden_dir, capsys):
    out = tmp_path / "psf.tif"
    assert main(["psf", "--model", "born-wolf", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "520",
                 "--pixel-nm", "159", "--size", "65", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    image = read_image(out)
    golden = tifffile.imread(golden_dir / PSF_NAME)
    assert image.axes == "YX" and image.data.dtype == np.float32
    assert image.pixel_size_um == pytest.approx(0.159)
    assert np.max(np.abs(image.data - golden)) < 1e-6
    provenance = description_json(out)
    assert provenance["method"] == "Born & Wolf PSF" and provenance["parameters"]["na"] == 1.4


def test_psf_command_3d_sum_normalised_and_gaussian(tmp_path, golden_dir):
    out = tmp_path / "psf3.tif"
    assert main(["psf", "--na", "0.3", "--ni", "1.0", "--wavelength-nm", "520", "--pixel-nm", "650", "--size", "65",
                 "--nz", "33", "--z-step-nm", "1000", "--normalize", "sum", "--out", str(out)]) == 0
    image = read_image(out)
    assert image.axes == "ZYX" and image.z_step_um == pytest.approx(1.0) and image.pixel_size_um == pytest.approx(0.65)
    assert image.data.sum(dtype=np.float64) == pytest.approx(1.0, rel=1e-5)
    golden = tifffile.imread(golden_dir / "psf_bw_3d_na0.3_ni1.0_dxy650_dz1000_lambda520_65x65x33.tif")
    np.testing.assert_allclose(image.data / image.data.max(), golden, atol=1e-6)

    gauss = tmp_path / "gauss.tif"
    assert main(["psf", "--model", "gaussian", "--fwhm-nm", "300", "--pixel-nm", "50", "--size", "31",
                 "--out", str(gauss)]) == 0
    row = read_image(gauss).data[15]
    assert np.count_nonzero(row >= 0.5) * 50 == pytest.approx(300, abs=50)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pixel-nm", "100"], "needs --na and --wavelength-nm"),
        (["--na", "1.6", "--wavelength-nm", "520", "--pixel-nm", "100"], "smaller than the immersion index"),
        (["--na", "1.4", "--wavelength-nm", "520", "--pixel-nm", "100", "--nz", "9"], "z_step_nm is required"),
        (["--model", "gaussian", "--pixel-nm", "100"], "needs --fwhm-nm, or --na and --wavelength-nm"),
    ],
)
def test_psf_command_errors(tmp_path, capsys, args, message):
    out = tmp_path / "psf.tif"
    assert main(["psf", *args, "--size", "65", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("decongan psf: error:") and message in err
    assert not out.exists()


def test_deconvolve_command_reproduces_dl2_and_records_provenance(tmp_path, golden_dir, capsys):
    source = tmp_path / "input.tif"
    shutil.copy(golden_dir / INPUT_NAME, source)
    before = source.read_bytes()
    out = tmp_path / "rl10.tif"
    assert main(["deconvolve", str(source), "--psf", str(golden_dir / PSF_NAME), "--iterations", "10",
                 "--edges", "circular", "--device", "cpu", "--pixel-nm", "159", "--out", str(out)]) == 0
    assert "RL 10 it" in capsys.readouterr().out
    result = read_image(out)
    golden = tifffile.imread(golden_dir / "dl2_rl10.tif")
    assert result.data.dtype == np.float32 and result.axes == "YX"
    assert np.max(np.abs(result.data - golden)) / golden.max() < 1e-5
    assert result.pixel_size_um == pytest.approx(0.159)
    provenance = description_json(out)
    assert provenance["backend"] == "engine/cpu" and provenance["parameters"]["iterations"] == 10
    assert provenance["parameters"]["edges"] == "circular" and "torch" in provenance["versions"]
    assert source.read_bytes() == before


def test_deconvolve_command_3d_stack_with_rltv_and_json_progress(tmp_path, capsys):
    rng = np.random.default_rng(0)
    stack = rng.poisson(40 * rng.random((8, 32, 28)) + 5).astype(np.uint16)
    source = write_tiff(tmp_path / "stack.tif", stack, axes="ZYX", pixel_size_um=0.1, z_step_um=0.3, dtype="uint16")
    psf = tmp_path / "psf3.tif"
    assert main(["psf", "--na", "1.2", "--ni", "1.33", "--wavelength-nm", "520", "--pixel-nm", "100", "--size", "9",
                 "--nz", "5", "--z-step-nm", "300", "--out", str(psf)]) == 0
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(source), "--psf", str(psf), "--iterations", "3", "--method", "rltv",
                 "--tv-lambda", "0.01", "--edges", "padded", "--json-progress", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["step"] for line in lines] == [1, 2, 3] and lines[-1]["total"] == 3
    result = read_image(out)
    assert result.axes == "ZYX" and result.data.shape == stack.shape and result.data.dtype == np.float32
    assert (result.pixel_size_um, result.z_step_um) == (pytest.approx(0.1), pytest.approx(0.3))
    assert description_json(out)["parameters"]["tv_lambda"] == 0.01


def test_deconvolve_command_refuses_to_overwrite_its_input(tmp_path, golden_dir, capsys):
    source = tmp_path / "input.tif"
    shutil.copy(golden_dir / INPUT_NAME, source)
    before = source.read_bytes()
    assert main(["deconvolve", str(source), "--psf", str(golden_dir / PSF_NAME), "--out", str(source)]) == 1
    assert "is the input file" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_deconvolve_command_errors_name_the_file(tmp_path, golden_dir, capsys):
    source = golden_dir / INPUT_NAME
    out = tmp_path / "out.tif"
    bad_psf = write_tiff(tmp_path / "negative_psf.tif", -np.ones((9, 9), np.float32))
    assert main(["deconvolve", str(source), "--psf", str(bad_psf), "--out", str(out)]) == 1
    assert "negative_psf.tif: has no positive values" in capsys.readouterr().err

    multi = write_tiff(tmp_path / "channels_psf.tif", np.ones((2, 3, 9, 9), np.float32), axes="ZCYX")
    assert main(["deconvolve", str(source), "--psf", str(multi), "--out", str(out)]) == 1
    assert "channels_psf.tif: has axes ZCYX" in capsys.readouterr().err

    text = tmp_path / "not_an_image.tif"
    text.write_text("hello")
    assert main(["deconvolve", str(text), "--psf", str(golden_dir / PSF_NAME), "--out", str(out)]) == 1
    assert "not_an_image.tif" in capsys.readouterr().err

    assert main(["deconvolve", str(source), "--psf", str(golden_dir / PSF_NAME), "--out", str(out),
                 "--method", "rltv", "--tv-lambda", "0.5"]) == 1
    assert "too large for 2-D" in capsys.readouterr().err

    assert not out.exists()


def test_deconvolve_command_cuda_request_without_cuda(tmp_path, golden_dir, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = tmp_path / "out.tif"
    assert main(["deconvolve", str(golden_dir / INPUT_NAME), "--psf", str(golden_dir / PSF_NAME), "--device", "cuda",
                 "--iterations", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "sees no CUDA device; choose the CPU (device 'cpu') or the automatic choice ('auto')" in err
