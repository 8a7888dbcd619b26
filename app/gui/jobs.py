"""Run engine work off the GUI thread, with progress and cancel.

A job's *work* is a function ``work(ctx: JobContext)`` that either

* returns a generator yielding :class:`engine.progress.Progress` (the engine's ``iter_*`` style,
  or a generator function using ``result = yield from iter_x(...)``); the thread drains it and
  cancelling closes it at the next ``yield``; or
* returns a plain value after calling engine code that takes ``progress=ctx.progress`` and
  ``cancel=ctx.cancel`` (callback style; :class:`engine.progress.Cancelled` means cancelled).

Signals are delivered on the GUI thread. Failures go to the window's one
:class:`~app.gui.error_dialog.ErrorPresenter` through :class:`JobManager`.
"""

from __future__ import annotations

import enum
import inspect
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from decongan.engine.progress import Cancelled, CancelToken, Progress

#: minimum seconds between two progress signals (the last event is always delivered)
PROGRESS_INTERVAL_S = 0.05


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobContext:
    """Handed to the work function: a cancel token and a thread-safe progress callback."""

    def __init__(self, cancel: CancelToken, emit: Callable[[Progress], None]) -> None:
        self.cancel = cancel
        self._emit = emit
        self.cancel_hooks: list[Callable[[], None]] = []

    def progress(self, event: Progress) -> None:
        self._emit(event)

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (from the GUI thread) when the job is cancelled: for work that cannot poll the
        token, e.g. a Fiji request, whose worker process the hook kills."""
        self.cancel_hooks.append(hook)


class _Runner(QThread):
    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    was_cancelled = Signal()

    def __init__(self, work: Callable[[JobContext], Any], token: CancelToken) -> None:
        super().__init__()
        self.work = work
        self.token = token
        self._last_emit = 0.0
        self.context = JobContext(token, self._emit)

    def _emit(self, event: Progress) -> None:
        now = time.monotonic()
        final = bool(event.total) and event.step >= (event.total or 0)
        if final or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_emit = now
            self.progressed.emit(event)

    def run(self) -> None:  # runs in the worker thread
        ctx = self.context
        try:
            out = self.work(ctx)
            if inspect.isgenerator(out):
                while True:
                    if self.token.cancelled:
                        out.close()
                        self.was_cancelled.emit()
                        return
                    try:
                        event = next(out)
                    except StopIteration as stop:
                        out = stop.value
                        break
                    if isinstance(event, Progress):
                        self._emit(event)
            if self.token.cancelled:
                self.was_cancelled.emit()
            else:
                self.succeeded.emit(out)
        except Cancelled:
            self.was_cancelled.emit()
        except BaseException as err:  # noqa: BLE001 - every failure is shown, none kills the window
            self.failed.emit(err)


class Job(QObject):
    """One piece of work running in its own thread.

    Parameters
    ----------
    name : str
        Shown in the status bar and in error titles ("Richardson-Lucy").
    work : callable
        ``work(ctx)`` as described in the module docstring.

    Signals
    -------
    progress(Progress), succeeded(object result), failed(BaseException), cancelled(),
    finished(JobState) -- always last.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal(object)

    def __init__(self, name: str, work: Callable[[JobContext], Any], parent: QObject | None = None, *,
                 background: bool = False) -> None:
        super().__init__(parent)
        self.name = name
        self.background = background
        self.state = JobState.PENDING
        self.result: Any = None
        self.error: BaseException | None = None
        self.last_progress: Progress | None = None
        self.token = CancelToken()
        self._runner = _Runner(work, self.token)
        self._runner.progressed.connect(self._on_progress)
        self._runner.succeeded.connect(self._on_success)
        self._runner.failed.connect(self._on_failure)
        self._runner.was_cancelled.connect(self._on_cancel)

    # -- control -----------------------------------------------------------------------------------
    def start(self) -> Job:
        self.state = JobState.RUNNING
        self._runner.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next safe point (the ``cancelled`` signal follows)."""
        if self.token.cancelled:
            return
        self.token.cancel()
        for hook in list(self._runner.context.cancel_hooks):
            try:
                hook()
            except Exception:  # noqa: BLE001 - a failing hook must not keep the others from running
                pass

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the thread ends (used on shutdown; the GUI never waits otherwise)."""
        return self._runner.wait(msecs)

    @property
    def is_running(self) -> bool:
        return self.state is JobState.RUNNING

    # -- GUI-thread slots --------------------------------------------------------------------------
    def _on_progress(self, event: Progress) -> None:
        if self.state is JobState.RUNNING:
            self.last_progress = event
            self.progress.emit(event)

    def _finish(self, state: JobState) -> None:
        self.state = state
        self.finished.emit(state)

    def _on_success(self, result: Any) -> None:
        self.result = result
        self.state = JobState.SUCCEEDED
        self.succeeded.emit(result)
        self._finish(JobState.SUCCEEDED)

    def _on_failure(self, error: BaseException) -> None:
        self.error = error
        self.state = JobState.FAILED
        self.failed.emit(error)
        self._finish(JobState.FAILED)

    def _on_cancel(self) -> None:
        self.state = JobState.CANCELLED
        self.cancelled.emit()
        self._finish(JobState.CANCELLED)


