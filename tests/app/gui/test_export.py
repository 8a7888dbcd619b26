"""Export through the window: preview of the comparison figure, then the files of engine.evaluate.report."""

from __future__ import annotations

import csv

import numpy as np
import tifffile

from tests.app.gui.conftest import wait_idle

FIELD = "dendritic_factin_train804"


def test_preview_and_export_write_the_comparison_files(qtbot, window, tagan, tmp_path):
    window.open_dataset(tagan / "lq", tagan / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    row = next(i for i, f in enumerate(window.session.dataset.fields) if f.name == FIELD)
    window.data_panel.fields.setCurrentRow(row)
    qtbot.waitUntil(lambda: window.session.field.name == FIELD, timeout=20_000)
    window.data_panel.pixel_spin.setValue(0.02)
    decon = window.deconvolve_panel
    decon.size_spin.setValue(17)
    decon.iterations_spin.setValue(5)
    decon.device_combo.setCurrentText("cpu")
    decon.run()
    qtbot.waitUntil(lambda: len(window.session.restored) == 1, timeout=60_000)
    rl = window.session.restored[0]
    window.viewer.set_line((100.0, 40.0), (100.0, 180.0))
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)

    panel = window.export_panel
    panel.contrast_combo.setCurrentText("per-panel")
    panel.svg_check.setChecked(False)
    panel.pdf_check.setChecked(False)
    panel.dpi_spin.setValue(100)
    assert panel.figure_options()["line"] == ((100.0, 40.0), (100.0, 180.0))  # the viewer's line
    panel.preview()
    qtbot.waitUntil(lambda: panel.preview_ready, timeout=120_000)
    assert panel.preview_png.startswith(b"\x89PNG") and not panel.preview_label.pixmap().isNull()
    assert window.central_tabs.currentWidget() is panel.preview_page  # shown large in the window
    assert not panel.page_label.pixmap().isNull()
    assert "each panel stretched to its own" in panel.caption.text()  # the contrast policy is stated

    out = tmp_path / "export"
    panel.out_edit.setText(str(out))
    with qtbot.waitSignal(panel.exported, timeout=180_000) as blocker:
        panel.export()
    outputs = blocker.args[0]
    assert outputs.report_html == out / "report.html" and out.joinpath("report.html").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert FIELD in html and rl.name in html
    with (out / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"LQ (input)", rl.name, "GT"}
    table = {r["method"]: r for r in window.metrics.rows["Current field"]}
    for r in rows:  # the files say what the window's table says
        if r["ssim"]:
            assert float(r["ssim"]) == np.float64(table[r["method"]]["ssim"])
    comparison = outputs.figures["comparison"]
    assert [p.suffix for p in comparison] == [".png"] and comparison[0].exists()
    restored = [p for p in outputs.restored if rl.name.split()[0] in p.name]
    assert len(restored) == 1
    with tifffile.TiffFile(restored[0]) as tif:
        np.testing.assert_array_equal(tif.asarray(), rl.image.data)
        assert tif.imagej_metadata["unit"] == "micron"
    assert str(out / "report.html") in panel.written.toPlainText()
    assert "decongan compare --lq" in panel.command_edit.text()

    # a second export, cancelled at once: it stops between files and leaves no report behind
    exported = []
    panel.exported.connect(exported.append)
    panel.svg_check.setChecked(True)
    panel.pdf_check.setChecked(True)
    panel.dpi_spin.setValue(300)
    out2 = tmp_path / "cancelled"
    panel.out_edit.setText(str(out2))
    panel.export()
    job = next(j for j in window.jobs.jobs if j.name == "Export")
    job.cancel()
    wait_idle(qtbot, window)
    assert job.state.value == "cancelled"
    assert exported == [] and not (out2 / "report.html").exists()
    assert not window.errors.history  # a cancel is not an error
