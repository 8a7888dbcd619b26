"""``decongan compare``: LQ | restorations | ground truth with metrics, statistics, figures and a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from decongan.app.commands import (
    CommandError,
    add_overwrite_argument,
    check_output_folder,
    equivalent_command,
)

HELP = "compare LQ, restored images (RL, Fiji, GANs) and ground truth: metrics, statistics, figures, HTML report"
DESCRIPTION = """\
One field:    decongan compare --lq LQ.tif [--gt GT.tif] --method NAME=PATH [--method ...] --out DIR
A data set:   decongan compare --lq-dir LQ/ [--gt-dir GT/] --method NAME=DIR [--method ...] --out DIR
              (files matched by name; a name missing from a folder is listed and left out)

Every method, the LQ input itself ("LQ (input)") and the ground truth are measured the same way:
MSE/NRMSE/PSNR/SSIM against the ground truth after one normalisation policy (GT percentile-normalised,
each image least-squares gain/offset-matched to it), no-reference metrics (BGSTD, CUF, SNR,
decorrelation resolution) next to the input's own values, and -- with a PSF of the LQ system (--psf or
the Born & Wolf optics --na/--ni/--wavelength-nm) -- a data-consistency map that re-images each
restoration through the LQ system and flags structure the input does not support.
With >= 3 fields: Kruskal-Wallis across methods and Dunn's test with Holm (or Bonferroni) correction.

