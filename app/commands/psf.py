"""``decongan psf``: write a Born & Wolf or Gaussian PSF as a calibrated float32 TIFF."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from decongan.app.commands import CommandError, add_overwrite_argument, check_output_file

HELP = "generate a Born & Wolf (PSF Generator convention) or Gaussian PSF as a calibrated float32 TIFF"
DESCRIPTION = """\
Generate a point spread function and write it as a float32 TIFF (ImageJ metadata: pixel size and
z step in micrometres, provenance JSON in the description).

born-wolf: EPFL PSF Generator's "Born & Wolf 3D Optical Model", sample for sample (radial profile at
integer pixel radii, linear interpolation, centre at (N-1)/2, plane k at z = z_step * (k - (nz-1)/2)).
gaussian: separable Gaussian; lateral FWHM from --fwhm-nm, or the Airy FWHM 0.5145 lambda/NA when
--na and --wavelength-nm are given.

--normalize peak gives PSF Generator's scaling (maximum 1); sum gives sum 1 (what deconvolution
uses; `decongan deconvolve` normalises either kind itself).

Size: --size (and --nz) as given, or --like IMAGE (or --grid NZxNYxNX): the Born & Wolf PSF for that grid, sized by
the engine's one rule (engine.optics.request.psf_for_grid, what batch, compare and the GUI use): the
planes whose brightest pixel still reaches 1 % of the focal peak, and the smallest odd square holding
99 % of the energy on an image-sized field. The pixel size and z step come from the image's
calibration unless --pixel-nm / --z-step-nm are given (with --grid they are needed). The size chosen is
printed and recorded in the provenance.
Examples:
  decongan psf --model born-wolf --na 1.4 --ni 1.515 --wavelength-nm 520 --pixel-nm 159 --size 65 --nz 33 --z-step-nm 200 --out psf.tif
  decongan psf --na 1.4 --ni 1.515 --wavelength-nm 520 --like stack.tif --normalize sum --out psf.tif
  decongan psf --na 1.4 --ni 1.515 --wavelength-nm 520 --pixel-nm 100 --z-step-nm 200 --grid 97x512x512 --out psf.tif
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=["born-wolf", "gaussian"], default="born-wolf", help="PSF model")
    parser.add_argument("--na", type=float, help="numerical aperture of the objective (born-wolf: required)")
    parser.add_argument("--ni", type=float, default=1.515,
                        help="refractive index of the immersion medium (1.0 air, 1.33 water, 1.515 oil)")
    parser.add_argument("--wavelength-nm", type=float, metavar="NM", help="emission wavelength in nanometres (born-wolf: required)")
    parser.add_argument("--pixel-nm", type=float, metavar="NM",
                        help="lateral pixel size in nanometres (sample plane); with --like: overrides the image's")
    parser.add_argument("--size", type=int, metavar="PX", help="lateral size in pixels (N x N); or give --like")
    parser.add_argument("--like", type=Path, metavar="IMAGE",
                        help="born-wolf: size the PSF for this image's grid by the engine's energy rule (instead of "
                             "--size/--nz) and take its calibration")
    parser.add_argument("--grid", type=parse_grid, metavar="NZxNYxNX",
                        help="born-wolf: size the PSF by the same rule for an image of this many planes and pixels "
                             "(NYxNX for 2-D), sampled at --pixel-nm (and --z-step-nm)")
    parser.add_argument("--nz", type=int, metavar="N", help="number of z planes (omit for a 2-D in-focus PSF)")
    parser.add_argument("--z-step-nm", type=float, metavar="NM",
                        help="axial step between planes in nanometres (needed with --nz > 1; with --like: overrides the image's)")
    parser.add_argument("--normalize", choices=["peak", "sum"], default="peak",
                        help="peak: maximum 1 (PSF Generator); sum: sums to 1")
    parser.add_argument("--accuracy", choices=["good", "better", "best"], default="good",
                        help="born-wolf: integration effort (PSF Generator's setting)")
    parser.add_argument("--fwhm-nm", type=float, metavar="NM", help="gaussian: lateral FWHM in nanometres")
    parser.add_argument("--fwhm-z-nm", type=float, metavar="NM", help="gaussian: axial FWHM in nanometres (3-D)")
    parser.add_argument("--backend", choices=["engine", "fiji"], default="engine",
                        help="engine: DeconGAN's Born & Wolf; fiji: PSF Generator through the Fiji bridge "
                             "(falls back to the engine, labelled, when Fiji or the plugin is missing)")
    parser.add_argument("--fiji", type=Path, metavar="DIR",
                        help="Fiji.app or ImageJ 1.x folder for --backend fiji (default: DECONGAN_FIJI, discovery)")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output TIFF (float32)")
    add_overwrite_argument(parser)


