"""``decongan gui``: open the desktop workbench (the only command that imports Qt, through app.gui.main)."""

from __future__ import annotations

import argparse

HELP = "open the desktop workbench window"
DESCRIPTION = ("Open the DeconGAN window: compare LQ, deconvolved, GAN and ground-truth images side by side, "
               "run registration, deconvolution, training, prediction, batches and exports. Needs a display "
               "(or run it under xvfb-run).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="image files or folders to open (a folder with lq/ and hq/ opens as a paired dataset)")
    parser.add_argument("--settings", metavar="FILE", default=None,
                        help="use this ini file for the window's settings instead of the user's settings")
    parser.add_argument("--exit-after", type=float, default=None, help=argparse.SUPPRESS)  # smoke tests


def run(args: argparse.Namespace) -> int:
    from decongan.app.display import display_available

    ok, reason = display_available()
    if not ok:
        from decongan.app.commands import CommandError

        raise CommandError(reason)
    from decongan.app.gui.main import main

    return main(paths=args.paths, settings_file=args.settings, exit_after_s=args.exit_after)
