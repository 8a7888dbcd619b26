"""Training runs as a child process: live JSON-lines monitoring, stop, crash isolation."""

from __future__ import annotations

import sys
import textwrap

import pytest

from tests.app.gui.conftest import wait_idle

# A child that behaves like `decongan train` on stdout: one JSON object per line.
FAKE_TRAINER = textwrap.dedent("""
    import json, sys, time
    total = int(sys.argv[1])
    for step in range(1, total + 1):
        record = {"step": step, "total": total, "message": f"iteration {step}/{total}", "eta_s": total - step,
                  "loss_g": 1.0 / step, "loss_d": 0.5}
        if step % 5 == 0:
            record["val_ssim"] = 0.5 + step / (4 * total)
        print(json.dumps(record), flush=True)
        time.sleep(float(sys.argv[2]))
    print("done: wrote the run", flush=True)
""")


def fake_trainer(tmp_path, total: int, delay: float) -> list[str]:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAINER)
    return [sys.executable, str(script), str(total), str(delay)]


def test_json_lines_drive_the_loss_and_validation_curves(qtbot, window, tmp_path):
    panel = window.train_panel
    process = panel.start(argv=fake_trainer(tmp_path, 20, 0.0))
    with qtbot.waitSignal(panel.finished, timeout=30_000) as blocker:
        pass
    assert blocker.args == ["succeeded"]
    assert len(process.records) == 20
    xs, ys = panel.loss_plot.series["loss_g"]
    assert xs == [float(s) for s in range(1, 21)] and ys[-1] == 1.0 / 20
    vx, vy = panel.val_plot.series["val_ssim"]
    assert vx == [5.0, 10.0, 15.0, 20.0] and vy[-1] == 0.75
    assert panel.progress.maximum() == 20 and panel.progress.value() == 20
    assert "done: wrote the run" in panel.log.toPlainText()
    assert window.errors.history == []


def test_stop_interrupts_the_child_and_resume_is_offered(qtbot, window, tmp_path):
    panel = window.train_panel
    process = panel.start(argv=fake_trainer(tmp_path, 10_000, 0.01))
    qtbot.waitUntil(lambda: len(process.records) >= 3, timeout=30_000)
    qtbot.mouseClick(panel.stop_button, _left())
    with qtbot.waitSignal(panel.finished, timeout=30_000) as blocker:
        pass
    assert blocker.args == ["stopped"]
    assert len(process.records) < 10_000
    assert panel.resume_button.isEnabled() and panel.start_button.isEnabled()
    assert "Resume" in panel.status.text()


