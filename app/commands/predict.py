"""``decongan predict``: apply a trained generator to images (tiled, every plane and channel)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from decongan.app.commands import CommandError, check_output_file, check_output_folder, same_file

HELP = "restore images with a trained GAN (run folder of 'decongan train'); tiled, calibrated float32 TIFFs"
DESCRIPTION = """\
Apply the generator of RUN_DIR (the --out folder of `decongan train`, or a shipped model folder)
to each INPUT and write OUT_DIR/<name>_<preset>.tif: float32, same axes as the input (2-D,
z-stacks and time-lapses plane by plane, every channel independently), in the intensity units
given by the run's normalisation (16-bit inputs stay in their range), pixel size divided by the
model's scale, provenance JSON in the TIFF description.

Large images are processed in overlapping tiles (--tile, --overlap, in input pixels) blended with
raised-cosine weights; --tile 0 processes each plane whole. On CUDA out-of-memory the tile halves
and the run continues. Inputs whose pixel size differs from the training pixel size are resampled
to it and back (S2's pixel-size matching).

RUN_DIR may also be a bioimage.io model package (.zip, rdf.yaml or bioimageio.yaml; format 0.4 or
0.5) with TorchScript weights (or PyTorch state dicts of DeconGAN's own generators): it runs with
its own pre/postprocessing, tiled so that the overlap covers its declared halo; --which, --overlap,
--amp and the pixel-size resampling do not apply to it. Output names end in _bioimageio.

Before restoring, each input is checked against the run's training domain (pixel size, intensity
statistics; domain.json, or what config.json records for older runs): 'domain warning' lines on
stderr say where it lies outside, and the output's provenance lists them (domain_warnings).

OME-Zarr: an INPUT may be a NAME.ome.zarr folder (--zarr-level picks a scale level). With --out
NAME.ome.zarr (one INPUT, an OME-Zarr too, a run folder) the image is restored region by region
without loading it: --tile is the region edge, each region is read with a halo of the generator's
receptive field and run whole, so the result equals whole-image prediction; the output is float32
OME-Zarr with the input's axes and calibration (pixel size / scale), --pyramid N levels. No
pixel-size resampling there: choose the scale level that matches the training pixel size.

Files that cannot be read or restored are reported by name and skipped; the exit status is 1
when any failed. Inputs are never overwritten.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="run folder of 'decongan train', a model folder, or a bioimage.io package (.zip, rdf.yaml)")
    parser.add_argument("inputs", type=Path, nargs="+", metavar="INPUT", help="images to restore (files or folders)")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                        help="output folder, or NAME.ome.zarr for one OME-Zarr input (region by region)")
    parser.add_argument("--zarr-level", type=int, default=0, metavar="K",
                        help="scale level of OME-Zarr inputs (0 = full resolution)")
    parser.add_argument("--pyramid", type=int, default=1, metavar="N",
                        help="levels of an OME-Zarr output (1 = full resolution only)")
    parser.add_argument("--tile", type=int, default=512, metavar="PX", help="tile side in pixels; 0 = whole image")
    parser.add_argument("--overlap", type=_overlap, default=64, metavar="PX",
                        help="overlap between tiles in pixels, or 'auto': the generator's receptive field (tiled = whole output)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--which", choices=["best", "last"], default="best", help="best validated model or last checkpoint")
    parser.add_argument("--batch-tiles", type=int, default=1, metavar="N", help="tiles per forward pass (GPU)")
    parser.add_argument("--amp", action="store_true", help="float16 autocast on CUDA")
    parser.add_argument("--no-resample", action="store_true", help="do not resample to the training pixel size")
    parser.add_argument("--resample-order", type=int, choices=[1, 3], default=3, help="spline order of that resampling")
    parser.add_argument("--pixel-nm", type=float, metavar="NM", help="override the inputs' lateral pixel size, nanometres")
    parser.add_argument("--suffix", default=None, help="output name suffix (default: _<preset>, e.g. _s1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--json-progress", action="store_true", help="print one JSON line per event on stdout")


def _overlap(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'auto', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"overlap must be >= 0, got {value}")
    return value


