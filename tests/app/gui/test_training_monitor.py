"""Training monitor: legends outside the data, a marker where validation SSIM passes the LQ baseline, preset
defaults shown as values, and Stop reported in words (no exit status)."""

from __future__ import annotations

import sys
import textwrap

from PySide6.QtWidgets import QApplication

TRAINER = textwrap.dedent("""
    import json, signal, sys, time
    mode = sys.argv[1]
    if mode == "ignore":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        def stop(signum, frame):
            print("decongan train: stopped; checkpoint saved in RUN (continue with --resume)", file=sys.stderr,
                  flush=True)
            sys.exit(130)
        signal.signal(signal.SIGINT, stop)
    total = 20 if mode == "finish" else 100000
    for step in range(1, total + 1):
        record = {"step": step, "total": total, "loss_g": 1.0 / step}
        if step % 5 == 0:  # the model passes the LQ input's SSIM (0.70) at step 15
            record.update(val_ssim=0.5 + 0.015 * step, lq_ssim=0.70, val_psnr=20.0 + step, lq_psnr=30.0)
        print(json.dumps(record), flush=True)
        time.sleep(0.0 if mode == "finish" else 0.01)
""")


def _trainer(tmp_path, mode: str) -> list[str]:
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    return [sys.executable, str(script), mode]


def test_curves_mark_where_validation_passes_the_lq_baseline_and_legends_stay_off_the_data(qtbot, window, tmp_path):
    window.resize(1366, 768)
    panel = window.train_panel
    panel.start(argv=_trainer(tmp_path, "finish"))
    with qtbot.waitSignal(panel.finished, timeout=30_000) as blocker:
        pass
    assert blocker.args == ["succeeded"] and panel.status.text() == "Training succeeded"
    QApplication.processEvents()
    assert panel.val_plot.crossings == {"val_ssim": 15.0}  # 0.65 at 10, 0.725 at 15 > 0.70
    assert [m.value() for m in panel.val_plot.markers] == [15.0]
    assert panel.val_plot.markers[0].label.format == "passes LQ at 15"
    assert panel.psnr_plot.crossings == {"val_psnr": 15.0}  # 35 dB > 30 dB first at 15 (10: 30 is not above)
    for plot in (panel.loss_plot, panel.val_plot, panel.psnr_plot):
        data_area = plot.plotItem.vb.sceneBoundingRect()
        assert not plot.legend.sceneBoundingRect().intersects(data_area), plot  # never over the newest points
        title = plot.plotItem.titleLabel
        assert title.item.boundingRect().width() <= plot.plotItem.boundingRect().width()  # not cut
        assert plot.plotItem.minimumWidth() <= plot.width(), plot  # the axes and legend are not clipped at 1366 px
    assert sorted(item.text for _, item in panel.val_plot.legend.items) == ["LQ input", "model"]


def test_preset_defaults_are_shown_as_their_values(qtbot, window):
    panel = window.train_panel
    panel.preset_combo.setCurrentText("s1")
    assert panel.patch_spin.value() == 0 and panel.patch_spin.text() == "preset: 256 px"
    assert panel.batch_spin.text() == "preset: 4" and panel.val_every_spin.text() == "preset: 500"
    assert panel.width_spin.text() == "preset: 64"
    panel.preset_combo.setCurrentText("s5")
    assert panel.patch_spin.text() == "preset: 64 px"
    assert "--patch-size" not in panel.cli_args()  # still the preset's own value on the command line
    panel.patch_spin.setValue(96)
    assert panel.patch_spin.text() == "96 px"


def test_stop_is_reported_as_stopped_by_you_with_what_happened_to_the_checkpoint(qtbot, window, tmp_path):
    panel = window.train_panel
    process = panel.start(argv=_trainer(tmp_path, "clean"))
    qtbot.waitUntil(lambda: len(process.records) >= 3, timeout=30_000)
    with qtbot.waitSignal(panel.finished, timeout=30_000):
        panel.stop()
    text = panel.status.text()
    assert text == "Training stopped by you: checkpoint saved in RUN (continue with --resume)"
    assert "exit status" not in text and "exit status" not in panel.monitor_status.text()

    process = panel.start(argv=_trainer(tmp_path, "ignore"))
    qtbot.waitUntil(lambda: len(process.records) >= 3, timeout=30_000)
    with qtbot.waitSignal(panel.finished, timeout=30_000):
        process.stop(grace_ms=300)  # it ignores the interrupt: ended after the grace period
    assert process.killed and "exit status" not in panel.status.text()
    assert panel.status.text().startswith("Training stopped by you: it did not stop within the grace period")
