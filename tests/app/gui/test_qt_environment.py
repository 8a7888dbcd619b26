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


def test_garbage_is_collected_only_in_the_gui_thread(qtbot):
    """A gc run in a worker thread can deadlock PySide6 (QObject destructors need the GIL):
    the application disables automatic collection and collects on a GUI-thread timer."""
    import gc
    import threading

    from decongan.app.gui.main import create_application

    app = create_application()
    assert not gc.isenabled()

    class Cycle:
        pass

    collected_in: list[str] = []

    def trace(phase, info):
        if phase == "stop" and info.get("collected"):
            collected_in.append(threading.current_thread().name)

    gc.callbacks.append(trace)
    try:
        def make_garbage():
            for _ in range(20000):
                a, b = Cycle(), Cycle()
                a.other, b.other = b, a

        worker = threading.Thread(target=make_garbage, name="worker")
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: bool(collected_in), timeout=5000)
    finally:
        gc.callbacks.remove(trace)
    assert app._decongan_gc is not None
    assert set(collected_in) == {threading.main_thread().name}
