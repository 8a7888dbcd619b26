"""Batch through the window: the real `decongan batch` in a child process, per-file status, cancel, resume."""

from __future__ import annotations

import csv
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
    assert panel.model_dir() is None and "No GAN column" in panel.model_info.text()  # never Predict's silently
    panel.use_predict_model()  # the explicit choice
    assert panel.model_dir() == str(tiny_run) and tiny_run.name in panel.model_info.text()
    assert panel.pixel_spin.value() == pytest.approx(30.0)  # the pixel size entered for the open dataset
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
    # the dialog says what was restored and why the rest failed (not only a tooltip, not "exit status 1")
    message = window.errors.history[-1].message
    assert message.startswith(f"6 outputs restored in {out / 'restored'}, 2 failed")
    assert "zz_broken.tif" in message and "of 4 failed" in message
    assert panel.status.text().startswith(f"Done: 6 outputs restored in {out / 'restored'}, 2 failed")
    # the Dataset table is this run's metrics.csv, alone: no window rows merged under the same labels
    with (out / "metrics.csv").open(newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    dataset_rows = window.metrics.rows["Dataset"]
    assert len(dataset_rows) == len(csv_rows) == 3 * 4  # 3 fields x (LQ, RL, GAN, GT)
    assert {r["image"] for r in dataset_rows if r["method"].startswith("RL 3 it")} == set(NAMES)
    window.compute_evaluation()  # the window compares its field again: the batch's table stays as it is
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)
    assert len(window.metrics.rows["Dataset"]) == 12 and str(out) in window.metrics.notes["Dataset"]

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
    panel.pixel_spin.setValue(30.0)  # the panel's own pixel size feeds --pixel-nm
    # cancel once the first image is in the manifest; 3000 iterations keep the others busy for seconds (with 500,
    # a fast machine finished the whole batch and its report before the cancel landed)
    window.deconvolve_panel.iterations_spin.setValue(3000)
    window.deconvolve_panel.device_combo.setCurrentText("cpu")
    panel.start_batch()

    def one_done() -> bool:
        return any(set(per.values()) == {"done"} for per in panel.refresh_statuses().values())

    qtbot.waitUntil(lambda: one_done() or not panel.is_running, timeout=180_000)
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


def test_an_unknown_pixel_size_is_asked_for_before_the_batch_starts(qtbot, window, shared_data, tmp_path):
    """FMD PNGs have no calibration: RL's PSF needs one, so the panel refuses naming the file and the field."""
    panel = window.batch_panel
    panel.in_edit.setText(str(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq"))
    panel.out_edit.setText(str(tmp_path / "out"))
    assert panel.pixel_spin.text() == "from each file" and "--pixel-nm" not in panel.cli_args()
    assert panel.start_batch() is None and panel.process is None
    assert window.errors.history[-1].message == (
        "the pixel size of fov01.png is unknown (its file has no calibration) and the PSF of the deconvolution and "
        "the consistency maps needs it: enter it in Pixel size (Batch panel), or set Deconvolution to none and "
        "Consistency to identity or off")
    assert not (tmp_path / "out").exists()
    panel.pixel_spin.setValue(120.0)
    args = panel.cli_args()
    assert args[args.index("--pixel-nm") + 1] == "120"
    assert panel.pixel_size_problem() == ""
    panel.decon_combo.setCurrentText("none")
    panel.consistency_combo.setCurrentText("identity")
    panel.pixel_spin.setValue(0.0)
    assert not panel.needs_pixel_size()


def test_the_end_of_a_batch_says_what_was_restored_and_why_the_rest_failed(window, tmp_path):
    """The issue's batch: 14 GAN outputs on disk, RL failed on all 14 (unknown pixel size), so no report."""
    from decongan.app.gui.process_job import ProcessFailed

    out = tmp_path / "out"
    out.mkdir()
    cause = "fov{:02d}.png: the lateral pixel size is unknown"
    entries = {}
    for i in range(1, 15):
        entries[f"gan{i}"] = {"input": f"/in/fov{i:02d}.png", "method": "S1 GAN (run)", "status": "done",
                              "output": f"restored/S1_GAN/fov{i:02d}.tif"}
        entries[f"rl{i}"] = {"input": f"/in/fov{i:02d}.png", "method": "RL 10 it (engine)", "status": "failed",
                             "error": cause.format(i) if i == 1 else "the lateral pixel size is unknown"}
    (out / "manifest.json").write_text(json.dumps({"status": "restored", "entries": entries}))
    panel = window.batch_panel
    panel.out_edit.setText(str(out))
    panel._on_failed(ProcessFailed("Batch ended with exit status 1: decongan batch: no image was restored by every "
                                   "method", "stderr"))
    panel._on_finished(1, "failed")
    report = window.errors.history[-1]
    assert report.message.splitlines() == [
        f"14 outputs restored in {out / 'restored'}, 14 failed; no report",
        "RL 10 it (engine): 14 of 14 failed - fov01.png: the lateral pixel size is unknown; "
        "the lateral pixel size is unknown (x13)"]
    assert panel.status.text().startswith(f"14 outputs restored in {out / 'restored'}, 14 failed; no report")
    assert report.details == "stderr"