Writes DIR/metrics.csv, metrics.json, summary.csv, figures/ (PNG 300 dpi, SVG, PDF), restored/
(calibrated TIFFs) and report.html (self-contained).
"""


# ---------------------------------------------------------------------------------------------
# options shared with `decongan batch` and `decongan demo`
# ---------------------------------------------------------------------------------------------
def add_psf_arguments(parser: argparse.ArgumentParser, *, purpose: str) -> None:
    group = parser.add_argument_group(f"PSF of the LQ system ({purpose})")
    group.add_argument("--psf", type=Path, metavar="PSF.tif", help="PSF image (2-D or 3-D) sampled on the images' grid")
    group.add_argument("--na", type=float, help="numerical aperture, for a Born & Wolf PSF")
    group.add_argument("--ni", type=float, help="immersion refractive index (1.0 air, 1.33 water, 1.515 oil)")
    group.add_argument("--wavelength-nm", type=float, metavar="NM", help="emission wavelength, nanometres")


def add_figure_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("figures and statistics")
    group.add_argument("--contrast", choices=["shared", "per-panel"], default="shared",
                       help="shared: panels matched to the reference (metric normalisation) and shown with its "
                            "percentile range; per-panel: each panel its own percentiles")
    group.add_argument("--cmap", choices=["gray", "magma", "cividis", "viridis", "inferno"], default="gray",
                       help="image LUT (colour-blind safe)")
    group.add_argument("--line", metavar="Y0,X0,Y1,X1", help="line-profile end points in pixels (default: ~128 px "
                                                             "through the brightest structure)")
    group.add_argument("--inset", metavar="Y,X,SIZE", help="zoom-inset square in pixels (default: around the "
                                                           "brightest structure); 'none' for no inset")
    group.add_argument("--p-adjust", choices=["holm", "bonferroni"], default="holm",
                       help="multiple-comparison correction of Dunn's test")
    group.add_argument("--formats", default="png,svg,pdf", help="figure formats, comma-separated (png always)")
    group.add_argument("--dpi", type=int, default=300, help="PNG resolution (dots per inch, >= 300 for print)")


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("classical baselines (decongan tune)")
    group.add_argument("--baselines", type=Path, metavar="tuned.json",
                       help="run the baselines of this file (decongan tune) on every input as extra columns; "
                            "refused when an input is one of its calibration files")
    group.add_argument("--allow-optimistic", action="store_true",
                       help="with --baselines: compare fields that are calibration files anyway, labelling every "
                            "baseline column 'optimistic: tuned on the evaluated fields'")
    group.add_argument("--skip-calibration-fields", action="store_true",
                       help="with --baselines: leave out the inputs that are its calibration files (listed in the "
                            "report), so one folder can hold both the calibration and the evaluated fields")


def drop_calibration_fields(args: argparse.Namespace, lq_files: list[Path]) -> tuple[set[Path], list[str]]:
    """The inputs --skip-calibration-fields leaves out (calibration files of --baselines) and a note for each."""
    if not args.skip_calibration_fields:
        return set(), []
    if args.baselines is None:
        raise CommandError("--skip-calibration-fields goes with --baselines tuned.json")
    if args.allow_optimistic:
        raise CommandError("--skip-calibration-fields leaves the calibration fields out; --allow-optimistic would "
                           "keep them: choose one")
    from decongan.app.methods import calibration_files

    found = calibration_files(args.baselines, lq_files)
    return {path for path, _ in found}, [f"{path.name}: calibration field {name} of {args.baselines}"
                                         for path, name in found]


def baseline_specs(args: argparse.Namespace, psf_source: Any, lq_files: list[Path]) -> tuple[list[Any], list[str]]:
    """The MethodSpecs of --baselines (none without it) and their report notes."""
    if args.baselines is None:
        if args.allow_optimistic:
            raise CommandError("--allow-optimistic goes with --baselines tuned.json")
        return [], []
    from decongan.app.methods import baseline_methods

    return baseline_methods(args.baselines, psf_source, evaluated=lq_files, allow_optimistic=args.allow_optimistic)


def _positive(flag: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise CommandError(f"{flag} must be a positive number, got {value}")


def psf_source_from_args(args: argparse.Namespace, *, required: bool) -> Any:
    """An ``app.methods.PsfSource`` from --psf or --na/--ni/--wavelength-nm; None when neither and not required."""
    from decongan.app.methods import PsfSource

    optics = [args.na, args.ni, args.wavelength_nm]
    if args.psf is not None and any(v is not None for v in optics):
        raise CommandError("give either --psf or the optics --na/--ni/--wavelength-nm, not both")
    if args.psf is None and all(v is None for v in optics):
        if required:
            raise CommandError("a PSF is needed: --psf PSF.tif, or --na, --ni and --wavelength-nm for a Born & Wolf PSF")
        return None
    if args.psf is None and any(v is None for v in optics):
        raise CommandError("a Born & Wolf PSF needs all three of --na, --ni and --wavelength-nm")
    for flag, value in (("--na", args.na), ("--ni", args.ni), ("--wavelength-nm", args.wavelength_nm)):
        _positive(flag, value)
    if args.psf is not None and not args.psf.is_file():
        raise CommandError(f"--psf {args.psf}: file not found")
    return PsfSource(path=args.psf, na=args.na, ni=args.ni, wavelength_nm=args.wavelength_nm,
                     pixel_nm=getattr(args, "pixel_nm", None), z_step_nm=getattr(args, "z_step_nm", None))


def parse_line(text: str | None) -> Any:
    if text is None:
        return "auto"
    if text.lower() == "none":
        return None
    try:
        y0, x0, y1, x1 = (float(v) for v in text.split(","))
    except ValueError as err:
        raise CommandError(f"--line {text!r}: expected Y0,X0,Y1,X1 in pixels") from err
    return ((y0, x0), (y1, x1))


def parse_inset(text: str | None) -> Any:
    if text is None:
        return "auto"
    if text.lower() == "none":
        return None
    try:
        y, x, size = (int(v) for v in text.split(","))
    except ValueError as err:
        raise CommandError(f"--inset {text!r}: expected Y,X,SIZE in pixels") from err
    if size < 4 or y < 0 or x < 0:
        raise CommandError(f"--inset {text!r}: the square must start inside the image and be at least 4 px")
    return (y, x, size)


def figure_options(args: argparse.Namespace) -> dict[str, Any]:
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise CommandError(f"--formats: unknown format(s) {', '.join(bad)} (png, svg, pdf)")
    if args.dpi < 72:
        raise CommandError(f"--dpi {args.dpi} is too low (use >= 300 for print)")
    return {"contrast": args.contrast, "cmap": args.cmap, "line": parse_line(args.line), "inset": parse_inset(args.inset),
            "p_adjust": args.p_adjust, "formats": formats, "dpi": args.dpi}


def consistency_psf_function(psf_source: Any, mode: str) -> Any:
    """``lq_image -> PSF or None`` for engine.evaluate.dataset.iter_evaluate_fields, per --consistency."""
    if mode == "off":
        return None
    if mode == "identity" or psf_source is None:
        return lambda image: None
    return psf_source.for_image


def fiji_backend_summary() -> str:
    """One line on the Fiji/ImageJ backend that would be used (never starts a JVM)."""
    try:
        from decongan.app.fiji.doctor import doctor

        report = doctor(start_worker=False, probe_network=False)
        return report.summary()
    except Exception as err:  # a broken bridge must not break a comparison report
        return f"unknown ({type(err).__name__}: {err})"


def report_and_print(evaluations: list[Any], out: Path, *, context: Any, options: dict[str, Any], label: str,
                     json_progress: bool = False) -> Any:
    from decongan.app.console import ConsoleProgress
    from decongan.engine.evaluate.compare import MetricTable
    from decongan.engine.evaluate.report import write_comparison_outputs

    outputs = write_comparison_outputs(evaluations, out, context=context,
                                       progress=ConsoleProgress(f"{label}: outputs", json_lines=json_progress, phase="report"),
                                       **options)
    print_summary(MetricTable.from_evaluations(evaluations))
    if outputs.verdict is not None and outputs.verdict.headline:
        print(f"verdict:  {outputs.verdict.headline}")
    print(f"metrics:  {outputs.metrics_csv}")
    print(f"figures:  {outputs.out_dir / 'figures'} ({', '.join(sorted(outputs.figures))})")
    print(f"report:   {outputs.report_html}")
    return outputs


def print_summary(table: Any) -> None:
    """Median SSIM / PSNR (and consistency) per method on stdout."""
    keys = [k for k in ("ssim", "psnr", "snr", "dc_flagged_fraction") if k in table.metrics]
    summary = table.summary()
    width = max(len(m) for m in table.methods) + 2
    labels = {k: f"median {k}" for k in keys}
    widths = {k: len(labels[k]) + 3 for k in keys}
    print("method".ljust(width) + "".join(f"{labels[k]:>{widths[k]}}" for k in keys))
    for method in table.methods:
        cells = []
        for k in keys:
            s = summary.get(method, {}).get(k)
            cells.append(f"{s.median:>{widths[k]}.4f}" if s is not None and s.n else f"{'-':>{widths[k]}}")
        print(method.ljust(width) + "".join(cells))


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    single = parser.add_argument_group("one field of view")
    single.add_argument("--lq", type=Path, help="the low-quality input image")
    single.add_argument("--gt", type=Path, help="the ground-truth image of the same field (optional)")
    folders = parser.add_argument_group("a data set (files matched by name)")
    folders.add_argument("--lq-dir", type=Path, help="folder of LQ inputs")
    folders.add_argument("--gt-dir", type=Path, help="folder of ground truths (same file names)")
    parser.add_argument("--method", action="append", default=[], metavar="NAME=PATH",
                        help="a restored image (with --lq) or folder (with --lq-dir) and its column name, or a "
                             "bioimage.io model package (.zip, rdf.yaml) or a DeconGAN run folder run on each LQ; "
                             "repeat")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    parser.add_argument("--pixel-nm", type=float, metavar="NM", help="override the lateral pixel size of every image")
    parser.add_argument("--z-step-nm", type=float, metavar="NM", help="override the z step of every image")
    parser.add_argument("--register-gt", choices=["translation", "rigid", "similarity", "affine"],
                        help="register the ground truth onto the LQ grid first (then crop to the common area)")
    parser.add_argument("--resample", action="store_true",
                        help="allow an LQ and a ground truth of different sizes: resample the LQ onto the ground "
                             "truth's grid (labelled in the report); without it such a pair is refused")
    add_overwrite_argument(parser)
    parser.add_argument("--consistency", choices=["auto", "identity", "off"], default="auto",
                        help="data-consistency map: auto = with the PSF when one is given (else off); identity = "
                             "restorations share the LQ optics (denoising); off")
    parser.add_argument("--no-noref", action="store_true", help="skip the no-reference metrics (faster)")
    parser.add_argument("--split-half", action="store_true",
                        help="split-half trust map of every method compare runs itself (--baselines, model packages): "
                             "each input's photons split in two halves, both restored, disagreement beyond noise "
                             "mapped (column sh_flagged_fraction; restored files cannot be split)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME,NAME[,...]",
                        help="columns that are several models or seeds of one method: map where they disagree beyond "
                             "noise; each member's share of departing pixels is column ens_flagged_fraction; repeat")
    add_psf_arguments(parser, purpose="for the data-consistency map and the deconvolution baselines")
    add_baseline_arguments(parser)
    add_figure_arguments(parser)
    parser.add_argument("--json-progress", action="store_true", help="print JSON progress lines on stdout")


def model_method_specs(methods: dict[str, Path]) -> list[Any]:
    """MethodSpecs of the --method entries that name a bioimage.io package or a DeconGAN run / model folder
    (removed from ``methods``)."""
    from decongan.app.methods import bioimageio_method, gan_method
    from decongan.engine.learn.bioimageio_run import is_bioimageio_source
    from decongan.engine.learn.checkpoint import is_run_dir

    specs = []
    for name, path in list(methods.items()):
        if is_bioimageio_source(path):
            specs.append(bioimageio_method(path, name=name))
            del methods[name]
        elif is_run_dir(path):  # a trained GAN (decongan train --out, or resources/models/...)
            specs.append(gan_method(path, name=name))
            del methods[name]
    return specs


def _parse_methods(items: list[str]) -> dict[str, Path]:
    from decongan.engine.evaluate.compare import GT_NAME, LQ_NAME

    methods: dict[str, Path] = {}
    for item in items:
        if "=" not in item:
            raise CommandError(f"--method {item!r}: expected NAME=PATH")
        name, path = item.split("=", 1)
        name = name.strip()
        if not name or not path:
            raise CommandError(f"--method {item!r}: expected NAME=PATH with a non-empty name and path")
        if name in methods:
            raise CommandError(f"--method name {name!r} is given twice")
        if name in (LQ_NAME, GT_NAME):
            raise CommandError(f"--method name {name!r} is reserved; choose another")
        methods[name] = Path(path)
    return methods


def _parse_ensembles(items: list[str], columns: list[str]) -> list[list[str]]:
    groups = []
    for item in items:
        names = list(dict.fromkeys(n.strip() for n in item.split(",") if n.strip()))
        unknown = [n for n in names if n not in columns]
        if len(names) < 2 or unknown:
            raise CommandError(f"--ensemble {item!r}: give two or more method columns separated by commas"
                               + (f"; {', '.join(unknown)} is not one of {', '.join(columns) or 'none'}" if unknown else ""))
        groups.append(names)
    return groups


def run(args: argparse.Namespace) -> int:
    from decongan.app.console import ConsoleProgress
    from decongan.engine.evaluate.compare import ComparisonError
    from decongan.engine.evaluate.dataset import FieldFiles, iter_evaluate_fields, match_dataset
    from decongan.engine.evaluate.report import ReportContext
    from decongan.engine.io import image_stem
    from decongan.engine.progress import run_with_callbacks
    from decongan.engine.zarr_io import is_zarr_path

    _positive("--pixel-nm", args.pixel_nm)
    _positive("--z-step-nm", args.z_step_nm)
    methods = _parse_methods(args.method)
    models = model_method_specs(methods)  # --method NAME=MODEL.zip: run on each LQ, not read from files
    options = figure_options(args)
    if (args.lq is None) == (args.lq_dir is None):
        raise CommandError("give either --lq (one field) or --lq-dir (a data set)")
    skipped: list[str] = []
    if args.lq is not None:
        if args.gt_dir is not None:
            raise CommandError("--gt-dir goes with --lq-dir; use --gt with --lq")
        for label, path in [("--lq", args.lq), ("--gt", args.gt), *[(f"--method {n}", p) for n, p in methods.items()]]:
            if path is not None and not (Path(path).is_file() or (is_zarr_path(path) and Path(path).is_dir())):
                raise CommandError(f"{label} {path}: file not found")
        fields = [FieldFiles(image_stem(args.lq), args.lq, args.gt, methods)]
    else:
        if args.gt is not None:
            raise CommandError("--gt goes with --lq; use --gt-dir with --lq-dir")
        for name, path in methods.items():
            if not path.is_dir():
                raise CommandError(f"--method {name}={path}: with --lq-dir every method must be a folder")
        try:
            fields, skipped = match_dataset(args.lq_dir, gt_dir=args.gt_dir, method_dirs=methods)
        except (ComparisonError, ValueError) as err:
            raise CommandError(str(err)) from err
        for line in skipped:
            print(f"decongan compare: left out: {line}", file=sys.stderr)
    dropped, dropped_notes = drop_calibration_fields(args, [f.lq for f in fields])
    fields = [f for f in fields if f.lq not in dropped]
    skipped += dropped_notes
    for line in dropped_notes:
        print(f"decongan compare: left out: {line}", file=sys.stderr)
    if not fields:
        raise CommandError(f"every input is a calibration field of --baselines {args.baselines}: nothing is left to "
                           "evaluate; give the fields that were not used for tuning")
    if not methods and not models and args.baselines is None and args.gt is None and args.gt_dir is None:
        raise CommandError("nothing to compare: give at least one --method or a ground truth")
    check_output_folder(args.out, overwrite=args.overwrite,
                        input_dirs=[args.lq_dir, args.gt_dir, *[p for p in methods.values() if p.is_dir()]])

    psf_source = psf_source_from_args(args, required=False)
    baselines, baseline_notes = baseline_specs(args, psf_source, [f.lq for f in fields])
    taken = [b.name for b in baselines if b.name in methods or b.name in {m.name for m in models}]
    if taken:
        raise CommandError(f"--method name {taken[0]!r} is also a baseline column of --baselines; rename the method")
    ensembles = _parse_ensembles(args.ensemble, [*methods, *(m.name for m in models), *(b.name for b in baselines)])
    if args.split_half and not baselines and not models:
        raise CommandError("--split-half needs a method compare runs itself (--baselines tuned.json or --method "
                           "NAME=MODEL.zip): restored files cannot be split into photon halves after the fact")
    psf_for = consistency_psf_function(psf_source, args.consistency)
    events = iter_evaluate_fields(fields, pixel_size_um=args.pixel_nm / 1000 if args.pixel_nm else None,
                                  z_step_um=args.z_step_nm / 1000 if args.z_step_nm else None,
                                  register_gt=args.register_gt, consistency=psf_for is not None,
                                  consistency_psf=psf_for, no_reference=not args.no_noref, resample=args.resample,
                                  computed={b.name: b.run for b in [*models, *baselines]}, split_half=args.split_half,
                                  ensembles=ensembles)
    evaluations, failures = run_with_callbacks(events, progress=ConsoleProgress("compare", json_lines=args.json_progress))
    for line in failures:
        print(f"decongan compare: failed: {line}", file=sys.stderr)
    if not evaluations:
        raise CommandError("no field could be compared: " + "; ".join(failures[:3]))

    notes = [f"left out: {s}" for s in skipped] + [f"failed: {f}" for f in failures] + baseline_notes
    if psf_for is None or (args.consistency == "auto" and psf_source is None):
        notes.append("data-consistency map not computed: no PSF of the LQ system was given "
                     "(--psf or --na/--ni/--wavelength-nm; --consistency identity for same-optics restorations)")
    context = ReportContext(
        title="DeconGAN comparison",
        command=equivalent_command(args, "compare"),
        parameters={"register_gt": args.register_gt, "resample": args.resample, "consistency": args.consistency,
                    "consistency_psf": psf_source.describe() if psf_source is not None else None,
                    "pixel_nm_override": args.pixel_nm, "split_half": args.split_half,
                    **({"ensembles": ensembles} if ensembles else {}),
                    **{k: v for k, v in options.items() if k != "formats"},
                    **({"baselines": {b.name: b.parameters for b in baselines}} if baselines else {}),
                    **({"models": {m.name: m.parameters for m in models}} if models else {})},
        fiji_backend="not used by compare (restored images are read from files; see each method's backend)",
        notes=notes,
    )
    report_and_print(evaluations, args.out, context=context, options=options, label="compare",
                     json_progress=args.json_progress)
    return 0 if not failures else 1
