"""Training panel (mirrors ``decongan train``): runs the CLI in a child process and monitors it live.

Loss curves and validation metrics come from the JSON lines the CLI prints; validation previews
are the images the run writes into its folder. Stop sends SIGINT (the CLI checkpoints and exits),
Resume starts the same command with ``--resume``. A crash of the child never closes the window.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from decongan.app.gui.panels.base import Context, PathEdit, WorkflowPanel, combo, int_spin
from decongan.app.gui.process_job import ProcessJob, decongan_command

PRESETS = ("s1", "s2", "s3", "s4", "s5")
DEVICES = ("auto", "cpu", "cuda")
#: record keys that are bookkeeping, not curves
NON_CURVE_KEYS = {"step", "total", "eta_s", "iteration", "epoch", "lr", "lr_g", "lr_d", "elapsed_s", "seconds",
                  "it_per_s", "best_iteration", "best_metric", "world_size", "global_batch_size",
                  # discriminator outputs (logits), not losses: they would swamp the loss axis
                  "d_real", "d_fake"}
#: validation keys (``val_*``: the model on held-out images; ``lq_*``: the LQ input itself, the baseline)
VALIDATION_PREFIXES = ("val_", "lq_")
PSNR_SUFFIX = "psnr"
SKIPPED_VALIDATION = ("mse", "nrmse")  # redundant with PSNR; kept in the table, not plotted
CURVE_COLOURS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#DDDDDD"]
PREVIEW_SUFFIXES = (".png", ".tif", ".tiff")
PREVIEW_TITLES = {"1_lq": "LQ", "2_gan": "GAN", "3_gt": "GT"}


def split_record(record: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(loss values, validation values) of one JSON record of ``decongan train``.

    Losses are the numeric keys that are neither bookkeeping nor validation; validation values are the
    ``val_*`` (model) and ``lq_*`` (LQ baseline) metrics, without MSE/NRMSE. Non-finite values are skipped.
    """
    losses: dict[str, float] = {}
    validation: dict[str, float] = {}
    if record.get("event") == "done":
        return losses, validation
    for key, value in record.items():
        if key in NON_CURVE_KEYS or key.startswith("best_") or isinstance(value, bool) \
                or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            continue
        if key.startswith(VALIDATION_PREFIXES):
            if not key.endswith(SKIPPED_VALIDATION):
                validation[key] = float(value)
        else:
            losses[key] = float(value)
    return losses, validation


