"""``decongan train``, ``predict`` and ``export-model`` end to end on real FMD images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
import torch

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from decongan.engine.learn.checkpoint import load_exported, load_generator
from tests.fmd_pairs import FMD, TINY_S1_CLI, write_fmd_pairs

SMALL = TINY_S1_CLI


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folders(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_train")
    write_fmd_pairs(shared_data, root, start=160, size=128)
    return root


@pytest.fixture(scope="module")
def trained(folders):
    out = folders / "run"
    argv = ["train", "--preset", "s1", "--lq", str(folders / "lq"), "--hq", str(folders / "hq"), "--out", str(out),
            "--iterations", "4", "--val-every", "2", "--log-every", "1", "--val-names", "fov03", *SMALL]
    return argv, out


def test_train_prints_json_lines_and_writes_a_run_folder(trained, capsys):
    argv, out = trained
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    train_lines = [r for r in lines if "loss_g" in r]
    assert [r["iteration"] for r in train_lines] == [1, 2, 3, 4]
    assert all("eta_s" in r and r["total"] == 4 for r in train_lines)
    validation = [r for r in lines if "val_ssim" in r]
    assert [r["iteration"] for r in validation] == [2, 4] and all("lq_ssim" in r for r in validation)
    assert lines[-1]["event"] == "done" and lines[-1]["iterations"] == 4
    assert (out / "best" / "generator.safetensors").is_file() and (out / "checkpoints" / "last" / "state.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["pixel_size_um"] == pytest.approx(0.2) and config["preset"]["generator"]["kwargs"]["depth"] == 2


def test_existing_out_is_refused_without_resume_and_resume_extends(trained, capsys):
    argv, out = trained
    if not (out / "config.json").exists():
        assert main(argv) == 0
    assert main(argv) == 1
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--iterations", "5", "--device", "cpu", "--threads", "1"]) == 0
    assert json.loads((out / "checkpoints" / "last" / "state.json").read_text())["iteration"] == 5


def test_predict_writes_calibrated_float32_and_reports_bad_files(trained, folders, shared_data, tmp_path, capsys):
    argv, out = trained
    if not (out / "config.json").exists():
        assert main(argv) == 0
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 this is not a tiff")
    stack = tmp_path / "stack.tif"
    planes = read_image(shared_data / FMD / "lq" / "fov05.png").data[:96, :80].astype(np.uint16) * 200  # 16-bit
    write_tiff(stack, np.stack([planes, planes[::-1]]), axes="ZYX", pixel_size_um=0.2, z_step_um=0.5, dtype="uint16")
    dest = tmp_path / "pred"
    code = main(["predict", str(out), str(stack), str(bad), str(folders / "lq" / "fov03.tif"), "--out", str(dest),
                 "--tile", "64", "--overlap", "32", "--device", "cpu", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.tif: error:" in captured.err and "1 of 3 input(s) failed" in captured.err
    restored = read_image(dest / "stack_s1.tif")
    assert restored.axes == "ZYX" and restored.data.shape == (2, 96, 80) and restored.data.dtype == np.float32
    assert restored.pixel_size_um == pytest.approx(0.2) and restored.z_step_um == pytest.approx(0.5)
    with tifffile.TiffFile(dest / "stack_s1.tif") as tif:
        provenance = json.loads(tif.imagej_metadata["Info"])
    assert provenance["method"] == "S1 GAN" and provenance["parameters"]["tile"] == 64
    assert (dest / "fov03_s1.tif").is_file()
    # never overwrite: a second run refuses the existing outputs
    assert main(["predict", str(out), str(folders / "lq" / "fov03.tif"), "--out", str(dest), "--device", "cpu"]) == 1
    assert "exists" in capsys.readouterr().err


def test_export_model_matches_the_trained_generator(trained, tmp_path, capsys):
    argv, out = trained
    if not (out / "config.json").exists():
        assert main(argv) == 0
    target = tmp_path / "model.pt"
    assert main(["export-model", str(out), "--out", str(target)]) == 0
    module, info = load_exported(target)
    assert info["scale"] == 1 and info["normalization"]["mode"] == "dataset"
    assert json.loads(target.with_suffix(".json").read_text())["export"]["preset"] == "s1"
    generator, _ = load_generator(out)
    x = torch.rand(1, 1, 45, 70)  # not a multiple of the stride
    with torch.no_grad():
        np.testing.assert_allclose(module(x).numpy(), generator(x).numpy(), atol=1e-5)
    assert main(["export-model", str(out), "--out", str(target)]) == 1
    assert "exists" in capsys.readouterr().err


def test_width_argument_and_bad_options_are_explained(folders, tmp_path, capsys):
    code = main(["train", "--preset", "s9", "--lq", str(folders / "lq"), "--hq", str(folders / "hq"),
                 "--out", str(tmp_path / "x"), "--width", "4"])
    assert code == 1 and "unknown preset 's9'" in capsys.readouterr().err
    code = main(["train", "--preset", "s1", "--hq", str(folders / "hq"), "--out", str(tmp_path / "y")])
    assert code == 1 and "give the LQ folder" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(folders, tmp_path, repo_root):
    out = tmp_path / "interrupted"
    argv = [sys.executable, "-m", "decongan.app.cli", "train", "--preset", "s1", "--lq", str(folders / "lq"),
            "--hq", str(folders / "hq"), "--out", str(out), "--iterations", "100000", "--val-every", "100000",
            "--log-every", "1", *SMALL]
    process = subprocess.Popen(argv, cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    for line in process.stdout:  # wait until training is under way
        if '"loss_g"' in line and json.loads(line)["iteration"] >= 2 or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "checkpoint saved" in err
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] >= 2
    assert os.path.isfile(out / "checkpoints" / "last" / "g.safetensors")
