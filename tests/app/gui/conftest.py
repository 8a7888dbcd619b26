"""Fixtures for the window tests: a temporary settings file and a real MainWindow (offscreen Qt)."""

from __future__ import annotations

import faulthandler
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6", reason="the GUI needs PySide6 (pip install 'decongan[gui]')")
pytest.importorskip("pyqtgraph", reason="the GUI needs pyqtgraph (pip install 'decongan[gui]')")
pytest.importorskip("pytestqt", reason="GUI tests need pytest-qt")

PAIR = "synprot_bassoon-homer_train_ch640.tif"


#: a GUI test that blocks this long is stuck: dump every thread's stack and end the run (instead of
#: hanging a CI job until its global timeout)
HANG_LIMIT_S = 600


@pytest.fixture(autouse=True)
def hang_guard():
    faulthandler.dump_traceback_later(HANG_LIMIT_S, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def gui_thread_garbage_collection():
    """The window turns automatic gc off (it collects on a GUI-thread timer, see
    app.gui.main.collect_garbage_in_gui_thread); turn it back on for the non-GUI tests that follow."""
    import gc

    yield
    gc.collect()
    gc.enable()


@pytest.fixture(autouse=True)
def temporary_settings(tmp_path, monkeypatch) -> Path:
    """Every GUI test uses its own settings file, never the user's."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv("DECONGAN_SETTINGS", str(path))
    return path


@pytest.fixture
def tagan(shared_data) -> Path:
    """The TA-GAN confocal (lq/) vs STED (hq/) folder of the shared data."""
    return shared_data / "tagan_confocal_vs_sted"


@pytest.fixture
def window(qtbot, temporary_settings):
    from decongan.app.gui.main import create_application
    from decongan.app.gui.main_window import MainWindow
    from decongan.app.gui.settings import Settings

    create_application()
    win = MainWindow(Settings(temporary_settings))
    qtbot.addWidget(win)
    win.resize(1500, 950)
    win.show()
    yield win
    if win.errors.last_dialog is not None:
        win.errors.last_dialog.close()
    win.close()  # closeEvent: stop timers, refuse new jobs, cancel and wait for running ones


def wait_idle(qtbot, win, timeout: int = 60_000, *, background: bool = False) -> None:
    """Wait until no job the user started is running (and no background analysis when asked)."""
    qtbot.waitUntil(lambda: not [j for j in win.jobs.jobs if background or not j.background], timeout=timeout)


def open_field(qtbot, win, lq: Path, hq: Path | None = None):
    """Open a dataset folder pair and wait until the first field is shown."""
    win.open_dataset(lq, hq, True)
    qtbot.waitUntil(lambda: win.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, win)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shared_data) -> Path:
    """A real training run (engine training loop and checkpoint code), as small as it gets: S1 with a
    narrow generator, 32-pixel patches, 2 iterations on three real confocal/STED pairs."""
    import shutil

    from decongan.engine.learn.training.config import TrainConfig
    from decongan.engine.learn.training.loop import train

    root = tmp_path_factory.mktemp("tiny_run")
    tagan = shared_data / "tagan_confocal_vs_sted"
    for sub in ("lq", "hq"):
        (root / sub).mkdir()
        for name in ("axonal_rings_test0", "axonal_rings_train0", "dendritic_factin_train804"):
            shutil.copy(tagan / sub / f"{name}.tif", root / sub / f"{name}.tif")
    config = TrainConfig(preset="s1", lq_dir=root / "lq", hq_dir=root / "hq", out=root / "run", iterations=2,
                         patch_size=32, batch_size=1, val_every=2, log_every=1, device="cpu", val_tile=0,
                         model_args={"base_channels": 4, "depth": 2},
                         disc_args={"base_channels": 4, "num_blocks": 2, "fc_features": 8, "max_channels": 8})
    train(config)
    return root / "run"
