"""`decongan compare --split-half` draws the split-half figure (flagged fraction = the metric column), and the
report's "Trust without ground truth" section links it and states the calibration, seed, threshold and floor."""

from __future__ import annotations

import csv
import json
import re

import pytest

from decongan.app.cli import main
from tests.fmd_pairs import write_fmd_pairs


@pytest.mark.slow  # tune + compare with split-half maps and a report (~15 s on 2 busy cores)
def test_compare_split_half_figure_and_report_section(shared_data, tmp_path):
    cal_lq, cal_gt = write_fmd_pairs(shared_data, tmp_path / "cal", start=160, size=96, names=("fov01",))
    ev_lq, ev_gt = write_fmd_pairs(shared_data, tmp_path / "ev", start=160, size=96, names=("fov05", "fov06"))
    tuned = tmp_path / "tuned.json"
    assert main(["tune", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--baselines", "gaussian",
                 "--grid", "gaussian:sigma_px=1.5", "--out", str(tuned)]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", "--lq-dir", str(ev_lq), "--gt-dir", str(ev_gt), "--baselines", str(tuned),
                 "--split-half", "--no-noref", "--formats", "png", "--out", str(out)]) == 0
    column = "Gaussian sigma_px=1.5"
    assert (out / "figures" / "split_half.png").stat().st_size > 10_000
    caption = (out / "figures" / "split_half.caption.txt").read_text(encoding="utf-8")
    with open(out / "metrics.csv", newline="") as handle:
        rows = {(r["image"], r["method"]): r for r in csv.DictReader(handle)}
    sets = {s["field"]: s for s in json.loads((out / "metrics.json").read_text())["sets"]}
    for name in ("fov05", "fov06"):
        recorded = sets[name]["split_half"][f"{column} (c0)"]
        # the number in metrics.json's map record is the column's, and the figure's caption states its calibration
        assert recorded["flagged_fraction"] == pytest.approx(float(rows[(name, column)]["sh_flagged_fraction"]),
                                                             abs=1e-15)
        cal = recorded["parameters"]["calibration"]
        assert f"{name}: gain {cal['gain']:.4g}, offset {cal['offset']:.4g}" in caption
        assert f"{name} / {column} {recorded['parameters']['noise_floor']:.4g}" in caption
    assert "Thinning seed 0." in caption and "threshold 5 " in caption
    assert "instability" not in caption or "not whether it is correct" in caption
    assert "not whether it is correct" in caption
    assert "estimated from the image itself" in caption

    page = (out / "report.html").read_text(encoding="utf-8")
    section = page[page.index("<h2 id='trust'>Trust without ground truth</h2>"):page.index("<h2>Summary")]
    assert "<a href='figures/split_half.png'>split_half</a>" in section and "<figure id='fig-split_half'>" in page
    for name in ("fov05", "fov06"):
        recorded = sets[name]["split_half"][f"{column} (c0)"]
        cal = recorded["parameters"]["calibration"]
        row = re.search(rf"<tr><td class='t'>{name}</td><td class='t'>{re.escape(column)}</td><td>0</td>"
                        r"<td>([\d.]+)</td><td>([\d.e+-]+)</td><td>([\d.e+-]+)</td><td>(\d+)</td>", section)
        assert row is not None
        assert float(row.group(1)) == pytest.approx(100 * recorded["flagged_fraction"], abs=5e-4)
        assert float(row.group(2)) == pytest.approx(cal["gain"], rel=1e-3)
        assert float(row.group(3)) == pytest.approx(cal["offset"], rel=1e-3, abs=1e-3)
        assert row.group(4) == "0"
    assert "measures instability, not truth" in section  # the split-half limits quoted from the engine

