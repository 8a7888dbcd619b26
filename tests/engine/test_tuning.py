"""Tuning without peeking (engine/evaluate/tuning.py): grid search on calibration pairs, tuned.json,
calibration overlap, and the no-reference discrepancy rule for RL.

Known truths: pairs made from real FMD averages (``obj``) with GT = gaussian_filter(obj, 1.5) and LQ = obj
(noiseless: the best Gaussian sigma is exactly 1.5, SSIM 1) or LQ = Poisson(obj) (the best sigma lies within
one grid step of 1.5). RL's tuned iteration count equals the argmax computed by hand with the engine's RL
and the report's metric.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from decongan.engine.evaluate.batch import sha256_file
from decongan.engine.evaluate.discrepancy import chi2_per_pixel, discrepancy_iterations
from decongan.engine.evaluate.tuning import (
    TuningError,
    calibration_overlap,
    calibration_pairs,
    default_tuning,
    load_tuned,
    tune,
)
from decongan.engine.io import read_image, write_tiff
from decongan.engine.metrics.reference import reference_metrics
from decongan.engine.optics.classical import BASELINES, BaselineSpec
from decongan.engine.optics.deconvolution import richardson_lucy
from decongan.engine.optics.request import DEFAULT_SETTINGS
from tests.fmd_pairs import FMD

FIELDS = ("fov01", "fov02", "fov03")


def _objects(shared_data: Path, size: int = 96) -> dict[str, np.ndarray]:
    out = {}
    for name in FIELDS:
        hq = read_image(shared_data / FMD / "hq" / f"{name}.png").data.astype(np.float64)
        y, x = np.unravel_index(np.argmax(gaussian_filter(hq, 8)), hq.shape)  # a crop around nuclei
        y0, x0 = (int(np.clip(c - size // 2, 0, n - size)) for c, n in zip((y, x), hq.shape, strict=True))
        out[name] = hq[y0:y0 + size, x0:x0 + size] * 4.0  # ~photons
    return out


def _write_pairs(root: Path, lq: dict[str, np.ndarray], gt: dict[str, np.ndarray]) -> tuple[Path, Path]:
    for name in lq:
        write_tiff(root / "lq" / f"{name}.tif", lq[name].astype(np.float32), dtype="float32")
        write_tiff(root / "gt" / f"{name}.tif", gt[name].astype(np.float32), dtype="float32")
    return root / "lq", root / "gt"


@pytest.fixture
def blurred_truth_pairs(shared_data, tmp_path):
    objects = _objects(shared_data)
    rng = np.random.default_rng(0)
    gt = {n: gaussian_filter(o, 1.5) for n, o in objects.items()}
    clean = _write_pairs(tmp_path / "clean", objects, gt)
    noisy = _write_pairs(tmp_path / "noisy", {n: rng.poisson(o).astype(np.float64) for n, o in objects.items()}, gt)
    return clean, noisy


def test_tune_picks_the_known_gaussian_sigma_and_records_everything(blurred_truth_pairs, tmp_path):
    (clean_lq, clean_gt), (noisy_lq, noisy_gt) = blurred_truth_pairs
    pairs = calibration_pairs(clean_lq, clean_gt)
    result = tune(pairs, ["gaussian"])
    best = result.baselines[0]
    assert best.spec.parameters["sigma_px"] == 1.5 and best.score == pytest.approx(1.0, abs=1e-6)
    assert result.notes == []  # 1.5 lies inside the grid
    edge = tune(pairs, ["gaussian"], grids={"gaussian": {"sigma_px": (0.5, 1.0)}})
    assert edge.notes == ["gaussian: sigma_px=1 is at the edge of the values tried (0.5 to 1); the best value may "
                          "lie beyond it: widen that parameter's grid"]

    noisy = tune(calibration_pairs(noisy_lq, noisy_gt), ["gaussian"], metric="ssim")
    grid = BASELINES["gaussian"].parameter("sigma_px").grid
    chosen = noisy.baselines[0].spec.parameters["sigma_px"]
    assert abs(grid.index(chosen) - grid.index(1.5)) <= 1

    path = noisy.write(tmp_path / "tuned.json")
    data = json.loads(path.read_text())
    assert data["format"] == "decongan-tuned-baselines" and data["metric"] == "ssim" and data["aggregate"] == "median"
    assert [c["name"] for c in data["calibration"]] == list(FIELDS)
    for entry in data["calibration"]:
        assert entry["lq_sha256"] == sha256_file(entry["lq"]) and entry["gt_sha256"] == sha256_file(entry["gt"])
    (baseline,) = data["baselines"]
    assert baseline["method"] == "gaussian" and baseline["source"] == "calibration"
    assert baseline["units"] == {"sigma_px": "px"}
    assert [p["parameters"]["sigma_px"] for p in baseline["grid"]] == list(grid)
    for point in baseline["grid"]:
        assert len(point["scores"]) == 3 and point["median"] == statistics.median(point["scores"])
    assert baseline["score"] == max(p["median"] for p in baseline["grid"])
    # each score is the report's metric of the engine's Gaussian, recomputed by hand
    lq = read_image(noisy_lq / "fov02.tif").data
    gt = read_image(noisy_gt / "fov02.tif").data
    smoothed = gaussian_filter(lq.astype(np.float64), 2.0).astype(np.float32)
    by_hand = reference_metrics(prediction=smoothed, reference=gt)["ssim"]
    assert baseline["grid"][grid.index(2.0)]["scores"][1] == pytest.approx(by_hand, abs=1e-12)
    # never replaced silently; loads back
    with pytest.raises(Exception, match="exists"):
        noisy.write(path)
    loaded = load_tuned(path)
    assert loaded.baselines[0].spec == noisy.baselines[0].spec and loaded.pairs == noisy.pairs


def test_tuned_rl_iterations_are_the_by_hand_argmax(shared_data, tmp_path):
    objects = _objects(shared_data, size=64)
    yy, xx = np.mgrid[-6:7, -6:7]
    psf = np.exp(-(yy ** 2 + xx ** 2) / (2 * 1.6 ** 2))
    psf /= psf.sum()
    rng = np.random.default_rng(1)
    lq = {n: rng.poisson(fftconvolve(o, psf, mode="same").clip(0)).astype(np.float64) for n, o in objects.items()}
    lq_dir, gt_dir = _write_pairs(tmp_path, lq, objects)
    grid = (1, 3, 10, 20)
    result = tune(calibration_pairs(lq_dir, gt_dir), ["rl"], psf_for=lambda image: psf, grids={"rl": {"iterations": grid}},
                  metric="psnr")
    medians = []
    for k in grid:
        options = {**DEFAULT_SETTINGS.as_options(), "iterations": k}
        scores = [reference_metrics(prediction=richardson_lucy(read_image(lq_dir / f"{n}.tif").data, psf, **options),
                                    reference=read_image(gt_dir / f"{n}.tif").data)["psnr"] for n in FIELDS]
        medians.append(statistics.median(scores))
    assert result.baselines[0].spec.parameters["iterations"] == grid[int(np.argmax(medians))]
    assert [p.median for p in result.baselines[0].grid] == pytest.approx(medians, abs=1e-9)


def test_calibration_overlap_is_by_content_and_names_are_checked(blurred_truth_pairs, tmp_path):
    (lq_dir, gt_dir), _ = blurred_truth_pairs
    result = tune(calibration_pairs(lq_dir, gt_dir, names=["fov01", "fov03"]), ["gaussian"],
                  grids={"gaussian": {"sigma_px": (1.0, 1.5)}})
    assert [p.name for p in result.pairs] == ["fov01", "fov03"]
    renamed = tmp_path / "elsewhere" / "renamed.tif"
    renamed.parent.mkdir()
    shutil.copy(lq_dir / "fov03.tif", renamed)
    overlap = calibration_overlap(result, [renamed, lq_dir / "fov02.tif"])
    assert overlap == [(renamed, "fov03")]
    with pytest.raises(TuningError, match="fov09 have no LQ/GT pair"):
        calibration_pairs(lq_dir, gt_dir, names=["fov09"])
    with pytest.raises(TuningError, match="need the PSF of the LQ system"):
        tune(result.pairs, ["rl"])


def test_edge_note_is_not_given_at_the_parameters_own_limit():
    from decongan.engine.evaluate.tuning import GridPoint, _edge_notes

    grid = [GridPoint({"iterations": 1}, [0.9]), GridPoint({"iterations": 5}, [0.8])]
    assert _edge_notes("rl", grid, grid[0]) == []  # 1 iteration: there is nothing below it to try
    assert _edge_notes("rl", grid[::-1], grid[1])[0].startswith("rl: iterations=5 is at the edge")


def test_load_tuned_refuses_other_files_naming_them(tmp_path):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"format": "something"}))
    with pytest.raises(TuningError, match="other.json: not a tuned-baselines file"):
        load_tuned(bad)
    with pytest.raises(TuningError, match="missing.json: file not found"):
        load_tuned(tmp_path / "missing.json")


def test_discrepancy_rule_stops_at_the_first_count_with_chi2_at_most_one():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:128, :128]
    obj = np.full((128, 128), 5.0)
    for _ in range(25):
        cy, cx = rng.uniform(10, 118, 2)
        obj += rng.uniform(50, 300) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 1.2 ** 2))
    k = np.mgrid[-8:9, -8:9]
    psf = np.exp(-(k[0] ** 2 + k[1] ** 2) / (2 * 2.0 ** 2))
    psf /= psf.sum()
    counts = rng.poisson(fftconvolve(obj, psf, mode="same").clip(0)).astype(np.float64)
    found = discrepancy_iterations(counts, psf)
    assert found.reached and 1 < found.iterations < 50
    tried = list(found.chi2_per_pixel)
    assert found.iterations == tried[-1] and found.chi2_per_pixel[tried[-1]] <= 1.0
    assert all(found.chi2_per_pixel[t] > 1.0 for t in tried[:-1])
    assert found.gain == pytest.approx(1.0, rel=0.15)  # photon counts: gain 1
    # the true object fits the data to chi^2 ~ 1 under the estimated model
    assert chi2_per_pixel(counts, obj, psf, found.gain, found.read_variance) == pytest.approx(1.0, abs=0.1)
    # the rule does not depend on the intensity scale (camera gain 4: variance 4x, 16x)
    scaled = discrepancy_iterations(counts * 4.0, psf)
    assert scaled.iterations == found.iterations and scaled.gain == pytest.approx(4 * found.gain, rel=1e-4)
    # an intensity offset (negative fitted intercept) must not let dark pixels dominate chi^2: the misfit
    # stays that of the data (RL itself runs differently on offset data, so the count may differ)
    shifted = discrepancy_iterations(counts + 20.0, psf)
    assert shifted.read_variance < 0 and shifted.reached and shifted.iterations <= 20
    assert shifted.chi2_per_pixel[1] == pytest.approx(found.chi2_per_pixel[1], rel=0.05)


def test_default_tuning_labels_what_was_not_tuned():
    result = default_tuning(["gaussian", "rl", "wiener"])
    labels = [b.label for b in result.baselines]
    assert labels == ["Gaussian sigma_px=1 (default)", "RL (discrepancy stop)", "Wiener wiener_lambda=0.01 (default)"]
    data = result.as_dict()
    assert data["calibration"] == [] and data["baselines"][1]["rule"]["iterations"] == "discrepancy"
    assert BaselineSpec.from_dict(data["baselines"][0]) == BaselineSpec("gaussian")
