"""Figures: panel counts, shared contrast, line profiles, scale bars, box-plot brackets, files and dpi."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from decongan.engine.evaluate.compare import GT_NAME, LQ_NAME, MetricTable, build_comparison_set, evaluate_set
from decongan.engine.evaluate.figures import (
    boxplot_figure,
    comparison_figure,
    consistency_figure,
    default_line,
    error_map_figure,
    line_profile,
    merge_channels,
    nice_length,
    save_figure,
    scale_bar_spec,
)
from decongan.engine.io import read_image
from decongan.engine.metrics.reference import normalize_pair
from decongan.engine.provenance import Provenance, Restored

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"


@pytest.fixture(scope="module")
def evaluations(shared_data):
    out = []
    for name in ("fov02", "fov05", "fov06"):
        lq = read_image(shared_data / FMD / "lq" / f"{name}.png", pixel_size_um=0.1)
        gt = read_image(shared_data / FMD / "hq" / f"{name}.png", pixel_size_um=0.1)
        lq, gt = lq.with_data(lq.data[:144, :144]), gt.with_data(gt.data[:144, :144])
        smooth = ndimage.gaussian_filter(lq.data.astype(np.float32), 1.5)
        cset = build_comparison_set(name, lq, gt=gt, restored={
            "smooth": Restored(smooth, Provenance(method="Gaussian 1.5", backend="test"))})
        out.append(evaluate_set(cset, consistency_psf=None, no_reference=False))
    return out


def _panels(fig, label="panel"):
    return [ax for ax in fig.figure.axes if ax.get_label() == label]


def test_comparison_panels_share_one_display_range_per_row(evaluations, tmp_path):
    cf = comparison_figure(evaluations, contrast="shared")
    panels = _panels(cf)
    assert cf.panels == len(panels) == 3 * 3  # 3 fields x (LQ, smooth, GT)
    assert len(_panels(cf, "profile")) == 3
    row = panels[:3]
    limits = {ax.images[0].get_clim() for ax in row}
    assert len(limits) == 1  # one display range for the row
    cset = evaluations[0].cset
    pred_n, _, _ = normalize_pair(prediction=cset.plane("smooth"), reference=cset.plane(GT_NAME))
    np.testing.assert_allclose(row[1].images[0].get_array(), pred_n, atol=1e-6)  # matched to the GT
    assert "SSIM" in row[0].get_xlabel() and "PSNR" in row[0].get_xlabel()
    assert "Contrast: every image was gain/offset-matched" in cf.caption
    per = comparison_figure(evaluations, contrast="per-panel")
    assert len({ax.images[0].get_clim() for ax in _panels(per)[:3]}) == 3
    paths = save_figure(cf, tmp_path / "cmp")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)
    with Image.open(paths[0]) as png:
        assert png.info["dpi"][0] == pytest.approx(300, abs=1)
        w_in, h_in = cf.figure.get_size_inches()
        assert abs(png.size[0] - w_in * 300) <= 1 and abs(png.size[1] - h_in * 300) <= 1
    assert paths[1].read_text(encoding="utf-8").count("<image") >= 9 + 9  # panels + insets embedded
    assert paths[2].read_bytes().startswith(b"%PDF")


def test_default_line_passes_through_the_brightest_structure():
    yy, xx = np.indices((300, 300))
    image = np.exp(-((yy - 140) ** 2 + (xx - 170) ** 2) / (2 * 6.0 ** 2)) + 0.2 * np.exp(-((yy - 140) ** 2) / 50.0)
    (y0, x0), (y1, x1) = default_line(image)
    assert math.hypot(y1 - y0, x1 - x0) == pytest.approx(128, abs=1)
    # the brightest point lies on the line
    t = ((140 - y0) * (y1 - y0) + (170 - x0) * (x1 - x0)) / ((y1 - y0) ** 2 + (x1 - x0) ** 2)
    assert 0 <= t <= 1
    assert math.hypot(y0 + t * (y1 - y0) - 140, x0 + t * (x1 - x0) - 170) < 1.0
    ramp = np.tile(np.arange(50, dtype=float), (10, 1))
    np.testing.assert_allclose(line_profile(ramp, ((5, 10), (5, 20))), np.arange(10, 21, dtype=float))


def test_scale_bar_lengths():
    assert nice_length(10.24) == 10 and nice_length(0.33) == pytest.approx(0.2) and nice_length(4.9) == 2
    assert scale_bar_spec(512, 0.1) == (100.0, "10 µm")
    assert scale_bar_spec(200, 0.015)[1] == "500 nm"
    assert scale_bar_spec(512, None) is None


def test_boxplot_draws_one_bracket_per_significant_pair():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        for method, centre in ((LQ_NAME, 0.5), ("RL", 0.52), ("GAN", 0.9)):
            rows.append({"image": f"f{i}", "method": method, "channel": 0, "ssim": centre + 0.02 * rng.standard_normal()})
    table = MetricTable(rows)
    cf = boxplot_figure(table, ["ssim"])
    stats = cf.info["statistics"]["ssim"]
    significant = stats.significant_pairs
    assert {(p.group_a, p.group_b) for p in significant} == {(LQ_NAME, "GAN"), ("RL", "GAN")}
    ax = _panels(cf, "boxplot")[0]
    stars = [t.get_text() for t in ax.texts]
    assert len(stars) == len(significant) and all(s.startswith("*") for s in stars)
    assert "Kruskal-Wallis p < 0.001" in ax.get_title()


def test_consistency_and_error_maps_use_common_scales(evaluations):
    cf = consistency_figure(evaluations)
    assert cf.panels == 3 * 3  # LQ + smooth + GT maps per row
    emap = error_map_figure(evaluations)
    clims = {ax.images[0].get_clim() for ax in _panels(emap) if ax.images}
    assert len(clims) == 1 and next(iter(clims))[0] == 0  # one colour scale for every error map
    assert emap.panels == 3 * 2  # LQ and smooth against the GT


def test_multichannel_merge_and_per_channel(shared_data):
    image = read_image(shared_data / "other_fluorescence" / "neubias_xyc_16bit__cell_dna_mts_actin.tif")
    assert image.axes == "CYX"
    rgb = merge_channels([image.data[0].astype(float), image.data[1].astype(float)])
    assert rgb.shape == (*image.yx_shape, 3) and rgb.max() <= 1.0
    # channel 0 (DNA) goes to magenta: red and blue equal, green from channel 1 only
    only0 = merge_channels([image.data[0].astype(float), np.zeros(image.yx_shape)])
    np.testing.assert_allclose(only0[..., 0], only0[..., 2])
    assert only0[..., 1].max() == 0
    small = image.with_data(image.data[:, :128, :128])
    cset = build_comparison_set("cell", small, restored={"same": (small, Provenance(method="copy"))})
    ev = evaluate_set(cset, consistency=False, no_reference=False)
    merged = comparison_figure([ev], channel="merged", line=None)
    assert merged.name == "comparison_merged" and merged.panels == 2
    assert _panels(merged)[0].images[0].get_array().shape == (128, 128, 3)
    single = comparison_figure([ev], channel=2)
    assert single.panels == 2


def test_figures_never_touch_pyplot():
    code = ("import sys, numpy as np; from decongan.engine.evaluate.figures import new_figure, save_figure; "
            "import tempfile, pathlib; f = new_figure(2, 2); f.add_subplot(1, 1, 1).imshow(np.eye(4)); "
            "save_figure(f, pathlib.Path(tempfile.mkdtemp()) / 'x', formats=['png']); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
