"""Inference (and training-step) speed of the seed generators, tiling overhead, and the 3072 x 3072 memory check.

Not a test: prints numbers (JSON lines) to copy into the notes. Run on the machine whose numbers you
want (CPU here; CUDA when a GPU is present):

    .venv/bin/python benchmarks/bench_inference.py                 # everything at the presets' widths
    .venv/bin/python benchmarks/bench_inference.py --quick         # 1/4 widths, smaller images (minutes on 2 cores)
    .venv/bin/python benchmarks/bench_inference.py --only speed --device cuda

Measured:
* ``speed``: megapixels (input) per second of each preset's generator on one ``--size`` x ``--size``
  plane, whole-plane inference (``tile=0``), best of ``--repeats`` after one warm-up.
* ``tiling``: S1 and S5 on a ``--tiling-size`` plane: whole vs tiled (``--tile``, overlap 64 and "auto");
  reports the time ratio tiled/whole (the overhead, measured in the same run) and the largest
  difference from the whole-plane output in units of its range.
* ``memory``: a 3072 x 3072 uint16 image through ``predict_image`` with 512 px tiles in a fresh
  subprocess on the CPU; peak resident memory (``ru_maxrss``) must stay below 4 GiB.
* ``train``: training iterations per second of each preset at 256 x 256 (HQ patch) with batch 2
  (perceptual losses off unless ``DECONGAN_VGG19`` points at the VGG19 weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRESETS = ("s1", "s2", "s3", "s4", "s5")
WIDTH_KEYS = {"base_channels", "features", "unet_base", "dfcan_features", "num_feat", "num_grow_ch"}


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def build_generator(preset_name: str, *, width_divisor: int, device):
    import torch

    from decongan.engine.learn.checkpoint import generator_kwargs
    from decongan.engine.learn.models import create_model
    from decongan.engine.learn.presets import load_preset

    preset = load_preset(preset_name)
    kwargs = dict(preset.generator.kwargs)
    if width_divisor > 1:
        kwargs = {k: max(4, v // width_divisor) if k in WIDTH_KEYS else v for k, v in kwargs.items()}
    torch.manual_seed(0)
    g = create_model(preset.generator.name, **generator_kwargs(preset.generator.name, kwargs, preset.scale))
    return g.to(device).eval(), preset


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_speed(args, device) -> None:
    from decongan.engine.learn.inference import predict_array

    plane = np.random.default_rng(0).random((args.size, args.size)).astype(np.float32) * 1000
    for name in args.presets:
        g, preset = build_generator(name, width_divisor=args.width_divisor, device=device)
        seconds = timed(lambda g=g: predict_array(g, plane, tile=0, device=device), args.repeats)
        emit({"bench": "speed", "preset": name, "generator": preset.generator.name, "device": device.type,
              "size": args.size, "scale": preset.scale, "width_divisor": args.width_divisor,
              "params_M": round(sum(p.numel() for p in g.parameters()) / 1e6, 3),
              "seconds": round(seconds, 3), "mpix_per_s": round(args.size**2 / 1e6 / seconds, 4)})


def bench_tiling(args, device) -> None:
    from decongan.engine.io import MicroscopyImage
    from decongan.engine.learn.inference import predict_array, predict_image

    side = args.tiling_size
    yy, xx = np.mgrid[0:side, 0:side]
    plane = (500 + 400 * np.sin(xx / 11.0) * np.cos(yy / 7.0) + 50 * np.random.default_rng(1).random((side, side))).astype(np.float32)
    for name in ("s1", "s5"):
        g, _ = build_generator(name, width_divisor=args.width_divisor, device=device)
        whole_holder = {}

        def whole(g=g, holder=whole_holder):
            holder["out"] = predict_array(g, plane, tile=0, device=device)

        t_whole = timed(whole, args.repeats)
        reference = whole_holder["out"]
        value_range = float(reference.max() - reference.min())
        for overlap in (64, "auto"):
            holder = {}

            def tiled(g=g, overlap=overlap, holder=holder):
                holder["out"], holder["prov"] = predict_image(g, MicroscopyImage(plane, "YX"), tile=args.tile,
                                                              overlap=overlap, device=device)

            t_tiled = timed(tiled, args.repeats)
            params = holder["prov"].parameters
            emit({"bench": "tiling", "preset": name, "device": device.type, "size": side, "tile": params["tile"],
                  "overlap": params["overlap"], "whole_s": round(t_whole, 3), "tiled_s": round(t_tiled, 3),
                  "overhead_ratio": round(t_tiled / t_whole, 3),
                  "max_diff_over_range": float(np.abs(holder["out"].data - reference).max() / value_range),
                  "notes": holder["prov"].notes})


def bench_memory(args) -> None:
    divisor = args.memory_width_divisor or args.width_divisor
    script = textwrap.dedent(f"""
        import resource, time, numpy as np, torch
        torch.set_num_threads({args.threads})
        import sys; sys.path.insert(0, {str(REPO)!r})
        from benchmarks.bench_inference import build_generator
        from decongan.engine.learn.inference import predict_image
        from decongan.engine.io import MicroscopyImage
        g, _ = build_generator("s1", width_divisor={divisor}, device=torch.device("cpu"))
        image = MicroscopyImage(np.random.default_rng(0).integers(0, 65535, (3072, 3072), dtype=np.uint16), "YX",
                                pixel_size_um=0.1)
        start = time.perf_counter()
        out, _ = predict_image(g, image, tile=512, overlap=64, device="cpu")
        print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, out.data.dtype)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        emit({"bench": "memory", "error": result.stderr[-2000:]})
        return
    seconds, maxrss_kib, dtype = result.stdout.split()[-3:]
    peak_mib = int(maxrss_kib) / 1024
    emit({"bench": "memory", "preset": "s1", "image": "3072x3072 uint16", "tile": 512, "overlap": 64,
          "width_divisor": divisor, "seconds": round(float(seconds), 2), "peak_rss_mib": round(peak_mib, 1),
          "below_4_gib": peak_mib < 4096, "output_dtype": dtype})


