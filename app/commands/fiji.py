"""``decongan fiji doctor|crosscheck``: which Fiji/ImageJ backend is used and why; plugin outputs vs goldens."""

from __future__ import annotations

import argparse
import json
import sys

from decongan.app.commands import CommandError

HELP = "check the Fiji/ImageJ bridge (doctor) and compare Fiji, engine and golden outputs (crosscheck)"
DESCRIPTION = (
    "doctor: lists the backends in order (local Fiji.app, pyimagej endpoint, ImageJ 1.x jar, none) with the reason "
    "each is or is not used, where Java was found, the ImageJ version, which plugins (PSF Generator, "
    "DeconvolutionLab2, TurboReg, StackReg, SIFT) are installed, and how to install the missing ones. "
    "crosscheck: runs PSF, Richardson-Lucy and registration on the golden inputs with the active backend and "
    "with the engine and prints the largest differences from the golden plugin outputs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fiji_command", metavar="ACTION")
    sub.required = True
    doctor = sub.add_parser("doctor", help="show the Fiji/ImageJ backends, Java, ImageJ and plugins",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    doctor.add_argument("--fiji", metavar="DIR", default=None,
                        help="Fiji.app or plain ImageJ 1.x folder (default: the settings, then $DECONGAN_FIJI)")
    doctor.add_argument("--no-start", action="store_true",
                        help="do not start ImageJ (report discovery and a jar scan only)")
    doctor.add_argument("--offline", action="store_true", help="do not probe the Maven repositories")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    cross = sub.add_parser("crosscheck", help="PSF, RL and registration with Fiji and the engine vs the goldens",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cross.add_argument("--fiji", metavar="DIR", default=None,
                       help="Fiji.app or plain ImageJ 1.x folder (default: the settings, then $DECONGAN_FIJI)")
    cross.add_argument("--golden", metavar="DIR", default=None,
                       help="folder with the Fiji goldens (default: $DECONGAN_SHARED/golden/fiji or "
                            "../shared/golden/fiji next to the repository)")
    which = cross.add_mutually_exclusive_group()
    which.add_argument("--fiji-only", action="store_true", help="skip the engine runs")
    which.add_argument("--engine-only", action="store_true", help="skip the Fiji runs")


def run(args: argparse.Namespace) -> int:
    if args.fiji_command == "doctor":
        return _doctor(args)
    if args.fiji_command == "crosscheck":
        return _crosscheck(args)
    raise CommandError(f"unknown action {args.fiji_command!r} (choose doctor or crosscheck)")


def _doctor(args: argparse.Namespace) -> int:
    from decongan.app.fiji.doctor import doctor

    report = doctor(args.fiji, start_worker=not args.no_start, probe_network=not args.offline)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print("\n".join(report.lines()))
    return 0


def _crosscheck(args: argparse.Namespace) -> int:
    from pathlib import Path

    from decongan.app.fiji.crosscheck import TOLERANCE, default_golden_dir, iter_crosscheck

    golden = Path(args.golden) if args.golden else default_golden_dir()
    if not (golden / "README.md").is_file():
        raise CommandError(f"no Fiji goldens in {golden} (README.md missing); pass --golden DIR "
                           "or set DECONGAN_SHARED to the folder holding golden/fiji")
    print(f"goldens: {golden}")
    print(f"tolerances: PSF {TOLERANCE['psf']:g} (peak 1); RL {TOLERANCE['rl_relative']:g} of the golden's max; "
          f"registration matrix {TOLERANCE['reg_px_fiji']:g} px (Fiji) / {TOLERANCE['reg_px_engine']:g} px (engine)")
    differs = 0
    for line in iter_crosscheck(golden, fiji_dir=args.fiji, run_fiji=not args.engine_only,
                                run_engine=not args.fiji_only):
        print(line.text(), flush=True)
        differs += line.status in ("DIFFERS", "error")
    if differs:
        print(f"{differs} line(s) differ from the goldens or failed", file=sys.stderr)
        return 1
    return 0
