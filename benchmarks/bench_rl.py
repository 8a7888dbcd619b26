"""Richardson-Lucy speed: DeconGAN's engine vs scikit-image, same input, same boundary, same run.

    python benchmarks/bench_rl.py                 # 2048 x 2048, 65 x 65 PSF, 20 iterations (~1-2 min on 2 cores)
    python benchmarks/bench_rl.py --size 1024 --iterations 10 --skip-modes

What it prints (one machine, one run, so the ratios are fair):

* scikit-image ``richardson_lucy(image, psf, num_iter, clip=False)`` on the CPU (float32 input, so
  it computes in float32), and the engine with the *same* model: ``edges="zero"`` (linear
  convolution, object zero outside the image) and ``initial=0.5`` (scikit-image's start). Both
  outputs are compared (max |difference| / max |scikit-image|) and the speed ratio is printed.
* the engine's other edge modes on the CPU ("circular" = DeconvolutionLab2, "padded" = Bertero-
  Boccacci), for information;
* the same on CUDA when torch sees a GPU (time includes the copies to and from the GPU);
* the time to generate a 65 x 65 x 33 Born & Wolf PSF (PSF Generator's sampling).

Timings are the best of ``--repeats`` runs after a small warm-up. The engine is timed with 1 CPU
thread and with torch's default (one per core); scikit-image's FFTs use one thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_image(size: int, psf: np.ndarray, *, seed: int = 20240607) -> np.ndarray:
    """Beads and short filaments, blurred (circularly) with ``psf``, Poisson noise, float32 photons."""
    from decongan.engine.optics.fft_conv import convolve_circular

    rng = np.random.default_rng(seed)
    obj = np.zeros((size, size), dtype=np.float32)
    n_beads = size * size // 400
    obj[rng.integers(0, size, n_beads), rng.integers(0, size, n_beads)] = rng.uniform(200, 1000, n_beads)
    for _ in range(size // 8):  # straight filaments
        y0, x0 = rng.uniform(0, size, 2)
        angle = rng.uniform(0, np.pi)
        t = np.arange(rng.integers(20, 200))
        ys = np.clip((y0 + t * np.sin(angle)).astype(int), 0, size - 1)
        xs = np.clip((x0 + t * np.cos(angle)).astype(int), 0, size - 1)
        obj[ys, xs] += 150.0
    blurred = convolve_circular(obj, psf, placement="centred") + 10.0
    return rng.poisson(np.maximum(blurred, 0)).astype(np.float32)


def best_time(function, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="image side, pixels")
    parser.add_argument("--psf-size", type=int, default=65, help="PSF side, pixels (odd)")
    parser.add_argument("--iterations", type=int, default=20, help="RL iterations")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats (best is reported)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: time 1 thread and torch's default)")
    parser.add_argument("--skip-modes", action="store_true", help="skip the engine's circular/padded lines")
    parser.add_argument("--skip-skimage", action="store_true", help="skip scikit-image (no ratio then)")
    args = parser.parse_args(argv)

    import scipy
    import skimage
    import torch
    from skimage.restoration import richardson_lucy as skimage_rl

    from decongan.engine.optics.deconvolution import richardson_lucy
    from decongan.engine.optics.psf import born_wolf_psf

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}; torch {torch.__version__}, scikit-image {skimage.__version__}, scipy {scipy.__version__}")
    psf = born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100, size=args.psf_size, normalize="sum")
    image = synthetic_image(args.size, psf)
    n = args.iterations
    print(f"RL: image {args.size} x {args.size} float32, PSF {args.psf_size} x {args.psf_size} (Born & Wolf, "
          f"NA 1.4, 520 nm, 100 nm pixels), {n} iterations")

    # warm-up (FFT plans, thread pools, lazy imports)
    richardson_lucy(image[:256, :256], psf, iterations=2, edges="zero", initial=0.5, device="cpu")

    # torch's CPU threads: the default (one per core) is best on an idle machine; on a shared, busy
    # one its OpenMP threads spin-wait and one thread can be faster, so both are timed
    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads}) if not args.threads else [default_threads]
    timings: dict[int, float] = {}
    ours = None
    for threads in thread_counts:
        torch.set_num_threads(threads)
        timings[threads], ours = best_time(lambda: richardson_lucy(image, psf, iterations=n, edges="zero", initial=0.5,
                                                                   device="cpu"), args.repeats)
        t = timings[threads]
        print(f"  engine  CPU   edges=zero, start 0.5, {threads} thread(s): {t:8.2f} s  ({t / n * 1000:6.1f} ms/iteration)")
    best_threads = min(timings, key=timings.get)
    torch.set_num_threads(best_threads)
    if not args.skip_skimage:
        sk_t, reference = best_time(lambda: skimage_rl(image, psf, num_iter=n, clip=False), args.repeats)
        diff = float(np.max(np.abs(np.asarray(ours) - reference)) / np.max(np.abs(reference)))
        print(f"  skimage CPU   richardson_lucy (1 thread)  : {sk_t:8.2f} s  ({sk_t / n * 1000:6.1f} ms/iteration)")
        print(f"  outputs: max |engine - skimage| / max |skimage| = {diff:.2e}")
        for threads, t in timings.items():
            print(f"  speed-up skimage / engine (CPU, {threads} thread(s)): {sk_t / t:6.2f} x")
    if not args.skip_modes:
        for edges, initial in (("circular", "input"), ("padded", "input")):
            t, _ = best_time(lambda e=edges, i=initial: richardson_lucy(image, psf, iterations=n, edges=e, initial=i,
                                                                        device="cpu"), args.repeats)
            print(f"  engine  CPU   edges={edges:<8}, {best_threads} thread(s)  : {t:8.2f} s  ({t / n * 1000:6.1f} ms/iteration)")
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        richardson_lucy(image[:256, :256], psf, iterations=2, edges="zero", initial=0.5, device="cuda")

        def on_gpu(edges: str, initial: object) -> np.ndarray:
            result = richardson_lucy(image, psf, iterations=n, edges=edges, initial=initial, device="cuda")
            torch.cuda.synchronize()
            return result

        gpu_t, gpu = best_time(lambda: on_gpu("zero", 0.5), max(args.repeats, 3))
        diff = float(np.max(np.abs(np.asarray(gpu) - np.asarray(ours))) / np.max(np.abs(np.asarray(ours))))
        print(f"  engine  CUDA  edges=zero ({name}): {gpu_t:8.3f} s  ({gpu_t / n * 1000:6.2f} ms/iteration), "
              f"max rel diff to CPU {diff:.1e}")
        if not args.skip_skimage:
            print(f"  speed-up skimage (CPU) / engine (CUDA): {sk_t / gpu_t:8.1f} x")
        for edges in ("circular", "padded"):
            t, _ = best_time(lambda e=edges: on_gpu(e, "input"), max(args.repeats, 3))
            print(f"  engine  CUDA  edges={edges:<8}        : {t:8.3f} s  ({t / n * 1000:6.2f} ms/iteration)")
    else:
        print("  CUDA: not available on this machine (torch.cuda.is_available() is False)")

    bw_t, volume = best_time(lambda: born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=159, size=65,
                                                   nz=33, z_step_nm=200), 3)
    print(f"Born & Wolf PSF 65 x 65 x 33 (NA 1.4, 520 nm, 159/200 nm): {bw_t * 1000:.1f} ms "
          f"(shape {tuple(np.asarray(volume).shape)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
