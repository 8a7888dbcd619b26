"""Refusals before any computation: existing outputs, outputs inside inputs, unwritable folders,
negative input to RL, LQ/GT of different sizes; and Unicode output names that never collide silently."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine import outputs
from decongan.engine.io import read_image, write_tiff

PSF = ["psf", "--model", "gaussian", "--fwhm-nm", "300", "--pixel-nm", "100", "--size", "9"]


@pytest.fixture
def psf_file(tmp_path):
    path = tmp_path / "psf.tif"
    assert main([*PSF, "--out", str(path)]) == 0
    return path


def _untouched(path: Path):
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    return lambda: (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_psf_deconvolve_register_refuse_an_existing_out_and_leave_it_untouched(tmp_path, psf_file, capsys):
    existing = tmp_path / "existing.tif"
    existing.write_bytes(b"earlier result")
    same = _untouched(existing)
    image = tmp_path / "img.tif"
    write_tiff(image, np.random.default_rng(0).uniform(0, 100, (24, 24)).astype(np.float32))
    capsys.readouterr()
    for argv in ([*PSF, "--out", str(existing)],
                 ["deconvolve", str(image), "--psf", str(psf_file), "-n", "1", "--out", str(existing)],
                 ["register", str(image), str(image), "--transform", "translation", "--out", str(existing)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"--out {existing} exists; choose another name or pass --overwrite to replace it" in err, err
        assert same()
    assert main([*PSF, "--out", str(existing), "--overwrite"]) == 0
    assert read_image(existing).data.shape == (9, 9)


def test_read_only_out_folder_refused_before_computation(tmp_path, psf_file, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # tests run as root, where chmod 0o555 does not stop writes: the permission answer is simulated
    monkeypatch.setattr(outputs.os, "access", lambda p, m: False if Path(p) == locked else real_access(p, m))
    import decongan.engine.optics.deconvolution as deconvolution

    def no_rl(*args, **kwargs):  # pragma: no cover - reached only when the check comes too late
        raise AssertionError("deconvolution started although the output folder is not writable")

    monkeypatch.setattr(deconvolution, "iter_deconvolve_image", no_rl)
    image = tmp_path / "img.tif"
    write_tiff(image, np.ones((16, 16), np.float32))
    assert main(["deconvolve", str(image), "--psf", str(psf_file), "--out", str(locked / "d.tif")]) == 1
    err = capsys.readouterr().err
    assert f"{locked} is not writable, so --out d.tif cannot be written there" in err
    assert "unexpected" not in err and not any(locked.iterdir())


def test_deconvolve_refuses_negative_input_and_offset_auto_matches_the_shifted_image(tmp_path, psf_file, capsys):
    rng = np.random.default_rng(1)
    data = rng.uniform(-50, 1005, (24, 24)).astype(np.float32)
    negative = tmp_path / "negative.tif"
    write_tiff(negative, data)
    out = tmp_path / "d.tif"
    assert main(["deconvolve", str(negative), "--psf", str(psf_file), "-n", "3", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{negative}: has negative values (minimum {float(data.min()):g}" in err
    assert "--offset VALUE, or --offset auto" in err and not out.exists()

    assert main(["deconvolve", str(negative), "--psf", str(psf_file), "-n", "3", "--offset", "auto",
                 "--out", str(out)]) == 0
    shifted = tmp_path / "shifted.tif"
    write_tiff(shifted, (data.astype(np.float64) - float(data.min())).astype(np.float32))
    ref = tmp_path / "ref.tif"
    assert main(["deconvolve", str(shifted), "--psf", str(psf_file), "-n", "3", "--out", str(ref)]) == 0
    np.testing.assert_array_equal(read_image(out).data, read_image(ref).data)
    import tifffile

    with tifffile.TiffFile(out) as tif:
        provenance = json.loads(tif.imagej_metadata["Info"])
    assert provenance["parameters"]["offset"] == {"requested": "auto", "subtracted": float(data.min())}


def _pair(tmp_path, lq_shape, gt_shape):
    rng = np.random.default_rng(2)
    lq, gt = tmp_path / "lq.tif", tmp_path / "gt.tif"
    write_tiff(lq, rng.uniform(0, 100, lq_shape).astype(np.float32))
    write_tiff(gt, rng.uniform(0, 100, gt_shape).astype(np.float32))
    return lq, gt


def test_compare_refuses_lq_and_gt_of_different_sizes_unless_resample(tmp_path, capsys):
    lq, gt = _pair(tmp_path, (128, 128), (100, 90))
    base = ["compare", "--lq", str(lq), "--gt", str(gt), "--no-noref", "--formats", "png", "--consistency", "off"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert f"the LQ input {lq} is 128 x 128 px (Y x X) but the ground truth {gt} is 100 x 90 px" in err
    assert "SSIM" not in capsys.readouterr().out


def test_compare_refuses_an_out_inside_the_input_folder_or_holding_results(tmp_path, capsys):
    lq_dir = tmp_path / "lq"
    lq_dir.mkdir()
    write_tiff(lq_dir / "a.tif", np.ones((16, 16), np.float32))
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    write_tiff(gt_dir / "a.tif", np.ones((16, 16), np.float32))
    base = ["compare", "--lq-dir", str(lq_dir), "--gt-dir", str(gt_dir)]
    for out in (lq_dir, lq_dir / "results"):
        assert main([*base, "--out", str(out)]) == 1
        assert "input folder" in capsys.readouterr().err
    assert sorted(p.name for p in lq_dir.iterdir()) == ["a.tif"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.html").write_text("earlier")
    same = _untouched(old / "report.html")
    assert main([*base, "--out", str(old)]) == 1
    assert f"--out {old} already holds files (earlier results?)" in capsys.readouterr().err
    assert same()


def test_batch_refuses_the_input_folder_and_another_batch_but_resumes_its_own(tmp_path, capsys):
    from decongan.app.commands import CommandError
    from decongan.app.commands.batch import check_batch_out

    inputs = tmp_path / "in"
    inputs.mkdir()
    write_tiff(inputs / "a.tif", np.ones((16, 16), np.float32))
    assert main(["batch", str(inputs), "--out", str(inputs / "res"), "--decon", "none", "--gt", str(inputs)]) == 1
    assert "lies inside the input folder" in capsys.readouterr().err
    own = tmp_path / "own"
    own.mkdir()
    (own / "manifest.json").write_text(json.dumps({"format": "decongan-batch-manifest", "version": 1, "entries": {
        "a.tif::RL": {"input": str(inputs / "a.tif"), "status": "done"}}}))
    check_batch_out(own, inputs, gt_dir=None, overwrite=False)  # the same batch resumes
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"format": "decongan-batch-manifest", "version": 1, "entries": {
        "b.tif::RL": {"input": str(tmp_path / "elsewhere" / "b.tif"), "status": "done"}}}))
    with pytest.raises(CommandError, match="holds the results of another batch"):
        check_batch_out(other, inputs, gt_dir=None, overwrite=False)
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "notes.txt").write_text("mine")
    with pytest.raises(outputs.OutputError, match="already holds files"):
        check_batch_out(unknown, inputs, gt_dir=None, overwrite=False)
    check_batch_out(unknown, inputs, gt_dir=None, overwrite=True)


def test_restored_names_keep_unicode_and_collisions_are_errors(tmp_path):
    from decongan.engine.evaluate.report import restored_file_name

    a = restored_file_name(tmp_path, "Kern 日本", "RL 5 it (engine)")
    b = restored_file_name(tmp_path, "Kern 中国", "RL 5 it (engine)")
    assert a.name == "Kern 日本__RL_5_it_engine.tif" and b.name == "Kern 中国__RL_5_it_engine.tif"
    outputs.check_distinct([("Kern 日本.tif", a), ("Kern 中国.tif", b)])
    with pytest.raises(outputs.OutputError, match="would both be written to"):
        outputs.check_distinct([("x/Kern.tif", tmp_path / "Kern_s1.tif"), ("y/Kern.tif", tmp_path / "Kern_s1.tif")])


def test_batch_refuses_negative_input_naming_it_and_its_offset_matches_deconvolve(tmp_path, psf_file, capsys,
                                                                                  monkeypatch):
    import decongan.engine.optics.deconvolution as deconvolution

    folder = tmp_path / "in"
    folder.mkdir()
    data = np.random.default_rng(3).uniform(-50, 1005, (24, 24)).astype(np.float32)
    negative = write_tiff(folder / "negative.tif", data)

    def no_rl(*args, **kwargs):  # pragma: no cover - reached only when the refusal comes too late
        raise AssertionError("Richardson-Lucy started on an image with negative values")

    monkeypatch.setattr(deconvolution, "_iter_rl_checked", no_rl)
    out = tmp_path / "refused"
    assert main(["batch", str(folder), "--psf", str(psf_file), "-n", "3", "--device", "cpu", "--no-compare",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{negative}: has negative values (minimum {float(data.min()):g}" in err
    assert "--offset VALUE, or --offset auto" in err and "AssertionError" not in err
    assert not list(out.glob("restored/*/*.tif"))
    monkeypatch.undo()

    batch_out = tmp_path / "B"
    assert main(["batch", str(folder), "--psf", str(psf_file), "-n", "3", "--device", "cpu", "--no-compare",
                 "--offset", "auto", "--out", str(batch_out)]) == 0
    single = tmp_path / "A.tif"
    assert main(["deconvolve", str(negative), "--psf", str(psf_file), "-n", "3", "--device", "cpu",
                 "--offset", "auto", "--out", str(single)]) == 0
    (restored,) = batch_out.glob("restored/*/negative.tif")
    a, b = read_image(single).data, read_image(restored).data
    assert float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(a))) <= 1e-6
    manifest = json.loads((batch_out / "manifest.json").read_text())
    (entry,) = manifest["entries"].values()
    assert entry["parameters"]["offset"] == "auto"
    assert entry["provenance"]["parameters"]["offset"] == {"requested": "auto", "subtracted": float(data.min())}
