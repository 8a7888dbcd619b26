"""`decongan tune`, and `compare` / `batch` with `--baselines tuned.json`, on small real FMD crops.

Checks: tuned.json names the calibration files with their sha256; a baseline column of compare and batch
equals the engine's baseline run directly (image bit for bit, metric to 1e-12); evaluating calibration
fields is refused naming the file (nothing written) or, with --allow-optimistic, every baseline column
carries the label; on the calibration fields compare's median reproduces the score tune recorded; a run
folder's training fields are the calibration pairs; --no-reference stops RL by the discrepancy rule.
"""

from __future__ import annotations

import csv
import json
import statistics

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine.evaluate.batch import sha256_file
from decongan.engine.evaluate.dataset import read_provenance
from decongan.engine.evaluate.discrepancy import discrepancy_spec
from decongan.engine.io import read_image, write_tiff
from decongan.engine.metrics.reference import reference_metrics
from decongan.engine.optics.classical import BaselineSpec, restore_image
from tests.fmd_pairs import write_fmd_pairs

CALIBRATION = ("fov01", "fov02", "fov03")
EVALUATED = ("fov05", "fov06")


@pytest.fixture
def fmd(shared_data, tmp_path):
    cal = write_fmd_pairs(shared_data, tmp_path / "cal", start=160, size=96, names=CALIBRATION)
    ev = write_fmd_pairs(shared_data, tmp_path / "ev", start=160, size=96, names=EVALUATED)
    yy, xx = np.mgrid[-4:5, -4:5]
    psf = np.exp(-(yy ** 2 + xx ** 2) / 2.0)
    write_tiff(tmp_path / "psf.tif", (psf / psf.sum()).astype(np.float32), dtype="float32")
    return tmp_path, cal, ev


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # compare and batch reports (10-30 s on 2 busy cores)
def test_tune_then_compare_and_batch_run_the_tuned_baselines(fmd, capsys):
    root, (cal_lq, cal_gt), (ev_lq, ev_gt) = fmd
    tuned = root / "tuned.json"
    assert main(["tune", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--baselines", "gaussian,rl",
                 "--grid", "gaussian:sigma_px=1,2,3", "--grid", "rl:iterations=1,3", "--psf", str(root / "psf.tif"),
                 "--out", str(tuned)]) == 0
    assert "calibration: 3 pair(s): fov01, fov02, fov03" in capsys.readouterr().out
    data = json.loads(tuned.read_text())
    assert [(c["name"], c["lq_sha256"]) for c in data["calibration"]] == [
        (n, sha256_file(cal_lq / f"{n}.tif")) for n in CALIBRATION]
    assert data["psf"]["psf_sha256"] == sha256_file(root / "psf.tif")
    gaussian, rl = data["baselines"]
    assert [p["parameters"]["sigma_px"] for p in gaussian["grid"]] == [1, 2, 3]
    assert gaussian["score"] == max(p["median"] for p in gaussian["grid"])
    sigma = gaussian["parameters"]["sigma_px"]
    # an existing tuned.json is never replaced without --overwrite
    assert main(["tune", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--out", str(tuned)]) == 1
    assert "exists" in capsys.readouterr().err

    out = root / "cmp"
    assert main(["compare", "--lq-dir", str(ev_lq), "--gt-dir", str(ev_gt), "--baselines", str(tuned),
                 "--psf", str(root / "psf.tif"), "--no-noref", "--formats", "png", "--out", str(out)]) == 0
    column = f"Gaussian sigma_px={sigma:g}"
    rows = {(r["image"], r["method"]): r for r in _rows(out / "metrics.csv")}
    spec = BaselineSpec("gaussian", {"sigma_px": sigma})
    for name in EVALUATED:
        direct = restore_image(spec, read_image(ev_lq / f"{name}.tif")).image.data
        expected = reference_metrics(prediction=direct, reference=read_image(ev_gt / f"{name}.tif").data)["ssim"]
        assert float(rows[(name, column)]["ssim"]) == pytest.approx(expected, abs=1e-12)
    assert (EVALUATED[0], f"RL iterations={rl['parameters']['iterations']}") in rows

    batch_out = root / "batch"
    assert main(["batch", str(ev_lq), "--gt", str(ev_gt), "--decon", "none", "--baselines", str(tuned),
                 "--psf", str(root / "psf.tif"), "--formats", "png", "--out", str(batch_out)]) == 0
    restored = batch_out / "restored" / f"Gaussian_sigma_px_{sigma:g}" / f"{EVALUATED[1]}.tif"
    direct = restore_image(spec, read_image(ev_lq / f"{EVALUATED[1]}.tif")).image.data
    np.testing.assert_array_equal(read_image(restored).data, direct)
    provenance = read_provenance(restored)
    assert provenance.parameters["baseline"]["parameters"] == {"sigma_px": sigma}
    assert provenance.parameters["tuning"]["calibration"] == list(CALIBRATION)
    assert provenance.parameters["tuning"]["sha256"] == sha256_file(tuned)


@pytest.mark.slow  # compare and batch reports (10-30 s on 2 busy cores)
def test_compare_refuses_calibration_fields_or_labels_them_optimistic(fmd, capsys):
    root, (cal_lq, cal_gt), _ = fmd
    tuned = root / "tuned.json"
    assert main(["tune", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--baselines", "gaussian,tv",
                 "--grid", "gaussian:sigma_px=1,2", "--grid", "tv:weight_sigma=1,4", "--out", str(tuned)]) == 0
    scores = {b["name"]: b["score"] for b in json.loads(tuned.read_text())["baselines"]}
    capsys.readouterr()
    out = root / "cmp"
    args = ["compare", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--baselines", str(tuned), "--no-noref",
            "--formats", "png", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{cal_lq / 'fov01.tif'} (calibration field fov01)" in err and "--allow-optimistic" in err
    assert not out.exists()

    assert main([*args, "--allow-optimistic"]) == 0
    label = "(optimistic: tuned on the evaluated fields)"
    methods = {r["method"] for r in _rows(out / "metrics.csv")}
    assert {f"{name} {label}" for name in scores} <= methods
    report = (out / "report.html").read_text()
    assert "Gaussian sigma_px=" in report and label in report
    # on its own calibration fields compare reproduces the median score tune recorded
    for name, score in scores.items():
        ssims = [float(r["ssim"]) for r in _rows(out / "metrics.csv") if r["method"] == f"{name} {label}"]
        assert statistics.median(ssims) == pytest.approx(score, abs=1e-12)

    # a split of one folder: tuned on fov01 and fov03, the comparison leaves them out and evaluates fov02
    split = root / "split.json"
    assert main(["tune", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--names", "fov01,fov03",
                 "--baselines", "gaussian", "--grid", "gaussian:sigma_px=1,2", "--out", str(split)]) == 0
    out = root / "cmp_split"
    assert main(["compare", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--baselines", str(split),
                 "--skip-calibration-fields", "--no-noref", "--formats", "png", "--out", str(out)]) == 0
    assert {r["image"] for r in _rows(out / "metrics.csv")} == {"fov02"}
    assert f"fov03.tif: calibration field fov03 of {split}" in (out / "report.html").read_text()
    batch_out = root / "batch_split"
    assert main(["batch", str(cal_lq), "--decon", "none", "--baselines", str(split), "--skip-calibration-fields",
                 "--no-compare", "--out", str(batch_out)]) == 0
    assert sorted(p.name for p in (batch_out / "restored").rglob("*.tif")) == ["fov02.tif"]


def test_tune_on_a_run_folders_training_fields(fmd, capsys):
    from decongan.engine.learn.checkpoint import DataInfo, RunConfig
    from decongan.engine.learn.normalization import NormalizationConfig

    root, (cal_lq, cal_gt), _ = fmd
    run = root / "run"
    run.mkdir()
    config = RunConfig(preset_name="s1", preset={}, paired=True, normalization=NormalizationConfig(),
                       data=DataInfo(lq_dir=str(cal_lq), hq_dir=str(cal_gt), train_names=["fov01", "fov03"],
                                     val_names=["fov02"]))
    (run / "config.json").write_text(config.model_dump_json())
    tuned = root / "tuned.json"
    assert main(["tune", "--run", str(run), "--baselines", "gaussian", "--grid", "gaussian:sigma_px=1,2",
                 "--out", str(tuned)]) == 0
    data = json.loads(tuned.read_text())
    assert [c["name"] for c in data["calibration"]] == ["fov01", "fov03"]
    assert any("validation fields fov02 left out" in n for n in data["notes"])
    capsys.readouterr()
    assert main(["tune", "--baselines", "rl", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt),
                 "--out", str(root / "x.json")]) == 1
    assert "need the PSF of the LQ system" in capsys.readouterr().err


def test_no_reference_tuning_stops_rl_by_the_discrepancy_rule(fmd):
    root, _, (ev_lq, ev_gt) = fmd
    tuned = root / "tuned.json"
    assert main(["tune", "--no-reference", "--baselines", "gaussian,rl", "--psf", str(root / "psf.tif"),
                 "--out", str(tuned)]) == 0
    data = json.loads(tuned.read_text())
    assert [(b["name"], b["source"]) for b in data["baselines"]] == [
        ("Gaussian sigma_px=1 (default)", "default"), ("RL (discrepancy stop)", "discrepancy")]
    out = root / "batch"
    assert main(["batch", str(ev_lq), "--decon", "none", "--baselines", str(tuned), "--psf", str(root / "psf.tif"),
                 "--no-compare", "--out", str(out)]) == 0
    restored = out / "restored" / "RL_discrepancy_stop" / f"{EVALUATED[0]}.tif"
    record = read_provenance(restored).parameters["tuning"]["discrepancy"]
    image = read_image(ev_lq / f"{EVALUATED[0]}.tif")
    spec, expected = discrepancy_spec(BaselineSpec("rl"), image, read_image(root / "psf.tif").data)
    assert record["iterations"] == expected["iterations"] == spec.parameters["iterations"]
    np.testing.assert_array_equal(read_image(restored).data,
                                  restore_image(spec, image, read_image(root / "psf.tif").data).image.data)
