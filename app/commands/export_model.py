"""``decongan export-model``: export a trained generator as TorchScript (with its normalisation config)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from decongan.app.commands import CommandError

HELP = "export a trained generator as a TorchScript file (config and normalisation embedded and beside it)"
DESCRIPTION = """\
Write the generator of RUN_DIR as a TorchScript module (--out model.pt) that runs with plain
PyTorch (torch.jit.load), without DeconGAN. It takes normalised (B, 1, H, W) float32 batches of any
size and returns (B, 1, H*scale, W*scale). The run configuration (normalisation policy and
parameters, scale, training pixel size, preset) is embedded as the extra files
decongan_config.json and decongan_export.json, and written beside the model as model.json.
The export is checked against the trained generator before it is written.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder of 'decongan train'")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="FILE", help="TorchScript file to write (e.g. model.pt)")
    parser.add_argument("--which", choices=["best", "last"], default="best", help="best validated model or last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    from decongan.engine.learn.checkpoint import ExportError, RunError, export_torchscript

    out: Path = args.out
    if out.is_dir():
        raise CommandError(f"--out {out} is a folder; give a file name such as {out / 'model.pt'}")
    if out.exists() and not args.overwrite:
        raise CommandError(f"{out} exists (use --overwrite to replace it)")
    try:
        result = export_torchscript(args.run_dir, out, which=args.which)
    except (RunError, ExportError) as err:
        raise CommandError(str(err).replace("which='last'", "--which last")) from err
    print(f"decongan export-model: wrote {result.path} ({result.method}; max |difference| vs the trained generator "
          f"{result.max_abs_difference:.2g}) and {result.sidecar}", file=sys.stderr)
    print(result.path)
    return 0
