"""Exports: metrics CSV/JSON, summary, restored TIFFs, figures and a self-contained HTML report."""

from __future__ import annotations

import base64
import csv
import json
import re

import numpy as np
import pytest
from scipy import ndimage

from decongan.engine.evaluate.compare import build_comparison_set, evaluate_set
from decongan.engine.evaluate.report import (
    ReportContext,
    normalisation_policy_text,
    write_comparison_outputs,
)
from decongan.engine.evaluate.report_html import fmt_value as _fmt
from decongan.engine.evaluate.report_html import rst_to_html
from decongan.engine.io import read_image
from decongan.engine.provenance import Provenance, Restored

TAGAN = "tagan_confocal_vs_sted"
NAMES = ("axonal_rings_test0", "axonal_rings_train0", "dendritic_factin_train804")


@pytest.fixture(scope="module")
def outputs(shared_data, tmp_path_factory):
    evaluations = []
    for name in NAMES:
        lq = read_image(shared_data / TAGAN / "lq" / f"{name}.tif", pixel_size_um=0.02)
        gt = read_image(shared_data / TAGAN / "hq" / f"{name}.tif", pixel_size_um=0.02)
        lq, gt = lq.with_data(lq.data[:128, :128]), gt.with_data(gt.data[:128, :128])
        smooth = ndimage.gaussian_filter(lq.data.astype(np.float32), 1.0)
        cset = build_comparison_set(name, lq, gt=gt, restored={
            "smooth": Restored(smooth, Provenance(method="Gaussian 1", backend="engine/cpu", parameters={"sigma": 1.0}))})
        evaluations.append(evaluate_set(cset, consistency_psf=None))
    context = ReportContext(title="test report", command="pytest", assumptions=["NA 1.4 assumed for the test"],
                            fiji_backend="imagej1 /usr/share/java/ij.jar (test)",
                            model={"name": "s1-test", "config": {"preset": "s1", "scale": 1}})
    out = tmp_path_factory.mktemp("report")
    return write_comparison_outputs(evaluations, out, context=context, formats=["png"], dpi=120), evaluations


def test_tables_have_one_row_per_image_and_method(outputs):
    result, evaluations = outputs
    with open(result.metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 3
    assert {"image", "method", "backend", "ssim", "psnr", "snr", "dc_rsp"} <= set(rows[0])
    assert {r["backend"] for r in rows if r["method"] == "smooth"} == {"engine/cpu"}
    payload = json.loads(result.metrics_json.read_text())
    assert payload["context"]["fiji_backend"].startswith("imagej1")
    assert payload["statistics"]["ssim"]["kruskal"] is not None  # 3 images per method
    with open(result.summary_csv, newline="") as handle:
        summary = {(r["method"], r["metric"]): r for r in csv.DictReader(handle)}
    ssims = [float(r["ssim"]) for r in rows if r["method"] == "smooth"]
    assert float(summary[("smooth", "ssim")]["median"]) == pytest.approx(np.median(ssims))
    q1, q3 = np.percentile(ssims, [25, 75])
    assert float(summary[("smooth", "ssim")]["iqr"]) == pytest.approx(q3 - q1)


def test_restored_images_are_calibrated_tiffs_with_provenance(outputs):
    result, _ = outputs
    assert len(result.restored) == 3
    image = read_image(result.restored[0])
    assert image.pixel_size_um == pytest.approx(0.02) and image.data.dtype == np.float32
    from decongan.engine.evaluate.dataset import read_provenance

    assert read_provenance(result.restored[0]).parameters["sigma"] == 1.0


def test_html_refers_only_to_its_folder_and_states_values_policy_and_context(outputs):
    result, evaluations = outputs
    page = result.report_html.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=['\"](https?:|file:|/|\.\.)", page)  # nothing outside the output folder
    images = re.findall(r"src='data:image/jpeg;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(result.figures) >= 4  # one small preview per figure ...
    assert base64.b64decode(images[0])[:3] == b"\xff\xd8\xff"
    links = re.findall(r"href='([^']+)'", page)  # ... linked to its full-resolution file, which exists
    assert {f"figures/{name}.png" for name in result.figures} <= set(links)
    assert all((result.out_dir / link).is_file() for link in links)
    # every per-image metric value appears as formatted in the table
    for row in evaluations[1].rows:
        for key in ("ssim", "psnr", "snr"):
            if row.get(key) is not None:
                assert f"<td>{_fmt(row[key], key)}</td>" in page
    assert rst_to_html(normalisation_policy_text()) in page
    assert "<b>Ground truth</b>: percentile-normalised, <code>gt_n = (gt - p0.1) / (p99.9 - p0.1)</code>" in page
    assert "percentile-normalised" in page and "Kruskal-Wallis" in page and "Holm" in page.replace("holm", "Holm")
    assert "decorrelation analysis and FRC reward" in page
    # jargon is defined directly under the summary table, not only in the methods text far below
    summary = page[page.index("<h2>Summary"):page.index("<h2>Across all methods")]
    definitions = summary[summary.index("</table>"):]
    for label in ("RSP (consistency)", "chi RMS (consistency)", "CUF (cycles/px)", "BGSTD"):
        assert label in summary and f"<dt>{label}</dt>" in definitions
    assert "resolution-scaled Pearson" in definitions and "noise floor" in definitions
    assert "imagej1 /usr/share/java/ij.jar (test)" in page
    assert "s1-test" in page and "NA 1.4 assumed for the test" in page
    assert "numpy" in page and "scikit_posthocs" in page  # software versions
    captions = sorted(p.name for p in (result.out_dir / "figures").glob("*.caption.txt"))
    assert captions == sorted(f"{name}.caption.txt" for name in result.figures)


def test_a_cancelled_export_stops_before_the_report_and_keeps_what_it_wrote(outputs, tmp_path):
    """Cancel after the tables: no figure files, no report.html; the tables written so far are complete."""
    from decongan.engine.progress import Cancelled, CancelToken

    _, evaluations = outputs
    cancel = CancelToken()
    seen = []

    def progress(event):
        seen.append(event.message)
        if event.step == 1:
            cancel.cancel()  # the user presses Cancel while the tables are being written

    with pytest.raises(Cancelled):
        write_comparison_outputs(evaluations, tmp_path, formats=["png"], dpi=60, progress=progress, cancel=cancel)
    assert seen == ["tables written"]
    assert not (tmp_path / "report.html").exists() and not list(tmp_path.glob("figures/*.png"))
    with open(tmp_path / "metrics.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3 * 3
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temporary files left behind
