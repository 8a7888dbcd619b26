"""``decongan deconvolve``: Richardson-Lucy / RL-TV deconvolution of a 2-D or 3-D TIFF."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from decongan.app.commands import (
    CommandError,
    add_offset_argument,
    add_overwrite_argument,
    check_output_file,
    same_file,
)

HELP = "Richardson-Lucy (RL) or RL-TV deconvolution of a 2-D/3-D image with a PSF file (engine on CPU/CUDA)"
DESCRIPTION = """\
Deconvolve INPUT with the PSF in --psf (a 2-D or 3-D TIFF, e.g. from `decongan psf`; normalised to
sum 1 here) and write a float32 TIFF with the same axes and calibration; the provenance (method,
parameters, versions) is stored as JSON in the TIFF description.

Z stacks are deconvolved in 3-D with a 3-D PSF, or plane by plane with a 2-D PSF; a 2-D image uses
the in-focus plane of a 3-D PSF. Channels and time points are processed one by one. The PSF must
be sampled at the image's pixel size (and z step).

Defaults (engine.optics.request.DEFAULT_SETTINGS, the same in batch, compare, demo and the GUI):
10 iterations, --edges padded, the input as first estimate.
--edges padded: Bertero-Boccacci boundary handling for real images (object estimated beyond the
field of view, nothing wraps). circular: DeconvolutionLab2's convention, for parity with Fiji
(periodic, no padding; reproduces DL2 2.1.2; structures wrap around the borders; an odd PSF in an
even-sized image shifts the result by 1 px, as DL2 does). zero: scikit-image's convention.
--method rltv: total-variation regularised RL (Dey et al. 2006); --tv-variant dl2 reproduces
DeconvolutionLab2 2.1.2's RLTV including its 2-D buffer quirk (circular edges only).

