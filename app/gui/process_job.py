"""Run a ``decongan`` command in a child process (QProcess) and follow its JSON-lines output.

Training is launched this way: the window starts the same CLI a user would type
(``decongan train --preset s1 ...``), reads one JSON object per stdout line
(``step``, ``total``, ``message``, ``eta_s`` plus losses / validation metrics), and shows them live.
A crash or out-of-memory in the child ends the process, never the window.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import deque
from collections.abc import Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from decongan.engine.progress import Progress

#: lines of stderr kept for the error dialog
STDERR_TAIL_LINES = 200


def decongan_command(*args: str) -> list[str]:
    """The argv that runs ``decongan ARGS`` with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "decongan.app.cli", *args]


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
        Working directory of the child.

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
        self.records: list[dict] = []
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.exit_code: int | None = None
        self.outcome: str | None = None
        self._stop_requested = False
        self._stdout_buffer = b""
        self._stderr_buffer = b""
        self.process = QProcess(self)
        if cwd:
            self.process.setWorkingDirectory(cwd)
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
        if argv[:3] == [sys.executable, "-m", "decongan.app.cli"]:
            argv = ["decongan", *argv[3:]]
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
