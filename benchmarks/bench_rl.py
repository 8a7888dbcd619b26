"""Richardson-Lucy speed and time to the same result: engine (plain, Biggs-Andrews) vs scikit-image vs ci-deconvolve.

    python benchmarks/bench_rl.py                        # 1024^2, 65^2 PSF, target = 50 plain iterations; 3-D 64x256^2
    python benchmarks/bench_rl.py --size 512 --skip-3d   # quicker
    PYTHONPATH=/path/to/ci_deconvolve python benchmarks/bench_rl.py   # adds ci-deconvolve where it imports

Every tool runs in its OWN fresh interpreter (``python -P``, the same input files, best of
``--repeats`` timed runs after a small warm-up), so no tool inherits another's grown heap or threads.

What it prints:

* ms/iteration of each tool on the same 2-D image (Poisson beads and filaments, Born & Wolf PSF):
  the engine with scikit-image's model (``edges="zero"``, start 0.5; outputs compared with
  scikit-image's), the engine with ``acceleration="biggs"``, ``skimage.restoration.richardson_lucy``
  (``clip=False``; its FFTs use one thread) and, when ``import core.deconvolve_ci`` works,
  ci-deconvolve's momentum-accelerated ``ci_rl_deconvolve`` (plain 2-D model, no offset, flat start,
  fixed iterations);
* TIME TO THE SAME RESULT: the iterations each tool needs to reach the Poisson log-likelihood that
  plain RL reaches in ``--target-iterations`` iterations (found untimed, by bisection), and the time of
  a run of that many iterations, as ratios against scikit-image in the same run. The likelihood is
  counted on the image interior (a PSF size away from every edge, ``poisson_log_likelihood(border=)``):
  ci-deconvolve estimates with a different boundary model, and the interior is where the models agree;
* 3-D: the engine's ms/iteration on a ``--shape-3d`` stack (zero edges) and the "4-FFT floor", the time
  of two forward and two inverse real FFTs of its padded grid with the same torch threads, as a ratio.

The engine and ci-deconvolve use torch's default CPU threads (one per core); quote ratios from one run,
not absolute times, on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOOLS = ("engine", "engine-biggs", "skimage", "ci-deconvolve")


# ---------------------------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# one tool, in the child process
# ---------------------------------------------------------------------------------------------
def run_tool(tool: str, image: np.ndarray, psf: np.ndarray, iterations: int, callback=None) -> np.ndarray:
    """``iterations`` RL iterations of ``tool`` on ``image`` (the same model wherever the tool allows)."""
    if tool in ("engine", "engine-biggs"):
        from decongan.engine.optics.deconvolution import richardson_lucy

        return richardson_lucy(image, psf, iterations=iterations, edges="zero", initial=0.5, device="cpu",
                               acceleration="biggs" if tool == "engine-biggs" else "none")
    if tool == "skimage":
        from skimage.restoration import richardson_lucy as skimage_rl

        return skimage_rl(image, psf, num_iter=iterations, clip=False)
    if tool == "ci-deconvolve":
        import logging

        from core.deconvolve_ci import ci_rl_deconvolve  # ci-deconvolve's package layout

        logging.getLogger("core").setLevel(logging.WARNING)
        # fixed iterations, no offset, flat start, plain 2-D model; its divergence check only at the end
        out = ci_rl_deconvolve(image, psf, niter=iterations, offset=0.0, start="flat", background=0.0,
                               convergence="fixed", check_every=10**9, two_d_mode="legacy_2d",
                               prefilter_sigma=0.0, device="cpu", tiling="none", iteration_callback=callback)
        return np.asarray(out["result"], dtype=np.float32)
    raise ValueError(f"unknown tool {tool!r}")


def child(args: argparse.Namespace) -> int:
    """Time ``args.child`` on the saved input: best of ``--repeats`` runs, result saved for scoring."""
    work = Path(args.workdir)
    image, psf = np.load(work / "image.npy"), np.load(work / "psf.npy")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.trace_target is not None:  # untimed: the first iteration whose estimate reaches the target
        from decongan.engine.optics.rl_acceleration import poisson_log_likelihood

        reached: list[int] = []

        class Reached(Exception):
            pass

        def callback(state: dict) -> None:
            if poisson_log_likelihood(image, state["image"], psf, border=args.border) >= args.trace_target:
                reached.append(int(state["iteration"]))
                raise Reached  # no need to run the remaining iterations

        try:
            run_tool(args.child, image, psf, args.iterations, callback=callback)
        except Reached:
            pass
        print(json.dumps({"reached": reached[0] if reached else None}))
        return 0
    run_tool(args.child, image[:128, :128], psf, 2)  # warm-up: imports, FFT plans, thread pools
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run_tool(args.child, image, psf, args.iterations)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    np.save(work / f"{args.child}_{args.iterations}.npy", np.asarray(result, dtype=np.float32))
    print(json.dumps({"seconds": best, "cpu_seconds": best_cpu, "threads": torch.get_num_threads()}))
    return 0


def child_3d(args: argparse.Namespace) -> int:
    """3-D: engine ms/iteration (zero edges) and the time of 4 real FFTs of its padded grid."""
    import torch

    from decongan.engine.optics.deconvolution import _geometry, iter_richardson_lucy
    from decongan.engine.optics.psf import gaussian_psf

    if args.threads:
        torch.set_num_threads(args.threads)

    shape = tuple(int(n) for n in args.shape_3d.split(","))
    psf_shape = tuple(int(n) for n in args.psf_3d.split(","))
    rng = np.random.default_rng(1)
    image = rng.poisson(50.0, shape).astype(np.float32)
    psf = gaussian_psf(sigma_px=2.0, size=psf_shape[1], nz=psf_shape[0], sigma_z_px=3.0, normalize="sum")
    canvas = _geometry(shape, psf, "zero").canvas
    dims = tuple(range(len(shape)))
    x = torch.rand(canvas)

    def four_ffts() -> None:
        for _ in range(2):
            torch.fft.irfftn(torch.fft.rfftn(x, dim=dims), s=canvas, dim=dims)

    clock = time.process_time if args.cpu_time else time.perf_counter

    def per_iteration() -> float:  # time iterations 2..n+1 (setup and the OTF excluded)
        events = iter_richardson_lucy(image, psf, iterations=args.iterations_3d + 1, edges="zero", initial=0.5,
                                      device="cpu")
        next(events)
        start = clock()
        for _ in range(args.iterations_3d):
            next(events)
        return (clock() - start) / args.iterations_3d

    with torch.inference_mode():
        four_ffts()
    floor, iteration = float("inf"), float("inf")
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        with torch.inference_mode():
            start = clock()
            four_ffts()
            floor = min(floor, clock() - start)
        iteration = min(iteration, per_iteration())
    print(json.dumps({"iteration": iteration, "floor": floor, "canvas": list(canvas), "psf": list(psf.shape),
                      "threads": torch.get_num_threads()}))
    return 0


# ---------------------------------------------------------------------------------------------
# the parent: inputs, one child per tool, scoring
# ---------------------------------------------------------------------------------------------
def spawn(argv: list[str], cwd: Path) -> dict:
    """Run this script as a child (``python -P``, neutral working folder) and return its JSON line."""
    done = subprocess.run([sys.executable, "-P", str(Path(__file__).resolve()), *argv], cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child {argv[:2]} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ci_available() -> bool:
    done = subprocess.run([sys.executable, "-P", "-c", "import core.deconvolve_ci"], capture_output=True,
                          cwd=tempfile.gettempdir())
    return done.returncode == 0


def iterations_to_reach(score, target: float, high: int) -> int | None:
    """Fewest iterations ``k`` in 1..``high`` with ``score(k) >= target`` (bisection; score grows with k)."""
    if score(high) < target:
        return None
    low = 0  # score(low) < target (0 iterations: the start)
    while high - low > 1:
        mid = (low + high) // 2
        if score(mid) >= target:
            high = mid
        else:
            low = mid
    return high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="2-D image side, pixels")
    parser.add_argument("--psf-size", type=int, default=65, help="2-D PSF side, pixels (odd)")
    parser.add_argument("--target-iterations", type=int, default=50,
                        help="plain RL iterations whose log-likelihood every tool must reach")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool (best is reported)")
    parser.add_argument("--shape-3d", default="64,256,256", help="3-D stack Z,Y,X")
    parser.add_argument("--psf-3d", default="33,65,65", help="3-D PSF Z,Y,X (odd)")
    parser.add_argument("--iterations-3d", type=int, default=4, help="3-D iterations timed per repeat")
    parser.add_argument("--skip-3d", action="store_true")
    parser.add_argument("--skip-ci", action="store_true", help="leave out ci-deconvolve even where it imports")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads in every child (default: torch's, one per core)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="compare CPU time (process_time) instead of wall time: steadier on a busy shared "
                             "machine, meaningful with --threads 1")
    parser.add_argument("--trace-target", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--border", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--child-3d", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.child_3d:
        return child_3d(args)

    import scipy
    import skimage
    import torch

    from decongan.engine.optics.psf import born_wolf_psf
    from decongan.engine.optics.rl_acceleration import poisson_log_likelihood

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), scikit-image {skimage.__version__}, scipy {scipy.__version__}; "
          "each tool in its own process, best of", args.repeats)
    psf = born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100, size=args.psf_size, normalize="sum")
    image = synthetic_image(args.size, psf)
    n = args.target_iterations
    tools = [t for t in TOOLS if t != "ci-deconvolve" or (not args.skip_ci and ci_available())]
    with tempfile.TemporaryDirectory(prefix="bench_rl_") as tmp:
        work = Path(tmp)
        np.save(work / "image.npy", image)
        np.save(work / "psf.npy", psf)
        border = args.psf_size

        def score(result: np.ndarray) -> float:
            return poisson_log_likelihood(image, result, psf, edges="zero", border=border)

        print(f"RL 2-D: {args.size}^2 float32, PSF {args.psf_size}^2 (Born & Wolf NA 1.4, 520 nm, 100 nm px); "
              f"target: the interior log-likelihood of plain RL after {n} iterations")
        common = ["--repeats", str(args.repeats), "--workdir", str(work), "--threads", str(args.threads)]
        key = "cpu_seconds" if args.cpu_time else "seconds"
        clock = "CPU time" if args.cpu_time else "wall time"
        timed: dict[str, dict] = {}
        for tool in tools:
            timed[tool] = spawn(["--child", tool, "--iterations", str(n), *common], work)
            timed[tool]["result"] = np.load(work / f"{tool}_{n}.npy")
        target = score(timed["engine"]["result"])
        reference = timed["skimage"]["result"]
        diff = float(np.max(np.abs(timed["engine"]["result"] - reference)) / np.max(np.abs(reference)))
        print(f"  engine vs scikit-image after {n} iterations: max |difference| / max = {diff:.1e} (same model)")
        for tool in tools:
            t = timed[tool][key]
            print(f"  {tool:<14} {t / n * 1000:7.1f} ms/iteration ({clock}, {timed[tool]['threads']} torch threads)")

        # iterations each tool needs to reach the target (untimed, in this process), then timed runs of that many
        needed: dict[str, int | None] = {"engine": n, "skimage": n}
        from decongan.engine.optics.deconvolution import richardson_lucy

        def engine_biggs(k: int) -> float:
            return score(richardson_lucy(image, psf, iterations=k, edges="zero", initial=0.5, device="cpu",
                                         acceleration="biggs"))

        if "engine-biggs" in tools:
            needed["engine-biggs"] = iterations_to_reach(engine_biggs, target, n)
        if "ci-deconvolve" in tools:
            needed["ci-deconvolve"] = spawn(["--child", "ci-deconvolve", "--iterations", str(4 * n), *common,
                                             "--trace-target", repr(target), "--border", str(border)], work)["reached"]
        to_result: dict[str, float] = {}
        for tool in tools:
            k = needed[tool]
            if k is None:
                continue
            seconds = timed[tool][key] if k == n else spawn(["--child", tool, "--iterations", str(k), *common],
                                                            work)[key]
            to_result[tool] = seconds
        print(f"  time to the same result (interior log-likelihood of {n} plain RL iterations), {clock}:")
        sk = to_result["skimage"]
        for tool in tools:
            if tool not in to_result:
                print(f"    {tool:<14} does not reach it in {4 * n if tool == 'ci-deconvolve' else n} iterations")
                continue
            print(f"    {tool:<14} {needed[tool]:4d} iterations {to_result[tool]:7.2f} s   "
                  f"{sk / to_result[tool]:5.2f}x scikit-image")
        if "ci-deconvolve" in to_result and "engine-biggs" in to_result:
            print(f"    engine-biggs vs ci-deconvolve: {to_result['ci-deconvolve'] / to_result['engine-biggs']:.2f}x")
        elif "ci-deconvolve" not in tools:
            print("    ci-deconvolve: not measured (--skip-ci, or not importable: put its wheel's folder on PYTHONPATH)")

        if not args.skip_3d:
            three = spawn(["--child-3d", "--shape-3d", args.shape_3d, "--psf-3d", args.psf_3d, "--iterations-3d",
                           str(args.iterations_3d), "--repeats", str(args.repeats), "--threads", str(args.threads),
                           *(["--cpu-time"] if args.cpu_time else [])], work)
            print(f"RL 3-D {args.shape_3d.replace(',', 'x')}, PSF {args.psf_3d.replace(',', 'x')}, zero edges, FFT grid "
                  f"{'x'.join(map(str, three['canvas']))}, {three['threads']} torch threads, {clock}: "
                  f"{three['iteration'] * 1000:.0f} ms/iteration, 4-FFT floor {three['floor'] * 1000:.0f} ms, "
                  f"ratio {three['iteration'] / three['floor']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
