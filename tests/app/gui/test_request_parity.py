"""The Deconvolve panel with its defaults gives the same image as `decongan deconvolve` with its defaults."""

from __future__ import annotations

import numpy as np

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.app.gui.conftest import wait_idle


def test_panel_defaults_match_the_cli_defaults(qtbot, window, shared_data, tmp_path):
    from PySide6.QtCore import Qt

    image = read_image(shared_data / "neubias_widefield_vs_confocal_3d" / "lq" / "nucleus_widefield.tif")
    src = write_tiff(tmp_path / "nucleus.tif", image.data[18:26, 45:85, 45:85], axes="ZYX",
                     pixel_size_um=image.pixel_size_um, z_step_um=image.z_step_um, dtype="uint16")
    psf = tmp_path / "psf.tif"
    assert main(["psf", "--na", "1.4", "--ni", "1.515", "--wavelength-nm", "461", "--pixel-nm",
                 f"{image.pixel_size_um * 1000:.4f}", "--size", "9", "--nz", "5", "--z-step-nm",
                 f"{image.z_step_um * 1000:.4f}", "--normalize", "sum", "--out", str(psf)]) == 0
    out = tmp_path / "A.tif"
    assert main(["deconvolve", str(src), "--psf", str(psf), "--device", "cpu", "--out", str(out)]) == 0
    expected = read_image(out).data

    window.open_paths([src])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    panel = window.deconvolve_panel
    assert panel.edges_combo.currentText() == "padded" and panel.iterations_spin.value() == 10
    panel.model_combo.setCurrentText("From file")
    panel.psf_file.setText(str(psf))
    panel.device_combo.setCurrentText("cpu")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.layer("RL 10 it (engine)") is not None, timeout=60_000)
    wait_idle(qtbot, window)
    restored = window.session.layer("RL 10 it (engine)").image.data
    assert restored.shape == expected.shape == (8, 40, 40)
    assert float(np.max(np.abs(restored.astype(np.float64) - expected)) / np.max(expected)) <= 1e-6