OME-Zarr: INPUT may be a NAME.ome.zarr folder (--zarr-level picks a scale level, 0 = full resolution)
and --out may be one (float32, same axes and calibration; --pyramid N adds N-1 halved levels). From
OME-Zarr to OME-Zarr the image is deconvolved tile by tile (--tile pixels per side, also the output's
chunk edge) without loading it whole: each tile is read with a halo of (2 x iterations + 1) x (PSF
side // 2) pixels, which makes the result equal whole-image RL (--halo smaller is faster, labelled
as not exact); peak memory is set by the tile, not the image.
"""

BACKENDS = ("engine", "fiji")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from decongan.engine.optics.request import DEFAULT_SETTINGS as D

    parser.add_argument("input", type=Path, help="image to deconvolve (TIFF: 2-D, Z stack, channels, time)")
    parser.add_argument("--psf", type=Path, required=True, help="PSF image (TIFF, 2-D or 3-D, peak at the centre, same pixel size)")
    parser.add_argument("--iterations", "-n", type=int, default=D.iterations, metavar="N",
                        help=f"number of RL iterations (>= 1; default {D.iterations})")
    parser.add_argument("--method", choices=["rl", "rltv"], default="rl", help="plain RL or RL with total-variation regularisation")
    parser.add_argument("--tv-lambda", type=float, default=D.tv_lambda, metavar="L",
                        help="RL-TV weight (dimensionless; typical 1e-4 .. 1e-2; must be < 0.25 in 2-D, < 0.167 in 3-D)")
    parser.add_argument("--tv-variant", choices=["dey", "dl2"], default="dey",
                        help="dey: the published RL-TV; dl2: DeconvolutionLab2 2.1.2's implementation with its quirks")
    parser.add_argument("--edges", choices=["circular", "padded", "zero"], default=D.edges,
                        help=f"boundary model (default {D.edges}): padded (for real images), circular "
                             "(DeconvolutionLab2; for parity with Fiji), zero (scikit-image)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="torch device (auto: CUDA when available)")
    parser.add_argument("--rl-acceleration", choices=["none", "biggs"], default=D.acceleration,
                        help="RL acceleration: none (plain RL, the default; DeconvolutionLab2/scikit-image parity) or biggs (Biggs-Andrews vector extrapolation: plain RL's result in about a third of the iterations, so use fewer; engine only; recorded in the provenance)")
    parser.add_argument("--backend", choices=list(BACKENDS), default="engine",
                        help="engine: DeconGAN's PyTorch RL; fiji: DeconvolutionLab2 in Fiji")
    parser.add_argument("--fiji", type=Path, metavar="DIR",
                        help="Fiji.app or ImageJ 1.x folder for --backend fiji (default: settings, DECONGAN_FIJI, discovery)")
    parser.add_argument("--pixel-nm", type=float, metavar="NM", help="override the input's lateral pixel size, nanometres")
    parser.add_argument("--z-step-nm", type=float, metavar="NM", help="override the input's z step, nanometres")
    parser.add_argument("--json-progress", action="store_true", help="print one JSON line per iteration on stdout")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output TIFF (float32) or NAME.ome.zarr folder")
    parser.add_argument("--zarr-level", type=int, default=0, metavar="K",
                        help="scale level of an OME-Zarr input (0 = full resolution)")
    parser.add_argument("--pyramid", type=int, default=1, metavar="N",
                        help="levels of an OME-Zarr output (1 = full resolution only; each further level halves y, x)")
    parser.add_argument("--tile", type=int, default=1024, metavar="PX",
                        help="OME-Zarr to OME-Zarr: tile edge in pixels (also the output's chunk edge)")
    parser.add_argument("--halo", type=int, metavar="PX",
                        help="OME-Zarr to OME-Zarr: pixels read around each tile (default: the exact halo, "
                             "(2 x iterations + 1) x (PSF side // 2))")
    add_offset_argument(parser)
    add_overwrite_argument(parser)



def _calibration_warnings(image: Any, psf: Any) -> list[str]:
    """Messages when the PSF's calibration clearly differs from the image's (both known)."""
    messages = []
    for label, a, b in (("pixel size", image.pixel_size_um, psf.pixel_size_um), ("z step", image.z_step_um, psf.z_step_um)):
        if a and b and abs(a - b) > 0.02 * max(a, b):
            messages.append(f"the PSF's {label} ({b * 1000:g} nm) differs from the image's ({a * 1000:g} nm); "
                            "the PSF must be sampled on the image's grid")
    return messages


def deconvolve(backend: str, image: Any, psf: Any, *, options: dict[str, Any], psf_source: str, progress: Any):
    """Dispatch to a backend; returns ``engine.optics.deconvolution.DeconvolvedImage``."""
    from decongan.engine.progress import run_with_callbacks

    if backend == "engine":
        from decongan.engine.optics.deconvolution import iter_deconvolve_image

        events = iter_deconvolve_image(image, psf.data, psf_source=psf_source, **options)
        return run_with_callbacks(events, progress=progress)
    if backend == "fiji":
        return _deconvolve_fiji(image, psf, options=options, psf_source=psf_source, progress=progress)
    raise CommandError(f"unknown backend {backend!r} (choose {', '.join(BACKENDS)})")


def _deconvolve_fiji(image: Any, psf: Any, *, options: dict[str, Any], psf_source: str, progress: Any):
    """DeconvolutionLab2 through the Fiji bridge; without a usable Fiji, the engine with DL2's conventions
    (periodic edges, DL2's RL-TV variant), labelled "engine (Fiji unavailable)" with the reason."""
    from decongan.app.fiji.client import FALLBACK_LABEL, FijiUnavailable
    from decongan.app.fiji.deconvolve import fiji_deconvolve_image
    from decongan.engine.optics.deconvolution import iter_deconvolve_image
    from decongan.engine.progress import run_with_callbacks

    tv_lambda = options.get("tv_lambda") if options.get("method") == "rltv" else None
    try:  # both backends subtract the offset (or refuse negative values) and record it the same way
        return fiji_deconvolve_image(image, psf.data, iterations=options["iterations"], tv_lambda=tv_lambda,
                                     psf_source=psf_source, fiji_dir=options.get("fiji_dir"), progress=progress,
                                     offset=options.get("offset"))
    except FijiUnavailable as err:
        print(f"decongan deconvolve: Fiji unavailable, using the engine with DeconvolutionLab2's conventions: "
              f"{err.reason}", file=sys.stderr)
    engine_options = {"iterations": options["iterations"], "method": options["method"], "edges": "circular",
                      "device": options.get("device", "auto"), "offset": options.get("offset")}
    if tv_lambda is not None:
        engine_options.update(tv_lambda=tv_lambda, tv_variant="dl2")
    result = run_with_callbacks(iter_deconvolve_image(image, psf.data, psf_source=psf_source, **engine_options),
                                progress=progress)
    result.provenance.backend = FALLBACK_LABEL
    result.provenance.notes.append("--backend fiji was asked for but no Fiji/ImageJ with DeconvolutionLab2 "
                                   "could run it")
    return result


def run(args: argparse.Namespace) -> int:
    from decongan.app.console import ConsoleProgress
    from decongan.engine.io import ImageReadError, read_image, write_tiff
    from decongan.engine.optics.deconvolution import NegativeImageError
    from decongan.engine.optics.psf import read_psf
    from decongan.engine.outputs import check_writable

    if args.iterations < 1:
        raise CommandError(f"--iterations must be at least 1, got {args.iterations}")
    if args.rl_acceleration != "none" and args.backend != "engine":
        raise CommandError(f"--rl-acceleration {args.rl_acceleration} needs --backend engine "
                           "(DeconvolutionLab2 runs plain RL)")
    if args.rl_acceleration != "none" and args.method == "rltv" and args.tv_variant == "dl2":
        raise CommandError("--tv-variant dl2 reproduces DeconvolutionLab2's own iterations; it cannot be combined "
                           "with --rl-acceleration")
    from decongan.engine.zarr_io import is_zarr_path

    if args.rl_acceleration != "none" and is_zarr_path(args.input) and is_zarr_path(args.out):
        raise CommandError("--rl-acceleration is not available for OME-Zarr to OME-Zarr (tile by tile) deconvolution: "
                           "each tile would extrapolate with its own factor, so the tiles would not join into the "
                           "whole-image result; write a TIFF, or leave out --rl-acceleration")
    for flag, value in (("--pixel-nm", args.pixel_nm), ("--z-step-nm", args.z_step_nm)):
        if value is not None and not value > 0:
            raise CommandError(f"{flag} must be a positive number of nanometres, got {value}")
    from decongan.engine.zarr_io import check_zarr_output, is_zarr_path

    if is_zarr_path(args.out):
        if same_file(args.out, args.input):
            raise CommandError(f"--out {args.out} is the input; choose another output path (inputs are never overwritten)")
        check_zarr_output(args.out, overwrite=args.overwrite, label="--out", allow="pass --overwrite")
        if args.pyramid < 1 or args.tile < 16 or (args.halo is not None and args.halo < 0):
            raise CommandError("--pyramid must be >= 1, --tile >= 16 pixels and --halo >= 0 pixels")
        if is_zarr_path(args.input) and args.backend == "engine":
            return _deconvolve_zarr_tiled(args)
    else:
        check_output_file(args.out, overwrite=args.overwrite, inputs={"the input": args.input, "the PSF": args.psf})

    image = read_image(args.input, pixel_size_um=args.pixel_nm / 1000.0 if args.pixel_nm else None,
                       z_step_um=args.z_step_nm / 1000.0 if args.z_step_nm else None, level=args.zarr_level)
    if image.metadata.get("rgb"):
        image.require_single_channel()
    check_writable(args.out.parent, need_bytes=image.data.size * 4, what=f"--out {args.out.name}")
    psf = read_psf(args.psf)
    if "Z" not in image.axes and psf.data.ndim == 3:
        print(f"decongan deconvolve: note: {args.input} is 2-D; using the in-focus plane of the 3-D PSF", file=sys.stderr)
    for message in _calibration_warnings(image, psf):
        print(f"decongan deconvolve: warning: {message}", file=sys.stderr)

    options = {"iterations": args.iterations, "method": args.method, "edges": args.edges, "device": args.device,
               "offset": args.offset}
    if args.rl_acceleration != "none":
        options["acceleration"] = args.rl_acceleration
    if args.method == "rltv":
        options.update(tv_lambda=args.tv_lambda, tv_variant=args.tv_variant)
    if args.backend == "fiji":
        options["fiji_dir"] = args.fiji
    progress = ConsoleProgress("deconvolve", json_lines=args.json_progress)
    start = time.monotonic()
    try:
        result = deconvolve(args.backend, image, psf, options=options, psf_source=str(args.psf), progress=progress)
    except NegativeImageError as err:
        raise CommandError(f"{err} (command line: --offset VALUE, or --offset auto)") from None
    except ImageReadError:
        raise
    except ValueError as err:
        raise CommandError(str(err)) from None
    seconds = time.monotonic() - start
    from decongan.engine.optics.request import Optics

    # where the sampling came from (the file or --pixel-nm/--z-step-nm), for the report
    result.provenance.parameters["optics"] = Optics.for_image(image, pixel_nm=args.pixel_nm,
                                                             z_step_nm=args.z_step_nm).provenance()
    if is_zarr_path(args.out):
        from decongan.engine.zarr_io import write_ome_zarr

        write_ome_zarr(args.out, result.image, levels=args.pyramid, chunks=args.tile, dtype="float32",
                       overwrite=args.overwrite)
    else:
        write_tiff(args.out, result.image, dtype="float32", description=result.provenance.model_dump_json())
    shape = " x ".join(str(n) for n in result.image.data.shape)
    print(f"wrote {args.out}: {result.provenance.method}, {shape} ({result.image.axes}), "
          f"{result.provenance.backend}, {seconds:.1f} s")
    return 0


def _deconvolve_zarr_tiled(args: argparse.Namespace) -> int:
    """OME-Zarr in, OME-Zarr out: tile by tile (engine.optics.tiled_deconvolution), never the whole image."""
    from dataclasses import replace

    from decongan.app.console import ConsoleProgress
    from decongan.engine.optics.deconvolution import NegativeImageError
    from decongan.engine.optics.psf import read_psf
    from decongan.engine.optics.tiled_deconvolution import iter_deconvolve_zarr
    from decongan.engine.progress import run_with_callbacks
    from decongan.engine.zarr_io import open_ome_zarr

    source = open_ome_zarr(args.input, level=args.zarr_level)
    if args.pixel_nm:
        source = replace(source, pixel_size_um=args.pixel_nm / 1000.0)
    if args.z_step_nm:
        source = replace(source, z_step_um=args.z_step_nm / 1000.0)
    psf = read_psf(args.psf)
    for message in _calibration_warnings(source, psf):
        print(f"decongan deconvolve: warning: {message}", file=sys.stderr)
    options: dict[str, Any] = {"iterations": args.iterations, "method": args.method, "edges": args.edges,
                               "device": args.device, "offset": args.offset}
    if args.method == "rltv":
        options.update(tv_lambda=args.tv_lambda, tv_variant=args.tv_variant)
    start = time.monotonic()
    events = iter_deconvolve_zarr(source, psf.data, args.out, tile=args.tile, halo=args.halo, levels=args.pyramid,
                                  overwrite=args.overwrite, psf_source=str(args.psf), **options)
    try:
        result = run_with_callbacks(events, progress=ConsoleProgress("deconvolve", json_lines=args.json_progress))
    except NegativeImageError as err:
        raise CommandError(f"{err} (command line: --offset VALUE, or --offset auto)") from None
    tiling = result.provenance.parameters["tiling"]
    shape = " x ".join(str(n) for n in source.canonical_shape)
    print(f"wrote {result.path}: {result.provenance.method}, {shape} ({source.canonical_axes}), "
          f"{tiling['tiles']} tiles of {tiling['tile_px']} px + {tiling['halo_px']} px halo, "
          f"{result.provenance.backend}, {time.monotonic() - start:.1f} s")
    for note in result.provenance.notes:
        print(f"decongan deconvolve: note: {note}", file=sys.stderr)
    return 0
