"""Export into a folder that already holds results asks first; Replace leaves no stale file; the preview
follows the dataset (issue 13 item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.app.gui.conftest import PAIR, wait_idle


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def compared(qtbot, window, tagan):
    """The synprot pair with a stand-in restored layer, compared (the export's input)."""
    from decongan.app.gui.session import Layer

    window.open_dataset(tagan / "lq", tagan / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    row = next(i for i, f in enumerate(window.session.dataset.fields) if f.lq.name == PAIR)
    window.data_panel.fields.setCurrentRow(row)
    qtbot.waitUntil(lambda: window.session.field.lq.name == PAIR, timeout=20_000)
    wait_idle(qtbot, window)
    window.data_panel.pixel_spin.setValue(0.015)
    lq = window.session.lq.image
    window.session.set_layer(Layer("half", lq.with_data(np.asarray(lq.data, dtype=np.float32) * 0.5), "restored"))
    window.compute_evaluation()
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)
    panel = window.export_panel
    panel.svg_check.setChecked(False)
    panel.pdf_check.setChecked(False)
    panel.dpi_spin.setValue(72)
    return window


def _export(qtbot, panel, out):
    panel.out_edit.setText(str(out))
    with qtbot.waitSignal(panel.exported, timeout=180_000):
        panel.export()


@pytest.mark.slow
def test_export_asks_before_replacing_results_and_removes_the_stale_files(qtbot, compared, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    import decongan.app.gui.panels.export as export_module

    window = compared
    panel = window.export_panel
    out = tmp_path / "export"
    _export(qtbot, panel, out)
    first = _files(out)
    stale = [k for k in first if k.endswith(".tif") and "half" in k]
    assert stale and "report.html" in first and export_module.EXPORT_MANIFEST in first
    (out / "my_notes.txt").write_text("not DeconGAN's")  # a file the export did not write

    asked = []

    def answer(choice):
        def ask(parent, folder, owned, other):
            asked.append((folder, owned, other))
            return choice
        return ask

    # Cancel: nothing is written or removed
    monkeypatch.setattr(export_module, "ask_existing_results", answer("cancel"))
    panel.export()
    wait_idle(qtbot, window)
    assert asked == [(out, len(first) - 1, 1)]  # the earlier export's files (without its manifest), my_notes.txt
    assert _files(out) == {**first, "my_notes.txt": _files(out)["my_notes.txt"]}

    # Choose another folder: the export goes there, the first folder is untouched
    other = tmp_path / "other"
    monkeypatch.setattr(export_module, "ask_existing_results", answer("another"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(other))
    with qtbot.waitSignal(panel.exported, timeout=180_000):
        panel.export()
    assert (other / "report.html").exists() and panel.out_edit.text() == str(other)
    assert {k: v for k, v in _files(out).items() if k != "my_notes.txt"} == first

    # Replace, after the restored layer is gone: its TIFF of the earlier export does not stay behind
    window.session.remove_layer("half")
    window.compute_evaluation()
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)
    monkeypatch.setattr(export_module, "ask_existing_results", answer("replace"))
    _export(qtbot, panel, out)
    after = _files(out)
    assert not [k for k in after if "half" in k]
    assert (out / "my_notes.txt").read_text() == "not DeconGAN's"
    assert "half" not in (out / "metrics.csv").read_text()
    assert after["report.html"] != first["report.html"]

    # an empty or new folder is written without asking
    asked.clear()
    _export(qtbot, panel, tmp_path / "new")
    assert asked == []


@pytest.mark.slow
def test_figure_preview_follows_the_dataset(qtbot, compared, shared_data):
    from tests.app.gui.conftest import open_field

    window = compared
    panel = window.export_panel
    panel.preview()
    qtbot.waitUntil(lambda: panel.preview_ready, timeout=120_000)
    assert not panel.page_label.pixmap().isNull() and panel.large_button.isEnabled()

    open_field(qtbot, window, shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq")
    assert panel.preview_png is None and not panel.preview_ready
    assert panel.page_label.pixmap().isNull() and "Press Preview" in panel.page_label.text()
    assert panel.caption.text() == "" and not panel.large_button.isEnabled()