def _expand(inputs: list[Path]) -> list[Path]:
    from decongan.engine.io import list_images

    files: list[Path] = []
    from decongan.engine.zarr_io import is_zarr_path

    for path in inputs:
        if path.is_dir() and not is_zarr_path(path):
            files.extend(list_images(path))
        else:
            files.append(path)
    return files


def _stem(path: Path) -> str:
    from decongan.engine.io import IMAGE_SUFFIXES, ZARR_SUFFIXES

    name = path.name
    for ending in sorted(IMAGE_SUFFIXES + ZARR_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return path.stem


def _domain_check(model: object, image: object) -> tuple[list[str], list[str]]:
    """(warnings, notes) of the engine's input-domain check of ``image``."""
    from decongan.engine.errors import DeconganError
    from decongan.engine.learn.domain import check_domain

    try:
        check = check_domain(model, image)  # type: ignore[arg-type]
    except DeconganError as err:
        return [], [f"the training domain is unknown, not checked ({err})"]
    return check.warnings, check.notes


def run(args: argparse.Namespace) -> int:
    if args.tile < 0:
        raise CommandError("--tile must be >= 0 (0 = whole image)")
    if args.pixel_nm is not None and args.pixel_nm <= 0:
        raise CommandError(f"--pixel-nm must be positive, got {args.pixel_nm}")
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))

    from decongan.app.console import ConsoleProgress
    from decongan.engine.device import resolve_device
    from decongan.engine.io import ImageReadError, ImageWriteError, read_image, write_tiff
    from decongan.engine.learn.checkpoint import RunError
    from decongan.engine.learn.inference import load_model, predict_image
    from decongan.engine.outputs import check_distinct, safe_filename

    try:
        device = resolve_device(args.device)
    except ValueError as err:
        raise CommandError(str(err)) from err
    from decongan.engine.zarr_io import is_zarr_path

    if is_zarr_path(args.out):
        return _predict_zarr(args, device)
    from decongan.engine.learn.bioimageio_run import (
        BioimageioModelError,
        is_bioimageio_source,
        load_bioimageio_model,
        predict_bioimageio,
    )

    package = is_bioimageio_source(args.run_dir)  # a bioimage.io model (.zip, rdf.yaml, bioimageio.yaml)
    try:
        if package:
            model = load_bioimageio_model(args.run_dir, device=device)
        else:
            model = load_model(args.run_dir, which=args.which, device=device)
    except RunError as err:
        raise CommandError(str(err).replace("which='last'", "--which last")) from err
    except BioimageioModelError as err:
        raise CommandError(str(err)) from err
    if package and args.overlap != 64:
        print("decongan predict: note: --overlap is ignored for a bioimage.io package: the overlap covers its "
              "declared halo", file=sys.stderr)
    files = _expand(args.inputs)
    if not files:
        raise CommandError("no input images found")
    if package:
        suffix = args.suffix if args.suffix is not None else "_bioimageio"
    else:
        suffix = args.suffix if args.suffix is not None else f"_{model.config.preset_name}" if model.config else "_gan"
    # every output planned and checked before the first image is restored: Unicode names kept, two inputs
    # mapping to one file refused, existing files refused without --overwrite, inputs never replaced
    planned = [(path, args.out / safe_filename(f"{_stem(path)}{suffix}.tif")) for path in files]
    check_distinct([(str(path), dest) for path, dest in planned], what="outputs")
    check_output_folder(args.out, overwrite=True, results=False)  # a writable folder
    for _, dest in planned:
        if any(same_file(dest, f) for f in files):
            raise CommandError(f"output {dest} would overwrite an input; choose another --out or --suffix")
        check_output_file(dest, overwrite=args.overwrite, label="output")
    args.out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    written: list[Path] = []
    for path, dest in planned:
        try:
            image = read_image(path, pixel_size_um=args.pixel_nm / 1000.0 if args.pixel_nm else None,
                               level=args.zarr_level)
            domain_warnings, domain_notes = ([], []) if package else _domain_check(model, image)
            for kind, lines in (("warning", domain_warnings), ("note", domain_notes)):  # before predicting
                for line in lines:
                    print(f"decongan predict: {path.name}: domain {kind}: {line}", file=sys.stderr)
            console = ConsoleProgress(path.name, json_lines=args.json_progress, file=str(path))
            if package:
                restored, provenance = predict_bioimageio(model, image, tile=args.tile, batch=args.batch_tiles,
                                                          progress=console)
            else:
                restored, provenance = predict_image(
                    model, image, tile=args.tile, overlap=args.overlap, device=device, batch=args.batch_tiles,
                    amp=args.amp, match_pixel_size=not args.no_resample, resample_order=args.resample_order,
                    progress=console,
                )
            if domain_warnings:  # predicted anyway: the result says so wherever it goes
                provenance.parameters["domain_warnings"] = list(domain_warnings)
            write_tiff(dest, restored, dtype="float32", description=provenance.model_dump_json())
            written.append(dest)
            for note in provenance.notes:
                print(f"decongan predict: {path.name}: note: {note}", file=sys.stderr)
            if args.json_progress:
                print(json.dumps({"event": "written", "input": str(path), "output": str(dest)}), flush=True)
            else:
                print(dest)
        except KeyboardInterrupt:
            raise
        except (CommandError, ImageReadError, ImageWriteError, ValueError, MemoryError, RuntimeError, OSError) as err:
            failures.append(f"{path}: {err}")
            print(f"decongan predict: {path.name}: error: {err}", file=sys.stderr)
    if failures:
        print(f"decongan predict: {len(failures)} of {len(files)} input(s) failed; {len(written)} written to {args.out}",
              file=sys.stderr)
        return 1
    return 0



