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


class CommandError(Exception):
    """A user-facing error: the message says what is wrong and, where possible, how to fix it."""
