"""``decongan train``: train one of the seed GANs (S1-S5) on a folder of images."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from decongan.app.commands import CommandError

HELP = "train a seed GAN (S1-S5) on paired or unpaired image folders; resumable, JSON-lines progress"
DESCRIPTION = """\
Train the GAN of a preset (s1 widefield->confocal U-Net GAN, s2 TCAN, s3 cycleGAN, s4 c2GAN,
s5 Real-ESRGAN) on your images and write a run folder (--out) with config.json, checkpoints,
the best model (by validation SSIM for paired presets) and progress.jsonl.

Paired presets (s1, s2, s5) match --lq and --hq files by name (reported when a name has no
partner); unpaired presets (s3, s4) treat them as two domains. With --synthetic-lq only --hq is
needed: the LQ images are made from the HQ ones (gaussian: blur sigma 1 px + x2 down/up-sampling;
born-wolf: Born & Wolf PSF of a low-NA objective + Poisson noise at 45 dB; realesrgan: two-stage
Real-ESRGAN degradation). Z planes, time frames and channels of stacks are used as separate 2-D
samples. Whole images are held out for validation (--val-names, or a deterministic choice by name).

Progress: one JSON object per line on stdout (iteration, losses, validation metrics, eta_s) and a
bar on stderr when it is a terminal. Ctrl-C saves a checkpoint and exits with status 130;
--resume continues exactly where the last checkpoint stopped (same losses as an uninterrupted run).
A run stopped or killed before its first checkpoint has nothing to continue: --resume (or the same
command without it) starts it again in its folder. Temporaries of a killed run are deleted, and a
folder in use by a live training process is refused (RUN_DIR/.lock holds its pid and host).

For a quick CPU run use a small width, e.g. --width 8 --patch-size 64 --batch-size 2.

