"""``decongan register``: align a moving image onto a fixed image's grid and save the transform."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from decongan.app.commands import CommandError, add_overwrite_argument, check_output_file, same_file

HELP = "align MOVING onto FIXED's grid (translation, rigid, similarity or affine); write the aligned TIFF and transform"
DESCRIPTION = """\
Register MOVING onto FIXED: the aligned image is MOVING resampled onto FIXED's pixel grid (cubic
B-spline; 0 outside MOVING) and written as a float32 TIFF calibrated with FIXED's pixel size.
Prints one line: angle (deg, positive = clockwise on screen), shift (x, y) in MOVING pixels,
scale (MOVING pixel size / FIXED pixel size) and the normalised cross-correlation (NCC) before
(MOVING naively resized onto FIXED's grid) and after registration.

Models: translation (sub-pixel), rigid (+ rotation), similarity (+ isotropic scale: pairs with
different pixel sizes, e.g. a x2 low-resolution scan vs the high-resolution scan, 10x vs 60x),
affine. Pixel sizes come from the files' calibration or --moving-pixel-um/--fixed-pixel-um; their
ratio fixes the scale for translation/rigid and starts it for similarity/affine.

Stacks: the transform is found on 2-D proxies (maximum projection over Z and T, or --plane Z;
channel --channel) and applied to every plane of MOVING, which keeps its Z/C/T axes.

--transform-out writes JSON: the 3x3 matrix mapping FIXED pixel coordinates (x right, y down,
integer = pixel centre) to MOVING coordinates, TurboReg's 2x3 matrix (target -> source), SIFT's
2x3 matrix (moving -> reference), angle, scale, shift and the NCC scores.
Example: decongan register lq/caco2_nuclei_x2.tif hq/caco2_nuclei_x1.tif --transform similarity --out x2_on_x1.tif --transform-out x2_on_x1.json
"""

BACKENDS = ("engine", "fiji")
TRANSFORMS = ("translation", "rigid", "similarity", "affine")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("moving", type=Path, help="image to move (TIFF/PNG; 2-D, or a stack: see above)")
    parser.add_argument("fixed", type=Path, help="reference image whose grid the output uses")
    parser.add_argument("--transform", "-t", choices=TRANSFORMS, default="rigid", help="transform model")
    parser.add_argument("--out", "-o", type=Path, required=True,
                        help="aligned TIFF (float32, FIXED's grid and pixel size)")
    parser.add_argument("--transform-out", type=Path, metavar="T.json", help="write the transform and scores as JSON")
    parser.add_argument("--crop-out-fixed", type=Path, metavar="F.tif",
                        help="FIXED cropped to the largest rectangle where the aligned image is valid (float32)")
    parser.add_argument("--crop-out-moving", type=Path, metavar="M.tif",
                        help="the aligned image cropped to the same rectangle (float32)")
    add_overwrite_argument(parser)
    parser.add_argument("--moving-pixel-um", type=float, metavar="UM",
                        help="override MOVING's pixel size, micrometres")
    parser.add_argument("--fixed-pixel-um", type=float, metavar="UM",
                        help="override FIXED's pixel size, micrometres")
    parser.add_argument("--channel", type=int, default=0, metavar="C",
                        help="channel used to find the transform in multichannel images (0-based)")
    parser.add_argument("--plane", type=int, metavar="Z",
                        help="z plane used to find the transform in stacks (0-based; default: maximum projection)")
    parser.add_argument("--max-iterations", type=int, default=40, metavar="N",
                        help="optimiser function evaluations per pass on the finest level (half on coarser levels)")
    parser.add_argument("--min-ncc", type=float, default=0.1, metavar="R",
                        help="report failure when the final NCC is below this")
    parser.add_argument("--backend", choices=list(BACKENDS), default="engine",
                        help="engine: DeconGAN's registration; fiji: TurboReg/SIFT through the Fiji bridge "
                             "(falls back to the engine, labelled, when Fiji or the plugin is missing)")
    parser.add_argument("--fiji", type=Path, metavar="DIR",
                        help="Fiji.app or ImageJ 1.x folder for --backend fiji (default: DECONGAN_FIJI, discovery)")
    parser.add_argument("--json-progress", action="store_true", help="print one JSON line per stage on stdout")



def proxy_plane(image: Any, *, channel: int, plane: int | None) -> Any:
    """The 2-D (Y, X) array used to find the transform: one channel, max projection (or one z plane)."""
    import numpy as np

    if image.metadata.get("rgb"):
        image.require_single_channel()
    if image.n_channels > 1 and not 0 <= channel < image.n_channels:
        raise CommandError(f"{image.path}: --channel {channel} is out of range (it has {image.n_channels} channels)")
    if plane is not None and "Z" in image.axes and not 0 <= plane < image.n_z:
        raise CommandError(f"{image.path}: --plane {plane} is out of range (it has {image.n_z} z planes)")
    selected = image.select(c=channel if "C" in image.axes else None,
                            z=plane if (plane is not None and "Z" in image.axes) else None)
    data = selected.data
    if data.ndim > 2:
        data = np.max(data.reshape(-1, *data.shape[-2:]), axis=0)
    return data


def register_with_backend(backend: str, *, moving: Any, fixed: Any, options: dict[str, Any], progress: Any) -> Any:
    """Dispatch to a registration backend; returns ``engine.optics.registration.RegistrationResult``."""
    if backend == "engine":
        from decongan.engine.optics.registration import iter_register
        from decongan.engine.progress import run_with_callbacks

        return run_with_callbacks(iter_register(moving=moving, fixed=fixed, **options), progress=progress)
    if backend == "fiji":
        return _register_fiji(moving, fixed, options=options, progress=progress)
    raise CommandError(f"unknown backend {backend!r} (choose {', '.join(BACKENDS)})")


def _register_fiji(moving: Any, fixed: Any, *, options: dict[str, Any], progress: Any) -> Any:
    """TurboReg (else SIFT) through the Fiji bridge; without a usable Fiji, the engine's registration,
    with backend "engine (Fiji unavailable)" and the reason in ``details["notes"]``.

    The Fiji path gets the pixel sizes (the moving image is resampled onto the fixed pixel size) and
    the result passes the engine's quality check (``min_ncc``): a failed registration raises
    ``RegistrationError`` (exit 1 in the CLI), it never falls back silently."""
    from decongan.app.fiji.client import FALLBACK_LABEL, FijiUnavailable
    from decongan.app.fiji.register import iter_fiji_register
    from decongan.engine.optics.registration import iter_register
    from decongan.engine.progress import run_with_callbacks

    try:  # the same pixel sizes, quality threshold and settings as the engine (RegistrationError passes through)
        return run_with_callbacks(iter_fiji_register(moving=moving, fixed=fixed, **options), progress=progress)
    except FijiUnavailable as err:
        reason = err.reason
    engine_options = {k: v for k, v in options.items() if k != "fiji_dir"}
    result = run_with_callbacks(iter_register(moving=moving, fixed=fixed, **engine_options), progress=progress)
    result.details["backend"] = FALLBACK_LABEL
    result.details.setdefault("notes", []).append(f"Fiji unavailable, engine registration used: {reason}")
    return result


def run(args: argparse.Namespace) -> int:
    from decongan.app.console import ConsoleProgress
    from decongan.engine.io import read_image, write_tiff
    from decongan.engine.optics.registration import (
        RegistrationError,
        apply_transform,
        crop_to_common_valid_area,
    )
    from decongan.engine.outputs import write_json_atomic
    from decongan.engine.provenance import Provenance

    for flag, value in (("--moving-pixel-um", args.moving_pixel_um), ("--fixed-pixel-um", args.fixed_pixel_um)):
        if value is not None and not value > 0:
            raise CommandError(f"{flag} must be a positive number of micrometres, got {value}")
    if args.max_iterations < 1:
        raise CommandError(f"--max-iterations must be at least 1, got {args.max_iterations}")
    outputs = [(flag, path) for flag, path in (("--out", args.out), ("--transform-out", args.transform_out),
                                               ("--crop-out-fixed", args.crop_out_fixed),
                                               ("--crop-out-moving", args.crop_out_moving)) if path is not None]
    for flag, path in outputs:
        for label, source in (("MOVING", args.moving), ("FIXED", args.fixed)):
            if same_file(path, source):
                raise CommandError(f"{flag} {path} is the {label} input; choose another output path "
                                   "(inputs are never overwritten)")
    for i, (flag_a, a) in enumerate(outputs):
        for flag_b, b in outputs[i + 1:]:
            if same_file(a, b):
                raise CommandError(f"{flag_a} and {flag_b} are the same file ({a})")
    for flag, path in outputs:  # existing files, read-only folders: refused before any computation
        check_output_file(path, overwrite=args.overwrite, label=flag)

    moving = read_image(args.moving, pixel_size_um=args.moving_pixel_um)
    fixed = read_image(args.fixed, pixel_size_um=args.fixed_pixel_um)
    m_plane = proxy_plane(moving, channel=args.channel, plane=args.plane)
    f_plane = proxy_plane(fixed, channel=args.channel, plane=args.plane)

    options = {"transform": args.transform, "moving_pixel_size_um": moving.pixel_size_um,
               "fixed_pixel_size_um": fixed.pixel_size_um, "max_iterations": args.max_iterations,
               "min_ncc": args.min_ncc}
    if args.backend == "fiji":
        options["fiji_dir"] = args.fiji
    progress = ConsoleProgress("register", json_lines=args.json_progress)
    try:
        result = register_with_backend(args.backend, moving=m_plane, fixed=f_plane, options=options, progress=progress)
    except RegistrationError as err:
        path = {"moving": args.moving, "fixed": args.fixed}.get(err.which or "")
        raise CommandError(f"{path}: {err}" if path else str(err)) from None
    for note in result.details.get("notes", []):
        print(f"decongan register: note: {note}", file=sys.stderr)

    backend = str(result.details.get("backend") or args.backend)
    options.pop("fiji_dir", None)
    provenance = Provenance(method=f"registered ({args.transform}, {backend})", backend=backend,
                            parameters={"moving": str(args.moving), "fixed": str(args.fixed), **options,
                                        "matrix": result.transform.matrix.tolist(),
                                        "ncc_before": result.ncc_before, "ncc_after": result.ncc_after})
    description = provenance.model_dump_json()
    if moving.data.ndim == 2:
        aligned_data, mask = result.aligned, result.mask
    else:  # every plane of the moving stack with the same transform
        aligned_data, mask = apply_transform(moving.data, result.transform)
    aligned = moving.with_data(aligned_data)
    aligned.pixel_size_um = fixed.pixel_size_um
    write_tiff(args.out, aligned, dtype="float32", description=description)

    if args.crop_out_fixed or args.crop_out_moving:
        fixed_crop, aligned_crop, bbox = crop_to_common_valid_area(fixed.data, aligned_data, mask)
        if args.crop_out_fixed:
            write_tiff(args.crop_out_fixed, fixed.with_data(fixed_crop), dtype="float32", description=description)
        if args.crop_out_moving:
            write_tiff(args.crop_out_moving, aligned.with_data(aligned_crop), dtype="float32", description=description)
        y0, y1, x0, x1 = bbox
        crop_text = f"; common valid area x {x0}:{x1}, y {y0}:{y1} ({x1 - x0} x {y1 - y0} px)"
    else:
        crop_text = ""
    if args.transform_out:
        document = result.to_dict()
        document["moving"] = str(args.moving)
        document["fixed"] = str(args.fixed)
        document["moving_pixel_size_um"] = moving.pixel_size_um
        document["fixed_pixel_size_um"] = fixed.pixel_size_um
        document["provenance"] = provenance.model_dump(mode="json")
        write_json_atomic(args.transform_out, document)
    print(f"{args.moving.name} -> {args.fixed.name}: {result.summary()}, {result.elapsed_s:.1f} s{crop_text}")
    return 0
