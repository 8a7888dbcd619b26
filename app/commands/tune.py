"""``decongan tune``: choose the classical baselines' parameters on calibration pairs (never the evaluated fields)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from decongan.app.commands import CommandError, add_overwrite_argument, check_output_file

HELP = "tune the classical baselines (Gaussian, NLM, TV, RL, RL-TV, Wiener, denoise+RL) on calibration pairs: tuned.json"
DESCRIPTION = """\
Calibration pairs:  decongan tune --lq-dir LQ/ --gt-dir GT/ [--names a,b,...] --out tuned.json
A GAN's training:   decongan tune --run RUN_DIR --out tuned.json   (the run's training fields, not its
                    validation fields)
No pairs at all:    decongan tune --no-reference --out tuned.json   (stated defaults for the denoisers;
                    RL iterations chosen per image by the discrepancy principle)

Each baseline's parameters (Gaussian sigma, NLM h, TV weight, RL iterations, RL-TV weight, Wiener lambda)
are chosen on a small grid by the metric the report uses (SSIM by default, after the report's one
normalisation policy), as the median over the calibration pairs. tuned.json records the chosen
parameters, the calibration files (names and sha256), the metric and every grid point's scores.
Then: decongan compare ... --baselines tuned.json, decongan batch ... --baselines tuned.json. Those
refuse fields that are calibration files (same LQ sha256) unless --allow-optimistic, which labels
every baseline column "optimistic: tuned on the evaluated fields".

