"""GAN model speed: generator forward throughput and training iterations/s of S1-S5 at paper width.

Run from the repository root::

    .venv/bin/python benchmarks/bench_models.py                      # CPU (CUDA too when present), a few min
    .venv/bin/python benchmarks/bench_models.py --train-size 256     # CPU training at 256 too (~20 min on 2 cores)
    .venv/bin/python benchmarks/bench_models.py --systems s1 s5 --repeats 3 --device cuda
    .venv/bin/python benchmarks/bench_models.py --figures --device cuda --size 1024   # gpu_check.sh's lines

What it prints (one machine, one run, so the ratios are fair):

* a reference: one 3x3 convolution 64 -> 64 channels on a 1 x 64 x SIZE x SIZE tensor (GMAC/s), the
  unit in which each network's cost is also given ("ref-conv units" = its time / the reference's time);
* per generator (the preset's paper widths and scale): parameters, forward time on one SIZE x SIZE LQ
  image, input megapixels/s and output megapixels/s (output = input * scale^2);
* per system: training iterations/s at batch ``--batch`` with HQ patches of TRAIN_SIZE x TRAIN_SIZE (LQ
  patch TRAIN_SIZE / scale; default 256 on CUDA, 64 on CPU where one paper-width step at 256 takes minutes),
  i.e. one generator + discriminator step (both generators and discriminators for the
  cycleGANs). Perceptual losses are switched off (the VGG19 weights file is a user download); S5 and S3
  would each add one VGG19 forward/backward per image.

Times are the best of ``--repeats`` after a warm-up on a small input (first-call kernel setup is not
counted). On CUDA, AMP is used for training (as ``decongan train`` does) and timings synchronise.

``--figures`` prints one ``FIGURE`` line per number instead of the tables (``benchmarks/gpu_check.sh``
collects them): per system, inference input MP/s with and without AMP (float16 autocast on CUDA,
bfloat16 on the CPU) and, on CUDA, with the faster of channels-last and contiguous memory (the one
used is named); training iterations/s of ``--train-systems`` (AMP on CUDA); peak GPU memory
(``torch.cuda.max_memory_allocated``) for each. ``--width-divisor`` narrows the networks (CPU smoke runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_inference import WIDTH_KEYS, build_generator  # noqa: E402
from decongan.engine.learn.presets import load_preset  # noqa: E402
from decongan.engine.learn.systems import build_system  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(function, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def reference_conv(size: int, device: torch.device, repeats: int) -> float:
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)
    x = torch.rand(1, 64, size, size, device=device)
    with torch.inference_mode():
        conv(x[..., :32, :32])
        return best_time(lambda: conv(x), repeats, device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")


def generator_forward(name: str, size: int, device: torch.device, repeats: int, *, amp: bool = False,
                      channels_last: bool | None = None, width_divisor: int = 1) -> dict:
    """Forward time of one preset's generator on a 1 x 1 x size x size input.

    ``amp``: float16 autocast on CUDA, bfloat16 on the CPU; ``channels_last`` (default: on CUDA only)
    puts the network and its input in channels-last memory, as ``engine.learn.inference`` does on CUDA.
    """
    net, preset = build_generator(name, width_divisor=width_divisor, device=device)
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    memory = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    x = torch.rand(1, 1, size, size, device=device).contiguous(memory_format=memory)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=dtype, enabled=amp):
        net(x[..., :32, :32])
        _reset_peak(device)
        seconds = best_time(lambda: net(x), repeats, device)
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "seconds": seconds,
        "scale": preset.scale,
        "model": preset.generator.name,
        "peak_gpu_mib": _peak_mib(device),
    }


def training_step(name: str, size: int, batch: int, device: torch.device, repeats: int, *,
                  width_divisor: int = 1) -> dict:
    preset = load_preset(name)
    weights = {k: v for k, v in preset.loss_weights.items() if k != "perceptual"}
    narrower = {}
    if width_divisor > 1:
        for key in ("generator", "discriminator"):
            kwargs = getattr(preset, key).kwargs
            narrower[key] = {"kwargs": {k: max(4, v // width_divisor) for k, v in kwargs.items() if k in WIDTH_KEYS}}
    preset = preset.with_overrides(loss_weights=weights, batch_size=batch, **narrower)
    torch.manual_seed(0)
    system = build_system(preset, device=device)
    lq_side = size // preset.scale

    def batch_of(side: int) -> dict[str, torch.Tensor]:
        return {
            "lq": torch.rand(batch, 1, side, side, device=device),
            "hq": torch.rand(batch, 1, side * preset.scale, side * preset.scale, device=device),
        }

    amp = device.type == "cuda"
    system.train_step(batch_of(max(32, 64 // preset.scale)), amp=amp)  # warm-up on a small patch
    full = batch_of(lq_side)
    _reset_peak(device)
    seconds = best_time(lambda: system.train_step(full, amp=amp), repeats, device)
    params_d = sum(p.numel() for k, net in system.networks().items() if k.startswith("d") for p in net.parameters())
    return {"seconds": seconds, "params_d": params_d, "lq_side": lq_side, "peak_gpu_mib": _peak_mib(device)}


def _mib_text(mib: float) -> str:
    return "n/a(CPU)" if mib != mib else f"{mib:.1f}"  # NaN: no GPU memory on the CPU


def figures(device: torch.device, systems: list[str], train_systems: list[str], size: int, train_size: int,
            batch: int, repeats: int, width_divisor: int) -> None:
    """Print one ``FIGURE`` line per inference (AMP off/on) and training number (see the module docstring)."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    common = f"device={device.type} width={'paper' if width_divisor == 1 else f'paper/{width_divisor}'}"
    print(f"GAN figures on {where}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)
    for name in systems:
        for amp in (False, True):
            layouts = (True, False) if device.type == "cuda" else (False,)
            runs = {cl: generator_forward(name, size, device, repeats, amp=amp, channels_last=cl,
                                          width_divisor=width_divisor) for cl in layouts}
            layout = min(runs, key=lambda cl: runs[cl]["seconds"])
            r = runs[layout]
            amp_text = ("fp16" if device.type == "cuda" else "bf16") if amp else "off"
            print(f"FIGURE infer_{name}_{'amp' if amp else 'fp32'} {common} model={r['model']} input={size}x{size} "
                  f"amp={amp_text} channels_last={'yes' if layout else 'no'} "
                  f"mp_per_s={size * size / 1e6 / r['seconds']:.4g} peak_gpu_mib={_mib_text(r['peak_gpu_mib'])}",
                  flush=True)
    for name in train_systems:
        r = training_step(name, train_size, batch, device, repeats, width_divisor=width_divisor)
        print(f"FIGURE train_{name} {common} hq_patch={train_size} batch={batch} "
              f"amp={'fp16' if device.type == 'cuda' else 'off'} it_per_s={1 / r['seconds']:.4g} "
              f"peak_gpu_mib={_mib_text(r['peak_gpu_mib'])}", flush=True)


def run(
    device: torch.device, systems: list[str], size: int, train_size: int, batch: int, repeats: int, skip_train: bool
) -> None:
    print(f"\n=== device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads ===")
    ref = reference_conv(size, device, repeats)
    gmac = 64 * 64 * 9 * size * size / 1e9
    print(f"reference conv3x3 64->64 at {size}x{size}: {ref * 1e3:.1f} ms ({gmac / ref:.1f} GMAC/s)")
    print(f"\n{'generator':<22}{'params':>12}{'scale':>6}{'forward s':>11}{'in MP/s':>10}{'out MP/s':>10}{'ref units':>11}")
    for name in systems:
        r = generator_forward(name, size, device, repeats)
        mp_in = size * size / 1e6 / r["seconds"]
        print(f"{name + ' ' + r['model']:<22}{r['params']:>12,}{r['scale']:>6}{r['seconds']:>11.3f}"
              f"{mp_in:>10.3f}{mp_in * r['scale'] ** 2:>10.3f}{r['seconds'] / ref:>11.1f}")
    if skip_train:
        return
    print(f"\ntraining at batch {batch}, HQ patch {train_size}x{train_size} (perceptual off"
          f"{', AMP' if device.type == 'cuda' else ''}):")
    print(f"{'system':<8}{'LQ patch':>10}{'D params':>14}{'s/iter':>10}{'iter/s':>10}{'ref units':>11}")
    for name in systems:
        r = training_step(name, train_size, batch, device, repeats)
        print(f"{name:<8}{r['lq_side']:>10}{r['params_d']:>14,}{r['seconds']:>10.3f}{1 / r['seconds']:>10.3f}"
              f"{r['seconds'] / ref:>11.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=["s1", "s2", "s3", "s4", "s5"])
    parser.add_argument("--size", type=int, default=256, help="image / HQ patch side in pixels")
    parser.add_argument("--train-size", type=int, default=None,
                        help="HQ training patch side (default: --size on CUDA, 64 on CPU)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto = CPU, then CUDA too when present")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--figures", action="store_true", help="print FIGURE lines (gpu_check.sh) instead of tables")
    parser.add_argument("--train-systems", nargs="+", default=["s1", "s2"], help="systems trained by --figures")
    parser.add_argument("--width-divisor", type=int, default=1, help="divide the networks' widths (CPU smoke runs)")
    args = parser.parse_args()
    devices = []
    if args.device in ("auto", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    for device in devices:
        train_size = args.train_size or (args.size if device.type == "cuda" else 64)
        if args.figures:
            figures(device, args.systems, args.train_systems, args.size, train_size, args.batch, args.repeats,
                    args.width_divisor)
            continue
        run(device, args.systems, args.size, train_size, args.batch, args.repeats, args.skip_train)


if __name__ == "__main__":
    main()
