"""Richardson-Lucy ms/iteration on the GPU and on the CPU in one run, 2-D and 3-D (for gpu_check.sh).

    python benchmarks/bench_rl_gpu.py                       # 2048^2 with a 65^2 PSF, and 256^3; CPU and CUDA
    python benchmarks/bench_rl_gpu.py --size 128 --size-3d 32 --psf-size 15 --psf-size-3d 9 --devices cpu

The engine's ``richardson_lucy`` (``edges="zero"``, start 0.5: scikit-image's model) on a Poisson
image; one line per (dimension), starting with ``FIGURE``::

    FIGURE rl2d shape=2048x2048 psf=65x65 cuda_ms_per_it=0.81 cpu_ms_per_it=70.2 speedup=86.7 peak_gpu_mib=420.0

The per-iteration time is *marginal*: ``(t(N2) - t(N1)) / (N2 - N1)`` from two runs of N1 and N2
iterations (each the best of ``--repeats``), so the copies to and from the GPU, the PSF's transform and
the allocation, paid once per call, are not counted; the totals of the N2 run are printed too.
Peak GPU memory is ``torch.cuda.max_memory_allocated`` during the N2 run. Accelerated RL and time to
the same result are measured by ``bench_rl.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def poisson_image(shape: tuple[int, ...], *, seed: int = 7) -> np.ndarray:
    """A float32 Poisson image of the given shape (mean 20-220 photons); RL's cost does not depend on content."""
    rng = np.random.default_rng(seed)
    return rng.poisson(20 + 200 * rng.random(shape)).astype(np.float32)


def timed_rl(image: np.ndarray, psf: np.ndarray, iterations: int, device: str, repeats: int) -> tuple[float, float]:
    """Best wall time of ``repeats`` RL runs, and the peak GPU memory (MiB; NaN on the CPU) of the last one."""
    import torch

    from decongan.engine.optics.deconvolution import richardson_lucy

    cuda = device.startswith("cuda")
    best = float("inf")
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        richardson_lucy(image, psf, iterations=iterations, edges="zero", initial=0.5, device=device)
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    return best, peak


def marginal(image: np.ndarray, psf: np.ndarray, device: str, n1: int, n2: int,
             repeats: int) -> tuple[float, float, float]:
    """``(ms per iteration, total seconds of the N2 run, peak GPU MiB)`` of one device."""
    from decongan.engine.optics.deconvolution import richardson_lucy

    richardson_lucy(image[(slice(0, 16),) * image.ndim], psf, iterations=1, edges="zero", device=device)  # warm-up
    t1, _ = timed_rl(image, psf, n1, device, repeats)
    t2, peak = timed_rl(image, psf, n2, device, repeats)
    return max(t2 - t1, 0.0) / (n2 - n1) * 1000, t2, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="2-D image side, pixels")
    parser.add_argument("--psf-size", type=int, default=65, help="2-D PSF side, pixels (odd)")
    parser.add_argument("--size-3d", type=int, default=256, help="3-D volume side, voxels (0: no 3-D line)")
    parser.add_argument("--psf-size-3d", type=int, default=33, help="3-D PSF side, voxels (odd, cubic)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="cpu and/or cuda (cuda: when present)")
    parser.add_argument("--iterations-gpu", type=int, nargs=2, default=[10, 40], metavar=("N1", "N2"))
    parser.add_argument("--iterations-cpu", type=int, nargs=2, default=[2, 6], metavar=("N1", "N2"))
    parser.add_argument("--iterations-cpu-3d", type=int, nargs=2, default=[1, 3], metavar=("N1", "N2"))
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per run (best is used)")
    args = parser.parse_args(argv)

    import torch

    from decongan.engine.optics.psf import born_wolf_psf

    devices = [d for d in args.devices if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    gpu = torch.cuda.get_device_name(0) if "cuda" in devices else "none"
    print(f"RL devices: {', '.join(devices)} (GPU: {gpu}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads", flush=True)
    optics = {"na": 1.4, "ni": 1.515, "wavelength_nm": 520, "pixel_nm": 100}
    cases = [("rl2d", poisson_image((args.size,) * 2), born_wolf_psf(**optics, size=args.psf_size))]
    if args.size_3d:
        n = args.psf_size_3d
        cases.append(("rl3d", poisson_image((args.size_3d,) * 3),
                      born_wolf_psf(**optics, size=n, nz=n, z_step_nm=200)))
    for name, image, psf in cases:
        fields = {"shape": "x".join(map(str, image.shape)), "psf": "x".join(map(str, psf.shape))}
        ms: dict[str, float] = {}
        for device in devices:
            n1, n2 = (args.iterations_gpu if device == "cuda" else
                      args.iterations_cpu_3d if image.ndim == 3 else args.iterations_cpu)
            ms[device], total, peak = marginal(image, psf, device, n1, n2, args.repeats)
            fields[f"{device}_ms_per_it"] = f"{ms[device]:.3g}"
            fields[f"{device}_total_s_{n2}_it"] = f"{total:.3g}"
            if device == "cuda":
                fields["peak_gpu_mib"] = f"{peak:.1f}"
        if "cpu" in ms and "cuda" in ms and ms["cuda"] > 0:
            fields["speedup"] = f"{ms['cpu'] / ms['cuda']:.1f}"
        if "cuda" not in ms:
            fields["cuda"] = "not-measured(no-CUDA)"
        print(f"FIGURE {name} " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
