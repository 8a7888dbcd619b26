"""The Deconvolve panel's PSF is the engine's psf_for_grid, and its result is the command line's (issue 10)."""

from __future__ import annotations

import shlex

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.app.gui.conftest import wait_idle


@pytest.fixture
def nucleus_stack(shared_data, tmp_path):
    """A real, calibrated 8 x 40 x 40 crop of the NEUBIAS widefield nucleus."""
    image = read_image(shared_data / "neubias_widefield_vs_confocal_3d" / "lq" / "nucleus_widefield.tif")
    return write_tiff(tmp_path / "nucleus.tif", image.data[18:26, 45:85, 45:85], axes="ZYX",
                      pixel_size_um=image.pixel_size_um, z_step_um=image.z_step_um, dtype="uint16")


def open_image(qtbot, window, path):
    window.open_paths([path])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)


def test_born_wolf_psf_and_result_equal_the_command_lines(qtbot, window, nucleus_stack, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt

    from decongan.app.methods import PsfSource, engine_rl_method
    from decongan.engine.optics.request import Optics, psf_for_grid

    open_image(qtbot, window, nucleus_stack)
    panel = window.deconvolve_panel
    panel.wavelength_spin.setValue(461.0)
    panel.device_combo.setCurrentText("cpu")
    image = read_image(nucleus_stack)
    expected_psf = psf_for_grid(Optics.for_image(image, na=1.4, ni=1.515, wavelength_nm=461.0),
                                yx_shape=(40, 40), nz=8)
    psf = panel.build_psf()
    assert psf.shape == expected_psf.shape == (5, 5, 5)  # the rule's, not the Size field's 65
    np.testing.assert_array_equal(psf, expected_psf)
    assert not panel.size_spin.isEnabled() and not panel.nz_spin.isEnabled()
    panel.update_psf()
    qtbot.waitUntil(lambda: "energy rule (99%) for the 8 x 40 x 40 image" in panel.psf_info.text(), timeout=30_000)

    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.layer("RL 10 it (engine)") is not None, timeout=60_000)
    wait_idle(qtbot, window)
    layer = window.session.layer("RL 10 it (engine)")
    assert layer.provenance.parameters["optics"]["wavelength_nm"] == {"value": 461.0, "unit": "nm", "source": "user"}
    assert layer.provenance.parameters["optics"]["na"]["source"] == "assumption"
    gui = layer.image.data.astype(np.float64)

    # the panel's own command line (psf --like the input, then deconvolve) gives the same image
    command = panel.command_edit.text()
    assert "--like" in command and "--size" not in command
    monkeypatch.chdir(tmp_path)
    for part in command.split(" && "):
        argv = shlex.split(part)
        assert argv[0] == "decongan"
        assert main(argv[1:]) == 0
    cli = read_image(tmp_path / "deconvolved.tif").data
    assert cli.shape == gui.shape == (8, 40, 40)
    assert float(np.max(np.abs(gui - cli)) / np.max(np.abs(cli))) <= 1e-6
    # ... and so does batch's RL with the PSF built from the same optics
    batch = engine_rl_method(PsfSource(na=1.4, ni=1.515, wavelength_nm=461.0), device="cpu").run(image)
    assert float(np.max(np.abs(gui - batch.image.data)) / np.max(np.abs(batch.image.data))) <= 1e-6
    # and it is a real deconvolution
    assert float(np.max(np.abs(gui - image.data)) / np.max(image.data)) > 0.05


def test_a_3d_gaussian_psf_uses_the_axial_fwhm_the_user_sees(qtbot, window, nucleus_stack):
    from decongan.engine.optics.psf import gaussian_psf

    open_image(qtbot, window, nucleus_stack)
    panel = window.deconvolve_panel
    panel.model_combo.setCurrentText("Gaussian")
    panel.fwhm_spin.setValue(600.0)
    panel.size_spin.setValue(9)
    panel.nz_spin.setValue(5)
    assert panel.fwhm_z_spin.isEnabled()
    panel.fwhm_z_spin.setValue(1500.0)
    image = read_image(nucleus_stack)
    expected = gaussian_psf(fwhm_nm=600.0, pixel_nm=image.pixel_size_um * 1000, size=9, nz=5, fwhm_z_nm=1500.0,
                            z_step_nm=image.z_step_um * 1000, normalize="sum")
    np.testing.assert_array_equal(panel.build_psf(), expected)
    assert "--fwhm-z-nm 1500" in panel.command_edit.text()
    # a z step typed in the panel (not the file's) reaches both commands: the PSF's and deconvolve's
    panel.zstep_spin.setValue(450.0)
    assert window.session.optics.z_step_nm.source == "user"
    psf_command, deconvolve_command = panel.command_edit.text().split(" && ")
    assert "--z-step-nm 450" in psf_command and "--z-step-nm 450" in deconvolve_command


def test_a_large_grids_psf_is_sized_in_the_background(qtbot, window, shared_data, tmp_path):
    """Sizing a Born & Wolf PSF for a 1024 x 1024 image takes seconds: the preview never blocks the window."""
    import time

    from decongan.engine.optics.request import Optics, psf_for_grid

    image = read_image(shared_data / "tagan_confocal_vs_sted" / "lq" / "axonal_rings_test0.tif")
    tiled = np.tile(image.data.astype(np.float32), (1024 // image.yx_shape[0] + 1, 1024 // image.yx_shape[1] + 1))
    path = write_tiff(tmp_path / "large.tif", tiled[:1024, :1024], pixel_size_um=0.03)
    open_image(qtbot, window, path)
    panel = window.deconvolve_panel
    panel.wavelength_spin.setValue(600.0)
    wait_idle(qtbot, window, background=True)
    panel.wavelength_spin.setValue(610.0)
    started = time.perf_counter()
    job = panel.update_psf()
    assert job is not None and time.perf_counter() - started < 0.5
    assert panel.psf_info.text() == "computing the PSF..."
    qtbot.waitUntil(lambda: not job.is_running, timeout=60_000)
    qtbot.waitUntil(lambda: "energy rule" in panel.psf_info.text(), timeout=10_000)
    expected = psf_for_grid(Optics(na=1.4, ni=1.515, wavelength_nm=610.0, pixel_nm=30.0), yx_shape=(1024, 1024))
    np.testing.assert_array_equal(panel.psf, expected)
    assert panel.update_psf() is None  # computed once: shown at once from then on
