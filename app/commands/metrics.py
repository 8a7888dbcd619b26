"""``decongan metrics``: image-quality metrics of one image, optionally against a reference."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from decongan.app.commands import CommandError

HELP = "image-quality metrics (MSE/NRMSE/PSNR/SSIM vs a reference; BGSTD/CUF/SNR/decorrelation, FRC, bead FWHM)"
DESCRIPTION = """\
Print image-quality metrics of IMAGE.

With --reference GT: mse, nrmse, psnr (dB) and ssim of IMAGE against GT, after DeconGAN's one
normalisation policy (GT percentile-normalised 0.1..99.9 -> 0..1; IMAGE least-squares fitted to it
by a gain >= 0 and an offset; data range 1; SSIM with Wang et al.'s Gaussian window; Z stacks: SSIM
averaged over planes). Always: no-reference metrics of IMAGE: bgstd (background std on the image's
own 0.1..99.9 percentile scale), cuf (radius holding 95% of the spectral energy, cycles/pixel), snr,
decorrelation_px / decorrelation_nm (Descloux 2019 resolution; nm needs a pixel size). Z stacks use
their sharpest plane for these (z_plane). --frc OTHER adds the Fourier ring correlation resolution
against a second, independent acquisition; --beads adds the median bead FWHM by 2-D Gaussian fits.

Multichannel images: choose --channel N, or --channel all for one result per channel
(JSON: {"channels": [...]}). Time series: choose --t N.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="image to measure (the prediction when --reference is given)")
    parser.add_argument("--reference", "-r", type=Path, metavar="GT",
                        help="ground-truth image of the same shape: adds mse, nrmse, psnr, ssim")
    parser.add_argument("--pixel-nm", type=float, metavar="NM",
                        help="lateral pixel size in nanometres; when omitted, the file's calibration is used if it has one")
    parser.add_argument("--channel", "-c", metavar="N|all",
                        help="channel index (0-based) of a multichannel image, or 'all' for each channel")
    parser.add_argument("--t", type=int, metavar="N", help="time point (0-based) of a time series")
    parser.add_argument("--z", type=int, metavar="N",
                        help="measure only this z plane (0-based) of a stack; when omitted, the whole stack")
    parser.add_argument("--frc", type=Path, metavar="OTHER",
                        help="second independent acquisition of the same field: adds frc_px / frc_nm (1/7 threshold)")
    parser.add_argument("--beads", action="store_true",
                        help="also fit isolated beads with 2-D Gaussians: adds fwhm_px / fwhm_nm / n_beads")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


# ---------------------------------------------------------------------------------------------
def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _channels(image: Any, choice: str | None) -> list[int | None]:
    """Channel indices to measure (None = the image has no channel axis)."""
    n = image.n_channels if "C" in image.axes else 0
    if choice is None:
        if n > 1:
            kind = "an RGB image with" if image.metadata.get("rgb") else "an image with"
            raise CommandError(f"{image.path}: {kind} {n} channels; choose one with --channel N "
                               f"(0..{n - 1}) or measure each with --channel all")
        return [0] if n == 1 else [None]
    if choice.strip().lower() == "all":
        return list(range(n)) if n else [None]
    try:
        index = int(choice)
    except ValueError:
        raise CommandError(f"--channel must be a channel index or 'all', got {choice!r}") from None
    if n == 0 and index == 0:
        return [None]
    if not 0 <= index < max(n, 1) or n == 0:
        raise CommandError(f"{image.path}: has {max(n, 1)} channel(s); --channel {index} is out of range")
    return [index]


def _select(image: Any, *, channel: int | None, t: int | None, z: int | None) -> Any:
    """The (Z, Y, X) or (Y, X) array to measure."""
    if image.n_t > 1 and t is None:
        raise CommandError(f"{image.path}: is a time series of {image.n_t} frames; choose one with --t N")
    if t is not None and not 0 <= t < image.n_t:
        raise CommandError(f"{image.path}: has {image.n_t} time point(s); --t {t} is out of range")
    if z is not None and not 0 <= z < image.n_z:
        raise CommandError(f"{image.path}: has {image.n_z} z plane(s); --z {z} is out of range")
    selected = image.select(t=t if "T" in image.axes else None,
                            c=channel if "C" in image.axes else None,
                            z=z if "Z" in image.axes else None)
    return selected.data


