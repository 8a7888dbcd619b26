"""Console progress for CLI commands: a bar with ETA on a terminal, JSON lines for machines.

Engine functions report :class:`engine.progress.Progress` events; :class:`ConsoleProgress` is a
callback that renders them. ``decongan train`` prints one JSON object per event on stdout (the GUI
reads these); every command can draw a bar on stderr when stderr is a terminal.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from decongan.engine.progress import Progress


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ConsoleProgress:
    """Callable progress sink.

    Parameters
    ----------
    label : str
        Shown before the bar.
    json_lines : bool
        Also write each event as one JSON object per line to ``json_stream`` (stdout by default),
        with keys ``step``, ``total``, ``message``, ``eta_s`` and the event's values.
    bar : bool or None
        Draw a bar on ``bar_stream`` (stderr); None = only when it is a terminal.
    """

    def __init__(self, label: str = "", *, json_lines: bool = False, bar: bool | None = None,
                 json_stream: IO[str] | None = None, bar_stream: IO[str] | None = None, **extra: Any) -> None:
        self.label = label
        self.json_lines = json_lines
        self.json_stream = json_stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.bar = self.bar_stream.isatty() if bar is None else bar
        self.extra = extra
        self.start = time.monotonic()
        self._last_draw = 0.0

    def eta(self, event: Progress) -> float | None:
        if not event.total or event.step <= 0:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / event.step * max(0, event.total - event.step)

    def __call__(self, event: Progress) -> None:
        eta = self.eta(event)
        if self.json_lines:
            record: dict[str, Any] = {"step": event.step, "total": event.total, "message": event.message,
                                      "eta_s": None if eta is None else round(eta, 1), **self.extra}
            record.update({k: (float(v) if v is not None else None) for k, v in event.values.items()})
            self.json_stream.write(json.dumps(record) + "\n")
            self.json_stream.flush()
        if self.bar:
            now = time.monotonic()
            done = bool(event.total) and event.step >= (event.total or 0)
            if now - self._last_draw < 0.1 and not done:
                return
            self._last_draw = now
            frac = event.fraction
            width = 30
            filled = int(width * (frac or 0.0))
            bar = "#" * filled + "-" * (width - filled)
            pct = f"{100 * frac:5.1f}%" if frac is not None else "  ?  "
            eta_text = f" ETA {format_seconds(eta)}" if eta is not None else ""
            self.bar_stream.write(f"\r{self.label} [{bar}] {pct} {event.message[:40]:<40}{eta_text}")
            if done:
                self.bar_stream.write("\n")
            self.bar_stream.flush()
