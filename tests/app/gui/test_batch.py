"""Batch through the window: the real `decongan batch` in a child process, per-file status, cancel, resume."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.app.gui.conftest import wait_idle

NAMES = ("axonal_rings_test0", "axonal_rings_train0", "dendritic_factin_train804")


@pytest.fixture
def small_dataset(tagan, tmp_path):
    for sub in ("lq", "hq"):
        (tmp_path / sub).mkdir()
        for name in NAMES:
            shutil.copy(tagan / sub / f"{name}.tif", tmp_path / sub / f"{name}.tif")
    broken = tmp_path / "lq" / "zz_broken.tif"
    data = (tagan / "lq" / f"{NAMES[0]}.tif").read_bytes()
    broken.write_bytes(data[: len(data) // 4])  # truncated: logged with its reason, the rest go on
    return tmp_path


@pytest.mark.slow
def test_batch_runs_the_cli_reports_per_file_and_resumes(qtbot, window, small_dataset, tiny_run):
    window.open_dataset(small_dataset / "lq", small_dataset / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    window.data_panel.pixel_spin.setValue(0.03)
    decon = window.deconvolve_panel
    decon.iterations_spin.setValue(3)
    decon.device_combo.setCurrentText("cpu")
    window.predict_panel.set_run_dir(tiny_run)
    window.predict_panel.tile_spin.setValue(0)
    panel = window.batch_panel
    panel.fill_from_dataset()
    out = small_dataset / "out"
    panel.out_edit.setText(str(out))
    panel.dpi_spin.setValue(80)
    args = panel.cli_args()
    assert args[:4] == ["batch", str(small_dataset / "lq"), "--out", str(out)]
    assert "--model" in args and "--na" in args and "--pixel-nm" in args

    with qtbot.waitSignal(panel.finished, timeout=300_000) as blocker:
        panel.start_batch()
    assert blocker.args == ["failed"]  # one input is broken: exit status 1, the others are done
    statuses = panel.refresh_statuses()
    methods = panel.methods
    assert len(methods) == 2 and any(m.startswith("RL 3 it") for m in methods)
    for name in NAMES:
        assert set(statuses[f"{name}.tif"].values()) == {"done"}
    assert set(statuses["zz_broken.tif"].values()) == {"failed"}
    item = panel.items[str(small_dataset / "lq" / "zz_broken.tif")]
    assert "zz_broken.tif" in item.toolTip(1)  # the reason names the file
    assert (out / "report.html").exists() and panel.report_button.isEnabled()
    assert window.errors.history and "exit status 1" in window.errors.history[-1].message
    dataset_rows = window.metrics.rows["Dataset"]
    assert {r["image"] for r in dataset_rows if r["method"].startswith("RL 3 it")} == set(NAMES)

    # resume: everything finished is skipped (the manifest), the broken file is tried again
    manifest_before = json.loads((out / "manifest.json").read_text())
    with qtbot.waitSignal(panel.finished, timeout=300_000):
        panel.resume_button.click()
    manifest = json.loads((out / "manifest.json").read_text())
    done = [e for e in manifest["entries"].values() if e["status"] == "done"]
    assert len(done) == 6
    for key, entry in manifest["entries"].items():  # finished outputs were not recomputed
        if entry["status"] == "done":
            assert entry["finished"] == manifest_before["entries"][key]["finished"]


@pytest.mark.slow
def test_cancel_stops_the_batch_and_keeps_finished_images(qtbot, window, small_dataset):
    panel = window.batch_panel
    panel.in_edit.setText(str(small_dataset / "lq"))
    out = small_dataset / "out"
    panel.out_edit.setText(str(out))
    panel.gan_check.setChecked(False)
    window.data_panel.pixel_spin.setValue(0.03)  # no field open: the override feeds --pixel-nm
    window.session.pixel_size_override = 0.03
    window.deconvolve_panel.iterations_spin.setValue(500)  # about a second per image: the cancel lands mid-batch
    window.deconvolve_panel.device_combo.setCurrentText("cpu")
    process = panel.start_batch()
    qtbot.waitUntil(lambda: bool(process.records) or not panel.is_running, timeout=120_000)
    assert panel.is_running
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        panel.cancel_button.click()
    assert blocker.args == ["stopped"]
    assert "Resume" in panel.status.text() and panel.resume_button.isEnabled()
    statuses = panel.refresh_statuses()
    done = [name for name, per in statuses.items() if set(per.values()) == {"done"}]
    assert done and len(done) < 4  # what finished before the cancel is kept in the manifest
    assert not (out / "report.html").exists()
    assert window.errors.history == []


def test_progress_lines_drive_the_bar_and_status_by_phase(window):
    """The child's JSON lines (`decongan batch --json-progress`) name their phase; the panel follows it."""
    panel = window.batch_panel
    panel._on_record({"phase": "restore", "step": 2, "total": 6, "message": "a.tif: RL 3 it (engine)", "eta_s": 75})
    assert (panel.progress.value(), panel.progress.maximum()) == (2, 6)
    assert panel.progress.text() == "restore: 2 / 6 steps"
    assert panel.status.text() == "a.tif: RL 3 it (engine) - ETA 1:15"
    # the comparison has its own count (fields, not image x method steps), even when the totals coincide
    panel._on_record({"phase": "compare", "step": 1, "total": 6, "message": "a", "eta_s": None})
    assert (panel.progress.value(), panel.progress.maximum()) == (1, 6)
    assert panel.progress.text() == "compare: 1 / 6 fields"
    assert panel.status.text() == "Comparing field 1/6: a"
    panel._on_record({"phase": "report", "step": 3, "total": 4, "message": "comparison.png"})
    assert (panel.progress.value(), panel.progress.maximum()) == (3, 4)
    assert panel.progress.text() == "report: 3 / 4 outputs"
    assert panel.status.text().startswith("Writing figures, tables and the report: comparison.png")
