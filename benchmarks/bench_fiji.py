"""Fiji bridge benchmark: worker start-up and array transfer with Debian's ImageJ 1.x.

Run: ``.venv/bin/python benchmarks/bench_fiji.py [--repeats N] [--display auto|xvfb|headless]``

Measures
--------
* cold start: the first worker of this run (Python, Xvfb when used, JVM, ImageJ init) until Ready;
* warm start: later starts (operating-system caches warm), median of ``--starts``;
* ping: an empty request's round trip;
* round trip of a 2048x2048 float32 image: caller -> ImageJ FloatProcessor -> caller, exact,
  median of ``--repeats``, with the worker's own share;
* reference measured in the same run: writing + reading the same 16 MB through the transfer
  folder in this process (the part of the transfer that no bridge can avoid), so the ratio is
  comparable between machines.

Targets (issue 4): warm start <= 2 s, 2048x2048 float32 round trip <= 100 ms. The machine's load
average is printed: on a shared 2-core machine under load the numbers are several times slower.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decongan.imagej_bridge import FijiClient  # noqa: E402
from decongan.imagej_bridge.arrays import read_array, write_array  # noqa: E402
from decongan.imagej_bridge.discovery import discover  # noqa: E402
from decongan.imagej_bridge.protocol import Echo  # noqa: E402


def load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="round trips to time")
    parser.add_argument("--starts", type=int, default=3, help="worker starts to time")
    parser.add_argument("--display", default="auto", choices=["auto", "xvfb", "desktop", "headless"])
    args = parser.parse_args()
    backend = next((b for b in discover(probe_network=False).candidates if b.kind == "imagej1" and b.usable), None)
    if backend is None:
        print("no usable ImageJ 1.x jar (install Debian's libij-java and a JDK)")
        return 1
    print(f"backend: {backend.label}; load average {load()}")

    client = FijiClient(backend, display=args.display)
    ready = []
    for _ in range(max(2, args.starts)):
        info = client.restart() if ready else client.start()
        ready.append(info["ready_s"])
    print(f"display mode: {info['display']} (headless JVM: {info['headless']}); ImageJ {info['imagej_version']}, "
          f"Java {info['java_version']}")
    print(f"cold start: {ready[0]:.2f} s; warm start (median of {len(ready) - 1}): {statistics.median(ready[1:]):.2f} s "
          f"(worker's JVM+ImageJ share {info['start_s']:.2f} s); target <= 2 s")

    pings = [client.ping() for _ in range(20)]
    print(f"ping: {1000 * statistics.median(pings):.2f} ms")

    image = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    client.echo({"warm-up": image})
    totals, worker_share, exact = [], [], True
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        refs = {"a": write_array(client.transfer_dir, image)}
        reply = client.request(Echo(refs))
        back = read_array(reply.images["a"])
        totals.append(time.perf_counter() - t0)
        Path(refs["a"].path).unlink(missing_ok=True)
        worker_share.append(reply.values["elapsed_s"])
        exact &= bool(np.array_equal(back.data, image))
    reference = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ref = write_array(client.transfer_dir, image)
        read_array(ref)
        reference.append(time.perf_counter() - t0)
    rt, ref_s = statistics.median(totals), statistics.median(reference)
    print(f"2048x2048 float32 round trip: {1000 * rt:.1f} ms median (min {1000 * min(totals):.1f} ms; worker "
          f"{1000 * statistics.median(worker_share):.1f} ms), exact: {exact}; target <= 100 ms")
    print(f"reference (write + read 16 MB in the transfer folder, this process): {1000 * ref_s:.1f} ms; "
          f"ratio {rt / ref_s:.1f}x")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
