"""Predict warns before applying a model outside its training domain (bundled nucleus model on FMD data), and
"Open report" says where the report is when no browser opens it."""

from __future__ import annotations

from pathlib import Path

import pytest

from decongan.resources import resource_path
from tests.app.gui.conftest import wait_idle

MODEL = Path(resource_path("models", "s1_neubias_nucleus"))


@pytest.mark.slow
def test_the_bundled_model_on_fmd_data_is_asked_about_and_labelled_when_predicted_anyway(
        qtbot, window, shared_data, monkeypatch):
    window.open_paths([shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq" / "fov01.png"])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    panel = window.predict_panel
    panel.set_run_dir(MODEL)
    panel.tile_spin.setValue(0)
    panel.device_combo.setCurrentText("cpu")
    asked: list[list[str]] = []
    monkeypatch.setattr(panel, "ask_predict_anyway", lambda warnings: asked.append(warnings) or False)
    panel.run()
    assert len(asked) == 1 and panel.job is None  # cancelled: nothing predicted
    text = " ".join(asked[0])
    assert "no pixel size" in text and "outside the training inputs" in text
    assert "Outside the model's training domain" in panel.domain_info.text()
    assert not window.session.restored

    monkeypatch.setattr(panel, "ask_predict_anyway", lambda warnings: asked.append(warnings) or True)
    panel.run()
    qtbot.waitUntil(lambda: len(window.session.restored) == 1, timeout=120_000)
    assert window.session.restored[0].provenance.parameters["domain_warnings"] == asked[1]


def test_the_bundled_sample_is_inside_the_domain(qtbot, window, tmp_path):
    window.open_paths([Path(resource_path("samples", "neubias_nucleus", "lq", "nucleus_widefield.tif"))])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    panel = window.predict_panel
    panel.set_run_dir(MODEL)
    assert panel.bundled_combo.currentText() == "bundled: s1_neubias_nucleus"  # the list names the chosen model
    panel.set_run_dir(tmp_path)
    assert panel.bundled_combo.currentIndex() == 0  # another folder: not a bundled model
    check = panel.check_domain(MODEL, window.session.lq.image)
    assert check.warnings == [] and check.measurements["pixel_size_ratio"] == pytest.approx(1.0)
    assert panel.domain_info.text().startswith("Within the model's training domain")


def test_open_report_without_a_browser_shows_the_path(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices, QGuiApplication
    from PySide6.QtWidgets import QMessageBox

    report = tmp_path / "batch out" / "report.html"
    report.parent.mkdir()
    report.write_text("<html></html>")
    opened, shown = [], []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or False)
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a: shown.append((title, text)))
    monkeypatch.setattr(window.batch_panel, "report_path", lambda: report)
    window.batch_panel.open_report()
    assert opened == [str(report)]
    assert len(shown) == 1 and str(report) in shown[0][1] and "No application" in shown[0][1]
    assert QGuiApplication.clipboard().text() == str(report)
