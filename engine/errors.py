"""The engine's one exception base.

Every error the engine raises on purpose derives from :class:`DeconganError`, so a front-end can
catch them all in one place and show the message as it is. Each subclass also derives from the
built-in exception it always was (``ValueError``, ``RuntimeError``, ``FileNotFoundError``,
``KeyError``), so ``except ValueError`` keeps working.

Messages name the offending file or value and say how to fix it in words, never as a command-line
flag: the engine does not know which door (CLI, GUI, batch) called it.

``engine.progress.Cancelled`` is deliberately *not* a subclass: cancelling is the user's choice,
not an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DeconganError(Exception):
    """Base of the engine's errors.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    path : str or Path, optional
        The file or folder at fault, when there is one.
    value : object, optional
        The offending value (a parameter, a shape...), when there is one.

    Attributes
    ----------
    path : Path or None
    value : object or None
    """

    path: Path | None = None
    value: Any = None

    def __init__(self, message: str = "", *args: Any, path: str | Path | None = None, value: Any = None) -> None:
        super().__init__(message, *args)
        if path is not None:
            self.path = Path(path)
        if value is not None:
            self.value = value


__all__ = ["DeconganError"]