def check_psf_size(args: argparse.Namespace) -> int:
    """Refuse sizes that are not positive or whose arrays cannot fit in memory, before allocating;
    returns the bytes of the float32 output file."""
    from decongan.engine.outputs import MemoryEstimateError, check_memory

    if args.size is None:
        raise CommandError("give the PSF's size: --size PX (and --nz N for a 3-D PSF), or --like IMAGE (or --grid "
                           "NZxNYxNX) to size a Born & Wolf PSF for that grid by the engine's energy rule")
    nz = args.nz if args.nz is not None else 1
    if args.size < 1 or nz < 1:
        raise CommandError(f"--size and --nz must be at least 1, got --size {args.size} --nz {args.nz}")
    plane = float(args.size) * float(args.size)
    # float64 radius, index and interpolation planes, then float64 volume + its float32 copy
    need = int(plane * (24 + nz * 28))
    try:
        check_memory(need, what=f"a {args.size} x {args.size} x {nz} PSF (--size {args.size}, --nz {nz})",
                     fix="choose a smaller --size (a PSF needs a few times the FWHM, e.g. 65) or fewer --nz planes")
    except MemoryEstimateError as err:
        raise CommandError(str(err)) from None
    return int(plane * nz * 4)


def parse_grid(text: str) -> tuple[int, ...]:
    """``--grid``: ``NYxNX`` or ``NZxNYxNX`` (pixels, planes), e.g. ``97x512x512``."""
    try:
        sizes = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        sizes = ()
    if len(sizes) not in (2, 3) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected NYxNX or NZxNYxNX in pixels (e.g. 97x512x512), got {text!r}")
    return sizes


