"""Batch panel (mirrors ``decongan batch``): every image of a folder through the chosen methods, then
the comparison and report; a progress bar, a per-file status list, cancel and resume.

The batch runs as the CLI in a child process (``decongan batch ... --json-progress``), like training:
the same code, isolated from the window. The per-file status comes from the batch manifest
(``OUT/manifest.json``, rewritten atomically after every output by :mod:`engine.evaluate.batch`), the
overall progress from the JSON lines. Cancel sends SIGINT (the CLI stops after the current step
and keeps the manifest); Resume runs the same command again, which skips finished work.

The panel states everything the batch uses: its own pixel size (asked for when the files have none
and a PSF needs it, never taken silently from another panel), its own GAN model (a run folder chosen
here; "Same as Predict" copies the Predict panel's explicitly), and at the end what was restored and
why anything failed, in the dialog (not only in a tooltip). The model may be a bioimage.io package
(``.zip`` / ``rdf.yaml``): the form names it, and one DeconGAN cannot run is refused with the engine's
message before the batch starts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from decongan.app.gui.error_dialog import ErrorReport
from decongan.app.gui.panels.base import (
    Context,
    PathEdit,
    WorkflowPanel,
    combo,
    double_spin,
    int_spin,
    open_local_file,
)
from decongan.app.gui.panels.predict import ModelPathEdit, describe_package, is_package, refusal_text
from decongan.app.gui.process_job import ProcessJob, decongan_command

DECON = ("engine", "fiji", "none")
REGISTER = ("none", "translation", "rigid", "similarity", "affine")
CONSISTENCY = ("auto", "identity", "off")
STATUS_COLOURS = {"done": "#009E73", "skipped": "#56B4E9", "failed": "#D55E00", "queued": "#888888"}
# the progress bar counts what the current phase of `decongan batch` counts
PROGRESS_FORMATS = {"restore": "restore: %v / %m steps", "compare": "compare: %v / %m fields",
                    "report": "report: %v / %m outputs"}


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The batch manifest's entries (empty when there is none yet or it cannot be read)."""
    path = Path(out_dir) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


