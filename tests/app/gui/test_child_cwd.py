"""GUI children (decongan train/batch/...) never import from the window's working directory (issue 10)."""

from __future__ import annotations

import os
import sys

import numpy as np
import tifffile

from decongan.app.gui.process_job import (
    ProcessJob,
    absolute_path_arguments,
    decongan_command,
    neutral_cwd,
)
from tests.poisoned_cwd import make_poisoned_folder


def test_relative_path_arguments_become_absolute_and_others_stay(tmp_path):
    args = ["train", "--preset", "s1", "--lq", "data/lq", "--hq=data/hq", "--out", "/abs/run", "--val-names", "a", "b",
            "--resume", "--iterations", "5", "--pretrained", "w.pth"]
    assert absolute_path_arguments(args, tmp_path) == [
        "train", "--preset", "s1", "--lq", str(tmp_path / "data/lq"), f"--hq={tmp_path / 'data/hq'}", "--out", "/abs/run",
        "--val-names", "a", "b", "--resume", "--iterations", "5", "--pretrained", str(tmp_path / "w.pth")]
    # batch: the input folder is a positional
    assert absolute_path_arguments(["batch", "in", "--out", "o", "--json-progress"], tmp_path) == [
        "batch", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--json-progress"]


def test_a_decongan_child_runs_from_a_folder_that_shadows_the_packages(qtbot, tmp_path, monkeypatch):
    folder = make_poisoned_folder(tmp_path / "poisoned")
    monkeypatch.chdir(folder)
    argv = decongan_command("psf", "--model", "gaussian", "--fwhm-nm", "300", "--pixel-nm", "100", "--size", "15",
                            "--out", "psf.tif")
    if sys.version_info >= (3, 11):
        assert argv[1] == "-P"
    job = ProcessJob("PSF", argv)
    assert job.process.workingDirectory() == neutral_cwd() != os.getcwd()
    assert str(folder / "psf.tif") in job.argv  # made absolute against the window's working directory
    with qtbot.waitSignal(job.finished, timeout=60_000) as blocker:
        job.start()
    assert blocker.args == [0, "succeeded"], "\n".join(job.stderr_tail)
    psf = tifffile.imread(folder / "psf.tif")  # written where the user meant, not in the neutral folder
    assert psf.shape == (15, 15) and np.argmax(psf) == 7 * 15 + 7
    assert os.listdir(neutral_cwd()) == []
    assert job.command_line.startswith("decongan psf ")
