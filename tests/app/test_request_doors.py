"""One truth per request: every door gives the same restored image for the same file and PSF (defaults)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff

WIDEFIELD = Path("neubias_widefield_vs_confocal_3d") / "lq" / "nucleus_widefield.tif"


def max_relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def stack_and_psf(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    """A real 8 x 40 x 40 crop of the NEUBIAS widefield nucleus (calibrated) and a 3-D Born & Wolf PSF for it."""
    folder = tmp_path_factory.mktemp("doors")
    image = read_image(shared_data / WIDEFIELD)
    crop = image.data[18:26, 45:85, 45:85]
    (folder / "in").mkdir()
    stack = write_tiff(folder / "in" / "nucleus.tif", crop, axes="ZYX", pixel_size_um=image.pixel_size_um,
                       z_step_um=image.z_step_um, dtype="uint16")
    psf = folder / "psf.tif"
    assert main(["psf", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "461", "--pixel-nm",
                 f"{image.pixel_size_um * 1000:.4f}", "--size", "9", "--nz", "5", "--z-step-nm",
                 f"{image.z_step_um * 1000:.4f}", "--normalize", "sum", "--out", str(psf)]) == 0
    return stack, psf


@pytest.fixture(scope="module")
def cli_result(stack_and_psf, tmp_path_factory) -> np.ndarray:
    stack, psf = stack_and_psf
    out = tmp_path_factory.mktemp("cli") / "A.tif"
    assert main(["deconvolve", str(stack), "--psf", str(psf), "--device", "cpu", "--out", str(out)]) == 0
    return read_image(out).data


def test_deconvolve_and_batch_defaults_give_the_same_image(stack_and_psf, cli_result, tmp_path):
    stack, psf = stack_and_psf
    out = tmp_path / "B"
    assert main(["batch", str(stack.parent), "--decon", "engine", "--psf", str(psf), "--device", "cpu",
                 "--no-compare", "--out", str(out)]) == 0
    (restored,) = sorted(out.glob("restored/*/nucleus.tif"))
    batch = read_image(restored).data
    assert batch.shape == cli_result.shape == (8, 40, 40)
    assert max_relative_difference(batch, cli_result) <= 1e-6
    # and it is a real deconvolution, not a copy of the input
    assert max_relative_difference(cli_result, read_image(stack).data.astype(np.float32)) > 0.05


def test_engine_rl_method_defaults_match_the_cli(stack_and_psf, cli_result):
    """compare/batch/demo build their RL through app.methods with DEFAULT_SETTINGS."""
    from decongan.app.methods import PsfSource, engine_rl_method

    stack, psf = stack_and_psf
    spec = engine_rl_method(PsfSource(path=psf), device="cpu")
    result = spec.run(read_image(stack))
    assert spec.parameters["edges"] == "padded" and spec.parameters["iterations"] == 10
    assert max_relative_difference(result.image.data, cli_result) <= 1e-6


def test_a_bright_object_at_the_left_edge_does_not_wrap_to_the_right_with_the_cli_default(tmp_path):
    from decongan.engine.optics.psf import gaussian_psf

    data = np.full((32, 64), 10.0, np.float32)
    data[:, :3] = 5000.0  # a bright band touching the left edge
    src = write_tiff(tmp_path / "edge.tif", data, pixel_size_um=0.1)
    psf = write_tiff(tmp_path / "psf.tif", gaussian_psf(fwhm_nm=400, pixel_nm=100, size=15, normalize="sum"),
                     pixel_size_um=0.1)
    default, circular = tmp_path / "default.tif", tmp_path / "circular.tif"
    assert main(["deconvolve", str(src), "--psf", str(psf), "--device", "cpu", "--out", str(default)]) == 0
    assert main(["deconvolve", str(src), "--psf", str(psf), "--device", "cpu", "--edges", "circular",
                 "--out", str(circular)]) == 0
    right_default = read_image(default).data[:, -4:]
    right_circular = read_image(circular).data[:, -4:]
    # periodic edges make the band's blur on the right border part of the model (it wraps around), so
    # RL explains the right border's background by the band and empties it; the default (padded) keeps it
    print("right border, padded:", float(right_default.min()), float(right_default.max()),
          "circular:", float(right_circular.min()), float(right_circular.max()))
    assert float(right_circular.min()) < 1.0
    np.testing.assert_allclose(right_default, 10.0, rtol=0.05)


def test_the_command_line_names_its_options_for_missing_optics():
    """The engine says the missing optics in words; the command line adds its own options for them."""
    from decongan.app.commands import CommandError
    from decongan.app.methods import PsfSource
    from decongan.engine.io import MicroscopyImage

    image = MicroscopyImage(data=np.zeros((8, 8), np.float32), axes="YX", path=Path("/data/cells.tif"))
    with pytest.raises(CommandError) as err:
        PsfSource(na=1.4, ni=1.515, wavelength_nm=520.0).for_image(image)
    assert str(err.value) == ("/data/cells.tif: a Born & Wolf PSF needs the lateral pixel size, which is unknown "
                              "(not in the file's metadata); give the lateral pixel size in nm (Python: pixel_nm=); "
                              "on the command line: --pixel-nm NM")


def test_psf_like_an_image_is_sized_by_the_engines_rule_and_says_so(stack_and_psf, tmp_path, capsys):
    """`decongan psf --like IMAGE` gives psf_for_grid's PSF for that grid (the GUI's and batch's), exactly."""
    import json

    import tifffile

    from decongan.engine.optics.request import Optics, psf_for_grid

    stack, _ = stack_and_psf
    out = tmp_path / "psf.tif"
    assert main(["psf", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "461", "--like", str(stack),
                 "--normalize", "sum", "--out", str(out)]) == 0
    image = read_image(stack)
    expected = psf_for_grid(Optics.for_image(image, na=1.4, ni=1.515, wavelength_nm=461.0), yx_shape=(40, 40), nz=8)
    written = read_image(out)
    assert written.data.shape == expected.shape == (5, 5, 5)
    np.testing.assert_array_equal(written.data, expected)
    assert written.pixel_size_um == pytest.approx(image.pixel_size_um) and written.z_step_um == pytest.approx(image.z_step_um)
    printed = capsys.readouterr().out
    assert (f"size chosen by psf_for_grid (energy 0.99): 5 x 5 px, 5 planes for the grid of {stack} "
            "(40 x 40 px, 8 planes)") in printed
    with tifffile.TiffFile(out) as tif:
        provenance = json.loads(tif.imagej_metadata["Info"])
    assert provenance["parameters"]["size"] == 5 and provenance["parameters"]["nz"] == 5
    assert provenance["parameters"]["size_rule"].startswith("psf_for_grid (energy 0.99): 5 x 5 px, 5 planes")
    assert provenance["parameters"]["optics"]["pixel_nm"]["source"] == "metadata"