Several GPUs or machines (data-parallel): start the same command under a launcher, one process
per GPU, e.g. `torchrun --standalone --nproc-per-node 4 -m decongan.app.cli train ...` or `srun`
(set MASTER_ADDR and MASTER_PORT). Every process draws the same global batch (--batch-size) and
trains on its 1/N of it, with gradients averaged (gloo on the CPU, NCCL on CUDA); only process 0
writes the run folder and prints. The batch size must be a multiple of the number of processes;
a run can be resumed with another number of processes (config.json records each launch's).
"""

SYNTHETIC = ("gaussian", "born-wolf", "realesrgan")

#: the engine's words for what the user can do -> the same words with this command's option
_OPTION_WORDS = (("resume the run", "resume the run (--resume)"),
                 ("a new output folder", "a new output folder (--out)"),
                 ("instead of resuming", "without --resume"),
                 ("(not resuming)", "(without --resume)"),
                 ("low- and high-quality image folders", "low- and high-quality image folders (--lq, --hq)"))


def with_train_options(message: str) -> str:
    """An engine message for the command line: its advice in words, followed by this command's options.

    Parameters
    ----------
    message : str
        An engine error's message (it names no option: the engine does not know which door called it).

    Returns
    -------
    str
        The message with ``--resume``, ``--out``, ``--lq``/``--hq`` added where it gives that advice.
    """
    for words, with_option in _OPTION_WORDS:
        message = message.replace(words, with_option)
    return message


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="s1", metavar="NAME",
                        help="s1, s2, s3, s4, s5, or the path of a preset JSON file")
    parser.add_argument("--lq", type=Path, metavar="DIR", help="low-quality (input) images")
    parser.add_argument("--hq", type=Path, metavar="DIR", help="high-quality (target) images")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="RUN_DIR",
                        help="run folder to create (must not exist or be empty, unless --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint (starts it again when it has none)")
    parser.add_argument("--iterations", type=int, metavar="N", help="training iterations (default: the preset's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, metavar="S", help="random seed (default 0)")
    parser.add_argument("--patch-size", type=int, metavar="P", help="LQ patch side in pixels (default: the preset's)")
    parser.add_argument("--batch-size", type=int, metavar="B", help="patches per iteration (default: the preset's)")
    parser.add_argument("--val-every", type=int, metavar="N", help="iterations between validations (default: the preset's)")
    parser.add_argument("--checkpoint-every", type=int, metavar="N", help="iterations between checkpoints (default: --val-every)")
    parser.add_argument("--log-every", type=int, metavar="N", help="iterations between progress lines (default 10)")
    parser.add_argument("--val-names", nargs="+", metavar="NAME", help="file names (without extension) held out for validation")
    parser.add_argument("--val-fraction", type=float, metavar="F", help="fraction of images held out when --val-names is not given (default 0.15)")
    parser.add_argument("--width", type=int, metavar="W",
                        help="network width for a small CPU model: sets the generator's and discriminator's base width")
    parser.add_argument("--model-arg", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                        help="generator constructor argument (repeatable, value as JSON), e.g. base_channels=16")
    parser.add_argument("--disc-arg", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                        help="discriminator constructor argument (repeatable)")
    parser.add_argument("--set", dest="preset_set", action="append", type=_key_value, default=[], metavar="FIELD=VALUE",
                        help="override any preset field (repeatable, value as JSON), e.g. lr_g=1e-4")
    parser.add_argument("--pixel-nm", type=float, metavar="NM", help="LQ pixel size in nanometres when the files do not state it")
    parser.add_argument("--synthetic-lq", choices=SYNTHETIC, help="make LQ images from the HQ ones (only --hq needed)")
    parser.add_argument("--normalization", choices=["dataset", "per-image"], default=None,
                        help="percentile normalisation: one set of parameters per domain (dataset) or per image")
    parser.add_argument("--register", choices=["translation", "rigid", "similarity", "affine"],
                        help="register each LQ image onto its HQ partner first (paired, same grid)")
    parser.add_argument("--vgg19-weights", type=Path, metavar="PATH", help="ImageNet VGG19 weights (torchvision layout) for perceptual losses")
    parser.add_argument("--pretrained", type=Path, metavar="PATH", help="generator checkpoint to start from (e.g. RealESRGAN_x2plus.pth for s5)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--no-json", action="store_true", help="do not print JSON lines on stdout")


#: constructor arguments that set a model's width, with their multiple of --width
WIDTH_ARGUMENTS: dict[str, dict[str, int]] = {
    "s1_resunet": {"base_channels": 1}, "s1_discriminator": {"base_channels": 1},
    "s2_tcan": {"features": 1, "unet_base": 1, "dfcan_features": 2}, "s2_discriminator": {"base_channels": 1},
    "s3_resnet_generator": {"base_channels": 1}, "s3_patchgan": {"base_channels": 1},
    "s5_rrdbnet": {"num_feat": 1, "num_grow_ch": 1}, "s5_unet_discriminator": {"num_feat": 1},
}


def width_arguments(model_name: str, width: int) -> dict[str, int]:
    """Constructor arguments that give ``model_name`` the base width ``width``."""
    import inspect

    from decongan.engine.learn.models import model_factory

    if model_name in WIDTH_ARGUMENTS:
        return {k: m * width for k, m in WIDTH_ARGUMENTS[model_name].items()}
    parameters = inspect.signature(model_factory(model_name)).parameters
    for candidate in ("base_channels", "num_feat", "width", "features", "channels"):
        if candidate in parameters:
            return {candidate: width}
    raise CommandError(f"--width: model {model_name!r} has no known width argument; use --model-arg / --disc-arg")


def build_config(args: argparse.Namespace) -> Any:
    """A TrainConfig from the parsed options (only the options given are set)."""
    from pydantic import ValidationError

    from decongan.engine.learn.degrade import DegradationSpec
    from decongan.engine.learn.presets import PresetError, load_preset
    from decongan.engine.learn.training import TrainConfig

    fields: dict[str, Any] = {"out": args.out, "preset": args.preset, "resume": args.resume, "device": args.device}
    for name, value in (("lq_dir", args.lq), ("hq_dir", args.hq), ("iterations", args.iterations),
                        ("seed", args.seed), ("patch_size", args.patch_size), ("batch_size", args.batch_size),
                        ("val_every", args.val_every), ("checkpoint_every", args.checkpoint_every),
                        ("log_every", args.log_every), ("val_names", args.val_names),
                        ("val_fraction", args.val_fraction), ("vgg19_weights", args.vgg19_weights),
                        ("pretrained", args.pretrained), ("registration", args.register)):
        if value is not None:
            fields[name] = value
    if args.normalization:
        fields["normalization"] = args.normalization.replace("-", "_")
    if args.pixel_nm is not None:
        if args.pixel_nm <= 0:
            raise CommandError(f"--pixel-nm must be positive, got {args.pixel_nm}")
        fields["pixel_size_um"] = args.pixel_nm / 1000.0
    if args.synthetic_lq:
        fields["synthetic_lq"] = DegradationSpec(method=args.synthetic_lq.replace("-", "_"))
    model_args = dict(args.model_arg)
    disc_args = dict(args.disc_arg)
    # also with --resume: a run killed before its first checkpoint starts again from these options
    # (a run with a checkpoint keeps its stored networks whatever is given here)
    if args.width is not None:
        if args.width < 1:
            raise CommandError(f"--width must be >= 1, got {args.width}")
        try:
            preset = load_preset(args.preset)
        except PresetError as err:
            raise CommandError(str(err)) from err
        model_args = {**width_arguments(preset.generator.name, args.width), **model_args}
        disc_args = {**width_arguments(preset.discriminator.name, args.width), **disc_args}
    if model_args:
        fields["model_args"] = model_args
    if disc_args:
        fields["disc_args"] = disc_args
    if args.preset_set:
        fields["preset_overrides"] = dict(args.preset_set)
    try:
        return TrainConfig(**fields)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'options'}: {e['msg']}" for e in err.errors())
        raise CommandError(problems) from err


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    config = build_config(args)
    from decongan.engine.learn.training import distributed

    try:  # under torchrun / srun: join the other processes (one per device); rank 0 alone writes and prints
        context = distributed.init_from_environment(args.device)
    except distributed.DistributedError as err:
        raise CommandError(str(err)) from err
    try:
        return _train(args, config, main=context is None or context.is_main)
    finally:
        distributed.shutdown()


def _train(args: argparse.Namespace, config: Any, *, main: bool) -> int:
    from decongan.app.console import ConsoleProgress
    from decongan.engine.learn.checkpoint import CheckpointImportError, RunError
    from decongan.engine.learn.presets import PresetError
    from decongan.engine.learn.training import DataError, TrainingError, iter_train
    from decongan.engine.learn.training.distributed import DistributedError
    from decongan.engine.learn.training.loop import summary_json
    from decongan.engine.progress import Cancelled, CancelToken

    console = ConsoleProgress(f"train {config.preset}", json_lines=not args.no_json)
    token = CancelToken()
    interrupts = {"count": 0}

    def on_sigint(signum: int, frame: Any) -> None:  # first Ctrl-C: stop after this iteration and save
        interrupts["count"] += 1
        if interrupts["count"] > 1:
            raise KeyboardInterrupt
        token.cancel()
        print("\ndecongan train: stopping after the current iteration and saving a checkpoint "
              "(Ctrl-C again to abort without saving)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        events = iter_train(config, cancel=token)
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                summary = stop.value
                break
            if main:
                console(event)
    except Cancelled:
        from decongan.engine.learn.checkpoint import has_checkpoint

        if not main:
            return 130
        if has_checkpoint(config.out):
            print(f"decongan train: stopped; checkpoint saved in {config.out} (continue with --resume)", file=sys.stderr)
        else:
            print("decongan train: stopped before the first checkpoint; the same command (with or without "
                  "--resume) starts the run again", file=sys.stderr)
        return 130
    except (TrainingError, DataError, PresetError, RunError, CheckpointImportError, DistributedError) as err:
        raise CommandError(with_train_options(str(err))) from err
    finally:
        signal.signal(signal.SIGINT, previous)
    if not main:
        return 0
    if not args.no_json:
        print(json.dumps({"event": "done", **json.loads(summary_json(summary))}), flush=True)
    for note in summary.notes:
        print(f"decongan train: note: {note}", file=sys.stderr)
    best = (f"; best {summary.criterion} {summary.best_metric:.4f} at iteration {summary.best_iteration}"
            if summary.best_metric is not None else "")
    print(f"decongan train: {summary.iterations} iterations done in {summary.elapsed_s:.0f} s{best}; run folder {summary.run_dir}",
          file=sys.stderr)
    return 0
