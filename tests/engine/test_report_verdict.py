"""The report a user reads: verdict first, then figures; a 14-field report under 2 MB whose links all exist;
units and definitions beside the summary; no raw markup; the title names the methods; CJK names readable."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy import ndimage

from decongan.engine.evaluate.compare import build_comparison_set, evaluate_set
from decongan.engine.evaluate.figures.labels import can_draw, drawable
from decongan.engine.evaluate.report import ReportContext, write_comparison_outputs
from decongan.engine.evaluate.report_html import rst_to_html
from decongan.engine.io import read_image
from decongan.engine.provenance import Provenance, Restored

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"
CJK_FIELD = "细胞_03"


@pytest.fixture(scope="module")
def report(shared_data, tmp_path_factory):
    """All 14 FMD fields (192 x 192 crops): a Gaussian baseline and a learned-model stand-in (mean of 4 raw frames)."""
    evaluations = []
    for i, path in enumerate(sorted((shared_data / FMD / "lq").glob("*.png"))):
        lq, gt = read_image(path), read_image(shared_data / FMD / "hq" / path.name)
        lq, gt = lq.with_data(lq.data[:192, :192]), gt.with_data(gt.data[:192, :192])
        frames = sorted((shared_data / FMD / "raw_frames" / path.stem).glob("*.png"))[:4]
        mean4 = np.mean([read_image(f).data[:192, :192].astype(np.float32) for f in frames], axis=0)
        gaussian = ndimage.gaussian_filter(lq.data.astype(np.float32), 1.5)
        field = CJK_FIELD if i == 2 else path.stem
        cset = build_comparison_set(field, lq, gt=gt, restored={
            "Gaussian 1.5 px": Restored(gaussian, Provenance(method="Gaussian 1.5 px", parameters={
                "baseline": {"method": "gaussian", "kind": "denoise", "parameters": {"sigma_px": 1.5}}})),
            "S1": Restored(mean4, Provenance(method="S1", parameters={"kind": "learned"}))})
        evaluations.append(evaluate_set(cset, consistency=False, no_reference=False))  # fast: maps in test_report
    out = tmp_path_factory.mktemp("report14")
    result = write_comparison_outputs(evaluations, out, context=ReportContext(command="pytest"), formats=["png"], dpi=150,
                                      save_restored=False)
    return result, evaluations, result.report_html.read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_14_field_report_is_small_and_every_link_exists(report):
    result, evaluations, page = report
    assert len(evaluations) == 14
    assert result.report_html.stat().st_size < 2_000_000
    links = re.findall(r"href='([^']+)'", page)
    assert {f"figures/{name}.png" for name in result.figures} <= set(links)
    assert all((result.out_dir / link).is_file() for link in links)
    assert not any(link.startswith(("/", "http", "file:", "..")) for link in links)
    # previews are embedded JPEGs, far smaller than the full-resolution PNGs they link to
    full = sum((result.out_dir / f"figures/{name}.png").stat().st_size for name in result.figures)
    assert full > 2 * result.report_html.stat().st_size


@pytest.mark.slow
def test_the_page_opens_with_the_verdict_then_the_figures(report):
    result, _, page = report
    verdict = json.loads(result.metrics_json.read_text())["verdict"]
    assert verdict["best_classical"] == "Gaussian 1.5 px" and verdict["primary_metric"] == "ssim"
    first = next(c for c in verdict["comparisons"] if c["metric"] == "ssim")
    assert (first["method"], first["reference"], first["n"]) == ("S1", "Gaussian 1.5 px", 14)
    body = page[page.index("<body>"):]
    order = [body.index(s) for s in ("<h1>", "<h2 id='verdict'>Verdict</h2>", "<h2>Figures</h2>", "<h2>Summary")]
    assert order == sorted(order)
    head = body[:body.index("<h2>Figures</h2>")]
    assert "Best classical baseline: <b>Gaussian 1.5 px</b>" in head
    assert first["sentence"].replace("<", "&lt;") in head
    # on these crops the stand-in's SSIM deficit is not significant after Holm: the sentence claims no difference
    assert first["pvalue"] >= 0.05
    assert first["sentence"].startswith(f"No significant difference in SSIM between S1 and Gaussian 1.5 px on these 14 "
                                        f"fields (Wilcoxon p = {first['pvalue']:.3f}, Holm; S1 higher on "
                                        f"{first['n_higher']} of 14; median paired difference ")
    # ... and it still states the size: the median paired difference and its 95 % interval, as stored
    size = re.search(r"median paired difference ([-+]?[\d.]+) SSIM, 95 % CI ([-\d.]+) to ([-\d.]+)\)\.$", first["sentence"])
    assert size is not None
    for shown, stored in zip(size.groups(), ("median_difference", "ci_low", "ci_high"), strict=True):
        assert float(shown) == pytest.approx(first[stored], abs=0.5 * 10 ** -len(shown.split(".")[1]))


@pytest.mark.slow
def test_title_names_every_method_and_jargon_is_defined_beside_the_table(report):
    _, _, page = report
    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert title == "DeconGAN comparison: LQ (input) | Gaussian 1.5 px | S1 (learned) | GT, 14 fields"
    summary = page[page.index("<h2>Summary"):page.index("<h2>Across all methods")]
    table_end = summary.index("</table>")
    definitions = summary[table_end:]
    for label in ("SSIM", "PSNR (dB)", "segmentation Dice", "object F1 (IoU 0.5)"):
        assert label in summary[:table_end] and f"<dt>{label}</dt>" in definitions
    assert "<th title='structural similarity to the ground truth" in summary


@pytest.mark.slow
def test_methods_text_has_no_raw_markup(report):
    _, _, page = report
    methods = page[page.index("<h2>How the numbers were made</h2>"):page.index("<h2>Methods, parameters")]
    text = re.sub(r"<code>.*?</code>", "", methods)  # code may hold '**' (a power), as in the policy's formula
    assert "**" not in text and "``" not in text and ":func:" not in text and "`" not in text
    assert "<b>Forward model.</b>" in methods and "<ol><li>" in methods


def test_rst_conversion():
    text = "Intro line\ncontinued with ``a * b`` and **bold**.\n1. **One**: x\n   more\n2. Two :func:`f`\n\nAfter."
    assert rst_to_html(text) == ("<p>Intro line continued with <code>a * b</code> and <b>bold</b>.</p>\n"
                                 "<ol><li><b>One</b>: x more</li><li>Two <code>f</code></li></ol>\n<p>After.</p>")


@pytest.mark.slow
def test_cjk_field_names_are_drawn_as_code_points_and_named_in_the_page(report):
    result, _, page = report
    if can_draw("细") and can_draw("胞"):
        assert drawable(CJK_FIELD) == CJK_FIELD  # a CJK font is installed: the real name is drawn
        return
    # this machine has no CJK font (fc-list :lang=zh is empty): the figure shows code points ...
    assert drawable(CJK_FIELD) == "[7EC6 80DE]_03"
    assert "[7EC6 80DE]_03 = 细胞_03" in page  # ... and the page says which field that is
    assert CJK_FIELD in page.split("<h2 id='verdict'>")[0]  # the real name is in the page text
    assert drawable("fov01 µm ±") == "fov01 µm ±"


def test_cjk_method_names_in_box_plot_ticks_are_relabelled_without_a_missing_glyph_warning(tmp_path, recwarn):
    from decongan.engine.evaluate.compare import MetricTable
    from decongan.engine.evaluate.figures import boxplot_figure, save_figure

    if can_draw("ガ"):
        pytest.skip("a Japanese font is installed here: the real name is drawn")
    rows = [{"image": f"f{i}", "method": m, "channel": 0, "ssim": 0.5 + 0.01 * i + (0.1 if m == "ガウス" else 0)}
            for i in range(6) for m in ("LQ (input)", "ガウス")]
    cf = boxplot_figure(MetricTable(rows), ["ssim"])
    save_figure(cf, tmp_path / "box", formats=["png"])
    assert cf.info["relabelled"] == {"ガウス": "[30AC 30A6 30B9]"}
    assert [t.get_text() for t in cf.figure.axes[0].get_xticklabels()] == ["LQ (input)", "[30AC 30A6 30B9]"]
    assert not [w for w in recwarn if "missing from font" in str(w.message)]