def size_for_grid(args: argparse.Namespace) -> dict:
    """``--like IMAGE`` / ``--grid``: set ``args.size``/``nz``/``pixel_nm``/``z_step_nm`` by the engine's sizing rule.

    The sizes are those of :func:`engine.optics.request.psf_for_grid` for the image's grid (the rule of
    batch, compare and the GUI); with ``--like`` the calibration is the image's unless given. Returns
    the provenance entries that say how the size was chosen (and where each optics value came from).
    """
    from decongan.app.methods import optics_command_error
    from decongan.engine.io import read_image
    from decongan.engine.optics.request import DEFAULT_PSF_ENERGY, Optics, OpticsError, psf_for_grid
    from decongan.engine.outputs import MemoryEstimateError, check_memory

    flag = "--like" if args.like is not None else "--grid"
    if args.like is not None and args.grid is not None:
        raise CommandError("give --like IMAGE or --grid, not both")
    if args.model != "born-wolf":
        raise CommandError(f"{flag} sizes Born & Wolf PSFs (the engine's energy rule); for --model gaussian give --size")
    if args.size is not None or args.nz is not None:
        raise CommandError(f"{flag} chooses the size and the planes by the engine's energy rule; drop --size/--nz, "
                           f"or drop {flag} to give them yourself")
    missing = [name for name, value in (("--na", args.na), ("--wavelength-nm", args.wavelength_nm)) if value is None]
    if missing:
        raise CommandError(f"--model born-wolf needs {' and '.join(missing)}")
    if args.like is not None:
        image = read_image(args.like)
        nz = image.n_z if "Z" in image.axes else None
        ny, nx = image.yx_shape
        where = f"the grid of {args.like}"
    else:
        image = None
        nz, (ny, nx) = (args.grid[0] if len(args.grid) == 3 else None), args.grid[-2:]
        where = f"the grid {'x'.join(str(n) for n in args.grid)} (--grid)"
    cap = max(ny, nx)
    try:  # the rule's reference field (float64 planes) and at most an image-sized float64 PSF
        check_memory(int(cap * cap * (64 + 12 * (nz or 1))), what=f"sizing a PSF for {where}",
                     fix=f"give --size PX (and --nz N) instead of {flag}")
    except MemoryEstimateError as err:
        raise CommandError(str(err)) from None
    try:
        optics = Optics.for_image(image, na=args.na, ni=args.ni, wavelength_nm=args.wavelength_nm,
                                  pixel_nm=args.pixel_nm, z_step_nm=args.z_step_nm)
        if image is None:
            optics = replace(optics, origin=f"--grid {'x'.join(str(n) for n in args.grid)}")
        shape = psf_for_grid(optics, yx_shape=(ny, nx), nz=nz).shape
    except OpticsError as err:
        raise optics_command_error(err) from None
    except ValueError as err:
        raise CommandError(str(err)) from None
    args.size = int(shape[-1])
    args.nz = int(shape[0]) if len(shape) == 3 else None
    args.pixel_nm = optics.pixel_nm.value
    args.z_step_nm = optics.z_step_nm.value if args.nz else None
    grid = f"{ny} x {nx} px" + (f", {nz} planes" if nz else "")
    size = f"{args.size} x {args.size} px" + (f", {args.nz} planes" if args.nz else "")
    rule = f"psf_for_grid (energy {DEFAULT_PSF_ENERGY:g}): {size} for {where} ({grid})"
    return {"size_rule": rule, flag.lstrip("-"): str(args.like) if args.like is not None else list(args.grid),
            "optics": optics.provenance()}


def make_psf(args: argparse.Namespace):  # -> (ndarray, dict of parameters)
    """Build the PSF the arguments describe; ``CommandError`` for missing or invalid values."""
    from decongan.engine.optics.psf import airy_fwhm_nm, born_wolf_psf, gaussian_psf

    try:
        if args.model == "born-wolf":
            missing = [flag for flag, value in (("--na", args.na), ("--wavelength-nm", args.wavelength_nm)) if value is None]
            if missing:
                raise CommandError(f"--model born-wolf needs {' and '.join(missing)}")
            params = {"model": "born-wolf", "na": args.na, "ni": args.ni, "wavelength_nm": args.wavelength_nm,
                      "pixel_nm": args.pixel_nm, "size": args.size, "nz": args.nz, "z_step_nm": args.z_step_nm,
                      "normalize": args.normalize, "accuracy": args.accuracy}
            psf = born_wolf_psf(na=args.na, ni=args.ni, wavelength_nm=args.wavelength_nm, pixel_nm=args.pixel_nm,
                                size=args.size, nz=args.nz, z_step_nm=args.z_step_nm, normalize=args.normalize,
                                accuracy=args.accuracy)
            return psf, params
        fwhm = args.fwhm_nm
        if fwhm is None:
            if args.na is None or args.wavelength_nm is None:
                raise CommandError("--model gaussian needs --fwhm-nm, or --na and --wavelength-nm (Airy FWHM)")
            fwhm = airy_fwhm_nm(na=args.na, wavelength_nm=args.wavelength_nm)
        params = {"model": "gaussian", "fwhm_nm": fwhm, "fwhm_z_nm": args.fwhm_z_nm, "pixel_nm": args.pixel_nm,
                  "size": args.size, "nz": args.nz, "z_step_nm": args.z_step_nm, "normalize": args.normalize}
        if args.nz is not None and args.nz > 1 and args.fwhm_z_nm is None:
            raise CommandError("a 3-D Gaussian PSF (--nz > 1) needs --fwhm-z-nm and --z-step-nm")
        psf = gaussian_psf(fwhm_nm=fwhm, pixel_nm=args.pixel_nm, size=args.size, nz=args.nz,
                           fwhm_z_nm=args.fwhm_z_nm, z_step_nm=args.z_step_nm, normalize=args.normalize)
        return psf, params
    except ValueError as err:
        raise CommandError(str(err)) from None


