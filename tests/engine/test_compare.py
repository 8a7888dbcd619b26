"""Comparison sets, evaluation with one normalisation policy, metric tables and folder matching (real data)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from scipy import ndimage

from decongan.engine.evaluate.compare import (
    GT_NAME,
    LQ_NAME,
    ComparisonError,
    MetricTable,
    build_comparison_set,
    evaluate_set,
)
from decongan.engine.evaluate.dataset import match_dataset, read_restored
from decongan.engine.evaluate.stats import compare_groups
from decongan.engine.io import MicroscopyImage, read_image, write_tiff
from decongan.engine.metrics.reference import normalize_pair, reference_metrics
from decongan.engine.provenance import Provenance, Restored

TAGAN = "tagan_confocal_vs_sted"


def _pair(shared_data, name: str, crop: int = 160) -> tuple[MicroscopyImage, MicroscopyImage]:
    lq = read_image(shared_data / TAGAN / "lq" / f"{name}.tif")
    gt = read_image(shared_data / TAGAN / "hq" / f"{name}.tif")
    return lq.with_data(lq.data[:crop, :crop]), gt.with_data(gt.data[:crop, :crop])


def _smooth(image: MicroscopyImage, sigma: float = 1.5) -> Restored:
    data = ndimage.gaussian_filter(image.data.astype(np.float32), sigma)
    return Restored(data, Provenance(method=f"Gaussian {sigma}", backend="test", parameters={"sigma": sigma}))


def test_set_orders_columns_and_scores_the_input_like_a_method(shared_data):
    lq, gt = _pair(shared_data, "dendritic_factin_train804")
    cset = build_comparison_set("d804", lq, gt=gt, restored={"smooth": _smooth(lq)})
    assert [c.name for c in cset.columns] == [LQ_NAME, "smooth", GT_NAME]
    assert [c.role for c in cset.columns] == ["input", "restored", "reference"]
    ev = evaluate_set(cset, consistency_psf=None)  # identity forward model
    rows = {r["method"]: r for r in ev.rows}
    # the same policy for every method: the LQ row is exactly reference_metrics(LQ, GT)
    expected = reference_metrics(prediction=lq.data.astype(np.float32), reference=gt.data.astype(np.float32))
    for key in ("mse", "nrmse", "psnr", "ssim"):
        assert rows[LQ_NAME][key] == pytest.approx(expected[key], rel=1e-6)
        assert rows[GT_NAME][key] is None
    # no-reference metrics are given for the input and the ground truth too
    for method in (LQ_NAME, "smooth", GT_NAME):
        assert rows[method]["snr"] is not None and rows[method]["cuf"] is not None
    # error maps on the common normalised scale
    pred_n, gt_n, _ = normalize_pair(prediction=cset.volume("smooth"), reference=cset.volume(GT_NAME))
    np.testing.assert_allclose(ev.error_maps[("smooth", 0)], np.abs(pred_n - gt_n), atol=1e-6)
    # consistency for restorations and GT, not for the input itself
    assert ("smooth", 0) in ev.consistency and (GT_NAME, 0) in ev.consistency and (LQ_NAME, 0) not in ev.consistency
    assert rows["smooth"]["dc_rsp"] > 0.9
    assert rows[LQ_NAME].get("dc_rsp") is None


def test_ground_truth_registration_recovers_a_known_shift_and_crops_everything(shared_data):
    lq, gt = _pair(shared_data, "axonal_rings_test0", crop=224)
    base = build_comparison_set("rings", lq, gt=gt, register_gt="translation").registration["shift_px"]
    shifted = ndimage.shift(gt.data.astype(np.float32), (3.0, -5.0), order=3, mode="nearest")  # (y, x)
    cset = build_comparison_set("rings", lq, gt=gt.with_data(shifted), restored={"smooth": _smooth(lq)},
                                register_gt="translation")
    sx, sy = cset.registration["shift_px"]
    # the STED/confocal pair has its own small offset; the planted shift adds on top of it
    assert sx - base[0] == pytest.approx(-5.0, abs=0.2)
    assert sy - base[1] == pytest.approx(3.0, abs=0.2)
    assert cset.registration["quality"]["ncc_after"] > cset.registration["quality"]["ncc_before"]
    shapes = {c.data.shape for c in cset.columns}
    assert len(shapes) == 1 and cset.lq_native.shape == next(iter(shapes))  # every column cropped alike
    assert cset.yx_shape[0] <= 224 - 2 and cset.yx_shape[1] <= 224 - 5
    assert "registered" in cset.notes[0]


def test_bad_inputs_are_named(shared_data):
    lq, gt = _pair(shared_data, "axonal_rings_train0")
    stack = MicroscopyImage(np.zeros((3, 20, 20), np.float32), "ZYX")
    with pytest.raises(ComparisonError, match="axes ZYX"):
        build_comparison_set("x", lq, gt=stack)
    with pytest.raises(ComparisonError, match="reserved"):
        build_comparison_set("x", lq, restored={GT_NAME: _smooth(lq)})


def test_restoration_on_a_finer_grid_is_resampled_and_noted(shared_data):
    lq, gt = _pair(shared_data, "axonal_rings_train0", crop=100)
    fine = np.kron(lq.data.astype(np.float32), np.ones((2, 2), np.float32))
    cset = build_comparison_set("x2", lq, gt=gt, restored={"x2": (lq.with_data(fine), Provenance(method="x2"))})
    assert cset.column("x2").data.shape == (100, 100)
    # the block mean of np.kron(lq, ones((2, 2))) is lq itself: integer shrinking is exact
    np.testing.assert_allclose(cset.column("x2").data, lq.data.astype(np.float32), rtol=0, atol=1e-7)
    assert any("resampled" in n for n in cset.notes)


def test_lq_and_gt_of_different_sizes_refused_unless_resample_is_asked(tmp_path):
    rng = np.random.default_rng(5)
    lq = MicroscopyImage(rng.uniform(0, 100, (128, 128)).astype(np.float32), "YX", path=tmp_path / "lq.tif")
    gt = MicroscopyImage(rng.uniform(0, 100, (100, 90)).astype(np.float32), "YX", path=tmp_path / "gt.tif")
    with pytest.raises(ComparisonError) as err:
        build_comparison_set("f", lq, gt=gt)
    message = str(err.value)
    assert f"the LQ input {tmp_path / 'lq.tif'} is 128 x 128 px (Y x X)" in message
    assert f"the ground truth {tmp_path / 'gt.tif'} is 100 x 90 px" in message
    cset = build_comparison_set("f", lq, gt=gt, resample=True)
    assert cset.yx_shape == (100, 90)
    assert any("resampled onto the ground-truth grid (100, 90) (resampling asked for)" in n for n in cset.notes)


def test_metric_table_csv_json_summary_and_statistics(shared_data, tmp_path):
    evaluations = []
    for name in ("axonal_rings_test0", "axonal_rings_train0", "dendritic_factin_train804"):
        lq, gt = _pair(shared_data, name, crop=128)
        cset = build_comparison_set(name, lq, gt=gt, restored={"smooth": _smooth(lq)})
        evaluations.append(evaluate_set(cset, consistency=False, no_reference=False))
    table = MetricTable.from_evaluations(evaluations)
    assert table.methods == [LQ_NAME, "smooth", GT_NAME]
    assert table.metrics == ["mse", "nrmse", "psnr", "ssim"]
    path = table.write_csv(tmp_path / "m.csv")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9 and rows[0]["image"] == "axonal_rings_test0"
    for written, row in zip(rows, table.rows, strict=True):
        assert written["method"] == row["method"]
        if row["ssim"] is None:
            assert written["ssim"] == ""
        else:
            assert float(written["ssim"]) == row["ssim"]  # full precision
    payload = json.loads(table.write_json(tmp_path / "m.json").read_text())
    assert payload["rows"][1]["ssim"] == table.rows[1]["ssim"]
    summary = table.summary()
    ssims = [r["ssim"] for r in table.rows if r["method"] == "smooth"]
    assert summary["smooth"]["ssim"].median == pytest.approx(float(np.median(ssims)))
    stats = table.statistics("ssim")
    direct = compare_groups({m: table.values("ssim", m) for m in (LQ_NAME, "smooth")}, metric="ssim")
    assert stats.groups == [LQ_NAME, "smooth"]  # the GT has no reference metrics
    assert stats.kruskal.pvalue == pytest.approx(direct.kruskal.pvalue)


def test_match_dataset_by_name_and_reports_missing_files(shared_data, tmp_path):
    for sub in ("lq", "gt", "rl"):
        (tmp_path / sub).mkdir()
    for name in ("axonal_rings_test0", "axonal_rings_train0", "dendritic_factin_train804"):
        shutil.copy(shared_data / TAGAN / "lq" / f"{name}.tif", tmp_path / "lq")
        shutil.copy(shared_data / TAGAN / "hq" / f"{name}.tif", tmp_path / "gt")
    for name in ("axonal_rings_test0", "axonal_rings_train0"):
        shutil.copy(shared_data / TAGAN / "lq" / f"{name}.tif", tmp_path / "rl")
    fields, skipped = match_dataset(tmp_path / "lq", gt_dir=tmp_path / "gt", method_dirs={"RL": tmp_path / "rl"})
    assert [f.name for f in fields] == ["axonal_rings_test0", "axonal_rings_train0"]
    assert len(skipped) == 1 and "dendritic_factin_train804" in skipped[0] and "RL" in skipped[0]
    (tmp_path / "other").mkdir()
    shutil.copy(shared_data / TAGAN / "lq" / "axonal_rings_test0.tif", tmp_path / "other" / "renamed.tif")
    with pytest.raises(ComparisonError, match="no LQ image"):
        match_dataset(tmp_path / "lq", method_dirs={"RL": tmp_path / "other"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ComparisonError, match="holds no images"):
        match_dataset(tmp_path / "lq", gt_dir=tmp_path / "empty")


def test_provenance_round_trips_through_a_restored_tiff(tmp_path):
    prov = Provenance(method="RL 7 it", backend="engine/cpu", parameters={"iterations": 7})
    path = write_tiff(tmp_path / "r.tif", np.ones((16, 16), np.float32), pixel_size_um=0.1,
                      description=prov.model_dump_json())
    image, read_back = read_restored(path, name="RL")
    assert read_back.method == "RL 7 it" and read_back.parameters["iterations"] == 7
    assert image.pixel_size_um == pytest.approx(0.1)
    plain = write_tiff(tmp_path / "p.tif", np.ones((16, 16), np.float32))
    assert read_restored(plain, name="mine")[1].method == "mine"


def test_stack_uses_the_reference_brightest_plane(shared_data):
    lq = read_image(shared_data / "neubias_widefield_vs_confocal_3d" / "lq" / "nucleus_widefield.tif")
    gt = read_image(shared_data / "neubias_widefield_vs_confocal_3d" / "hq" / "nucleus_confocal.tif")
    cset = build_comparison_set("nucleus", lq, gt=gt)
    means = gt.data.reshape(gt.data.shape[0], -1).mean(axis=1)
    assert cset.focus_plane() == int(np.argmax(means))
    np.testing.assert_array_equal(cset.plane(GT_NAME), gt.data[cset.focus_plane()].astype(np.float32))