def _pixel_nm(args: argparse.Namespace, image: Any) -> float | None:
    if args.pixel_nm is not None:
        if not args.pixel_nm > 0:
            raise CommandError(f"--pixel-nm must be > 0, got {args.pixel_nm}")
        return float(args.pixel_nm)
    return image.pixel_size_um * 1000.0 if image.pixel_size_um else None


def _measure(args: argparse.Namespace, image: Any, reference: Any, other: Any, channel: int | None,
             pixel_nm: float | None) -> dict[str, Any]:
    from decongan.engine.metrics import bead_fwhm, frc, no_reference_metrics, reference_metrics_with_info

    data = _select(image, channel=channel, t=args.t, z=args.z)
    result: dict[str, Any] = {}
    if channel is not None:
        result["channel"] = channel
    if reference is not None:
        ref = _select(reference, channel=channel, t=args.t, z=args.z)
        if ref.shape != data.shape:
            raise CommandError(f"shape mismatch: {args.image} has {data.shape} but reference {args.reference} "
                               f"has {ref.shape} (after channel/time/z selection); register or crop them first")
        try:
            metrics, info = reference_metrics_with_info(prediction=data, reference=ref)
        except ValueError as err:
            raise CommandError(f"{args.image} vs {args.reference}: {err}") from None
        result.update(metrics)
        if info is not None:
            result["normalization"] = info.as_dict()
    try:
        result.update(no_reference_metrics(data, pixel_nm=pixel_nm))
    except ValueError as err:
        raise CommandError(f"{args.image}: {err}") from None
    plane = data[int(result["z_plane"])] if "z_plane" in result else data
    if other is not None:
        second = _select(other, channel=channel, t=args.t, z=args.z)
        if second.shape != data.shape:
            raise CommandError(f"shape mismatch: {args.image} has {data.shape} but --frc {args.frc} has {second.shape}")
        second_plane = second[int(result["z_plane"])] if "z_plane" in result else second
        try:
            ring = frc(plane, second_plane, pixel_nm=pixel_nm)
        except ValueError as err:
            raise CommandError(f"{args.image} vs {args.frc}: {err}") from None
        result["frc_px"] = ring.resolution_px
        if pixel_nm is not None:
            result["frc_nm"] = ring.resolution_nm
    if args.beads:
        beads = bead_fwhm(data, pixel_nm=pixel_nm)
        result["n_beads"] = beads.n_ok
        result["fwhm_px"] = beads.median_fwhm_px
        if pixel_nm is not None:
            result["fwhm_nm"] = beads.median_fwhm_nm
    return result


_UNITS = {"psnr": "dB", "cuf": "cycles/px", "decorrelation_px": "px", "decorrelation_nm": "nm",
          "frc_px": "px", "frc_nm": "nm", "fwhm_px": "px", "fwhm_nm": "nm"}


def _table(header: dict[str, Any], results: list[dict[str, Any]]) -> str:
    lines = [f"{k}: {v}" for k, v in header.items() if v is not None]
    for result in results:
        rows = [(k, v) for k, v in result.items() if k != "normalization"]
        if "channel" in result:
            lines.append(f"-- channel {result['channel']}")
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            if key == "channel":
                continue
            text = "n/a" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))
            lines.append(f"{key:<{width}}  {text:>12}  {_UNITS.get(key, '')}".rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from decongan.engine.io import read_image

    image = read_image(args.image)
    reference = read_image(args.reference) if args.reference is not None else None
    other = read_image(args.frc) if args.frc is not None else None
    pixel_nm = _pixel_nm(args, image)
    channels = _channels(image, args.channel)
    for extra, path in ((reference, args.reference), (other, args.frc)):
        if extra is not None and extra.axes != image.axes:
            raise CommandError(f"axes mismatch: {args.image} is {image.axes} {image.data.shape} but {path} is "
                               f"{extra.axes} {extra.data.shape}")
    results = [_measure(args, image, reference, other, c, pixel_nm) for c in channels]
    header = {"image": str(args.image), "reference": str(args.reference) if args.reference else None,
              "pixel_nm": pixel_nm}
    if args.json:
        payload: dict[str, Any] = dict(header)
        if (args.channel or "").strip().lower() == "all":
            payload["channels"] = results
        else:
            payload.update(results[0])
        print(json.dumps(_finite_or_none(payload), allow_nan=False))
    else:
        print(_table(header, results))
    return 0