Deconvolution baselines (rl, rltv, wiener and the denoise+rl combinations) need the PSF of the LQ
system: --psf, or the Born & Wolf optics --na/--ni/--wavelength-nm (with the images' pixel size).
"""

DENOISERS = ("gaussian", "nlm", "tv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from decongan.app.commands.compare import add_psf_arguments
    from decongan.engine.evaluate.tuning import TUNING_METRICS
    from decongan.engine.optics.classical import BASELINES

    pairs = parser.add_argument_group("calibration pairs (one of)")
    pairs.add_argument("--lq-dir", type=Path, help="folder of LQ calibration inputs")
    pairs.add_argument("--gt-dir", type=Path, help="folder of their ground truths (same file names)")
    pairs.add_argument("--names", metavar="A,B,...",
                       help="only these fields (file names without extension) of --lq-dir/--gt-dir, e.g. a split")
    pairs.add_argument("--run", type=Path, metavar="RUN_DIR",
                       help="a GAN training run: tune on its training fields (its recorded LQ/HQ folders and split)")
    pairs.add_argument("--no-reference", action="store_true",
                       help="no pairs: stated defaults for the denoisers, RL stopped by the discrepancy principle")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="tuned.json", help="the file to write")
    parser.add_argument("--baselines", metavar="NAME,...",
                        help=f"baselines to tune, from {', '.join(BASELINES)} (default: {', '.join(DENOISERS)}, and "
                             "every other baseline when a PSF is given)")
    parser.add_argument("--metric", choices=TUNING_METRICS, default="ssim",
                        help="the report's reference metric to optimise (median over the pairs)")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME:PARAM=V1,V2,...",
                        help="replace a parameter's grid, e.g. gaussian:sigma_px=0.5,1,2 or rl:iterations=5,10,20; repeat")
    parser.add_argument("--pixel-nm", type=float, metavar="NM", help="override the pairs' lateral pixel size")
    add_psf_arguments(parser, purpose="for the deconvolution baselines")
    add_overwrite_argument(parser)
    parser.add_argument("--json-progress", action="store_true", help="print JSON progress lines on stdout")


def parse_grids(items: list[str]) -> dict[str, dict[str, list[float]]]:
    """``--grid NAME:PARAM=V1,V2`` options as ``{method: {parameter: values}}``."""
    grids: dict[str, dict[str, list[float]]] = {}
    for item in items:
        try:
            head, values = item.split("=", 1)
            method, parameter = head.split(":", 1)
            numbers = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise CommandError(f"--grid {item!r}: expected NAME:PARAM=V1,V2,... e.g. gaussian:sigma_px=0.5,1,2") from None
        if not numbers:
            raise CommandError(f"--grid {item!r}: no values")
        grids.setdefault(method.strip(), {})[parameter.strip()] = numbers
    return grids


def _methods(text: str | None, *, has_psf: bool) -> list[str]:
    from decongan.engine.optics.classical import BASELINES

    if text is None:
        return list(BASELINES) if has_psf else list(DENOISERS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        raise CommandError(f"--baselines: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(BASELINES)}")
    needing = [n for n in names if BASELINES[n].needs_psf]
    if needing and not has_psf:
        raise CommandError(f"--baselines {', '.join(needing)} deconvolve and need the PSF of the LQ system: "
                           "--psf PSF.tif, or --na, --ni and --wavelength-nm")
    return names


def run_pairs(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """The calibration pairs from --lq-dir/--gt-dir(/--names) or --run, and notes for tuned.json."""
    from decongan.engine.evaluate.tuning import TuningError, calibration_pairs

    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    notes: list[str] = []
    if args.run is not None:
        from decongan.engine.learn.checkpoint import RunError, load_run_config

        if args.lq_dir or args.gt_dir or names:
            raise CommandError("--run takes the pairs the run recorded; leave out --lq-dir, --gt-dir and --names")
        try:
            config = load_run_config(args.run)
        except RunError as err:
            raise CommandError(f"--run {err}") from err
        data = config.data
        if data.synthetic_lq is not None or not config.paired or not data.lq_dir or not data.hq_dir:
            raise CommandError(f"--run {args.run}: the run has no real LQ/HQ pairs (synthetic or unpaired training); "
                               "give calibration pairs with --lq-dir and --gt-dir")
        if not data.train_names:
            raise CommandError(f"--run {args.run}: the run records no training fields")
        lq_dir, gt_dir, names = Path(data.lq_dir), Path(data.hq_dir), list(data.train_names)
        notes.append(f"calibration pairs: the training fields of the GAN run {args.run} (validation fields "
                     f"{', '.join(data.val_names) or 'none'} left out)")
    else:
        if args.lq_dir is None or args.gt_dir is None:
            raise CommandError("give calibration pairs: --lq-dir and --gt-dir, or --run RUN_DIR, or --no-reference")
        lq_dir, gt_dir = args.lq_dir, args.gt_dir
        if names:
            notes.append(f"calibration pairs: the fields {', '.join(names)} of {lq_dir} (a split chosen by the user)")
    try:
        return calibration_pairs(lq_dir, gt_dir, names=names), notes
    except TuningError as err:
        raise CommandError(str(err)) from err


def run(args: argparse.Namespace) -> int:
    from decongan.app.commands.compare import psf_source_from_args
    from decongan.app.console import ConsoleProgress
    from decongan.engine.evaluate.tuning import TuningError, default_tuning, iter_tune
    from decongan.engine.optics.classical import BaselineError
    from decongan.engine.progress import run_with_callbacks

    if args.pixel_nm is not None and not args.pixel_nm > 0:
        raise CommandError(f"--pixel-nm must be positive, got {args.pixel_nm}")
    out = check_output_file(args.out, overwrite=args.overwrite, label="--out")
    psf_source = psf_source_from_args(args, required=False)
    methods = _methods(args.baselines, has_psf=psf_source is not None)
    grids = parse_grids(args.grid)
    stray = sorted(set(grids) - set(methods))
    if stray:
        raise CommandError(f"--grid names {', '.join(stray)}, which is not among the baselines tuned ({', '.join(methods)})")
    try:
        if args.no_reference:
            if args.lq_dir or args.gt_dir or args.run or args.names or grids:
                raise CommandError("--no-reference uses no pairs and no grid; leave out --lq-dir, --gt-dir, --run, "
                                   "--names and --grid")
            result = default_tuning(methods)
        else:
            pairs, notes = run_pairs(args)
            result = run_with_callbacks(
                iter_tune(pairs, methods, psf_for=psf_source.for_image if psf_source is not None else None,
                          metric=args.metric, grids=grids,
                          pixel_size_um=args.pixel_nm / 1000 if args.pixel_nm else None),
                progress=ConsoleProgress("tune", json_lines=args.json_progress))
            result.notes.extend(notes)
    except (TuningError, BaselineError) as err:
        raise CommandError(str(err)) from err
    result.psf = psf_source.describe() if psf_source is not None else None
    result.write(out, overwrite=args.overwrite)
    width = max(len(b.label) for b in result.baselines) + 2
    header = f"median {result.metric}" if result.pairs else "score"
    print("baseline".ljust(width) + f"{header:>14}  chosen by")
    for baseline in result.baselines:
        score = f"{baseline.score:14.4f}" if baseline.score is not None else f"{'-':>14}"
        print(baseline.label.ljust(width) + score + f"  {baseline.as_dict()['how']}")
    if result.pairs:
        print(f"calibration: {len(result.pairs)} pair(s): {', '.join(p.name for p in result.pairs)}")
    for note in result.notes:
        print(f"note:     {note}")
    print(f"tuned:    {out}")
    print(f"next:     decongan compare ... --baselines {out}  (fields other than the calibration pairs)",
          file=sys.stderr if args.json_progress else sys.stdout)
    return 0
