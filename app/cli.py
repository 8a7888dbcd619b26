"""``decongan``: the command line. No Qt here; ``decongan gui`` starts the window in its own module.

Subcommands are listed explicitly in :data:`COMMANDS` (no module discovery); each lives in
``app.commands.<module>`` (see ``app/commands/__init__.py`` for the contract).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

#: (command name, module under app.commands)
COMMANDS: list[tuple[str, str]] = [
    ("demo", "demo"),
    ("psf", "psf"),
    ("deconvolve", "deconvolve"),
    ("register", "register"),
    ("metrics", "metrics"),
    ("compare", "compare"),
    ("batch", "batch"),
    ("tune", "tune"),
    ("train", "train"),
    ("predict", "predict"),
    ("export-model", "export_model"),
    ("weights", "weights"),
    ("fiji", "fiji"),
    ("gui", "gui"),
]


def _load(module: str) -> ModuleType | None:
    name = f"decongan.app.commands.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:  # a command not built yet in this checkout
        if err.name == name:
            return None
        raise


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not the noise of "(default: None)" or "(default: False)"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from decongan.engine import __version__

    parser = argparse.ArgumentParser(
        prog="decongan",
        description="Compare GAN restoration with Richardson-Lucy deconvolution on fluorescence microscopy images.",
        epilog="Run 'decongan COMMAND --help' for a command's options. With no command and a display, the window opens.",
    )
    parser.add_argument("--version", action="version", version=f"decongan {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, module_name in COMMANDS:
        module = _load(module_name)
        if module is None:
            continue
        cmd = sub.add_parser(command, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                             formatter_class=_HelpFormatter)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``decongan`` command; returns the exit status."""
    from decongan.app.commands import CommandError
    from decongan.engine.errors import DeconganError
    from decongan.engine.io import ImageReadError, ImageWriteError
    from decongan.engine.outputs import MemoryEstimateError, OutputError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        from decongan.app.display import display_available

        ok, reason = display_available()
        if ok and _load("gui") is not None:
            argv = ["gui"]
        else:
            print(f"decongan: {reason}\n", file=sys.stderr)
            build_parser().print_help(sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = argv  # for the equivalent command a report states (app.commands.equivalent_command)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except (CommandError, ImageReadError, ImageWriteError, OutputError, MemoryEstimateError, FileNotFoundError,
            DeconganError) as err:
        print(f"decongan {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"decongan {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # unexpected: keep the message short unless --debug
        if args.debug:
            raise
        print(f"decongan {args.command}: unexpected {type(err).__name__}: {err}\n"
              "(run again with 'decongan --debug ...' for the full traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