class BatchPanel(WorkflowPanel):
    """Folders, methods and options; Start / Cancel / Resume; per-file status.

    Signals
    -------
    rows_ready(list)   metric rows of the finished batch (OUT/metrics.csv) for the dataset table
    finished(str)      "succeeded", "failed" (some files failed), "crashed" or "stopped"
    """

    command = "batch"
    title = "Batch"
    rows_ready = Signal(list)
    finished = Signal(str)

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.process: ProcessJob | None = None
        self.process_error: Exception | None = None
        self.inputs: list[Path] = []
        self.items: dict[str, QTreeWidgetItem] = {}
        self.methods: list[str] = []

        form = self.add_group("Folders")
        self.in_edit = PathEdit(folder=True, caption="Folder of input images", placeholder="IN_DIR (LQ images)")
        self.gt_edit = PathEdit(folder=True, caption="Ground truths (same file names)", placeholder="GT folder (optional)")
        self.out_edit = PathEdit(folder=True, caption="Output folder", placeholder="OUT_DIR (created)")
        use = QPushButton("Use the open dataset")
        use.clicked.connect(self.fill_from_dataset)
        self.pixel_spin = double_spin(0.0, 100_000.0, 0.0, decimals=2, step=10.0, suffix=" nm",
                                      tooltip="Lateral pixel size of every input image (--pixel-nm); 'from each "
                                      "file' reads it from each file's calibration")
        self.pixel_spin.setSpecialValueText("from each file")
        form.addRow("Input", self.in_edit)
        form.addRow("Ground truth", self.gt_edit)
        form.addRow("Output", self.out_edit)
        form.addRow("Pixel size", self.pixel_spin)
        form.addRow(use)

        form2 = self.add_group("Methods")
        self.decon_combo = combo(DECON, "engine", tooltip="Richardson-Lucy with the engine, with Fiji's "
                                 "DeconvolutionLab2, or none; PSF and iterations from the Deconvolve panel")
        self.model_edit = ModelPathEdit(caption="Training run folder of the GAN",
                                        placeholder="none: no GAN column (run folder or bioimage.io .zip)")
        self.which_combo = combo(("best", "last"), "best", tooltip="best: the checkpoint with the best validation "
                                 "score; last: the latest")
        same = QPushButton("Same as Predict")
        same.setToolTip("Copy the Predict panel's run folder and checkpoint")
        same.clicked.connect(self.use_predict_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_edit, 1)
        model_row.addWidget(same)
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        self.register_combo = combo(REGISTER, "none", tooltip="Register each ground truth onto its input first")
        self.consistency_combo = combo(CONSISTENCY, "auto", tooltip="Data-consistency map: with the PSF (auto), "
                                       "identity forward model, or off")
        self.decon_info = QLabel("")
        self.decon_info.setWordWrap(True)
        form2.addRow("Deconvolution", self.decon_combo)
        form2.addRow(self.decon_info)
        form2.addRow("GAN model", model_row)
        form2.addRow("Checkpoint", self.which_combo)
        form2.addRow(self.model_info)
        form2.addRow("Register GT", self.register_combo)
        form2.addRow("Consistency", self.consistency_combo)
        self.dpi_spin = int_spin(72, 1200, 300, step=50, suffix=" dpi", tooltip="Figure resolution of the report")
        form2.addRow("Figures", self.dpi_spin)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start_batch)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Stop after the current image (finished images are kept)")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Run again: finished, unchanged images are skipped (manifest)")
        self.resume_button.clicked.connect(self.start_batch)
        self.report_button = QPushButton("Open report")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self.open_report)
        for b in (self.start_button, self.cancel_button, self.resume_button, self.report_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.footer.addLayout(buttons)  # always visible, also on a 768 px high screen

        self.progress = QProgressBar()
        self.progress.setFormat(PROGRESS_FORMATS["restore"])
        self.status = QLabel("Not running")
        self.status.setWordWrap(True)
        self.outer.addWidget(self.progress)
        self.outer.addWidget(self.status)
        self.tree = QTreeWidget()
        self.tree.setRootIsDecorated(False)
        self.tree.setHeaderLabels(["file"])
        self.tree.setMinimumHeight(220)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.outer.addWidget(self.tree, 1)
        self.add_command_row()
        self.connect_refresh(self.in_edit, self.gt_edit, self.out_edit, self.pixel_spin, self.decon_combo,
                             self.model_edit, self.which_combo, self.register_combo, self.consistency_combo,
                             self.dpi_spin)
        self.model_edit.textChanged.connect(self._describe_model)
        self._describe_model()
        self.decon_combo.currentTextChanged.connect(self._describe_decon)
        self.in_edit.textChanged.connect(self._describe_decon)
        self._describe_decon()
        self.refresh_command()

    # -- form ----------------------------------------------------------------------------------------
    def fill_from_dataset(self) -> None:
        ds = self.ctx.session.dataset
        if ds is None:
            return
        if ds.lq_dir:
            self.in_edit.setText(ds.lq_dir)
        self.gt_edit.setText(ds.hq_dir if ds.hq_dir and ds.paired else "")
        # the pixel size the user entered for this dataset (file metadata is read by the batch itself)
        override = self.ctx.session.pixel_size_override
        self.pixel_spin.setValue(override * 1000.0 if override else 0.0)

    def use_predict_model(self) -> None:
        """Take the Predict panel's run folder and checkpoint (an explicit choice, shown in the form)."""
        _, predict = self._window_panels()
        if predict is not None:
            self.model_edit.setText(predict.run_edit.text())
            self.which_combo.setCurrentText(predict.which_combo.currentText())

    def _describe_model(self, *args: Any) -> None:
        run = self.model_edit.path()
        self.which_combo.setEnabled(not is_package(run))  # a package has one set of weights
        if run is None:
            self.model_info.setText("No GAN column: choose a training run folder or a bioimage.io package (or "
                                    "Same as Predict).")
            return
        _, predict = self._window_panels()
        if is_package(run):
            try:
                info = describe_package(run)
            except Exception as err:  # noqa: BLE001 - the engine's refusal, shown before anything runs
                self.model_info.setText(refusal_text(err))
                return
            tile = f"; tile {predict.tile_spin.value()} px from the Predict panel" if predict is not None else ""
            px = f"{info.pixel_size_um:.4g} µm/px" if info.pixel_size_um else "no pixel size declared"
            self.model_info.setText(f"GAN column: bioimage.io package {info.name} ({run.name}; {px}; overlap from "
                                    f"its {info.halo} px halo{tile})")
            return
        tiling = (f"; tile {predict.tile_spin.value()} px, overlap {predict.overlap_spin.value()} px from the "
                  "Predict panel") if predict is not None else ""
        self.model_info.setText(f"GAN column: {run.name} ({self.which_combo.currentText()} checkpoint{tiling})")

    def pixel_nm(self) -> float | None:
        """The pixel size (nm) given for every input, or None (each file's calibration)."""
        return self.pixel_spin.value() or None

    def _window_panels(self) -> tuple[Any, Any]:
        window = self.ctx.window
        return (window.deconvolve_panel, window.predict_panel) if window is not None else (None, None)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self._describe_decon()

    def _describe_decon(self, *args: Any) -> None:
        decon, _ = self._window_panels()
        if decon is None or self.decon_combo.currentText() == "none":
            self.decon_info.setText("")
            return
        p = decon.parameters()
        self.decon_info.setText(f"{p['method'].upper()} {p['iterations']} it, {p['psf']['model']} PSF "
                                f"(Deconvolve panel); Born & Wolf PSFs are sized for each image's pixel size")

    def model_dir(self) -> str | None:
        """The GAN's run folder chosen in this panel, or None (no GAN column)."""
        return self.model_edit.text() or None

    def parameters(self) -> dict[str, Any]:
        return {"input": self.in_edit.text(), "gt": self.gt_edit.text(), "out": self.out_edit.text(),
                "pixel_nm": self.pixel_nm(), "decon": self.decon_combo.currentText(), "model": self.model_dir(),
                "which": self.which_combo.currentText(),
                "register_gt": self.register_combo.currentText(), "consistency": self.consistency_combo.currentText()}

    def cli_args(self) -> list[str]:
        """``decongan batch`` arguments for this form (PSF, RL and GAN options from their panels)."""
        args = ["batch", self.in_edit.text() or "IN_DIR", "--out", self.out_edit.text() or "OUT_DIR"]
        if self.gt_edit.text():
            args += ["--gt", self.gt_edit.text()]
        decon_panel, predict = self._window_panels()
        decon = self.decon_combo.currentText()
        args += ["--decon", decon]
        needs_psf = decon != "none" or self.consistency_combo.currentText() == "auto"
        if decon_panel is not None:
            p = decon_panel.parameters()
            if decon != "none":
                args += ["--iterations", str(p["iterations"]), "--method", p["method"], "--device", p["device"]]
                if decon == "engine":
                    args += ["--edges", p["edges"]]
                if p["method"] == "rltv":
                    args += ["--tv-lambda", f"{p['tv_lambda']:g}"]
            if needs_psf:
                psf = p["psf"]
                if psf["model"] == "born-wolf":
                    args += ["--na", f"{psf['na']:g}", "--ni", f"{psf['ni']:g}", "--wavelength-nm",
                             f"{psf['wavelength_nm']:g}"]
                elif psf["model"] == "file":
                    args += ["--psf", psf.get("path") or "PSF.tif"]
                else:
                    args += ["--psf", str(Path(self.out_edit.text() or "OUT_DIR") / "gui_psf.tif")]
            if decon == "fiji" and decon_panel.fiji_location.text():
                args += ["--fiji-dir", decon_panel.fiji_location.text()]
        model = self.model_dir()
        if model and is_package(model):  # one set of weights; its halo sets the overlap
            args += ["--model", model]
            if predict is not None:
                args += ["--tile", str(predict.tile_spin.value())]
        elif model:
            args += ["--model", model, "--which", self.which_combo.currentText()]
            if predict is not None:
                args += ["--tile", str(predict.tile_spin.value()), "--overlap", str(predict.overlap_spin.value())]
        if self.pixel_nm():
            args += ["--pixel-nm", f"{self.pixel_nm():g}"]
        if self.register_combo.currentText() != "none":
            args += ["--register-gt", self.register_combo.currentText()]
        args += ["--consistency", self.consistency_combo.currentText(), "--dpi", str(self.dpi_spin.value())]
        return args

    # -- running -------------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running

    def start_batch(self) -> ProcessJob | None:
        """Run ``decongan batch`` (again: finished work is skipped) in a child process."""
        if self.is_running:
            return self.process
        missing = [n for n, w in (("input folder", self.in_edit), ("output folder", self.out_edit)) if not w.text()]
        if missing:
            self.ctx.errors.present(ValueError(f"choose the {' and the '.join(missing)}"), context="Batch")
            return None
        from decongan.engine.io import ImageReadError, list_images

        try:
            self.inputs = list_images(self.in_edit.path())
        except ImageReadError as err:
            self.ctx.errors.present(err, context="Batch")
            return None
        model = self.model_dir()
        if model and is_package(model):
            try:
                describe_package(Path(model))
            except Exception as err:  # noqa: BLE001 - refused with the engine's reason before starting
                self.model_info.setText(refusal_text(err))
                self.ctx.errors.present(err, context="Batch")
                return None
        problem = self.pixel_size_problem()
        if problem:
            self.ctx.errors.present(ValueError(problem), context="Batch")
            self.pixel_spin.setFocus()
            return None
        args = self.cli_args()
        decon_panel, _ = self._window_panels()
        if "--psf" in args and decon_panel is not None and decon_panel.model == "gaussian":
            psf_path = Path(args[args.index("--psf") + 1])
            try:
                decon_panel.save_psf(psf_path)
            except (OSError, ValueError) as err:
                self.ctx.errors.present(err, context="Batch PSF")
                return None
        self._describe_decon()
        self._fill_tree()
        self.progress.setFormat(PROGRESS_FORMATS["restore"])
        self.process = ProcessJob("Batch", decongan_command(*args, "--json-progress"), parent=self)
        self.process.record.connect(self._on_record)
        self.process_error = None
        self.process.failed.connect(self._on_failed)
        self.process.finished.connect(self._on_finished)
        self.status.setText(f"$ {self.process.command_line}")
        self.progress.setRange(0, 0)
        self.process.start()
        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.report_button.setEnabled(False)
        return self.process

    def needs_pixel_size(self) -> bool:
        """True when a PSF in physical units is used: RL or the consistency map with a computed PSF."""
        decon_panel, _ = self._window_panels()
        if self.decon_combo.currentText() == "none" and self.consistency_combo.currentText() != "auto":
            return False
        return decon_panel is None or decon_panel.model != "file"

    def pixel_size_problem(self) -> str:
        """Why the batch cannot start for want of a pixel size ("" when it can): the first input without
        calibration is named, and where to enter the value."""
        if self.pixel_nm() or not self.needs_pixel_size() or not self.inputs:
            return ""
        from decongan.engine.io import ImageReadError, read_image

        first = self.inputs[0]
        try:
            calibrated = bool(read_image(first).pixel_size_um)
        except ImageReadError:
            return ""  # the batch names a broken file itself and goes on with the others
        if calibrated:
            return ""
        return (f"the pixel size of {first.name} is unknown (its file has no calibration) and the PSF of the "
                "deconvolution and the consistency maps needs it: enter it in Pixel size (Batch panel), or set "
                "Deconvolution to none and Consistency to identity or off")

    def cancel(self) -> None:
        if self.process is not None and self.is_running:
            self.status.setText("Cancelling after the current image...")
            self.process.stop()

    def shutdown(self) -> None:
        """Window closing: stop the child (the manifest keeps what is done) and wait briefly."""
        if self.is_running:
            self.process.stop(grace_ms=5000)
            self.process.wait(8000)

    def _fill_tree(self) -> None:
        self.tree.clear()
        self.items = {}
        for path in self.inputs:
            item = QTreeWidgetItem([path.name])
            item.setToolTip(0, str(path))
            self.tree.addTopLevelItem(item)
            self.items[str(path)] = item
        self.methods = []
        self.refresh_statuses()

    def refresh_statuses(self) -> dict[str, dict[str, str]]:
        """Update the per-file list from the manifest; return {file name: {method: status}}."""
        out = self.out_edit.path()
        entries = read_manifest(out) if out is not None else {}
        for entry in entries.values():
            method = entry.get("method")
            if method and method not in self.methods:
                self.methods.append(method)
        self.tree.setHeaderLabels(["file", *(m.split(" (")[0] for m in self.methods)])
        for col, method in enumerate(self.methods, start=1):
            self.tree.headerItem().setToolTip(col, method)
        statuses: dict[str, dict[str, str]] = {}
        by_input: dict[str, dict[str, dict[str, Any]]] = {}
        for entry in entries.values():
            by_input.setdefault(str(Path(entry.get("input", ""))), {})[entry.get("method", "")] = entry
        for key, item in self.items.items():
            row = by_input.get(key, {})
            statuses[Path(key).name] = {}
            for col, method in enumerate(self.methods, start=1):
                entry = row.get(method)
                status = entry.get("status", "queued") if entry else "queued"
                statuses[Path(key).name][method] = status
                item.setText(col, status)
                item.setForeground(col, QBrush(QColor(STATUS_COLOURS.get(status, "#DDDDDD"))))
                item.setToolTip(col, (entry or {}).get("error") or (entry or {}).get("output") or "")
        return statuses

    def _on_record(self, record: dict[str, Any]) -> None:
        """One JSON progress line of the child: ``phase`` is restore, compare or report (see ``decongan batch``)."""
        total = record.get("total")
        step = int(record.get("step") or 0)
        message = record.get("message", "")
        phase = record.get("phase", "restore")
        eta = record.get("eta_s")
        eta_text = f" - ETA {int(eta) // 60}:{int(eta) % 60:02d}" if isinstance(eta, (int, float)) else ""
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(min(step, int(total)))
        self.progress.setFormat(PROGRESS_FORMATS.get(phase, "%v / %m"))
        if phase == "restore":
            self.status.setText(f"{message}{eta_text}")
        elif phase == "compare":
            self.status.setText(f"Comparing field {step}/{total}: {message}{eta_text}")
        else:
            self.status.setText(f"Writing figures, tables and the report: {message}")
        self.refresh_statuses()

    def _on_failed(self, error: Exception) -> None:
        self.process_error = error  # shown with the per-file causes when the batch has finished

    def outcome_summary(self) -> tuple[str, list[str]]:
        """("N outputs restored in OUT/restored, M failed", one line per method with failures and their causes)."""
        from decongan.app.gui.panels.batch_outcome import summarize_manifest

        out = self.out_edit.path()
        return summarize_manifest(read_manifest(out) if out is not None else {},
                                  out / "restored" if out is not None else None)

    def _on_finished(self, code: int, outcome: str) -> None:
        statuses = self.refresh_statuses()
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        if outcome != "stopped":
            self.progress.setValue(self.progress.maximum())
        failed = sum(1 for per in statuses.values() for s in per.values() if s == "failed")
        report = self.report_path()
        head, causes = self.outcome_summary()
        has_report = report is not None and report.exists() and outcome != "stopped"
        if outcome == "stopped":
            text = f"Cancelled: {head}; finished images are kept - press Resume to continue"
        elif has_report:
            text = f"Done: {head}; report {report}"
        else:
            reason = str(self.process_error) if self.process_error is not None else f"exit status {code}"
            text = f"{head}; no report: {reason}"
        self.status.setText("\n".join([text, *causes]))
        if outcome != "stopped" and (failed or self.process_error is not None):
            details = getattr(self.process_error, "details", "") if self.process_error is not None else ""
            message = "\n".join([head + ("; the report compares the others" if has_report else "; no report"),
                                 *causes])
            if self.process_error is not None and not causes:
                message += f"\n{self.process_error}"
            self.ctx.errors.present(ErrorReport("Batch: some steps failed", message, details, "Batch",
                                                self.process_error))
        if report is not None and report.exists():
            self.report_button.setEnabled(True)
            rows = self.metric_rows()
            if rows:
                self.rows_ready.emit(rows)
        self.finished.emit(outcome)

    def report_path(self) -> Path | None:
        out = self.out_edit.path()
        return out / "report.html" if out is not None else None

    def metric_rows(self) -> list[dict[str, Any]]:
        """The rows of OUT/metrics.csv (numbers as floats)."""
        out = self.out_edit.path()
        path = out / "metrics.csv" if out is not None else None
        if path is None or not path.exists():
            return []
        rows = []
        with path.open(newline="", encoding="utf-8") as fh:
            for raw in csv.DictReader(fh):
                row: dict[str, Any] = {}
                for key, value in raw.items():
                    try:
                        row[key] = float(value) if value not in ("", None) and key not in ("image", "method") else (
                            value if value != "" else None)
                    except ValueError:
                        row[key] = value
                rows.append(row)
        return rows

    def open_report(self) -> None:
        report = self.report_path()
        if report is not None and report.exists():
            open_local_file(self, report)  # says where it is when no browser opens it


__all__ = ["BatchPanel", "read_manifest"]
