"""``decongan batch``: restore every image of a folder (RL engine/Fiji, GAN), then compare and report; resumable."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from decongan.app.commands import (
    CommandError,
    add_offset_argument,
    add_overwrite_argument,
    check_output_folder,
    equivalent_command,
)
from decongan.app.commands.batch_cluster import add_cluster_arguments, cluster_from_args, cluster_runner
from decongan.app.commands.compare import (
    add_baseline_arguments,
    add_figure_arguments,
    add_psf_arguments,
    baseline_specs,
    consistency_psf_function,
    drop_calibration_fields,
    figure_options,
    psf_source_from_args,
    report_and_print,
)

HELP = "restore every image in a folder (RL via engine or Fiji, GAN models), then compare and report; resumable"
DESCRIPTION = """\
decongan batch IN_DIR --out OUT_DIR [--model RUN_DIR ...] [--decon engine|fiji|none]
               [--psf PSF.tif | --na NA --ni NI --wavelength-nm NM] [--iterations N] [--gt GT_DIR]

Every image directly inside IN_DIR goes through the chosen methods; results are written to
OUT_DIR/restored/<method>/<name>.tif (float32, calibrated, provenance in the TIFF). Then, with the
ground truths of --gt (matched by file name) or without, the comparison of `decongan compare` is
made over all images: OUT_DIR/metrics.csv, summary.csv, figures/, report.html.

Resuming: OUT_DIR/manifest.json records every output with the sha256 of the input file, of the
method's parameters and of the output; running the same command again skips what is done and
unchanged and redoes what changed. A file that fails is logged with its reason and the rest go on
(exit status 1 at the end). A configuration error (an all-zero PSF, an NA not below the immersion
index) stops the batch before any image is processed, with one message. Inputs are never written;
an OUT_DIR whose outputs would overwrite an input is refused. An image with negative values (an
over-subtracted camera offset, signed data) is refused for RL before it is deconvolved, naming the
file; --offset VALUE|auto subtracts a camera offset first (recorded), as in `decongan deconvolve`.
Ctrl-C stops cleanly after the current
step. Each restored image is written once, by the restore phase (the report links to those files).
The manifest's "status" reads "complete" only once the report is written; a batch stopped earlier
(even killed during the report) is finished by running the same command again.

Sharding (clusters): --shard K/N restores only the K-th of N parts (files in name order, the i-th
going to shard i % N + 1) into OUT_DIR/manifest.shard-K-of-N.json, so shards may run at the same
time and any of them may be rerun; --report-only then compares and reports the whole folder from
all manifests (refused while a restoration is missing). --emit-slurm SCRIPT writes a bash script
that submits one SLURM array task per shard and the --report-only step after them.

Dask (one machine or many): --cluster dask restores the images on a local dask cluster (--workers N
processes, one thread each; default one per core), --cluster dask=tcp://HOST:PORT on a running
scheduler, --cluster dask=slurm.toml on SLURM jobs started by dask-jobqueue (the `hpc` extra; the
file holds one [slurm] table: jobs, cores, memory, and any SLURMCluster option). Each image is one
task; the workers write the restored images and this process alone writes the manifest, so the
results are the same files as without --cluster, and a stopped batch resumes the same way.

