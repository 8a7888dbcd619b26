"""The Data panel's image information and notices are never cut at the bottom: at 1920 x 1080 they show whole
when they fit, and scroll (each label at its full wrapped height) when they do not."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

from tests.app.gui.conftest import wait_idle


def _labels_whole(panel):
    for label in (panel.image_info, panel.notice):
        assert label.height() >= label.heightForWidth(label.width()), label.text()[:60]


def test_image_information_scrolls_instead_of_being_cut_at_1920_by_1080(qtbot, window):
    from decongan.app.gui.session import Layer

    window.resize(1920, 1080)
    window.open_sample()
    qtbot.waitUntil(lambda: window.session.lq is not None and window.session.gt is not None, timeout=30_000)
    wait_idle(qtbot, window)
    panel, area = window.data_panel, window.data_panel.info_area
    QApplication.processEvents()
    _labels_whole(panel)
    assert not area.verticalScrollBar().isVisible()  # LQ, GT and the sample's notice fit: nothing to scroll
    assert area.widget().height() <= area.viewport().height()

    lq = window.session.lq.image
    for name in ("RL 10 it (engine)", "RL 50 it (engine)", "RLTV 30 it (engine)", "S1 GAN (a_long_run_name)",
                 "S2 GAN (another_long_run_name)", "RL 20 it (fiji)"):
        window.session.set_layer(Layer(name, lq.with_data(np.asarray(lq.data, dtype=np.float32)), "restored"))
    for i in range(10):
        panel.show_notice(f"notice {i}: a restored layer whose own calibration is not taken over is announced here")
    qtbot.waitUntil(lambda: area.verticalScrollBar().isVisible(), timeout=5_000)
    _labels_whole(panel)
    bar = area.verticalScrollBar()
    bar.setValue(bar.maximum())
    QApplication.processEvents()
    # scrolled to the end, the last notice's bottom is inside the visible area
    bottom = panel.notice.mapTo(area.viewport(), panel.notice.rect().bottomLeft()).y()
    assert bar.maximum() > 0 and 0 < bottom <= area.viewport().height()
    assert panel.fields.height() >= 60  # the list of fields keeps room
