"""``decongan gui``: a clear message without a display (never Qt's abort), and a real start with one."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.app.gui.conftest import PAIR

NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NO_DISPLAY}
    env.update(extra)
    return env


def test_main_without_a_display_returns_a_message(monkeypatch, capsys):
    from decongan.app.gui.main import main

    for name in NO_DISPLAY:
        monkeypatch.delenv(name, raising=False)
    assert main() == 2
    err = capsys.readouterr().err
    assert "no display" in err and "xvfb-run" in err


def test_decongan_gui_without_a_display_exits_cleanly():
    proc = subprocess.run([sys.executable, "-m", "decongan.app.cli", "gui"], env=_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr  # a CommandError, not 134 (Qt's abort)
    assert "decongan gui: error: no display" in proc.stderr


def test_decongan_gui_opens_files_and_closes(tmp_path, tagan):
    settings = tmp_path / "gui.ini"
    proc = subprocess.run([sys.executable, "-m", "decongan.app.cli", "gui", str(tagan / "lq" / PAIR), "--settings",
                           str(settings), "--exit-after", "2"],
                          env=_env(QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = settings.read_text()
    assert PAIR in text  # the opened file went into the recent list of this settings file


def test_decongan_without_arguments_and_without_a_display_prints_help():
    proc = subprocess.run([sys.executable, "-m", "decongan.app.cli"], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no display" in proc.stderr and "usage: decongan" in proc.stderr