def make_psf_fiji(args: argparse.Namespace):  # -> (ndarray, Provenance)
    """PSF Generator through the Fiji bridge, else the engine labelled "engine (Fiji unavailable)"."""
    import sys

    from decongan.app.fiji.psf import psf_with_fallback

    if args.model != "born-wolf":
        raise CommandError("--backend fiji supports --model born-wolf only (PSF Generator's Born & Wolf model)")
    if args.na is None or args.wavelength_nm is None:
        raise CommandError("--model born-wolf needs --na and --wavelength-nm")
    try:
        result = psf_with_fallback(fiji_dir=args.fiji, na=args.na, ni=args.ni, wavelength_nm=args.wavelength_nm,
                                   pixel_nm=args.pixel_nm, size=args.size, nz=args.nz, z_step_nm=args.z_step_nm,
                                   accuracy=args.accuracy)
    except ValueError as err:
        raise CommandError(str(err)) from None
    for note in result.provenance.notes:
        print(f"decongan psf: note: {note}", file=sys.stderr)
    psf = result.image.astype("float32")
    if args.normalize == "sum":
        psf = psf / float(psf.sum(dtype="float64"))
        result.provenance.parameters["normalize"] = "sum"
    return psf, result.provenance


def run(args: argparse.Namespace) -> int:
    from decongan.engine.io import write_tiff
    from decongan.engine.provenance import Provenance

    if args.backend == "fiji" and args.model != "born-wolf":
        raise CommandError("--backend fiji supports --model born-wolf only (PSF Generator's Born & Wolf model)")
    check_output_file(args.out, overwrite=args.overwrite, inputs={"the --like image": args.like})  # before reading
    sized: dict = {}
    if args.like is not None or args.grid is not None:
        sized = size_for_grid(args)
    elif args.pixel_nm is None:
        raise CommandError("give the lateral pixel size: --pixel-nm NM, or --like IMAGE to take it (and the size) "
                           "from an image")
    file_bytes = check_psf_size(args)
    check_output_file(args.out, overwrite=args.overwrite, need_bytes=file_bytes, inputs={"the --like image": args.like})
    name = "Born & Wolf PSF" if args.model == "born-wolf" else "Gaussian PSF"
    if args.backend == "fiji":
        psf, provenance = make_psf_fiji(args)
        name = provenance.method
    else:
        psf, params = make_psf(args)
        provenance = Provenance(method=name, backend="engine", parameters=params,
                                notes=["PSF Generator (EPFL) Born & Wolf sampling convention"] if args.model == "born-wolf" else [])
    if sized:
        provenance.parameters.update(sized)
        provenance.notes.append(f"size chosen by {sized['size_rule']}")
    z_step_um = args.z_step_nm / 1000.0 if (psf.ndim == 3 and args.z_step_nm) else None
    write_tiff(args.out, psf, axes="ZYX" if psf.ndim == 3 else "YX", pixel_size_um=args.pixel_nm / 1000.0,
               z_step_um=z_step_um, dtype="float32", description=provenance.model_dump_json())
    shape = " x ".join(str(n) for n in psf.shape[::-1])
    print(f"wrote {args.out}: {name}, {shape} px (X x Y{' x Z' if psf.ndim == 3 else ''}), "
          f"pixel {args.pixel_nm:g} nm, {provenance.backend}, max {float(psf.max()):.4g}, sum {float(psf.sum(dtype='float64')):.6g}")
    if sized:
        print(f"size chosen by {sized['size_rule']}")
    return 0