class JobManager(QObject):
    """Starts jobs, keeps them alive while they run, and routes their failures to the error presenter.

    Signals
    -------
    job_started(Job), job_finished(Job)
    """

    job_started = Signal(object)
    job_finished = Signal(object)

    def __init__(self, presenter: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.presenter = presenter
        self.jobs: list[Job] = []
        self.closed = False

    def start(self, name: str, work: Callable[[JobContext], Any], *,
              on_success: Callable[[Any], None] | None = None,
              on_progress: Callable[[Progress], None] | None = None, background: bool = False) -> Job:
        """Create and start a :class:`Job`; ``on_success(result)`` runs on the GUI thread.

        ``background`` jobs (metrics, maps: restarted whenever the view changes) are not shown in
        the status bar, so its Cancel button always stops the work the user started.
        """
        job = Job(name, work, self, background=background)
        if self.closed:  # the window is closing: never start a thread that could outlive it
            job.state = JobState.CANCELLED
            return job
        if on_progress is not None:
            job.progress.connect(on_progress)
        if on_success is not None:
            job.succeeded.connect(lambda result: self._call_safely(job, on_success, result))
        job.failed.connect(lambda err: self._present(err, job.name))
        job.finished.connect(lambda _state: self._done(job))
        self.jobs.append(job)
        job.start()
        self.job_started.emit(job)
        return job

    def _call_safely(self, job: Job, func: Callable[[Any], None], result: Any) -> None:
        try:
            func(result)
        except Exception as err:  # noqa: BLE001 - a failing result handler must not kill the window
            job.error = err
            job.state = JobState.FAILED
            self._present(err, job.name)

    def _present(self, error: BaseException, name: str) -> None:
        if self.presenter is not None:
            self.presenter.present(error, context=name)

    def _done(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        self.job_finished.emit(job)
        job._runner.wait(5000)
        job._runner.deleteLater()

    @property
    def running(self) -> list[Job]:
        return [j for j in self.jobs if j.is_running]

    def cancel_all(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    def shutdown(self, msecs: int = 10_000) -> None:
        """Refuse new jobs, cancel every running one and wait for the threads (window close)."""
        self.closed = True
        self.cancel_all()
        for job in list(self.jobs):
            job.wait(msecs)


class JobStatusWidget(QWidget):
    """Status-bar widget: the running job's name, a progress bar and a Cancel button."""

    def __init__(self, manager: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.label = QLabel("Ready")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(260)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_current)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.current: Job | None = None
        manager.job_started.connect(self._track)
        manager.job_finished.connect(self._untrack)
        self.bar.setVisible(False)

    def _track(self, job: Job) -> None:
        if job.background:
            return
        self.current = job
        self.label.setText(f"{job.name}...")
        self.bar.setRange(0, 0)
        self.bar.setVisible(True)
        self.cancel_button.setEnabled(True)
        job.progress.connect(lambda ev, j=job: self._show(j, ev))

    def _show(self, job: Job, event: Progress) -> None:
        if job is not self.current:
            return
        if event.total:
            self.bar.setRange(0, int(event.total))
            self.bar.setValue(int(min(event.step, event.total)))
        self.label.setText(f"{job.name}: {event.message}" if event.message else job.name)

    def _untrack(self, job: Job) -> None:
        if job is not self.current:
            return
        running = [j for j in self.manager.running if not j.background]
        if running:
            self._track(running[-1])
            return
        self.current = None
        self.bar.setVisible(False)
        self.cancel_button.setEnabled(False)
        self.label.setText(f"{job.name}: {job.state.value}")

    def cancel_current(self) -> None:
        if self.current is not None:
            self.current.cancel()
            self.label.setText(f"{self.current.name}: cancelling...")
