"""Regenerate the window's screenshots: every panel at 1366x768 and 1920x1080, and the README's two images.

Run under a virtual X server (about 3-5 minutes on 2 CPU cores)::

    xvfb-run -a -s "-screen 0 1920x1080x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python scripts/screenshots.py --out /tmp/screens

(``QT_QPA_PLATFORM=offscreen`` works too: every image is the window's own rendering, ``QWidget.grab``.)

What it does, through the window's own widgets as a user would: File > Open sample (the bundled
widefield/confocal nucleus, registered and cropped as ``decongan demo`` does), Deconvolve (Richardson-Lucy
with the sample's assumed optics, NA 1.4 oil, 461 nm), Predict with the bundled S1 model, then the
comparison LQ | RL | GAN | GT; a short real ``decongan train`` run fills the training monitor (skip it
with ``--train-iterations 0``). For each size it saves into ``--out``:

    <size>/panel_<Register|Deconvolve|Train|Predict|Batch|Export>.png   each workflow panel
    <size>/compare.png, consistency.png, error_map.png, metrics.png      the comparison views
    <size>/training_monitor.png, export_preview.png

and, with ``--readme DIR`` (default ``docs/screenshots``), the README's images, each under 300 KB:
``window_lq_rl_gan_gt.png`` (the window at 1366x768 comparing LQ | RL | GAN | GT) and
``demo_comparison.png`` (the comparison figure ``decongan demo`` writes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data"
SIZES = ((1366, 768), (1920, 1080))
README_LIMIT_BYTES = 300_000
#: the sample's assumed optics (app.commands.demo states them in its report)
SAMPLE_OPTICS = {"na": 1.4, "ni": 1.515, "wavelength_nm": 461.0}


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


def save(window, path: Path) -> Path:
    """The window as rendered (``QWidget.grab``) into ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(path))
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return path


