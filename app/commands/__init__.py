"""One module per ``decongan`` subcommand.

Each module defines::

    HELP: str                                   # one line for `decongan --help`
    def add_arguments(parser) -> None           # argparse options, with units in the help texts
    def run(args) -> int                        # the work; returns the exit status

Modules must stay cheap to import (no torch, matplotlib or Qt at module level) so that
``decongan --help`` is instant; import heavy things inside ``run``.
Expected failures raise :class:`CommandError` (or ``engine.io.ImageReadError``): the CLI prints
the message, never a traceback, and exits with status 1.
"""

from __future__ import annotations

import os
from pathlib import Path

from decongan.engine.errors import DeconganError


class CommandError(DeconganError):
    """A user-facing error: the message says what is wrong and, where possible, how to fix it."""


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same file (hard links and symlinks included, or the same
    resolved path when one does not exist yet): used to refuse outputs that would overwrite inputs."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()