Test hook: the environment variable DECONGAN_BATCH_TEST_KILL_AT=report makes the process kill
itself (SIGKILL) when the report phase starts, so tests can check that such a batch is resumable.
"""

#: environment variable of the test hook above (its only value: "report")
KILL_HOOK_ENV = "DECONGAN_BATCH_TEST_KILL_AT"
#: the jobs of --emit-slurm start Python as the GUI starts its children (app/gui/process_job.py):
#: "-P" keeps the working folder off sys.path (Python >= 3.11) ...
SAFE_PATH_FLAGS: tuple[str, ...] = ("-P",) if sys.version_info >= (3, 11) else ()
#: ... and each job runs in a fresh empty folder, never the folder sbatch was called from
NEUTRAL_CWD_LINE = 'cd "$(mktemp -d "${TMPDIR:-/tmp}/decongan-job.XXXXXX")"  # neutral working folder'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from decongan.engine.optics.request import DEFAULT_SETTINGS as D

    parser.add_argument("input_dir", type=Path, metavar="IN_DIR", help="folder of input (LQ) images")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="OUT_DIR", help="output folder")
    parser.add_argument("--gt", type=Path, metavar="GT_DIR", help="folder of ground truths with the same file names")
    parser.add_argument("--model", type=Path, action="append", default=[], metavar="RUN_DIR",
                        help="trained GAN run folder (decongan train / export-model) or bioimage.io model package "
                             "(.zip, rdf.yaml); repeat for several")
    parser.add_argument("--which", choices=["best", "last"], default="best", help="which generator of a run folder")
    parser.add_argument("--tile", type=int, default=512, help="GAN inference tile size, pixels (0 = whole plane)")
    parser.add_argument("--overlap", type=int, default=64, help="GAN tile overlap, pixels")
    parser.add_argument("--decon", choices=["engine", "fiji", "none"], default="engine",
                        help="Richardson-Lucy backend: the engine, Fiji's DeconvolutionLab2, or no deconvolution")
    parser.add_argument("--iterations", "-n", type=int, default=D.iterations, metavar="N",
                        help=f"RL iterations (default {D.iterations}, as decongan deconvolve)")
    parser.add_argument("--method", choices=["rl", "rltv"], default="rl", help="plain RL or RL-TV")
    parser.add_argument("--tv-lambda", type=float, default=D.tv_lambda, help="RL-TV weight (engine: dimensionless)")
    parser.add_argument("--edges", choices=["circular", "padded", "zero"], default=D.edges,
                        help=f"engine RL boundary model (default {D.edges}, for real images; circular: "
                             "DeconvolutionLab2's, for parity with Fiji)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="torch device")
    parser.add_argument("--rl-acceleration", choices=["none", "biggs"], default=D.acceleration,
                        help="RL acceleration: none (plain RL, the default; DeconvolutionLab2/scikit-image parity) or biggs (Biggs-Andrews vector extrapolation: plain RL's result in about a third of the iterations, so use fewer; --decon engine only; recorded in the provenance)")
    parser.add_argument("--fiji-dir", type=Path, help="a local Fiji.app (default: discovered)")
    parser.add_argument("--pixel-nm", type=float, metavar="NM", help="override every image's lateral pixel size")
    parser.add_argument("--z-step-nm", type=float, metavar="NM", help="override every image's z step")
    parser.add_argument("--register-gt", choices=["translation", "rigid", "similarity", "affine"],
                        help="register each ground truth onto its input before comparing")
    parser.add_argument("--consistency", choices=["auto", "identity", "off"], default="auto",
                        help="data-consistency map: auto = with the deconvolution PSF when given; identity; off")
    parser.add_argument("--no-compare", action="store_true", help="only restore; no comparison or report")
    parser.add_argument("--split-half", action="store_true",
                        help="in the comparison, also restore the two photon halves of every input with each method and "
                             "map where they disagree beyond noise (split-half trust map; column sh_flagged_fraction; "
                             "runs every method twice more per input)")
    add_psf_arguments(parser, purpose="for RL and the data-consistency map")
    add_baseline_arguments(parser)
    add_offset_argument(parser)
    add_figure_arguments(parser)
    parser.add_argument("--json-progress", action="store_true", help="print JSON progress lines on stdout (key \"phase\": restore, compare or report)")
    add_overwrite_argument(parser)
    cluster = parser.add_argument_group("clusters (sharding)")
    cluster.add_argument("--shard", metavar="K/N", help="restore only part K of N (files in name order, the i-th "
                                                        "to part i %% N + 1); no comparison -- run --report-only after")
    cluster.add_argument("--report-only", action="store_true",
                         help="restore nothing: compare and report from the manifests of every shard in OUT_DIR")
    cluster.add_argument("--emit-slurm", type=Path, metavar="SCRIPT",
                         help="write a bash script submitting one SLURM array task per shard and a --report-only "
                              "job after them; runs nothing")
    cluster.add_argument("--slurm-shards", type=int, metavar="N",
                         help="number of shards (array tasks) of --emit-slurm (default: one per image, at most 1000)")
    cluster.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                         help="an sbatch option for every job of --emit-slurm, e.g. --sbatch=--time=02:00:00; repeat")
    add_cluster_arguments(cluster)
    parser.set_defaults(_batch_parser=parser)


def check_psf_source(psf_source: Any) -> None:
    """Refuse a PSF that cannot work for any image: an invalid PSF file or impossible optics.

    Reads and checks the PSF file (``engine.optics.psf.read_psf``: all zero, NaN, negative ...) or
    evaluates the Born & Wolf optics on a 3x3 grid so that the engine's own checks (NA below the
    immersion index, positive wavelength ...) speak before any image is processed.
    """
    from decongan.engine.optics.psf import born_wolf_psf, read_psf

    if psf_source.path is not None:
        read_psf(psf_source.path)
    else:
        born_wolf_psf(na=psf_source.na, ni=psf_source.ni, wavelength_nm=psf_source.wavelength_nm,
                      pixel_nm=psf_source.pixel_nm or 100.0, size=3)


def build_methods(args: argparse.Namespace, psf_source: Any) -> tuple[list[Any], str, list[dict[str, Any]]]:
    """The MethodSpecs, the Fiji backend line and the model summaries for the report."""
    from decongan.app import methods as m

    specs = []
    fiji_line = "not used (--decon " + args.decon + ")"
    if args.decon == "engine":
        specs.append(m.engine_rl_method(psf_source, iterations=args.iterations, method=args.method,
                                        tv_lambda=args.tv_lambda, edges=args.edges, device=args.device,
                                        offset=args.offset, acceleration=args.rl_acceleration))
    elif args.decon == "fiji":
        from decongan.app.fiji.client import FijiUnavailable

        if args.rl_acceleration != "none":
            raise CommandError(f"--rl-acceleration {args.rl_acceleration} needs --decon engine "
                               "(DeconvolutionLab2 runs plain RL)")

        try:
            specs.append(m.fiji_rl_method(psf_source, iterations=args.iterations,
                                          tv_lambda=args.tv_lambda if args.method == "rltv" else None,
                                          fiji_dir=str(args.fiji_dir) if args.fiji_dir else None,
                                          offset=args.offset))
        except FijiUnavailable as err:
            raise CommandError(f"--decon fiji: {err}. Use --decon engine for the engine's RL "
                               "(decongan fiji doctor explains what is missing)") from err
        from decongan.app.commands.compare import fiji_backend_summary

        fiji_line = fiji_backend_summary()
    for spec in specs:  # the RL methods: their PSF is checked once, before any image
        spec.check = lambda: check_psf_source(psf_source)
    models = []
    for run_dir in args.model:
        spec = m.gan_method(run_dir, which=args.which, tile=args.tile, overlap=args.overlap, device=args.device)
        specs.append(spec)
        try:
            models.append(m.model_summary(run_dir))
        except Exception as err:  # the report notes it; the model already loaded fine
            models.append({"run_dir": str(run_dir), "error": str(err)})
    return specs, fiji_line, models


def check_batch_out(out: Path, input_dir: Path, *, gt_dir: Path | None, overwrite: bool) -> None:
    """Refuse, before anything runs, an OUT_DIR inside an input folder, or one holding other results.

    An OUT_DIR that already holds files is accepted only when it is this batch's own folder: its
    manifests (``manifest*.json``) record inputs from ``input_dir`` only -- rerunning the same batch
    resumes it. Anything else (an unknown folder, another batch's results) needs ``--overwrite``.
    """
    from decongan.engine.evaluate.batch import recorded_inputs
    from decongan.engine.outputs import is_inside

    out = Path(out)
    same_batch = False
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        recorded = recorded_inputs(out)
        same_batch = recorded is not None
        foreign = [r for r in recorded or [] if not is_inside(Path(r).parent, input_dir)]
        if foreign:
            raise CommandError(f"--out {out} holds the results of another batch (its manifest records "
                               f"{foreign[0]}, not an image of {input_dir}); choose a new folder or pass "
                               "--overwrite to replace them")
    check_output_folder(out, overwrite=overwrite or same_batch, input_dirs=[input_dir, gt_dir])


def run(args: argparse.Namespace) -> int:
    from decongan.app.console import ConsoleProgress
    from decongan.engine.evaluate.batch import (
        BatchError,
        batch_status,
        check_methods,
        gather_batch,
        iter_batch,
        parse_shard,
        set_status,
    )
    from decongan.engine.evaluate.dataset import FieldFiles, iter_evaluate_fields
    from decongan.engine.evaluate.report import ReportContext
    from decongan.engine.io import ImageReadError, image_stem, list_images, read_image
    from decongan.engine.progress import Cancelled, CancelToken, run_with_callbacks

    for flag, value in (("--pixel-nm", args.pixel_nm), ("--z-step-nm", args.z_step_nm), ("--iterations", args.iterations)):
        if value is not None and not value > 0:
            raise CommandError(f"{flag} must be positive, got {value}")
    if not args.input_dir.is_dir():
        raise CommandError(f"{args.input_dir}: not a folder")
    if args.gt is not None and not args.gt.is_dir():
        raise CommandError(f"--gt {args.gt}: not a folder")
    inputs = list_images(args.input_dir)
    if not inputs:
        raise CommandError(f"{args.input_dir} holds no images (TIFF, PNG, JPEG, BMP)")
    dropped, dropped_notes = drop_calibration_fields(args, inputs)
    inputs = [p for p in inputs if p not in dropped]
    for line in dropped_notes:
        print(f"decongan batch: left out: {line}", file=sys.stderr)
    if not inputs:
        raise CommandError(f"every image of {args.input_dir} is a calibration field of --baselines {args.baselines}: "
                           "nothing is left to restore")
    cluster = cluster_from_args(args)  # refused here, before anything is written
    check_batch_out(args.out, args.input_dir, gt_dir=args.gt, overwrite=args.overwrite)
    options = figure_options(args)
    psf_source = psf_source_from_args(args, required=args.decon != "none")
    specs, fiji_line, models = build_methods(args, psf_source)
    baselines, baseline_notes = baseline_specs(args, psf_source, inputs)
    for spec in baselines:  # a deconvolving baseline's PSF is checked once, before any image
        if spec.parameters["baseline"]["kind"] != "denoise":
            spec.check = lambda: check_psf_source(psf_source)
    specs += baselines
    if not specs and args.gt is None:
        raise CommandError("nothing to do: --decon none, no --model and no --gt")
    try:
        shard = parse_shard(args.shard) if args.shard else None
    except BatchError as err:
        raise CommandError(f"--shard: {err}") from err
    for flag, on in (("--no-compare", args.no_compare), ("--shard", shard is not None),
                     ("--emit-slurm", args.emit_slurm is not None)):
        if on and args.report_only:
            raise CommandError(f"--report-only cannot be combined with {flag}")
        if on and args.split_half:  # the maps are made by the comparison, which these runs leave out
            raise CommandError(f"--split-half goes with the comparison, not with {flag} (give it to the run that "
                               "compares, e.g. --report-only after the shards)")
    if args.emit_slurm is not None:
        if shard is not None:
            raise CommandError("--emit-slurm writes every shard itself; leave out --shard")
        try:
            check_methods(specs)
        except BatchError as err:
            raise CommandError(str(err)) from err
        return emit_slurm(args, n_inputs=len(inputs))

    pixel_um = args.pixel_nm / 1000 if args.pixel_nm else None
    z_um = args.z_step_nm / 1000 if args.z_step_nm else None

    def read(path: Path) -> Any:
        return read_image(path, pixel_size_um=pixel_um, z_step_um=z_um)

    cancel = CancelToken()
    progress = ConsoleProgress("batch", json_lines=args.json_progress, phase="restore")
    if shard is None and batch_status(args.out) == "reporting":
        print(f"decongan batch: the last run in {args.out} stopped before its report was complete; finishing it",
              file=sys.stderr)
    try:
        if args.report_only:
            check_methods(specs)
            result = gather_batch(inputs, args.out, specs)
        else:
            with cluster_runner(cluster, specs, read) as runner:
                result = run_with_callbacks(iter_batch(inputs, args.out, specs, read=read, shard=shard,
                                                       runner=runner), progress=progress, cancel=cancel)
    except BatchError as err:  # the engine says it in words; the command line names its option
        raise CommandError(str(err).replace("(or the whole batch, which restores what is missing)",
                                            "(or the batch without --report-only)")) from err
    except (KeyboardInterrupt, Cancelled):
        print(f"decongan batch: stopped; finished images are recorded in {args.out / 'manifest.json'} -- run the "
              "same command again to resume", file=sys.stderr)
        return 130
    for item in result.failed:
        print(f"decongan batch: failed: {item.error}", file=sys.stderr)
    print(f"batch: {len(result.done)} restored, {len(result.skipped)} already done (skipped), "
          f"{len(result.failed)} failed; manifest {result.manifest_path}")
    if shard is not None:
        print(f"batch: shard {shard[0]}/{shard[1]} finished; when every shard has, run the same command with "
              "--report-only instead of --shard for the comparison and report")
        return 1 if result.failed else 0
    if args.no_compare:
        return 1 if result.failed else 0
    set_status(args.out, "reporting")  # a stop from here on leaves the batch incomplete (resumable)

    gt_files: dict[str, Path] = {}
    if args.gt is not None:
        gt_files = {image_stem(p): p for p in list_images(args.gt)}
    fields, notes = [], []
    failed_inputs = {i.input for i in result.failed}
    for path in inputs:
        if path in failed_inputs:
            notes.append(f"{path.name}: left out of the comparison (a method failed on it)")
            continue
        gt = gt_files.get(image_stem(path))
        if args.gt is not None and gt is None:
            notes.append(f"{path.name}: no ground truth of that name in {args.gt}; compared without one")
        fields.append(FieldFiles(image_stem(path), path, gt, result.outputs_for(path)))
    if not fields:
        kept = len(result.done) + len(result.skipped)
        first = result.failed[0].error if result.failed else "no input image"
        if not kept:
            raise CommandError(f"no image was restored, so there is nothing to compare (first failure: {first})")
        raise CommandError(f"no image was restored by every method, so there is nothing to compare ({kept} "
                           f"output{'s' if kept != 1 else ''} of the other methods are in {args.out / 'restored'}; "
                           f"first failure: {first})")
    psf_for = consistency_psf_function(psf_source, args.consistency)
    try:
        evaluations, failures = run_with_callbacks(iter_evaluate_fields(
            fields, pixel_size_um=pixel_um, z_step_um=z_um, register_gt=args.register_gt,
            consistency=psf_for is not None, consistency_psf=psf_for,
            split_half={s.name: s.run for s in specs} if args.split_half else False),
            progress=ConsoleProgress("compare", json_lines=args.json_progress, phase="compare"), cancel=cancel)
    except ImageReadError as err:
        raise CommandError(str(err)) from err
    for line in failures:
        print(f"decongan batch: comparison failed: {line}", file=sys.stderr)
    if not evaluations:
        raise CommandError("no image could be compared: " + "; ".join(failures[:3]))
    context = ReportContext(
        title="DeconGAN batch comparison",
        command=equivalent_command(args, "batch"),
        parameters={"input_dir": str(args.input_dir), "gt_dir": str(args.gt) if args.gt else None,
                    "methods": {s.name: s.parameters for s in specs}, "register_gt": args.register_gt,
                    "consistency": args.consistency, "split_half": args.split_half,
                    **{k: v for k, v in options.items() if k != "formats"}},
        fiji_backend=fiji_line, model=({"models": models} if models else None),
        notes=notes + [f"left out: {line}" for line in dropped_notes] + baseline_notes
        + [f"restoration failed: {i.error}" for i in result.failed]
        + [f"comparison failed: {f}" for f in failures],
    )
    context.notes.append("restored images: restored/<method>/<image>.tif, written once by the restore phase "
                         "(sha256 of each in manifest.json)")
    if os.environ.get(KILL_HOOK_ENV) == "report":  # test hook (module docstring): die as the report starts
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    # save_restored=False: the restore phase wrote every restored image already; one file per result
    report_and_print(evaluations, args.out, context=context, options={**options, "save_restored": False},
                     label="batch", json_progress=args.json_progress)
    set_status(args.out, "complete", report={"finished": _now(), "images": len(evaluations),
                                             "methods": [s.name for s in specs]})
    return 1 if (result.failed or failures) else 0


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def rebuild_argv(args: argparse.Namespace, *, drop: set[str]) -> list[str]:
    """The ``decongan batch`` arguments that give ``args`` again (paths made absolute), without ``drop``.

    Walks the batch parser's actions: positionals in order, then every option whose value differs
    from its default, under its long flag.
    """
    parser: argparse.ArgumentParser = args._batch_parser

    def text(value: Any) -> str:
        return str(value.absolute()) if isinstance(value, Path) else str(value)

    positionals: list[str] = []
    options: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in drop or action.dest.startswith("_"):
            continue
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            positionals.append(text(value))
            continue
        if value == action.default or value is None:
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, argparse._StoreTrueAction):
            options.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                options.append(f"{flag}={text(item)}")
        else:
            options.append(f"{flag}={text(value)}")
    return positionals + options


def emit_slurm(args: argparse.Namespace, *, n_inputs: int) -> int:
    """Write the ``--emit-slurm`` script: an sbatch array (one shard per task), then ``--report-only``.

    The report job depends on the array with ``afterany`` (a shard that lost one broken file exits
    with 1, yet the others' results are to be reported); ``--report-only`` itself refuses while any
    restoration is missing. Refuses to replace an existing file. Every job starts Python as the
    window's child processes do: with the safe-path flag ``-P`` (nothing of the working folder is
    imported) in a fresh empty working folder (:data:`NEUTRAL_CWD_LINE`); every path is absolute.
    """
    script = args.emit_slurm
    n = args.slurm_shards if args.slurm_shards is not None else min(n_inputs, 1000)
    if n < 1:
        raise CommandError(f"--slurm-shards must be at least 1, got {n}")
    if n > n_inputs:
        raise CommandError(f"--slurm-shards {n}: more shards than the {n_inputs} images of {args.input_dir}")
    if script.exists():
        raise CommandError(f"--emit-slurm {script}: the file exists; choose another name or delete it first")
    base = [sys.executable, *SAFE_PATH_FLAGS, "-m", "decongan.app.cli", "batch",
            *rebuild_argv(args, drop={"emit_slurm", "slurm_shards", "sbatch", "json_progress"})]
    sbatch_lines = "".join(f"#SBATCH {shlex.quote(o)}\n" for o in args.sbatch)
    cases = "".join(f"  {k}) exec {shlex.join(base + ['--shard', f'{k}/{n}'])} ;;\n" for k in range(1, n + 1))
    text = f"""#!/bin/bash
# Written by `decongan batch --emit-slurm`: run it with `bash {shlex.quote(script.name)}` where sbatch works.
# It submits {n} array task(s), one shard each (decongan batch --shard K/{n}), then one --report-only
# job that waits for all of them (afterany) and writes the comparison and report into
# {args.out.absolute()}.
set -euo pipefail
array_job=$(sbatch --parsable --job-name=decongan-batch --array=1-{n} <<'DECONGAN_ARRAY'
#!/bin/bash
{sbatch_lines}set -euo pipefail
{NEUTRAL_CWD_LINE}
case "$SLURM_ARRAY_TASK_ID" in
{cases}  *) echo "decongan batch: no shard for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac
DECONGAN_ARRAY
)
array_job=${{array_job%%;*}}
sbatch --parsable --job-name=decongan-report --dependency="afterany:$array_job" <<'DECONGAN_REPORT'
#!/bin/bash
{sbatch_lines}set -euo pipefail
{NEUTRAL_CWD_LINE}
exec {shlex.join(base + ['--report-only'])}
DECONGAN_REPORT
"""
    script.parent.mkdir(parents=True, exist_ok=True)
    with open(script, "x", encoding="utf-8") as handle:
        handle.write(text)
    print(f"batch: wrote {script} ({n} shard(s) as one SLURM array, then --report-only); run: bash {script}")
    return 0
