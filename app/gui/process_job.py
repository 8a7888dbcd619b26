"""Run a ``decongan`` command in a child process (QProcess) and follow its JSON-lines output.

Training is launched this way: the window starts the same CLI a user would type
(``decongan train --preset s1 ...``), reads one JSON object per stdout line
(``step``, ``total``, ``message``, ``eta_s`` plus losses / validation metrics), and shows them live.
A crash or out-of-memory in the child ends the process, never the window.

Children never run in the window's working directory: a folder there holding ``imagej_bridge/``,
``engine.py`` or ``decongan/`` would be imported instead of the installed package (``-m`` puts the
working directory first on ``sys.path``). They run in a private empty folder (:func:`neutral_cwd`),
with ``-P`` on Python >= 3.11 (no working directory or script folder on ``sys.path``); relative path
arguments of ``decongan`` commands are made absolute first (:func:`absolute_path_arguments`).
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from decongan.engine.progress import Progress

#: lines of stderr kept for the error dialog
STDERR_TAIL_LINES = 200


#: interpreter options of every child: ``-P`` (Python >= 3.11) keeps the working directory off sys.path
SAFE_PATH_FLAGS: tuple[str, ...] = ("-P",) if sys.version_info >= (3, 11) else ()
_CLI_PREFIX = ("-m", "decongan.app.cli")


def decongan_command(*args: str) -> list[str]:
    """The argv that runs ``decongan ARGS`` with this interpreter (no reliance on PATH)."""
    return [sys.executable, *SAFE_PATH_FLAGS, *_CLI_PREFIX, *args]


@functools.lru_cache(maxsize=1)
def neutral_cwd() -> str:
    """A private, empty folder (created once per process, removed at exit) for children to run in."""
    folder = tempfile.mkdtemp(prefix="decongan-child-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def _path_arguments(command: str) -> tuple[frozenset[str], tuple[bool, ...], dict[str, int | str | None]]:
    """(options whose values are paths, which positionals are paths, nargs of every option) of a command."""
    from decongan.app.cli import build_parser

    parser = build_parser()
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    cmd = sub.choices.get(command) if sub is not None else None
    if cmd is None:
        return frozenset(), (), {}
    options: set[str] = set()
    positionals: list[bool] = []
    nargs: dict[str, int | str | None] = {}
    for action in cmd._actions:
        if action.option_strings:
            for name in action.option_strings:
                nargs[name] = action.nargs
                if action.type is Path:
                    options.add(name)
        else:
            positionals.append(action.type is Path)
    return frozenset(options), tuple(positionals), nargs


def absolute_path_arguments(args: Sequence[str], base: str | os.PathLike[str] | None = None) -> list[str]:
    """``decongan COMMAND ...`` arguments with every relative path (options and positionals of type
    Path in the command's parser) made absolute against ``base`` (default: the working directory).

    Other arguments (names, numbers, flags) are unchanged.
    """
    args = [str(a) for a in args]
    if not args:
        return args
    root = Path(base) if base is not None else Path.cwd()
    options, positionals, nargs = _path_arguments(args[0])

    def fix(value: str) -> str:
        return value if not value or os.path.isabs(value) else str(root / value)

    out = [args[0]]
    position = 0
    i = 1
    while i < len(args):
        token = args[i]
        if token.startswith("-") and len(token) > 1:
            name, eq, value = token.partition("=")
            if eq:
                out.append(f"{name}={fix(value) if name in options else value}")
                i += 1
                continue
            out.append(token)
            i += 1
            count = nargs.get(name, 0)
            if count in (None, 1, "?"):
                if i < len(args) and not (count == "?" and args[i].startswith("-")):
                    out.append(fix(args[i]) if name in options else args[i])
                    i += 1
            elif count in ("+", "*") or isinstance(count, int):
                limit = count if isinstance(count, int) else len(args)
                taken = 0
                while i < len(args) and taken < limit and not (args[i].startswith("-") and len(args[i]) > 1):
                    out.append(fix(args[i]) if name in options else args[i])
                    i += 1
                    taken += 1
            continue
        is_path = position < len(positionals) and positionals[position]
        out.append(fix(token) if is_path else token)
        position += 1
        i += 1
    return out


def _cli_args_start(argv: Sequence[str]) -> int | None:
    """Index of the command name in a :func:`decongan_command` argv (None for other programs)."""
    for start in range(1, min(len(argv), 4)):
        if tuple(argv[start:start + 2]) == _CLI_PREFIX and all(a.startswith("-") for a in argv[1:start]):
            return start + 2
    return None


class ProcessFailed(RuntimeError):
    """A child process ended with a non-zero status or crashed; ``details`` holds its stderr."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def progress_from_record(record: dict) -> Progress:
    """A :class:`Progress` from one JSON record (numbers other than step/total become values)."""
    values = {k: float(v) for k, v in record.items()
              if k not in ("step", "total", "eta_s") and isinstance(v, (int, float)) and not isinstance(v, bool)}
    total = record.get("total")
    return Progress(step=int(record.get("step") or 0), total=int(total) if total else None,
                    message=str(record.get("message") or ""), values=values)


class ProcessJob(QObject):
    """A CLI command in a child process.

    Parameters
    ----------
    name : str
        Shown to the user ("Training s1").
    argv : sequence of str
        Full command, e.g. ``decongan_command("train", "--preset", "s1", ...)``.
    cwd : str, optional
        The folder relative path arguments of a ``decongan`` command are resolved against (default:
        the window's working directory). The child itself always runs in :func:`neutral_cwd`.

    Signals
    -------
    record(dict)       one JSON object read from stdout
    progress(Progress) the same record as a Progress event
    line(str)          a stdout/stderr line that is not JSON (logs)
    finished(int, str) exit code and outcome: "succeeded", "failed", "crashed" or "stopped"
    failed(ProcessFailed)
    """

    record = Signal(dict)
    progress = Signal(object)
    line = Signal(str)
    finished = Signal(int, str)
    failed = Signal(object)

    def __init__(self, name: str, argv: Sequence[str], *, cwd: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        if not argv:
            raise ValueError("empty command")
        self.name = name
        self.argv = [str(a) for a in argv]
        start = _cli_args_start(self.argv)
        if start is not None and start < len(self.argv):
            self.argv = self.argv[:start] + absolute_path_arguments(self.argv[start:], cwd)
        self.records: list[dict] = []
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.exit_code: int | None = None
        self.outcome: str | None = None
        #: True when a stop had to kill the child (no clean exit within the grace period)
        self.killed = False
        self._stop_requested = False
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self.process = QProcess(self)
        self.process.setWorkingDirectory(neutral_cwd())
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._escalate)

    @property
    def command_line(self) -> str:
        """The command as a user would type it (for logs and the 'copy command' button)."""
        import shlex

        argv = self.argv
        start = _cli_args_start(argv)
        if argv and argv[0] == sys.executable and start is not None:
            argv = ["decongan", *argv[start:]]
        return " ".join(shlex.quote(a) for a in argv)

    def start(self) -> ProcessJob:
        self.process.start(self.argv[0], self.argv[1:])
        return self

    @property
    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self, *, grace_ms: int = 10_000) -> None:
        """Ask the child to stop (SIGINT: the CLI saves what it can), kill it after ``grace_ms``."""
        if not self.is_running:
            return
        self._stop_requested = True
        pid = int(self.process.processId())
        if pid > 0 and os.name == "posix":
            os.kill(pid, signal.SIGINT)
        else:
            self.process.terminate()
        self._kill_timer.start(grace_ms)

    def _escalate(self) -> None:
        if self.is_running:
            self.killed = True  # it did not stop within the grace period
            self.process.kill()

    def wait(self, msecs: int = 30_000) -> bool:
        return self.process.waitForFinished(msecs)

    # -- reading -----------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._stdout_buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._stdout_buffer = self._stdout_buffer.split(b"\n")
        for raw in lines:
            self._handle_stdout_line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _handle_stdout_line(self, text: str) -> None:
        if not text.strip():
            return
        if text.lstrip().startswith("{"):
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                self.records.append(record)
                self.record.emit(record)
                if "step" in record:
                    self.progress.emit(progress_from_record(record))
                return
        self.line.emit(text)

    def _read_stderr(self) -> None:
        self._stderr_buffer += bytes(self.process.readAllStandardError().data())
        *lines, self._stderr_buffer = self._stderr_buffer.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            # progress bars redraw with carriage returns; keep the last state only
            text = text.split("\r")[-1]
            if text.strip():
                self.stderr_tail.append(text)
                self.line.emit(text)

    def _flush(self) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._stdout_buffer:
            self._handle_stdout_line(self._stdout_buffer.decode("utf-8", "replace"))
            self._stdout_buffer = b""
        if self._stderr_buffer.strip():
            self.stderr_tail.append(self._stderr_buffer.decode("utf-8", "replace"))
            self._stderr_buffer = b""

    # -- end ---------------------------------------------------------------------------------------
    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._flush()
        self.exit_code = int(code)
        crashed = status == QProcess.ExitStatus.CrashExit
        if self._stop_requested:
            self.outcome = "stopped"
        elif crashed:
            self.outcome = "crashed"
        elif code != 0:
            self.outcome = "failed"
        else:
            self.outcome = "succeeded"
        if self.outcome in ("crashed", "failed"):
            tail = "\n".join(self.stderr_tail)
            last = next((ln for ln in reversed(self.stderr_tail) if ln.strip()), "")
            what = "crashed" if crashed else f"ended with exit status {code}"
            message = f"{self.name} {what}" + (f": {last.strip()}" if last else "")
            self.failed.emit(ProcessFailed(message, f"Command: {self.command_line}\n\n{tail}"))
        self.finished.emit(self.exit_code, self.outcome)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.outcome = "failed"
            self.exit_code = -1
            self.failed.emit(ProcessFailed(f"{self.name} could not start: {self.process.errorString()}",
                                           f"Command: {self.command_line}"))
            self.finished.emit(-1, "failed")
