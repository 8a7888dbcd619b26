"""Capture screenshots of the main views of the DeconGAN window (for review, not for tests).

Run under a virtual X server, e.g.::

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python scripts/screenshots.py --out /tmp/screens

It opens a real confocal/STED pair from ../shared/data, trains a small S1 model with the real
``decongan train`` from the Train panel (the training monitor), deconvolves the pair with the
engine, predicts it with that model (or ``--model RUN_DIR``), and saves: the viewer with four
panels and the line profile, the metrics table, the data-consistency maps, the training monitor, a
batch running and finished, and the export preview. Each view is driven through the window's own
widgets, as a user would.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data"
FIELD = "synprot_bassoon-homer_train_ch640"


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def wait_for(app, condition: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def idle(window) -> bool:
    return not window.jobs.jobs


def save(window, out: Path, name: str, *, screen: bool = False) -> Path:
    """The window (or the whole screen, to include dialogs) as ``out/name.png``."""
    path = out / f"{name}.png"
    if screen:
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.primaryScreen().grabWindow(0).save(str(path))
    else:
        window.grab().save(str(path))
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--model", type=Path, default=None, help="a trained run folder for the GAN panel")
    parser.add_argument("--train-iterations", type=int, default=300,
                        help="iterations of the training run shown in the monitor (its model fills the GAN panel)")
    parser.add_argument("--size", default="1600x1000", help="window size WxH")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="decongan-screens-"))
    os.environ["DECONGAN_SETTINGS"] = str(work / "settings.ini")

    from decongan.app.gui.main import create_application
    from decongan.app.gui.main_window import MainWindow

    app = create_application()
    window = MainWindow()
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    pump(app, 0.5)

    tagan = args.data / "tagan_confocal_vs_sted"
    window.open_dataset(tagan / "lq", tagan / "hq", True)
    wait_for(app, lambda: window.session.lq is not None, 30, "the dataset")
    fov = next(f for f in window.session.dataset.fields if f.name == FIELD)
    window.load_field(fov)
    wait_for(app, lambda: window.session.field is fov and idle(window), 60, "the field")
    window.data_panel.pixel_spin.setValue(0.015)

    # -- training monitor: a real (short) `decongan train` run started from the Train panel ------------
    run_dir = _train(window, app, tagan, work, args.train_iterations, args.out)
    if args.model is not None:
        run_dir = args.model

    # -- viewer with four panels: LQ | RL | GAN | GT ---------------------------------------------------
    decon = window.deconvolve_panel
    window.show_workflow(decon)
    decon.wavelength_spin.setValue(640.0)
    decon.size_spin.setValue(33)
    decon.iterations_spin.setValue(20)
    decon.edges_combo.setCurrentText("padded")
    decon.run()
    wait_for(app, lambda: any(lay.name.startswith("RL") for lay in window.session.layers), 300, "deconvolution")
    if run_dir is not None:
        predict = window.predict_panel
        window.show_workflow(predict)
        predict.set_run_dir(run_dir)
        predict.tile_spin.setValue(256)
        predict.run()
        wait_for(app, lambda: len(window.session.restored) >= 2, 300, "prediction")
    wait_for(app, lambda: idle(window) and window.evaluation is not None and not window._evaluation_stale(),
             600, "the comparison")
    viewer = window.viewer
    viewer.panels[0].view.setRange(xRange=(150, 406), yRange=(150, 406), padding=0)
    viewer.line_button.click()
    pump(app, 1.0)
    save(window, args.out, "1_viewer_four_panels")
    window.bottom_tabs.setCurrentWidget(window.metrics)
    pump(app, 0.5)
    save(window, args.out, "2_metrics_table")
    viewer.consistency_button.click()
    wait_for(app, lambda: bool(viewer.maps["consistency"]) and idle(window), 300, "consistency maps")
    pump(app, 0.5)
    save(window, args.out, "3_consistency_map")
    viewer.consistency_button.click()
    window.bottom_tabs.setCurrentWidget(window.profile)

    # -- batch -------------------------------------------------------------------------------------------
    batch = window.batch_panel
    window.show_workflow(batch)
    batch.fill_from_dataset()
    batch.out_edit.setText(str(work / "batch"))
    batch.model_edit.setText(str(run_dir) if run_dir is not None else "")  # the Batch panel's own model choice
    batch.dpi_spin.setValue(120)
    process = batch.start_batch()
    if process is not None:
        wait_for(app, lambda: len(process.records) >= 4 or not batch.is_running, 900, "batch progress")
        save(window, args.out, "5_batch_running")
        wait_for(app, lambda: not batch.is_running, 1800, "the batch")
        window.bottom_tabs.setCurrentWidget(window.metrics)
        window.metrics.set_scope("Dataset")
        pump(app, 0.5)
        save(window, args.out, "6_batch_done")

    # -- export preview ------------------------------------------------------------------------------
    export = window.export_panel
    window.show_workflow(export)
    export.out_edit.setText(str(work / "export"))
    export.preview()
    wait_for(app, lambda: export.preview_ready and idle(window), 300, "the export preview")
    pump(app, 0.5)
    save(window, args.out, "7_export_preview")

    window.close()
    pump(app, 0.5)
    return 0


def _train(window, app, tagan: Path, work: Path, iterations: int, out: Path) -> Path | None:
    """A real `decongan train` run from the Train panel; screenshots of its monitor; the run folder."""
    from decongan.engine.learn.checkpoint import is_run_dir

    train = window.train_panel
    window.show_workflow(train)
    train.preset_combo.setCurrentText("s1")
    train.lq_edit.setText(str(tagan / "lq"))
    train.hq_edit.setText(str(tagan / "hq"))
    run = work / "run_s1"
    train.out_edit.setText(str(run))
    train.iterations_spin.setValue(iterations)
    train.val_every_spin.setValue(max(1, iterations // 6))
    train.patch_spin.setValue(96)
    train.batch_spin.setValue(4)
    train.width_spin.setValue(16)  # a small model: a CPU-friendly run
    train.device_combo.setCurrentText("auto")
    process = train.start()
    if process is None:
        return None
    try:
        wait_for(app, lambda: any("val_ssim" in r for r in process.records) or not train.is_running, 1800,
                 "the first validation")
        wait_for(app, lambda: len([r for r in process.records if "val_ssim" in r]) >= 3 or not train.is_running,
                 3600, "three validations")
        pump(app, 2.5)  # let the preview timer pick up the newest validation images
        train.refresh_previews()
        save(window, out, "4_training_monitor")
        wait_for(app, lambda: not train.is_running, 3600, "the training run")
    except TimeoutError:
        train.stop()
        wait_for(app, lambda: not train.is_running, 120, "the training run to stop")
    pump(app, 0.5)
    train.refresh_previews()
    save(window, out, "4b_training_finished")
    return run if is_run_dir(run) else None


if __name__ == "__main__":
    sys.exit(main())
