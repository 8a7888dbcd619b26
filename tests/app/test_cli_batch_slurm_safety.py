"""The jobs of `decongan batch --emit-slurm` start Python as the window's children do: -P, a neutral folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np

from decongan.app.cli import main
from decongan.engine.io import write_tiff
from decongan.engine.optics.psf import gaussian_psf


def test_slurm_jobs_use_the_safe_path_flag_and_a_neutral_folder(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for name in ("a", "b"):
        write_tiff(folder / f"{name}.tif", rng.uniform(10, 100, (24, 24)).astype(np.float32), pixel_size_um=0.1)
    psf = write_tiff(tmp_path / "psf.tif", gaussian_psf(fwhm_nm=300, pixel_nm=100, size=9, normalize="sum"),
                     pixel_size_um=0.1)
    script, out = tmp_path / "batch.sh", tmp_path / "out"
    assert main(["batch", str(folder), "--out", str(out), "--psf", str(psf), "-n", "2", "--device", "cpu",
                 "--no-compare", "--emit-slurm", str(script), "--slurm-shards", "2"]) == 0
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    python = [line for line in text.splitlines() if "decongan.app.cli" in line]
    assert len(python) == 3  # two shards and the report
    flags = " -P -m decongan.app.cli batch " if sys.version_info >= (3, 11) else " -m decongan.app.cli batch "
    assert all(flags in line and f"{sys.executable}{flags}" in line for line in python), python
    neutral = 'cd "$(mktemp -d "${TMPDIR:-/tmp}/decongan-job.XXXXXX")"  # neutral working folder'
    assert text.count(neutral) == 2  # the array job and the report job, each before it starts Python
    for body in re.findall(r"<<'(DECONGAN_\w+)'\n(.*?)\n\1\n", text, flags=re.S):
        lines = body[1].splitlines()
        assert lines.index(neutral) < next(i for i, line in enumerate(lines) if "decongan.app.cli" in line)

    # the array job, run as SLURM would (task 1) from a folder whose modules would shadow DeconGAN's
    trap = tmp_path / "submitted_from"
    for package in ("decongan", "app", "engine"):
        (trap / package).mkdir(parents=True)
        (trap / package / "__init__.py").write_text("raise SystemExit('imported from the working folder')\n")
    (array_body,) = [b for name, b in re.findall(r"<<'(DECONGAN_\w+)'\n(.*?)\n\1\n", text, flags=re.S)
                     if name == "DECONGAN_ARRAY"]
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", "-c", array_body], cwd=trap, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "manifest.shard-1-of-2.json").is_file()
    assert sorted(os.listdir(trap)) == ["app", "decongan", "engine"]  # nothing written where sbatch was called
    assert [p.name for p in tmp_path.glob("decongan-job.*")]  # it ran in its own folder