def test_a_crashing_trainer_is_reported_and_the_window_survives(qtbot, window, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("import json, os, sys\n"
                      "print(json.dumps({'step': 1, 'total': 10, 'loss_g': 0.3}), flush=True)\n"
                      "print('CUDA out of memory while training', file=sys.stderr, flush=True)\n"
                      "os.abort()\n")
    panel = window.train_panel
    panel.start(argv=[sys.executable, str(script)])
    with qtbot.waitSignal(panel.finished, timeout=30_000) as blocker:
        pass
    assert blocker.args == ["crashed"]
    assert len(window.errors.history) == 1
    report = window.errors.history[0]
    assert "crashed" in report.message and "out of memory" in report.message
    assert "CUDA out of memory" in report.details
    assert window.isVisible()
    # the window still works after the child died
    job = window.jobs.start("after the crash", lambda ctx: 42)
    qtbot.waitUntil(lambda: job.result == 42, timeout=10_000)
    wait_idle(qtbot, window)


def test_train_panel_builds_the_cli_command(window, tmp_path):
    panel = window.train_panel
    panel.preset_combo.setCurrentText("s3")
    panel.lq_edit.setText(str(tmp_path / "lq"))
    panel.hq_edit.setText(str(tmp_path / "hq"))
    panel.out_edit.setText(str(tmp_path / "run"))
    panel.iterations_spin.setValue(500)
    args = panel.cli_args(resume=True)
    assert args == ["train", "--preset", "s3", "--lq", str(tmp_path / "lq"), "--hq", str(tmp_path / "hq"),
                    "--out", str(tmp_path / "run"), "--iterations", "500", "--device", "auto", "--resume"]
    assert panel.command_edit.text().startswith("decongan train --preset s3")


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


@pytest.mark.slow
def test_real_decongan_train_run_from_the_panel(qtbot, window, tiny_run, tmp_path):
    """The panel starts the real CLI in a child process: curves, validation previews, a usable run folder."""
    from decongan.engine.learn.checkpoint import is_run_dir, read_progress

    data = tiny_run.parent
    panel = window.train_panel
    panel.preset_combo.setCurrentText("s1")
    panel.lq_edit.setText(str(data / "lq"))
    panel.hq_edit.setText(str(data / "hq"))
    panel.out_edit.setText(str(tmp_path / "run"))
    panel.iterations_spin.setValue(4)
    panel.val_every_spin.setValue(2)
    panel.patch_spin.setValue(32)
    panel.batch_spin.setValue(1)
    panel.width_spin.setValue(4)
    panel.device_combo.setCurrentText("cpu")
    qtbot.mouseClick(panel.start_button, _left())
    with qtbot.waitSignal(panel.finished, timeout=240_000) as blocker:
        pass
    assert blocker.args == ["succeeded"], panel.log.toPlainText()
    assert is_run_dir(tmp_path / "run")
    logged = [r for r in read_progress(tmp_path / "run") if "val_ssim" in r]
    assert [r["iteration"] for r in logged] == [2, 4]
    vx, vy = panel.val_plot.series["val_ssim"]
    assert vx == [2.0, 4.0] and vy == pytest.approx([r["val_ssim"] for r in logged])
    assert "loss_g" in panel.loss_plot.series and "val_psnr" in panel.psnr_plot.series
    assert len(panel.preview_items) == 3 and "iter_0000004" in panel.preview_label.text()
    panel.use_button.click()
    assert window.predict_panel.run_edit.text() == str(tmp_path / "run")


@pytest.mark.slow
def test_real_training_stops_with_a_checkpoint_and_resumes_from_it(qtbot, window, tagan, tmp_path):
    """The real `decongan train` child: Stop (SIGINT) saves a checkpoint, Resume (--resume) continues from it."""
    import json
    import shutil

    for sub in ("lq", "hq"):
        (tmp_path / sub).mkdir()
        for name in ("axonal_rings_test0", "axonal_rings_train0"):
            shutil.copy(tagan / sub / f"{name}.tif", tmp_path / sub / f"{name}.tif")
    panel = window.train_panel
    panel.lq_edit.setText(str(tmp_path / "lq"))
    panel.hq_edit.setText(str(tmp_path / "hq"))
    run = tmp_path / "run"
    panel.out_edit.setText(str(run))
    panel.iterations_spin.setValue(100_000)  # far more than the test lets it run
    panel.device_combo.setCurrentText("cpu")
    panel.val_every_spin.setValue(1000)
    panel.patch_spin.setValue(32)
    panel.batch_spin.setValue(1)
    panel.width_spin.setValue(4)

    process = panel.start()
    qtbot.waitUntil(lambda: any((r.get("step") or 0) >= 5 for r in process.records), timeout=120_000)
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        panel.stop_button.click()
    assert blocker.args == ["stopped"] and panel.resume_button.isEnabled()
    stopped_at = max(r.get("iteration", 0) for r in process.records if "iteration" in r)
    assert 5 <= stopped_at < 100_000
    assert any((run / "checkpoints").iterdir())  # the interrupt saved one

    curve_before = list(panel.loss_plot.series["loss_g"][0])
    target = int(stopped_at) + 25  # losses are logged every 10 iterations; the checkpoint may be a few past
    panel.iterations_spin.setValue(target)
    with qtbot.waitSignal(panel.finished, timeout=120_000) as blocker:
        process = panel.start(resume=True)
    assert blocker.args == ["succeeded"], panel.log.toPlainText()[-2000:]
    assert "--resume" in process.command_line
    done = next(r for r in process.records if r.get("event") == "done")
    assert done["total_iterations"] == target and done["resumed_from"] is not None
    assert stopped_at <= done["resumed_from"] < target  # from the interrupt's checkpoint, not from 0
    steps = [r["iteration"] for r in process.records if "loss_g" in r]
    assert done["resumed_from"] < steps[0] and steps[-1] == target  # continues, does not restart
    xs = panel.loss_plot.series["loss_g"][0]
    assert xs[: len(curve_before)] == curve_before and xs[-1] == target  # the curve continues too
    config = json.loads((run / "config.json").read_text())
    assert config["preset"]["name"] == "s1"