class CurvePlot(pg.PlotWidget):
    """Curves keyed by name, appended point by point; the legend sits below the axes (never over the
    newest points) and, with ``baselines``, a marker shows where a model curve first passes its baseline."""

    def __init__(self, title: str, y_label: str, *, baselines: dict[str, str] | None = None) -> None:
        super().__init__(background="#202020")
        self.setTitle(title, color="#DDDDDD", size="9pt")
        self.setLabel("bottom", "iteration")
        self.setLabel("left", y_label)
        self.showGrid(x=True, y=True, alpha=0.25)
        for axis in ("left", "bottom"):
            self.getAxis(axis).enableAutoSIPrefix(False)  # SSIM 0.52 must not read "520 (x0.001)"
        # the legend in the plot's layout, under the bottom axis: outside the data area
        # one column for "model" / "LQ input" (narrow plots), two for the many loss terms
        self.legend = pg.LegendItem(colCount=1 if baselines else 2, labelTextColor="#DDDDDD", labelTextSize="8pt")
        self.plotItem.layout.addItem(self.legend, 4, 1)
        self.plotItem.legend = self.legend
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        #: model curve -> its baseline curve (e.g. val_ssim -> lq_ssim), and where the model first passed it
        self.baselines = dict(baselines or {})
        self.crossings: dict[str, float] = {}
        self.markers: list[pg.InfiniteLine] = []

    def clear_curves(self) -> None:
        self.clear()
        self.legend.clear()
        self.series.clear()
        self.curves.clear()
        self.crossings.clear()
        self.markers.clear()

    def legend_name(self, name: str) -> str:
        """The legend's text: validation curves say whose they are ("model", "LQ input"), losses their key."""
        if name.startswith("val_") and name in self.baselines:
            return "model"
        if name.startswith("lq_") and name in self.baselines.values():
            return "LQ input"
        return name

    def _check_crossing(self, name: str) -> None:
        """Mark the first iteration where ``name`` (or its model curve) is above its baseline at the same x."""
        model = name if name in self.baselines else next((m for m, b in self.baselines.items() if b == name), None)
        if model is None or model in self.crossings:
            return
        mx, my = self.series.get(model, ([], []))
        bx, by = self.series.get(self.baselines[model], ([], []))
        baseline_at = dict(zip(bx, by, strict=True))
        for x, y in zip(mx, my, strict=True):
            if x in baseline_at and y > baseline_at[x]:
                self.crossings[model] = x
                line = pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen("#009E73", width=1, style=Qt.PenStyle.DotLine),
                                       label=f"passes LQ at {x:g}", labelOpts={"position": 0.92, "color": "#009E73",
                                                                               "anchors": [(1, 0), (1, 0)]})
                self.addItem(line)
                self.markers.append(line)
                return

    def add_point(self, name: str, x: float, y: float) -> None:
        xs, ys = self.series.setdefault(name, ([], []))
        xs.append(x)
        ys.append(y)
        curve = self.curves.get(name)
        if curve is None and not any(ys):
            return  # a term that is switched off in this preset (always 0): no curve
        if curve is None:
            colour = CURVE_COLOURS[len(self.curves) % len(CURVE_COLOURS)]
            baseline = name.startswith("lq_")
            pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine if baseline else Qt.PenStyle.SolidLine)
            curve = self.plot(xs, ys, pen=pen, name=self.legend_name(name), symbol=None if baseline else "o", symbolSize=5,
                              symbolBrush=colour)
            self.curves[name] = curve
        else:
            curve.setData(xs, ys)
        if self.baselines:
            self._check_crossing(name)


def preset_defaults(name: str) -> dict[str, Any]:
    """The preset's own values behind the form's "0 = the preset's" fields (engine.learn.presets)."""
    from decongan.engine.learn.presets import load_preset

    preset = load_preset(name)
    kwargs = preset.generator.kwargs
    width = next((kwargs[k] for k in ("base_channels", "features", "num_feat") if k in kwargs), None)
    return {"val_every": preset.validation_every, "patch_size": preset.patch_size, "batch_size": preset.batch_size,
            "width": width}