def bench_train(args, device) -> None:
    import torch

    from decongan.engine.learn.presets import load_preset
    from decongan.engine.learn.systems import build_system
    from decongan.engine.learn.training.config import apply_overrides

    for name in args.presets:
        preset = load_preset(name)
        updates: dict = {"batch_size": 2, "patch_size": 256 // preset.scale}
        if preset.weight("perceptual") > 0 and not os.environ.get("DECONGAN_VGG19"):
            updates["loss_weights"] = {"perceptual": 0.0}
        if args.width_divisor > 1:
            for key in ("generator", "discriminator"):
                kwargs = getattr(preset, key).kwargs
                updates[key] = {"kwargs": {k: max(4, v // args.width_divisor) for k, v in kwargs.items() if k in WIDTH_KEYS}}
        preset = apply_overrides(preset, updates)
        torch.manual_seed(0)
        system = build_system(preset, device=device)
        s = preset.scale
        batch = {"lq": torch.rand(2, 1, 256 // s, 256 // s), "hq": torch.rand(2, 1, 256, 256)}
        seconds = timed(lambda system=system, batch=batch: system.train_step(batch, amp=device.type == "cuda"), args.repeats)
        emit({"bench": "train", "preset": name, "device": device.type, "hq_patch": 256, "batch": 2,
              "width_divisor": args.width_divisor, "perceptual": preset.weight("perceptual") > 0,
              "seconds_per_it": round(seconds, 3), "it_per_s": round(1 / seconds, 3)})


def main() -> int:
    import torch

    from decongan.engine.device import resolve_device

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=512, help="plane side for the speed benchmark (px)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--tiling-size", type=int, default=1024, help="plane side for the tiling benchmark (px)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--width-divisor", type=int, default=1, help="divide the presets' widths (quick CPU runs)")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--only", nargs="+", choices=["speed", "tiling", "memory", "train"],
                        default=["speed", "tiling", "memory", "train"])
    parser.add_argument("--quick", action="store_true", help="--width-divisor 4 --size 256 --tile 256 --repeats 1")
    parser.add_argument("--memory-width-divisor", type=int, default=None,
                        help="width divisor of the 3072 x 3072 memory run (default: --width-divisor)")
    args = parser.parse_args()
    if args.quick:
        args.width_divisor, args.size, args.tile, args.repeats = 4, 256, 256, 1
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    emit({"bench": "setup", "device": str(device), "torch": torch.__version__, "threads": args.threads,
          "cuda": torch.cuda.get_device_name(0) if device.type == "cuda" else None})
    if "speed" in args.only:
        bench_speed(args, device)
    if "tiling" in args.only:
        bench_tiling(args, device)
    if "memory" in args.only:
        bench_memory(args)
    if "train" in args.only:
        bench_train(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
