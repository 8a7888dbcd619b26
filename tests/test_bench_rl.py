"""benchmarks/bench_rl.py: every tool in its own process, time to the same result against scikit-image."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_rl", REPO / "benchmarks" / "bench_rl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_iterations_to_reach_finds_the_first_iteration_at_the_target():
    bench = _bench()
    calls: list[int] = []

    def score(k: int) -> float:  # a likelihood that climbs with k
        calls.append(k)
        return -100.0 / (k + 1)

    for first in (1, 2, 17, 49, 50):
        calls.clear()
        assert bench.iterations_to_reach(score, -100.0 / (first + 1), 50) == first
        assert len(calls) <= 7  # bisection, not a scan
    assert bench.iterations_to_reach(score, 0.0, 50) is None


@pytest.mark.slow  # 30-100 s on 2 shared cores (95 s under load 17): six fresh interpreters
def test_bench_rl_runs_each_tool_in_its_own_process_and_prints_the_ratios(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_rl.py"), "--size", "96", "--psf-size", "9",
                           "--target-iterations", "8", "--repeats", "1", "--shape-3d", "8,32,32", "--psf-3d", "5,9,9",
                           "--iterations-3d", "2", "--skip-ci", "--threads", "1", "--cpu-time"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the engine with scikit-image's model gives scikit-image's result
    diff = float(re.search(r"max \|difference\| / max = (\S+) \(same model\)", out).group(1))
    assert diff < 1e-5
    rows = dict(re.findall(r"^\s+(engine-biggs|engine|skimage)\s+(\d+) iterations", out, re.MULTILINE))
    assert rows["engine"] == rows["skimage"] == "8" and 1 <= int(rows["engine-biggs"]) <= 8
    assert re.search(r"skimage\s+8 iterations\s+\S+ s\s+1\.00x scikit-image", out)
    assert re.search(r"RL 3-D 8x32x32, PSF 5x9x9, zero edges, FFT grid \S+, 1 torch threads, CPU time: \d+ ms/iteration, "
                     r"4-FFT floor \d+ ms, ratio \d+\.\d\d", out)
    assert "ci-deconvolve" not in out.split("time to the same result")[0]