class TrainPanel(WorkflowPanel):
    """Train a preset on LQ/HQ folders with live monitoring; stop and resume.

    Signals
    -------
    finished(str)  outcome: "succeeded", "failed", "crashed" or "stopped"
    """

    command = "train"
    title = "Train"
    finished = Signal(str)

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.process: ProcessJob | None = None
        form = self.add_group("Run")
        self.preset_combo = combo(PRESETS, "s1", tooltip="S1 residual U-Net, S2 TCAN, S3 cycleGAN, S4 c2GAN, "
                                  "S5 Real-ESRGAN (docs: SEEDS.md)")
        self.lq_edit = PathEdit(folder=True, caption="LQ folder", placeholder="folder of LQ images")
        self.hq_edit = PathEdit(folder=True, caption="HQ folder", placeholder="folder of HQ images (paired by name)")
        self.out_edit = PathEdit(folder=True, caption="Run folder", placeholder="RUN_DIR (created)")
        self.iterations_spin = int_spin(1, 10_000_000, 2000, step=100, tooltip="Training budget in iterations")
        self.device_combo = combo(DEVICES, ctx.settings.get("device"))
        self.val_every_spin = int_spin(0, 1_000_000, 0, step=50, tooltip="Iterations between validations "
                                       "(0 = the preset's)")
        self.patch_spin = int_spin(0, 2048, 0, step=16, suffix=" px", tooltip="LQ patch side (0 = the preset's)")
        self.batch_spin = int_spin(0, 256, 0, tooltip="Patches per iteration (0 = the preset's)")
        self.width_spin = int_spin(0, 256, 0, tooltip="Network base width for a small CPU model "
                                   "(0 = the preset's; e.g. 8 for a quick CPU run)")
        form.addRow("Preset", self.preset_combo)
        form.addRow("LQ", self.lq_edit)
        form.addRow("HQ", self.hq_edit)
        form.addRow("Run folder", self.out_edit)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow("Device", self.device_combo)
        form.addRow("Validate every", self.val_every_spin)
        form.addRow("Patch size", self.patch_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Width", self.width_spin)
        self.use_dataset = QPushButton("Use the open dataset")
        self.use_dataset.clicked.connect(self.fill_from_dataset)
        form.addRow(self.use_dataset)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after saving a checkpoint (resume later)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the run in the run folder (--resume)")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.use_button = QPushButton("Predict with it")
        self.use_button.setToolTip("Use this run in the Predict panel")
        self.use_button.clicked.connect(self._use_model)
        for b in (self.start_button, self.stop_button, self.resume_button, self.use_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.footer.addLayout(buttons)  # always visible, also on a 768 px high screen

        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.status = QLabel("Not running")
        self.status.setWordWrap(True)
        self.outer.addWidget(self.progress)
        self.outer.addWidget(self.status)

        # the monitor (curves, previews, log) is its own widget: the window shows it in the central area
        self.monitor = QWidget()
        grid = QGridLayout(self.monitor)
        grid.setContentsMargins(4, 4, 4, 4)
        self.loss_plot = CurvePlot("Losses", "loss")
        self.val_plot = CurvePlot("Validation SSIM", "SSIM / score", baselines={"val_ssim": "lq_ssim"})
        self.psnr_plot = CurvePlot("Validation PSNR", "PSNR (dB)", baselines={"val_psnr": "lq_psnr"})
        self.preview_widget = pg.GraphicsLayoutWidget()
        self.preview_widget.setBackground("#202020")
        self.preview_label = QLabel("Validation previews (LQ | GAN | GT of a held-out image) appear here")
        self.preview_label.setWordWrap(True)
        self.follow_check = QCheckBox("Log scale (losses)")
        self.follow_check.toggled.connect(lambda on: self.loss_plot.setLogMode(y=on))
        self.monitor_status = QLabel("No training run")
        self.monitor_status.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMaximumHeight(120)
        top = QHBoxLayout()
        top.addWidget(self.monitor_status, 1)
        top.addWidget(self.follow_check)
        grid.addLayout(top, 0, 0, 1, 3)
        grid.addWidget(self.loss_plot, 1, 0)
        grid.addWidget(self.val_plot, 1, 1)
        grid.addWidget(self.psnr_plot, 1, 2)
        previews = QWidget()
        column = QVBoxLayout(previews)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.preview_widget, 1)
        column.addWidget(self.preview_label)
        grid.addWidget(previews, 2, 0, 1, 3)
        grid.addWidget(self.log, 3, 0, 1, 3)
        grid.setColumnStretch(0, 4)  # the losses have the longest legend
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(2, 3)
        grid.setRowStretch(1, 3)  # the curves get the room; previews and log what is left (a 768 px screen)
        grid.setRowStretch(2, 2)
        for plot in (self.loss_plot, self.val_plot, self.psnr_plot):
            plot.setMinimumHeight(220)
        self.preview_widget.setMinimumHeight(120)
        self.show_monitor_button = QPushButton("Show the training monitor")
        self.show_monitor_button.clicked.connect(self._show_monitor)
        self.outer.addWidget(self.show_monitor_button)
        self.outer.addStretch(1)
        self.add_command_row()
        self.preview_items: list[pg.ImageItem] = []
        self.preview_files: list[Path] = []
        self._preview_timer = QTimer(self)
        self._preview_timer.setInterval(2000)
        self._preview_timer.timeout.connect(self.refresh_previews)
        self.connect_refresh(self.preset_combo, self.lq_edit, self.hq_edit, self.out_edit, self.iterations_spin,
                             self.device_combo, self.val_every_spin, self.patch_spin, self.batch_spin, self.width_spin)
        self.preset_combo.currentTextChanged.connect(self.show_preset_defaults)
        self.show_preset_defaults()
        self.refresh_command()

    def show_preset_defaults(self, *args: Any) -> None:
        """Fields left at 0 show the preset's real value ("preset: 256 px"), not "0"."""
        try:
            defaults = preset_defaults(self.preset_combo.currentText())
        except Exception as err:  # noqa: BLE001 - an unreadable preset is said, not hidden
            defaults = {}
            self.status.setText(f"preset {self.preset_combo.currentText()}: {err}")
        for key, spin in (("val_every", self.val_every_spin), ("patch_size", self.patch_spin),
                          ("batch_size", self.batch_spin), ("width", self.width_spin)):
            value = defaults.get(key)
            spin.setSpecialValueText(f"preset: {value}{spin.suffix()}" if value is not None else "preset's")

    # -- form ----------------------------------------------------------------------------------------
    def fill_from_dataset(self) -> None:
        ds = self.ctx.session.dataset
        if ds is None:
            return
        if ds.lq_dir:
            self.lq_edit.setText(ds.lq_dir)
        if ds.hq_dir:
            self.hq_edit.setText(ds.hq_dir)

    def parameters(self) -> dict[str, Any]:
        return {"preset": self.preset_combo.currentText(), "lq": self.lq_edit.text(), "hq": self.hq_edit.text(),
                "out": self.out_edit.text(), "iterations": self.iterations_spin.value(),
                "device": self.device_combo.currentText(), "val_every": self.val_every_spin.value() or None,
                "patch_size": self.patch_spin.value() or None, "batch_size": self.batch_spin.value() or None,
                "width": self.width_spin.value() or None}

    def cli_args(self, *, resume: bool = False) -> list[str]:
        args = ["train", "--preset", self.preset_combo.currentText(), "--lq", self.lq_edit.text() or "LQ_DIR"]
        if self.hq_edit.text():
            args += ["--hq", self.hq_edit.text()]
        args += ["--out", self.out_edit.text() or "RUN_DIR", "--iterations", str(self.iterations_spin.value()),
                 "--device", self.device_combo.currentText()]
        for flag, spin in (("--val-every", self.val_every_spin), ("--patch-size", self.patch_spin),
                           ("--batch-size", self.batch_spin), ("--width", self.width_spin)):
            if spin.value():
                args += [flag, str(spin.value())]
        if resume:
            args.append("--resume")
        return args

    # -- process -------------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running

    def start(self, *, resume: bool = False, argv: list[str] | None = None) -> ProcessJob | None:
        """Start ``decongan train`` (or ``argv``, for tests) in a child process."""
        if self.is_running:
            return self.process
        if argv is None:
            missing = [n for n, w in (("LQ folder", self.lq_edit), ("run folder", self.out_edit)) if not w.text()]
            if missing:
                self.ctx.errors.present(ValueError(f"choose the {' and the '.join(missing)}"), context="Train")
                return None
            argv = decongan_command(*self.cli_args(resume=resume))
        if not resume:
            for plot in (self.loss_plot, self.val_plot, self.psnr_plot):
                plot.clear_curves()
        self.process = ProcessJob(f"Training {self.preset_combo.currentText()}", argv, parent=self)
        self.process.record.connect(self._on_record)
        self.process.line.connect(self.log.appendPlainText)
        self.process.failed.connect(lambda err: self.ctx.errors.present(err, context="Training"))
        self.process.finished.connect(self._on_finished)
        self.log.appendPlainText(f"$ {self.process.command_line}")
        self._show_monitor()
        self.status.setText("Starting...")
        self.progress.setRange(0, 0)
        self.process.start()
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._preview_timer.start()
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            self.status.setText("Stopping (saving a checkpoint)...")
            self.process.stop()

    def shutdown(self) -> None:
        """Window closing: stop the child and wait briefly."""
        if self.is_running:
            self.process.stop(grace_ms=5000)
            self.process.wait(8000)

    def _on_record(self, record: dict[str, Any]) -> None:
        step = record.get("step", record.get("iteration"))
        total = record.get("total")
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(int(min(step or 0, total)))
        losses, validation = split_record(record)
        x = float(step or 0)
        for name, value in losses.items():
            self.loss_plot.add_point(name, x, value)
        for name, value in validation.items():
            (self.psnr_plot if name.endswith(PSNR_SUFFIX) else self.val_plot).add_point(name, x, value)
        eta = record.get("eta_s")
        eta_text = f", ETA {int(eta) // 60:d}:{int(eta) % 60:02d}" if isinstance(eta, (int, float)) else ""
        text = f"{record.get('message') or ''} (step {step}{' / ' + str(total) if total else ''}{eta_text})"
        self.status.setText(text)
        self.monitor_status.setText(text)
        if validation:
            self.refresh_previews()

    def _on_finished(self, code: int, outcome: str) -> None:
        self._preview_timer.stop()
        self.refresh_previews()
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        if outcome == "stopped":
            self.status.setText(self.stopped_text())
        else:
            self.status.setText(f"Training {outcome}" + (f" (exit status {code})" if outcome != "succeeded" else ""))
        self.monitor_status.setText(self.status.text())
        self.finished.emit(outcome)

    def stopped_text(self) -> str:
        """What a Stop did, in words (never an exit status): the CLI's own line about its checkpoint when it
        printed one, or that the child had to be ended."""
        process = self.process
        if process is not None and getattr(process, "killed", False):
            return ("Training stopped by you: it did not stop within the grace period and was ended; Resume "
                    "continues from the last checkpoint it saved")
        tail = list(process.stderr_tail) if process is not None else []
        said = next((line.split(": ", 1)[1] for line in reversed(tail) if line.startswith("decongan train: stopp")),
                    None)
        if said:
            return f"Training stopped by you: {said.removeprefix('stopped; ')}"
        return "Training stopped by you - press Resume to continue"

    def _show_monitor(self) -> None:
        window = self.ctx.window
        if window is not None and hasattr(window, "show_training_monitor"):
            window.show_training_monitor()

    def _use_model(self) -> None:
        window = self.ctx.window
        if window is not None and self.out_edit.text():
            window.predict_panel.set_run_dir(self.out_edit.text())
            window.show_workflow(window.predict_panel)

    # -- previews ------------------------------------------------------------------------------------
    def preview_folder(self) -> Path | None:
        run = self.out_edit.path()
        if run is None:
            return None
        for name in ("validation", "previews", "val"):
            if (run / name).is_dir():
                return run / name
        return None

    def refresh_previews(self) -> None:
        """Show the newest validation preview images written by the run (if any)."""
        folder = self.preview_folder()
        if folder is None:
            return
        files = sorted((p for p in folder.rglob("*") if p.suffix.lower() in PREVIEW_SUFFIXES),
                       key=lambda p: p.stat().st_mtime)
        if not files:
            return
        newest = files[-1]
        group = sorted(p for p in newest.parent.iterdir() if p.suffix.lower() in PREVIEW_SUFFIXES)[:3]
        if group == self.preview_files:
            return
        from decongan.engine.io import ImageReadError, read_image

        self.preview_widget.clear()
        self.preview_items = []
        for i, path in enumerate(group):
            try:
                data = read_image(path).data
            except ImageReadError:
                continue
            if data.ndim == 3 and data.shape[-1] in (3, 4):
                data = data[..., :3]
            elif data.ndim > 2:
                data = data.reshape((-1,) + data.shape[-2:])[0]
            role = next((t for key, t in PREVIEW_TITLES.items() if path.stem.endswith(key)), path.stem)
            self.preview_widget.addLabel(role, row=0, col=i, color="#DDDDDD", size="10pt")
            view = self.preview_widget.addViewBox(row=1, col=i, lockAspect=True, invertY=True)
            item = pg.ImageItem(axisOrder="row-major")
            lo, hi = np.percentile(data, [0.5, 99.5]) if data.ndim == 2 else (0, 255)
            item.setImage(data, autoLevels=False, levels=(float(lo), float(hi) if hi > lo else float(lo) + 1))
            view.addItem(item)
            self.preview_items.append(item)
        self.preview_files = group
        self.preview_label.setText(f"Validation previews: {newest.parent.name} ({group[0].stem.rsplit('_', 2)[0]})")