def _predict_zarr(args: argparse.Namespace, device: object) -> int:
    """One OME-Zarr input to an OME-Zarr output, region by region (engine.learn.zarr_prediction)."""
    import time
    from dataclasses import replace

    from decongan.app.console import ConsoleProgress
    from decongan.engine.learn.bioimageio_run import is_bioimageio_source
    from decongan.engine.learn.checkpoint import RunError
    from decongan.engine.learn.inference import load_model
    from decongan.engine.learn.zarr_prediction import iter_predict_zarr
    from decongan.engine.progress import run_with_callbacks
    from decongan.engine.zarr_io import check_zarr_output, is_zarr_path, open_ome_zarr

    if len(args.inputs) != 1 or not is_zarr_path(args.inputs[0]):
        raise CommandError("--out NAME.ome.zarr takes exactly one OME-Zarr INPUT (NAME.ome.zarr); give a folder "
                           "as --out for other inputs")
    if same_file(args.out, args.inputs[0]):
        raise CommandError(f"--out {args.out} is the input; choose another output path (inputs are never overwritten)")
    if is_bioimageio_source(args.run_dir):
        raise CommandError("region-by-region OME-Zarr output runs DeconGAN run folders only; a bioimage.io package "
                           "can restore an OME-Zarr level read whole (--out DIR)")
    if args.tile < 16 or args.pyramid < 1:
        raise CommandError("with an OME-Zarr --out, --tile (the region edge) must be >= 16 pixels and --pyramid >= 1")
    check_zarr_output(args.out, overwrite=args.overwrite, label="--out", allow="pass --overwrite")
    source = open_ome_zarr(args.inputs[0], level=args.zarr_level)
    if args.pixel_nm:
        source = replace(source, pixel_size_um=args.pixel_nm / 1000.0)
    try:
        model = load_model(args.run_dir, which=args.which, device=device)
    except RunError as err:
        raise CommandError(str(err).replace("which='last'", "--which last")) from err
    start = time.monotonic()
    events = iter_predict_zarr(model, source, args.out, region=args.tile, tile=0, device=str(device),
                               levels=args.pyramid, overwrite=args.overwrite)
    result = run_with_callbacks(events, progress=ConsoleProgress(args.inputs[0].name, json_lines=args.json_progress))
    p = result.provenance.parameters
    for note in result.provenance.notes:
        print(f"decongan predict: {args.inputs[0].name}: note: {note}", file=sys.stderr)
    print(f"wrote {result.path}: {result.provenance.method}, {p['regions']} regions of {p['region_px']} px + "
          f"{p['halo_px']} px halo (receptive field {p['receptive_field_radius_px']} px), "
          f"{time.monotonic() - start:.1f} s")
    return 0
