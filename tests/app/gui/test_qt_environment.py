"""The Qt binding must not corrupt Python's reference counts (PySide6 6.12.0 did, on Python < 3.12)."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_void_qt_calls_keep_the_reference_count_of_none(qtbot):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(500):
        label.setText("x")
        label.setVisible(False)
    # a leak-free binding leaves None's count where it was (a few references may come and go)
    assert sys.getrefcount(None) - before > -50, "the Qt binding drops references to None (PySide6 6.12.0 bug)"