@pytest.mark.parametrize(("extra", "message"), [
    ([], "give the PSF's size: --size PX (and --nz N for a 3-D PSF), or --like IMAGE"),
    (["--like", "IMG", "--size", "9"], "--like chooses the size and the planes by the engine's energy rule"),
])
def test_psf_without_a_size_or_a_grid_is_refused(stack_and_psf, tmp_path, capsys, extra, message):
    stack, _ = stack_and_psf
    out = tmp_path / "psf.tif"
    extra = [str(stack) if e == "IMG" else e for e in extra]
    assert main(["psf", "--na", "1.4", "--wavelength-nm", "520", "--pixel-nm", "100", *extra, "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_psf_for_a_grid_without_an_image_uses_the_same_rule(tmp_path, capsys):
    """`--grid` sizes the PSF for an image that is not at hand (the README's example: 21 x 67 x 67)."""
    from decongan.engine.optics.request import Optics, psf_for_grid

    out = tmp_path / "psf.tif"
    assert main(["psf", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "520", "--pixel-nm", "100",
                 "--z-step-nm", "200", "--grid", "97x512x512", "--normalize", "sum", "--out", str(out)]) == 0
    expected = psf_for_grid(Optics(na=1.4, ni=1.515, wavelength_nm=520.0, pixel_nm=100.0, z_step_nm=200.0),
                            yx_shape=(512, 512), nz=97)
    written = read_image(out)
    assert written.data.shape == expected.shape == (21, 67, 67)
    np.testing.assert_array_equal(written.data, expected)
    assert "67 x 67 px, 21 planes for the grid 97x512x512 (--grid)" in capsys.readouterr().out
    assert main(["psf", "--na", "1.4", "--wavelength-nm", "520", "--grid", "512x512", "--out",
                 str(tmp_path / "x.tif")]) == 1
    assert "on the command line: --pixel-nm NM" in capsys.readouterr().err
