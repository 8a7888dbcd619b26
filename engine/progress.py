"""Progress reporting and cancellation shared by every long-running engine function.

Two styles, both cheap to consume from a CLI progress bar or a GUI worker thread:

* generator style (preferred for loops the caller drives): ``iter_*`` functions *yield*
  :class:`Progress` events; the caller cancels simply by not asking for the next one
  (``generator.close()``), and a plain function drains the generator::

      for event in iter_richardson_lucy(image, psf, iterations=50):
          bar.update(event.fraction)
          if user_pressed_cancel:
              break

* callback style (for work that runs in its own loop, e.g. training): the function accepts
  ``progress: ProgressCallback | None`` and ``cancel: CancelToken | None`` and calls
  ``cancel.raise_if_cancelled()`` at safe points, which raises :class:`Cancelled`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One progress event.

    Attributes
    ----------
    step : int
        Steps done so far (1-based after the first step completes).
    total : int or None
        Total number of steps, or None when unknown.
    message : str
        Short human-readable status ("RL iteration 3/10").
    values : dict
        Numbers worth plotting live (losses, metrics), keyed by lower-case name.
    """

    step: int
    total: int | None = None
    message: str = ""
    values: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        """Fraction done in [0, 1], or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.step / self.total))


ProgressCallback = Callable[[Progress], None]


class Cancelled(Exception):
    """Raised inside engine work when its :class:`CancelToken` was cancelled."""


class CancelToken:
    """A thread-safe flag a front-end sets to stop engine work at the next safe point."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def drain(events: Generator[Progress, None, T] | Iterator[Progress]) -> T:
    """Run an ``iter_*`` generator to completion and return its ``return`` value."""
    while True:
        try:
            next(events)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def report(progress: ProgressCallback | None, event: Progress) -> None:
    """Call ``progress(event)`` when a callback was given.

    Parameters
    ----------
    progress : callable or None
        The front-end's callback, taking one :class:`Progress`.
    event : Progress
        The event to forward.
    """
    if progress is not None:
        progress(event)


def run_with_callbacks(
    events: Generator[Progress, None, T],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> T:
    """Drain ``events`` forwarding each to ``progress``; stop with :class:`Cancelled` when asked.

    Parameters
    ----------
    events : generator of Progress
        An ``iter_*`` generator of the engine; closed when cancelled.
    progress : callable, optional
        Called with every event.
    cancel : CancelToken, optional
        Checked before every event.

    Returns
    -------
    object
        The generator's ``return`` value.

    Raises
    ------
    Cancelled
        When ``cancel`` is set (the generator is closed first).
    """
    while True:
        if cancel is not None and cancel.cancelled:
            events.close()
            raise Cancelled("cancelled by the user")
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        report(progress, event)


__all__: list[Any] = [
    "Progress",
    "ProgressCallback",
    "Cancelled",
    "CancelToken",
    "drain",
    "report",
    "run_with_callbacks",
]
