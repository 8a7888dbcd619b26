"""benchmarks/gpu_check.sh --cpu-smoke: the GPU check runs end to end on the CPU at tiny sizes and prints
every figure line (the same script, steps and parsing as on a CUDA machine, where the sizes are full)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIGURES = ["cuda_tests", "rl2d", "rl3d"] + [f"infer_s{i}_{kind}" for i in range(1, 6) for kind in ("fp32", "amp")] \
    + ["train_s1", "train_s2"]


@pytest.mark.slow  # ~20-70 s on 2 shared cores: one nested pytest and two benchmark processes
def test_gpu_check_cpu_smoke_prints_every_figure(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu-smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    names = [line.split()[1] for line in lines if line.startswith("FIGURE ")]
    assert names == FIGURES
    figure = {line.split()[1]: dict(kv.split("=", 1) for kv in line.split()[2:]) for line in lines
              if line.startswith("FIGURE ")}
    # the CUDA tests were found and, without CUDA, skipped (none failed); the numbers are numbers
    assert figure["cuda_tests"]["skipped"] != "0" and figure["cuda_tests"]["failed"] == "0"
    assert figure["rl2d"]["cuda"] == "not-measured(no-CUDA)" and float(figure["rl3d"]["cpu_ms_per_it"]) >= 0
    for name in FIGURES[3:]:
        rate = figure[name].get("mp_per_s") or figure[name]["it_per_s"]
        assert float(rate) > 0 and figure[name]["peak_gpu_mib"] == "n/a(CPU)"
    assert figure["infer_s1_amp"]["amp"] == "bf16" and figure["infer_s1_fp32"]["amp"] == "off"
    assert re.fullmatch(r"gpu_check: cpu-smoke, 15 figures in \d+ s, all steps passed \(logs in .*\)", lines[-1])


@pytest.mark.slow  # ~10 s: torch is imported twice
def test_gpu_check_refuses_a_machine_without_cuda_and_bad_options(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    script = str(REPO / "benchmarks" / "gpu_check.sh")
    bad = subprocess.run(["bash", script, "--fast"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr == "usage: bash benchmarks/gpu_check.sh [--cpu-smoke]\n"
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the full check would run")
    none = subprocess.run(["bash", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert none.returncode == 2 and "torch sees no CUDA device here; run 'bash benchmarks/gpu_check.sh --cpu-smoke'" \
        in none.stderr and none.stdout == ""
