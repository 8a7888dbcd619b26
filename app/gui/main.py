"""Entry point of the window: ``decongan gui`` calls :func:`main`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def create_application(argv: Sequence[str] | None = None):
    """The QApplication (created once), with DeconGAN's names and pyqtgraph's options."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from decongan.app.gui.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("DeconGAN")
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    collect_garbage_in_gui_thread(app)
    return app


def collect_garbage_in_gui_thread(app) -> None:
    """Let Python's cyclic garbage collector run only in the GUI thread.

    Otherwise a collection triggered inside a worker thread (engine jobs) can destroy Qt objects
    there, and PySide6 deadlocks waiting for the GIL inside ``QObject::~QObject`` (seen here: the
    window froze while an export job saved a figure). pyqtgraph's GarbageCollector disables
    automatic collection and collects on a GUI-thread timer instead. Safe to call repeatedly.
    """
    import gc

    from pyqtgraph.util.garbage_collector import GarbageCollector

    if getattr(app, "_decongan_gc", None) is None:
        app._decongan_gc = GarbageCollector(interval=1.0)
    gc.disable()


def main(argv: Sequence[str] | None = None, *, paths: Sequence[str | Path] = (), settings_file: str | None = None,
         exit_after_s: float | None = None) -> int:
    """Open the window (blocks until it closes) and return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Extra Qt arguments (e.g. ``-platform offscreen``).
    paths : files or folders to open at start.
    settings_file : str, optional
        Use this ini file for the settings instead of the user's store.
    exit_after_s : float, optional
        Close the window after this many seconds (smoke tests of the real entry point).

    Without a display (and no ``QT_QPA_PLATFORM``) a clear message is printed and 2 is returned,
    instead of Qt aborting the process.
    """
    from decongan.app.display import display_available

    ok, reason = display_available()
    if not ok:
        print(f"decongan gui: {reason}", file=sys.stderr)
        return 2
    app = create_application(argv)
    from decongan.app.gui.main_window import MainWindow
    from decongan.app.gui.settings import Settings

    window = MainWindow(Settings(settings_file) if settings_file else None)
    window.show()
    if paths:
        window.open_paths([Path(p) for p in paths])
    if exit_after_s is not None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(exit_after_s * 1000), window.close)
    app.aboutToQuit.connect(window.jobs.shutdown)
    return int(app.exec())
