"""A window export states a command that reproduces its metrics.csv exactly, registration and crop included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.app.gui.conftest import wait_idle
from tests.app.test_report_command import report_command, with_out


@pytest.mark.slow
def test_export_command_reruns_the_registered_cropped_comparison_with_identical_metrics(
        qtbot, window, tagan, tmp_path, monkeypatch):
    lq_path = tagan / "lq" / "dendritic_factin_train804.tif"
    lq = read_image(lq_path)
    gt = read_image(tagan / "hq" / "dendritic_factin_train804.tif")
    moving = ndimage.shift(np.asarray(gt.data, dtype=np.float32), (-4.25, 6.5), order=3, mode="nearest")
    moving_path = write_tiff(tmp_path / "sted shifted.tif", moving, pixel_size_um=0.02)
    window.open_paths([lq_path])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    window.open_ground_truth(moving_path)
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)
    window.data_panel.pixel_spin.setValue(0.02)

    register = window.register_panel  # registered and cropped in the window only
    register.transform_combo.setCurrentText("translation")
    register.crop_check.setChecked(True)
    register.run()
    qtbot.waitUntil(lambda: register.result is not None, timeout=60_000)
    register.accept()
    cropped = window.session.lq.image.yx_shape
    assert cropped != lq.yx_shape  # the crop changed what is compared

    decon = window.deconvolve_panel
    decon.size_spin.setValue(17)
    decon.iterations_spin.setValue(3)
    decon.device_combo.setCurrentText("cpu")
    decon.run()
    qtbot.waitUntil(lambda: len(window.session.restored) == 1, timeout=60_000)
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)
    assert window.evaluation.psf is not None  # consistency maps were computed, so the command needs the PSF

    panel = window.export_panel
    panel.svg_check.setChecked(False)
    panel.pdf_check.setChecked(False)
    panel.dpi_spin.setValue(72)
    out = tmp_path / "export"
    panel.out_edit.setText(str(out))
    with qtbot.waitSignal(panel.exported, timeout=180_000):
        panel.export()
    wait_idle(qtbot, window)

    tokens = report_command(out)
    assert tokens[:2] == ["decongan", "compare"] and "--psf" in tokens
    rl = window.session.restored[0].name
    assert any(t.startswith(f"{rl}=") for t in tokens)  # the method name as one argument
    np.testing.assert_array_equal(read_image(out / "inputs" / "gt" / "dendritic_factin_train804.tif").data,
                                  window.session.gt.image.data)  # the registered, cropped GT as compared
    assert panel.cli_args() == tokens[1:]  # the panel's command line says the same

    clean = tmp_path / "clean"
    clean.mkdir()
    monkeypatch.chdir(clean)
    assert main(with_out(tokens, clean / "rerun")[1:]) == 0
    exported = (out / "metrics.csv").read_text(encoding="utf-8")
    assert (clean / "rerun" / "metrics.csv").read_text(encoding="utf-8") == exported
    header, *rows = [line.split(",") for line in exported.splitlines()]
    rl_row = dict(zip(header, next(r for r in rows if rl.split()[0] in ",".join(r)), strict=False))
    assert rl_row["dc_flagged_fraction"] != "" and rl_row["ssim"] != ""  # consistency and SSIM were recomputed