def small_png(source: Path, dest: Path, *, limit: int = README_LIMIT_BYTES, max_width: int = 1400) -> Path:
    """Copy ``source`` to ``dest`` as a PNG under ``limit`` bytes: downscaled to ``max_width`` and, when still
    too large, reduced to an adaptive 256-colour palette (what a README image needs)."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > max_width:
            image = image.resize((max_width, round(image.height * max_width / image.width)), Image.Resampling.LANCZOS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        image.save(dest, optimize=True)
        colours = 256
        while dest.stat().st_size > limit and colours >= 32:
            image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(dest, optimize=True)
            colours //= 2
    size = dest.stat().st_size
    if size > limit:
        raise RuntimeError(f"{dest} is {size} bytes, over the {limit} byte limit")
    print(f"wrote {dest} ({size // 1024} KB)")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the screenshots (one sub-folder per size)")
    parser.add_argument("--readme", type=Path, default=REPO / "docs" / "screenshots",
                        help="folder for the README's two images ('none' to skip)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (training monitor)")
    parser.add_argument("--train-iterations", type=int, default=40,
                        help="iterations of the short real training run shown in the monitor (0: no run)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="decongan-screens-"))
    os.environ["DECONGAN_SETTINGS"] = str(work / "settings.ini")

    from decongan.app.gui.main import create_application
    from decongan.app.gui.main_window import MainWindow

    app = create_application()
    window = MainWindow()
    window.resize(*SIZES[0])
    window.show()
    pump(app, 0.5)

    # -- launch -> Open sample -> Deconvolve -> Predict: LQ | RL | GAN | GT ------------------------------
    window.open_sample()
    wait_for(app, lambda: window.session.gt is not None and idle(window), 120, "the sample")
    decon = window.deconvolve_panel
    window.show_workflow(decon)
    decon.na_spin.setValue(SAMPLE_OPTICS["na"])
    decon.ni_spin.setValue(SAMPLE_OPTICS["ni"])
    decon.wavelength_spin.setValue(SAMPLE_OPTICS["wavelength_nm"])
    decon.run()
    wait_for(app, lambda: any(lay.name.startswith("RL") for lay in window.session.layers), 600, "deconvolution")
    predict = window.predict_panel
    window.show_workflow(predict)
    if not predict.run_edit.text():
        predict.bundled_combo.setCurrentIndex(1)
    predict.device_combo.setCurrentText("cpu")
    predict.run()
    wait_for(app, lambda: len(window.session.restored) >= 2, 900, "prediction with the bundled model")
    wait_for(app, lambda: idle(window) and window.evaluation is not None and not window._evaluation_stale(),
             600, "the comparison")

    monitor = _train(window, app, args.data, work, args.train_iterations)
    export = window.export_panel
    export.out_edit.setText(str(work / "export"))

    for width, height in SIZES:
        folder = args.out / f"{width}x{height}"
        window.resize(width, height)
        window.show_compare()
        window.show_workflow(window.deconvolve_panel)  # the first step of a comparison beside its result
        window.viewer.reset_view()
        pump(app, 0.8)
        window.bottom_tabs.setCurrentWidget(window.metrics)
        pump(app, 0.3)
        compare = save(window, folder / "compare.png")
        if (width, height) == SIZES[0] and str(args.readme) != "none":
            small_png(compare, args.readme / "window_lq_rl_gan_gt.png")
        save(window, folder / "metrics.png")
        for mode, button in (("consistency", window.viewer.consistency_button), ("error_map", window.viewer.error_button)):
            button.click()
            wait_for(app, lambda: idle(window), 300, f"the {mode}")
            pump(app, 0.5)
            save(window, folder / f"{mode}.png")
            button.click()
        for panel in window.workflow_panels:
            window.show_workflow(panel)
            pump(app, 0.4)
            save(window, folder / f"panel_{panel.title}.png")
        if monitor:
            window.show_training_monitor()
            pump(app, 0.5)
            save(window, folder / "training_monitor.png")
        window.show_workflow(export)
        export.preview()
        wait_for(app, lambda: export.preview_ready and idle(window), 300, "the export preview")
        pump(app, 0.5)
        save(window, folder / "export_preview.png")

    window.close()
    pump(app, 0.5)
    if str(args.readme) != "none":
        _demo_figure(work, args.readme)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _demo_figure(work: Path, readme: Path) -> Path:
    """The comparison figure of ``decongan demo`` (bundled sample and model), as the README shows it."""
    from decongan.app.commands.demo import run_demo

    outputs = run_demo(work / "demo", formats=("png",), dpi=150, log=lambda message: print(f"demo: {message}"))
    return small_png(outputs.out_dir / "figures" / "comparison.png", readme / "demo_comparison.png")


def _train(window, app, data: Path, work: Path, iterations: int) -> bool:
    """A short real `decongan train` run from the Train panel on TA-GAN pairs, for the monitor's curves."""
    if iterations <= 0:
        return False
    tagan = data / "tagan_confocal_vs_sted"
    if not tagan.is_dir():
        print(f"no training monitor: {tagan} not found")
        return False
    train = window.train_panel
    window.show_workflow(train)
    train.preset_combo.setCurrentText("s1")
    train.lq_edit.setText(str(tagan / "lq"))
    train.hq_edit.setText(str(tagan / "hq"))
    train.out_edit.setText(str(work / "run_s1"))
    train.iterations_spin.setValue(iterations)
    train.val_every_spin.setValue(max(1, iterations // 4))
    train.patch_spin.setValue(48)
    train.batch_spin.setValue(2)
    train.width_spin.setValue(4)  # a tiny model: a CPU-friendly run
    train.device_combo.setCurrentText("cpu")
    process = train.start()
    if process is None:
        return False
    wait_for(app, lambda: not train.is_running, 1200, "the training run")
    pump(app, 0.5)
    train.refresh_previews()
    return True


if __name__ == "__main__":
    sys.exit(main())
