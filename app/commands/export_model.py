"""``decongan export-model``: export a trained generator as TorchScript (with its normalisation config) or as a
bioimage.io model package (``--format bioimageio``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from decongan.app.commands import CommandError

HELP = "export a trained generator as a TorchScript file or a bioimage.io model package (deepImageJ, napari)"
DESCRIPTION = """\
Write the generator of RUN_DIR as a TorchScript module (--out model.pt) that runs with plain
PyTorch (torch.jit.load), without DeconGAN. It takes normalised (B, 1, H, W) float32 batches of any
size and returns (B, 1, H*scale, W*scale). The run configuration (normalisation policy and
parameters, scale, training pixel size, preset) is embedded as the extra files
decongan_config.json and decongan_export.json, and written beside the model as model.json.
The export is checked against the trained generator before it is written.

--format bioimageio writes a bioimage.io model package (--out NAME.zip, format 0.5) that Fiji's
deepImageJ, bioimage.io tools (napari, Python) and 'decongan predict' run: TorchScript weights with
the PyTorch state dict as their parent, axes batch, channel, y, x in micrometres, sizes min + n*step,
the receptive field as halo, the run's normalisation as pre/postprocessing, test tensors and a cover
cut from the run's first validation image, README, licence, citation and tags. The package is
tested with bioimageio.core (every weight format, batch 1 and 2) before it is written; a package
that fails is not written.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder of 'decongan train'")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="FILE", help="TorchScript file to write (e.g. model.pt)")
    parser.add_argument("--which", choices=["best", "last"], default="best", help="best validated model or last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--format", choices=["torchscript", "bioimageio"], default="torchscript",
                        help="TorchScript file (default) or bioimage.io model package (.zip)")
    group = parser.add_argument_group("bioimage.io package (--format bioimageio)")
    group.add_argument("--name", help="model name (default: DeconGAN <preset> <run folder>)")
    group.add_argument("--author", action="append", default=[], metavar="NAME",
                       help="author (repeatable; default: your login name)")
    group.add_argument("--license", default="CC-BY-4.0", metavar="SPDX", help="licence of the weights (SPDX id)")
    group.add_argument("--channel", type=int, default=0, metavar="N",
                       help="channel whose normalisation the package uses (runs trained on several channels)")
    group.add_argument("--torchscript-only", action="store_true",
                       help="leave out the PyTorch state-dict weights: half the size; deepImageJ runs TorchScript anyway")
    group.add_argument("--sample-image", type=Path, metavar="FILE",
                       help="image to cut the test tensors from (default: the run's first validation image)")


def run(args: argparse.Namespace) -> int:
    from decongan.engine.learn.checkpoint import ExportError, RunError, export_torchscript

    out: Path = args.out
    example = "model.zip" if args.format == "bioimageio" else "model.pt"
    if out.is_dir():
        raise CommandError(f"--out {out} is a folder; give a file name such as {out / example}")
    if out.exists() and not args.overwrite:
        raise CommandError(f"{out} exists (use --overwrite to replace it)")
    if args.format == "bioimageio":
        return _export_bioimageio(args, out)
    try:
        result = export_torchscript(args.run_dir, out, which=args.which)
    except (RunError, ExportError) as err:
        raise CommandError(str(err).replace("which='last'", "--which last")) from err
    print(f"decongan export-model: wrote {result.path} ({result.method}; max |difference| vs the trained generator "
          f"{result.max_abs_difference:.2g}) and {result.sidecar}", file=sys.stderr)
    print(result.path)
    return 0


def _export_bioimageio(args: argparse.Namespace, out: Path) -> int:
    from decongan.engine.errors import DeconganError
    from decongan.engine.learn.bioimageio_export import export_bioimageio

    if out.suffix.lower() != ".zip":
        raise CommandError(f"--out {out}: a bioimage.io package is a .zip file; give a name such as {out.with_suffix('.zip')}")
    if args.sample_image is not None and not args.sample_image.is_file():
        raise CommandError(f"--sample-image {args.sample_image}: no such file")
    try:
        result = export_bioimageio(args.run_dir, out, which=args.which, name=args.name, authors=args.author,
                                   license=args.license, channel=args.channel, sample_image=args.sample_image,
                                   torchscript_only=args.torchscript_only)
    except DeconganError as err:
        raise CommandError(str(err).replace("which='last'", "--which last")
                           .replace("give a sample image", "give one with --sample-image")
                           .replace("give one with --sample-image for them", "give one with --sample-image")) from err
    for note in result.notes:
        print(f"decongan export-model: note: {note}", file=sys.stderr)
    geometry = result.geometry
    print(f"decongan export-model: wrote {result.path} ({result.size_bytes / 1e6:.2f} MB; sizes {geometry.min} + n*"
          f"{geometry.step} px, halo {geometry.halo} px); bioimageio test {result.test_summary.splitlines()[0]}",
          file=sys.stderr)
    print(result.path)
    return 0
