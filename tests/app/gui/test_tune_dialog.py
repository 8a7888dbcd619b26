"""Workflows > "Tune baselines on pairs...": the real `decongan tune` in a child process on chosen LQ/GT folders; the
dialog lists what tuned.json holds, and an existing file is refused (unchanged) unless replacing is ticked."""

from __future__ import annotations

import json

import pytest

from tests.fmd_pairs import write_fmd_pairs


@pytest.mark.slow  # two child processes (interpreter + torch import, ~10 s each on 2 busy cores)
def test_tune_dialog_runs_the_cli_and_shows_the_tuned_parameters(qtbot, window, shared_data, tmp_path):
    action = next(a for a in window.menuBar().actions() if a.text() == "&Workflows").menu()
    next(a for a in action.actions() if a.text() == "&Tune baselines on pairs...").trigger()
    dialog = window.tune_dialog
    assert dialog.isVisible() and dialog.lq_edit.text() == ""  # never pre-filled with the evaluated dataset

    dialog.start()  # nothing chosen: refused before any process starts
    assert dialog.process is None
    assert window.errors.history[-1].message.startswith("choose the LQ folder and the GT folder and the tuned file")

    lq, gt = write_fmd_pairs(shared_data, tmp_path, start=160, size=64, names=("fov01", "fov02"))
    out = tmp_path / "tuned.json"
    dialog.lq_edit.setText(str(lq))
    dialog.gt_edit.setText(str(gt))
    dialog.out_edit.setText(str(out))
    dialog.baselines_edit.setText("gaussian")
    assert dialog.cli_args() == ["tune", "--lq-dir", str(lq), "--gt-dir", str(gt), "--out", str(out), "--metric",
                                 "ssim", "--baselines", "gaussian"]
    with qtbot.waitCallback(timeout=180_000) as done:
        dialog.start()
        dialog.process.finished.connect(lambda *args: done(*args))
    assert done.args == [0, "succeeded"]
    tuned = json.loads(out.read_text())
    (entry,) = tuned["baselines"]
    assert entry["source"] == "calibration" and [p["name"] for p in tuned["calibration"]] == ["fov01", "fov02"]
    sigma = entry["parameters"]["sigma_px"]
    cells = [dialog.table.item(0, c).text() for c in range(dialog.table.columnCount())]
    assert dialog.table.rowCount() == 1
    assert cells[0] == entry["name"]
    assert f"sigma_px={sigma:.4g}" in cells[1]
    assert cells[2] == f"ssim {entry['score']:.4g}"
    assert cells[3] == entry["how"] == "tuned on calibration pairs"
    assert dialog.result["baselines"][0]["parameters"]["sigma_px"] == sigma
    assert "2 pair(s) (fov01, fov02)" in dialog.status.text() and str(out) in dialog.status.text()

    before = out.read_bytes()
    with qtbot.waitCallback(timeout=180_000) as again:
        dialog.start()
        dialog.process.finished.connect(lambda *args: again(*args))
    assert again.args == [1, "failed"]
    assert out.read_bytes() == before  # an existing file is not replaced without the tick
    assert "nothing was written" in dialog.status.text()
    assert str(out) in window.errors.history[-1].message
