"""Registration benchmark: accuracy on the Fiji goldens, real multi-scale scans, and run time.

Run from the repository root::

    .venv/bin/python benchmarks/bench_registration.py [--repeats 3]

Times are the median of ``--repeats`` calls on this machine, also given as a ratio to a reference
measured in the same run: scikit-image's ``phase_cross_correlation`` (upsample_factor=100) on the
same 256x256 pair, i.e. the cost of a translation-only estimate without refinement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from decongan.engine.optics.registration import Transform2D, register  # noqa: E402

SHARED = REPO.parent / "shared"
GOLDEN = SHARED / "golden" / "fiji"
SCANS = SHARED / "data" / "srcaco2_confocal_multiscale_scans"
TRUTH = [[14.3475687398, 0.9986295348, -0.0523359562], [-10.7481001022, 0.0523359562, 0.9986295348]]


def timed(function, repeats: int):
    """Median wall seconds, median CPU seconds of this process, last return value."""
    walls, cpus, value = [], [], None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        value = function()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    TIMES["cpu"] = statistics.median(cpus)
    return statistics.median(walls), value


TIMES: dict[str, float] = {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from skimage.registration import phase_cross_correlation

    moving = tifffile.imread(GOLDEN / "reg_moving_rot3deg_shift7.5_-4.25_256.tif").astype(np.float32)
    fixed = tifffile.imread(GOLDEN / "reg_target_256.tif").astype(np.float32)
    truth = Transform2D.from_turboreg_matrix(TRUTH, kind="rigid", fixed_shape=fixed.shape, moving_shape=moving.shape)
    register(moving=moving, fixed=fixed, transform="rigid")  # warm-up: imports
    ref_s, _ = timed(lambda: phase_cross_correlation(fixed, moving, upsample_factor=100), args.repeats)
    print(f"reference: skimage phase_cross_correlation 256x256 (upsample 100): {ref_s * 1000:.1f} ms "
          f"(CPU {TIMES['cpu'] * 1000:.1f} ms)")
    print("golden pair (3 deg, shift (7.5, -4.25) px), 256x256:")
    for kind in ("translation", "rigid", "similarity", "affine"):
        seconds, result = timed(lambda kind=kind: register(moving=moving, fixed=fixed, transform=kind), args.repeats)
        t = result.transform
        print(f"  {kind:11s} {seconds:6.2f} s (CPU {TIMES['cpu']:5.2f} s, {seconds / ref_s:5.1f}x ref)  angle err {t.angle_deg - 3.0:+.5f} deg  "
              f"max displacement err {t.max_displacement_error(truth):.4f} px  shift ({t.shift_px[0]:.3f}, "
              f"{t.shift_px[1]:.3f})  NCC {result.ncc_before:.4f} -> {result.ncc_after:.4f}")
    hq = tifffile.imread(SCANS / "hq/caco2_nuclei_x1.tif")
    print("SR-CACO-2 scans onto the x1 scan (512x512), similarity, no pixel sizes:")
    for factor in (2, 4, 8):
        lq = tifffile.imread(SCANS / f"lq/caco2_nuclei_x{factor}.tif")
        seconds, result = timed(lambda lq=lq: register(moving=lq, fixed=hq, transform="similarity"), args.repeats)
        t = result.transform
        print(f"  x{factor} ({lq.shape[0]}^2) {seconds:6.2f} s (CPU {TIMES['cpu']:5.2f} s, {seconds / ref_s:5.1f}x ref)  scale {t.scale:.5f}  "
              f"angle {t.angle_deg:+.4f} deg  shift ({t.shift_px[0]:+.3f}, {t.shift_px[1]:+.3f}) LR px  "
              f"NCC {result.ncc_before:.4f} -> {result.ncc_after:.4f} (gain {result.ncc_gain:+.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
