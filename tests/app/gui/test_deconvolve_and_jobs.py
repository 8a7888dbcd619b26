"""Deconvolution through the window (same numbers as the engine), cancelling a job, errors from jobs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from decongan.app.gui.jobs import JobState
from tests.app.gui.conftest import PAIR, open_field, wait_idle


def test_deconvolve_panel_adds_the_engine_result_as_a_layer(qtbot, window, tagan):
    from decongan.engine.optics.deconvolution import deconvolve_image
    from decongan.engine.optics.request import Optics, psf_for_grid

    open_field(qtbot, window, tagan / "lq", tagan / "hq")
    window.data_panel.pixel_spin.setValue(0.06)  # 60 nm
    panel = window.deconvolve_panel
    panel.na_spin.setValue(1.4)
    panel.wavelength_spin.setValue(640.0)
    panel.iterations_spin.setValue(8)
    panel.edges_combo.setCurrentText("padded")
    panel.device_combo.setCurrentText("cpu")
    assert panel.pixel_spin.value() == pytest.approx(60.0)
    qtbot.mouseClick(panel.run_button, _left())
    qtbot.waitUntil(lambda: window.session.layer("RL 8 it (engine)") is not None, timeout=60_000)
    wait_idle(qtbot, window)

    layer = window.session.layer("RL 8 it (engine)")
    # the engine's one sizing rule for the image's grid (the panel's size field is for Gaussian PSFs)
    optics = Optics(na=1.4, ni=1.515, wavelength_nm=640.0, pixel_nm=60.0)
    psf = psf_for_grid(optics, yx_shape=window.session.lq.image.yx_shape)
    expected = deconvolve_image(window.session.lq.image, psf, iterations=8, edges="padded", device="cpu")
    np.testing.assert_array_equal(layer.image.data, expected.image.data)
    assert layer.provenance.parameters["iterations"] == 8
    assert [p.layer.name for p in window.viewer.panels] == ["LQ", "RL 8 it (engine)", "GT"]
    # the metrics table gets a row per method, with reference metrics against GT
    qtbot.waitUntil(lambda: any(r["method"] == "RL 8 it (engine)" for r in window.metrics.rows["Current field"]),
                    timeout=60_000)
    row = next(r for r in window.metrics.rows["Current field"] if r["method"] == "RL 8 it (engine)")
    assert {"ssim", "psnr", "nrmse", "bgstd"} <= set(row)
    # the panel's command line is the CLI that does the same
    command = panel.command_edit.text()
    assert "decongan psf --model born-wolf" in command and "--pixel-nm 60" in command and "--like" in command
    assert "decongan deconvolve" in command and "--iterations 8" in command and "--edges padded" in command


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_cancel_stops_a_long_deconvolution_and_the_window_stays_responsive(qtbot, window, tagan):
    window.open_paths([tagan / "lq" / PAIR])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    window.data_panel.pixel_spin.setValue(0.03)  # the file has no calibration: deconvolving needs it
    panel = window.deconvolve_panel
    panel.iterations_spin.setValue(10_000)  # minutes of work: only a cancel ends it
    panel.device_combo.setCurrentText("cpu")
    panel.run()
    job = panel.job
    qtbot.waitUntil(lambda: job.last_progress is not None and job.last_progress.step >= 3, timeout=60_000)
    # the GUI thread keeps serving events while the job works: a timer fires, a widget reacts
    fired = []
    QTimer.singleShot(0, lambda: fired.append(True))
    qtbot.waitUntil(lambda: bool(fired), timeout=10_000)
    window.viewer.lut_combo.setCurrentText("magma")
    assert window.viewer.lut_name == "magma"
    assert job.is_running
    assert window.job_status.cancel_button.isEnabled()
    qtbot.mouseClick(window.job_status.cancel_button, _left())
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=30_000)
    assert job.last_progress.step < 10_000
    assert [lay.name for lay in window.session.layers] == ["LQ"]  # nothing half-done was added
    assert window.errors.history == []
    assert "cancelled" in window.job_status.label.text()


def test_a_failing_job_reports_through_the_one_error_dialog(qtbot, window):
    def work(ctx):
        raise ValueError("tv_lambda 0.5 is too large for 2-D RL-TV")

    job = window.jobs.start("Deconvolution", work)
    qtbot.waitUntil(lambda: job.state is JobState.FAILED, timeout=10_000)
    assert len(window.errors.history) == 1
    report = window.errors.history[0]
    assert report.context == "Deconvolution" and "too large" in report.message
    assert window.errors.last_dialog.isVisible()
    assert "too large" in window.errors.last_dialog.message_label.text()


def test_fiji_status_comes_from_the_doctor(qtbot, window, tmp_path):
    from decongan.imagej_bridge.discovery import discover

    panel = window.deconvolve_panel
    not_fiji = tmp_path / "NotFiji.app"
    not_fiji.mkdir()
    panel.fiji_location.setText(str(not_fiji))
    assert window.settings.get("fiji/location") == str(not_fiji)  # persisted: the bridge reads it too
    panel.check_fiji()
    qtbot.waitUntil(lambda: panel.fiji_status is not None, timeout=120_000)
    report = panel.fiji_status
    expected = discover(str(not_fiji), probe_network=False)
    assert [b.kind for b in report.discovery.candidates] == [b.kind for b in expected.candidates]
    fiji_line = next(b for b in report.discovery.candidates if b.kind == "fiji")
    assert not fiji_line.usable  # an empty folder is no Fiji.app
    text = panel.fiji_status_label.text()
    assert report.summary()[:40] in text and "fiji: " in text
    assert "DeconGAN Fiji doctor" in panel.fiji_status_label.toolTip()


def test_fiji_backend_runs_deconvolutionlab2_or_falls_back_labelled(qtbot, window, tagan):
    """With no DeconvolutionLab2 (Debian's plain ImageJ here) the engine runs with DL2's conventions and the
    layer says so; with a Fiji.app that has it, the layer is Fiji's."""
    from decongan.app.fiji.client import FALLBACK_LABEL
    from decongan.engine.optics.deconvolution import deconvolve_image
    from decongan.engine.optics.request import Optics, psf_for_grid

    window.open_paths([tagan / "lq" / "axonal_rings_test0.tif"])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    window.data_panel.pixel_spin.setValue(0.03)
    panel = window.deconvolve_panel
    panel.iterations_spin.setValue(5)
    panel.device_combo.setCurrentText("cpu")
    panel.backend_combo.setCurrentText("fiji")
    panel.run()
    qtbot.waitUntil(lambda: len(window.session.restored) == 1 or bool(window.errors.history), timeout=120_000)
    assert not window.errors.history, window.errors.history[0].text
    layer = window.session.restored[0]
    if layer.provenance.backend == FALLBACK_LABEL:
        assert layer.name == "RL 5 it (engine, Fiji unavailable)"
        assert any("Fiji unavailable" in note for note in layer.provenance.notes)
        psf = psf_for_grid(Optics(na=1.4, ni=1.515, wavelength_nm=520.0, pixel_nm=30.0),
                           yx_shape=window.session.lq.image.yx_shape)
        expected = deconvolve_image(window.session.lq.image, psf, iterations=5, edges="circular", device="cpu")
        np.testing.assert_array_equal(layer.image.data, expected.image.data)
    else:
        assert layer.name == "RL 5 it (Fiji)" and "DeconvolutionLab2" in layer.provenance.method


def test_cancel_hooks_stop_work_that_cannot_poll_the_token(qtbot, window):
    """Like a Fiji request: the work blocks in a call; the cancel hook (killing the worker) ends it."""
    import threading

    released = threading.Event()

    def work(ctx):
        ctx.on_cancel(released.set)
        if not released.wait(60):  # a blocking call that only the hook can end
            raise TimeoutError("the cancel hook never ran")
        return "interrupted"

    job = window.jobs.start("Fiji request", work)
    qtbot.waitUntil(lambda: bool(job._runner.context.cancel_hooks), timeout=10_000)
    job.cancel()
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=10_000)
    assert released.is_set() and window.errors.history == []
