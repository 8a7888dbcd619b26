"""`decongan batch`: configuration errors once, one write per restored image, a report killed and resumed,
shards (--shard K/N, --report-only) and the SLURM script (--emit-slurm)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.app.tagan_folders import NAMES, write_tagan_folders

FAST = ["--iterations", "3", "--device", "cpu", "--formats", "png", "--dpi", "72"]


@pytest.fixture()
def dataset(shared_data, tmp_path):
    """Three real confocal inputs (64x64 crops, 20 nm pixels), their STED ground truths and a Gaussian PSF."""
    return write_tagan_folders(shared_data, tmp_path, crop=64, psf_sigma_px=2.0, psf_size=15)


def _status(out):
    return json.loads((out / "manifest.json").read_text())["status"]


def _count_tiff_writes(monkeypatch) -> Counter:
    import decongan.engine.io as io

    writes: Counter = Counter()
    real = io.write_tiff

    def counting(path, *args, **kwargs):
        writes[str(path)] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(io, "write_tiff", counting)
    return writes


def test_a_configuration_error_fails_the_whole_batch_once(dataset, capsys):
    zero = dataset / "zero_psf.tif"
    write_tiff(zero, np.zeros((15, 15), np.float32))
    out = dataset / "out"
    assert main(["batch", str(dataset / "in"), "--out", str(out), "--psf", str(zero), *FAST]) == 1
    err = capsys.readouterr().err
    assert err == (f"decongan batch: error: configuration error, no image was processed: RL 3 it (engine): {zero}: "
                   "has no positive values (all zero or negative); it cannot be used as a PSF\n")
    assert not out.exists()
    assert main(["batch", str(dataset / "in"), "--out", str(out), "--na", "1.6", "--ni", "1.515",
                 "--wavelength-nm", "520", *FAST]) == 1
    err = capsys.readouterr().err
    assert err.count("must be smaller than the immersion index") == 1 and "no image was processed" in err
    assert not out.exists()
    # a broken file is still that file's problem only
    (dataset / "in" / "broken.tif").write_bytes((dataset / "in" / f"{NAMES[0]}.tif").read_bytes()[:300])
    assert main(["batch", str(dataset / "in"), "--out", str(out), "--psf", str(dataset / "psf.tif"),
                 "--no-compare", *FAST]) == 1
    captured = capsys.readouterr()
    assert "3 restored, 0 already done (skipped), 1 failed" in captured.out
    assert captured.err.count("decongan batch: failed:") == 1 and "broken.tif" in captured.err


def test_each_restored_image_is_written_once(dataset, monkeypatch, capsys):
    writes = _count_tiff_writes(monkeypatch)
    out = dataset / "out"
    assert main(["batch", str(dataset / "in"), "--out", str(out), "--gt", str(dataset / "gt"),
                 "--psf", str(dataset / "psf.tif"), *FAST]) == 0
    restored = {str(out / "restored" / "RL_3_it_engine" / f"{n}.tif") for n in NAMES}
    assert dict(writes) == dict.fromkeys(restored, 1)  # the report writes no second copy
    assert sorted(p.name for p in (out / "restored").iterdir()) == ["RL_3_it_engine"]
    assert _status(out) == "complete"
    assert "written once by the restore phase" in (out / "report.html").read_text(encoding="utf-8")


def test_a_batch_killed_in_its_report_is_incomplete_and_the_rerun_finishes_it(dataset, repo_root, monkeypatch,
                                                                             capsys):
    out = dataset / "out"
    args = ["batch", str(dataset / "in"), "--out", str(out), "--gt", str(dataset / "gt"),
            "--psf", str(dataset / "psf.tif"), *FAST]
    env = {**os.environ, "DECONGAN_BATCH_TEST_KILL_AT": "report"}
    done = subprocess.run([sys.executable, "-m", "decongan.app.cli", *args], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr  # SIGKILL
    assert "3 restored" in done.stdout
    assert _status(out) == "reporting" and not (out / "report.html").exists()
    restored = sorted((out / "restored" / "RL_3_it_engine").glob("*.tif"))
    assert [p.stem for p in restored] == list(NAMES)
    stamps = [p.stat().st_mtime_ns for p in restored]

    writes = _count_tiff_writes(monkeypatch)
    assert main(args) == 0  # the same command again
    captured = capsys.readouterr()
    assert "stopped before its report was complete; finishing it" in captured.err
    assert "0 restored, 3 already done (skipped)" in captured.out
    assert not writes and [p.stat().st_mtime_ns for p in restored] == stamps  # no restoration redone
    assert _status(out) == "complete" and (out / "report.html").is_file()
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 3 * 3  # LQ, RL, GT per image


def test_shards_and_report_only_match_one_unsharded_batch(dataset, capsys):
    common = ["--gt", str(dataset / "gt"), "--psf", str(dataset / "psf.tif"), *FAST]
    whole, sharded = dataset / "whole", dataset / "sharded"
    assert main(["batch", str(dataset / "in"), "--out", str(whole), *common]) == 0
    assert main(["batch", str(dataset / "in"), "--out", str(sharded), *common, "--report-only"]) == 1
    err = capsys.readouterr().err
    assert "3 restoration(s) are not recorded as done" in err
    assert "run the shards that hold them (or the batch without --report-only) first" in err  # the CLI's option
    assert main(["batch", str(dataset / "in"), "--out", str(sharded), *common, "--shard", "2/2"]) == 0
    assert "1 restored, 0 already done" in capsys.readouterr().out
    assert not (sharded / "metrics.csv").exists()  # a shard restores only
    assert main(["batch", str(dataset / "in"), "--out", str(sharded), *common, "--shard", "1/2"]) == 0
    assert "2 restored, 0 already done" in capsys.readouterr().out
    assert main(["batch", str(dataset / "in"), "--out", str(sharded), *common, "--shard", "1/2"]) == 0
    assert "0 restored, 2 already done" in capsys.readouterr().out  # rerunning a shard is idempotent
    assert main(["batch", str(dataset / "in"), "--out", str(sharded), *common, "--report-only"]) == 0
    assert _status(sharded) == "complete"
    for name in NAMES:
        a = read_image(whole / "restored" / "RL_3_it_engine" / f"{name}.tif")
        b = read_image(sharded / "restored" / "RL_3_it_engine" / f"{name}.tif")
        assert a.data.dtype == b.data.dtype == np.float32 and a.data.tobytes() == b.data.tobytes()
    assert (whole / "metrics.csv").read_bytes() == (sharded / "metrics.csv").read_bytes()
    assert main(["batch", str(dataset / "in"), "--out", str(sharded), *common, "--shard", "3/2"]) == 1
    assert "K must be between 1 and N" in capsys.readouterr().err


def test_emit_slurm_writes_one_array_task_per_shard_and_a_report_step(dataset, tmp_path, capsys):
    script = tmp_path / "jobs" / "batch.sh"
    out = dataset / "out"
    argv = ["batch", str(dataset / "in"), "--out", str(out), "--psf", str(dataset / "psf.tif"), *FAST,
            "--emit-slurm", str(script), "--slurm-shards", "2", "--sbatch=--time=01:00:00"]
    assert main(argv) == 0
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    runs = [line for line in text.splitlines() if " exec " in f" {line}"]
    assert [sum(f"--shard {k}/2" in line for line in runs) for k in (1, 2, 3)] == [1, 1, 0]
    assert [text.count(f"--shard {k}/2") for k in (1, 2)] == [1, 1]
    assert sum(line.endswith(" --report-only") for line in runs) == 1 and len(runs) == 3
    assert 'dependency="afterany:$array_job"' in text
    assert "--array=1-2" in text and text.count("#SBATCH --time=01:00:00") == 2
    assert all(f"--out={out}" in line and "--emit-slurm" not in line for line in runs)
    assert not out.exists()  # nothing ran
    before = script.read_bytes()
    assert main(argv) == 1  # never overwrites
    assert "the file exists" in capsys.readouterr().err and script.read_bytes() == before
    shutil.rmtree(script.parent)
    zero = dataset / "zero_psf.tif"
    write_tiff(zero, np.zeros((15, 15), np.float32))
    assert main([*argv[:4], "--psf", str(zero), *argv[6:]]) == 1
    assert "configuration error" in capsys.readouterr().err and not script.exists()
