"""The Dataset verdict tab: after a dataset-level evaluation the window shows the engine's verdict, word for word
the headline `decongan compare` prints; a metrics.json without a verdict is named, not shown as an empty verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.fmd_pairs import write_fmd_pairs

NAMES = ("fov01", "fov02", "fov03", "fov05", "fov06", "fov07")


@pytest.mark.slow  # a 6-field compare report (~15 s on 2 busy cores)
def test_batch_verdict_is_the_reports_headline(qtbot, window, shared_data, tmp_path, capsys):
    lq_dir, gt_dir = write_fmd_pairs(shared_data, tmp_path, start=160, size=64, names=NAMES)
    for name in NAMES:  # a blur column that is, on these pairs, better than the noisy input
        lq = read_image(lq_dir / f"{name}.tif")
        write_tiff(tmp_path / "blur" / f"{name}.tif", gaussian_filter(lq.data.astype(np.float32), 1.5),
                   pixel_size_um=lq.pixel_size_um)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["compare", "--lq-dir", str(lq_dir), "--gt-dir", str(gt_dir), "--method", f"Blur={tmp_path / 'blur'}",
                 "--no-noref", "--formats", "png", "--out", str(out)]) == 0
    printed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("verdict:"))
    printed = printed.removeprefix("verdict:").strip()
    assert "Blur" in printed and "SSIM" in printed  # the engine's sentence about the blur column

    panel = window.batch_panel
    panel.out_edit.setText(str(out))
    rows = panel.metric_rows()
    assert len(rows) == 3 * len(NAMES)
    with qtbot.waitSignal(panel.rows_ready, timeout=5_000):
        panel.rows_ready.emit(rows)  # what a finished batch emits
    view = window.verdict_view
    assert view.headline == printed
    assert str(out) in view.source.text()
    assert printed in " ".join(view.text.toPlainText().split())

    data = json.loads((out / "metrics.json").read_text())
    del data["verdict"]
    (out / "metrics.json").write_text(json.dumps(data))
    window.show_batch_verdict(out)
    assert view.headline == "" and view.text.toPlainText() == ""
    assert view.source.text() == f"{out / 'metrics.json'}: holds no verdict (written by an older DeconGAN); run the " \
                                 "comparison again"


def test_window_verdict_without_compared_fields_says_so(window):
    window.show_window_verdict()
    assert window.verdict_view.headline == ""
    assert window.verdict_view.source.text().startswith("No field has been compared in this window yet")
