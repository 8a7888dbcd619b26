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


# -- output safety (engine.outputs), shared by every command that writes -----------------------
def add_overwrite_argument(parser) -> None:  # argparse.ArgumentParser
    """``--overwrite``: the one way to let a command replace existing outputs (never an input)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (default: refuse before computing; inputs are never replaced)")


def check_output_file(path: str | os.PathLike[str], *, overwrite: bool, label: str = "--out",
                      inputs: dict[str, str | os.PathLike[str] | None] | None = None, need_bytes: int = 0) -> Path:
    """Refuse, before any computation, an output file that is an input, exists (without
    ``overwrite``), or lies in a folder that is not writable or lacks ``need_bytes`` of room.

    ``inputs`` maps a description (``"the input"``, ``"the PSF"``) to the input's path.
    """
    from decongan.engine.outputs import check_new_file, check_writable

    for what, source in (inputs or {}).items():
        if source is not None and same_file(path, source):
            raise CommandError(f"{label} {path} is {what} file; choose another output path (inputs are never overwritten)")
    dest = check_new_file(path, overwrite=overwrite, label=label, allow="pass --overwrite")
    check_writable(dest.parent, need_bytes=need_bytes, what=f"{label} {dest.name}")
    return dest


def check_output_folder(out: str | os.PathLike[str], *, overwrite: bool, input_dirs=(), label: str = "--out",
                        need_bytes: int = 0, results: bool = True) -> Path:
    """Refuse, before any computation, an output folder that is (or lies inside) an input folder,
    already holds results (``results=True``, without ``overwrite``), or cannot be written."""
    from decongan.engine.outputs import check_not_inside, check_results_folder, check_writable

    check_not_inside(out, input_dirs, label=label)
    if results:
        check_results_folder(out, overwrite=overwrite, label=label, allow="pass --overwrite")
    elif Path(out).exists() and not Path(out).is_dir():
        raise CommandError(f"{label} {out} exists and is not a folder; choose a folder")
    check_writable(out, need_bytes=need_bytes, what=f"the results in {label} {out}")
    return Path(out)


def equivalent_command(args, command: str) -> str:  # args: argparse.Namespace
    """The command line that produced ``args``, runnable as printed from any folder.

    Every token is shell-quoted (``shlex.join``) and every path the command read or wrote (an
    option whose value parsed to a ``Path``, a positional path, the ``PATH`` of ``NAME=PATH``) is
    made absolute. Without the original argument list (a direct ``run(args)`` call) it falls back
    to ``decongan COMMAND``.
    """
    import shlex

    argv = getattr(args, "_argv", None)
    if not argv:
        return f"decongan {command}"
    paths: set[Path] = set()
    for value in vars(args).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Path):
                paths.add(item)

    def absolute(token: str) -> str:
        if Path(token) in paths:
            return str(Path(token).absolute())
        if "=" in token and not token.startswith("-"):
            name, _, path = token.partition("=")
            if path and Path(path).exists():
                return f"{name}={Path(path).absolute()}"
        return token

    start = argv.index(command) + 1 if command in argv else 0  # global options and the command name stay as given
    tokens = list(argv[:start])
    for token in argv[start:]:
        if token.startswith("--") and "=" in token:
            flag, _, value = token.partition("=")
            tokens.append(f"{flag}={absolute(value)}")
        else:
            tokens.append(token if token.startswith("-") else absolute(token))
    return shlex.join(["decongan", *tokens])


def parse_offset(text: str) -> float | str:
    """``--offset``: a number (intensity units) or ``auto`` (subtract the image minimum)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def add_offset_argument(parser) -> None:  # argparse.ArgumentParser
    """``--offset VALUE|auto`` for commands that run Richardson-Lucy."""
    parser.add_argument("--offset", type=parse_offset, metavar="VALUE|auto",
                        help="subtract this camera offset/background (image units) before RL; 'auto' subtracts "
                             "the image minimum; recorded in the provenance. Images with negative values are "
                             "refused without it")
