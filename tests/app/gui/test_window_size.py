"""The window fits a 1366 x 768 laptop screen: no minimum width above 1366 px with LQ | RL | GAN | GT shown,
every panel's action button visible at 768 px high without scrolling, and long paths elided in the middle (full path as tooltip)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication

from tests.app.gui.conftest import wait_idle


def _four_panels(qtbot, window):
    from decongan.app.gui.session import Layer

    window.open_sample()
    qtbot.waitUntil(lambda: window.session.lq is not None and window.session.gt is not None, timeout=30_000)
    wait_idle(qtbot, window)
    lq = window.session.lq.image
    for name in ("RL 10 it (engine, 3-D)", "S1 GAN"):
        window.session.set_layer(Layer(name, lq.with_data(np.asarray(lq.data, dtype=np.float32)), "restored"))
    qtbot.waitUntil(lambda: len(window.viewer.panels) == 4, timeout=10_000)


def test_many_panels_never_widen_the_window(qtbot, window):
    from decongan.app.gui.session import Layer

    _four_panels(qtbot, window)
    lq = window.session.lq.image
    for i in range(6):  # ten layers in all: the panel toggles scroll sideways instead of widening the window
        window.session.set_layer(Layer(f"S1 GAN seed {i} (a long run folder name)",
                                       lq.with_data(np.asarray(lq.data, dtype=np.float32)), "restored"))
    qtbot.waitUntil(lambda: len(window.viewer.panel_buttons) == 10, timeout=10_000)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366, hint  # was 1928 px with eight layers
    assert window.viewer.panel_strip.horizontalScrollBar().maximum() > 0 or window.width() > 1366


def test_the_window_fits_1366_by_768_and_every_action_button_is_visible(qtbot, window):
    _four_panels(qtbot, window)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768, hint
    window.resize(1366, 768)
    QApplication.processEvents()
    assert (window.width(), window.height()) == (1366, 768)
    screen = QRect(0, 0, 1366, 768)
    buttons = {window.register_panel: window.register_panel.run_button,
               window.deconvolve_panel: window.deconvolve_panel.run_button,
               window.train_panel: window.train_panel.start_button,
               window.predict_panel: window.predict_panel.run_button,
               window.batch_panel: window.batch_panel.start_button,
               window.export_panel: window.export_panel.export_button}
    for panel, button in buttons.items():
        window.show_workflow(panel)  # no scrolling: the action buttons sit in the panel's footer
        QApplication.processEvents()
        top_left = button.mapTo(window, QPoint(0, 0))
        assert button.isVisible() and not button.visibleRegion().isEmpty(), panel.title
        assert screen.contains(QRect(top_left, button.size())), (panel.title, top_left)


def test_long_paths_are_elided_in_the_middle_with_the_full_path_as_tooltip(qtbot, window):
    window.resize(1366, 768)
    path = "/data/core-facility/2026/projects/very-long-project-name/session-17/widefield-nucleus-lq"
    edit = window.data_panel.lq_edit.edit
    edit.setText(path)
    window.viewer.setFocus()
    QApplication.processEvents()
    shown = edit.displayed_text()
    assert shown != path and "…" in shown
    head, tail = shown.split("…")
    assert path.startswith(head) and path.endswith(tail) and tail.endswith("lq")  # both ends stay readable
    assert edit.toolTip() == path and window.data_panel.lq_edit.text() == path  # the value is the full path
