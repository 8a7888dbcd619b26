""""Tune baselines on pairs...": the window runs ``decongan tune`` on chosen LQ/GT folders and shows the result.

The dialog starts the same command a user would type (``decongan tune --lq-dir LQ --gt-dir GT --out
tuned.json``, :mod:`app.commands.tune`) as a child process (:class:`app.gui.process_job.ProcessJob`,
as training runs), so the tuning, its grids and its refusals are the engine's. When it succeeds, the
written ``tuned.json`` is read back with :func:`engine.evaluate.tuning.load_tuned` and each baseline's
chosen parameters, calibration score and how they were chosen are listed; the file is what ``decongan
compare --baselines`` and ``decongan batch --baselines`` take. An existing file is replaced only when
"Replace an existing file" is ticked (the command's ``--overwrite``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from decongan.app.gui.panels.base import PathEdit
from decongan.app.gui.process_job import ProcessJob, decongan_command
from decongan.engine.evaluate.tuning import SOURCES, TUNING_METRICS

RESULT_COLUMNS = ("baseline", "parameters", "score", "chosen by")


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class TuneDialog(QDialog):
    """Choose calibration pairs, run ``decongan tune``, read its tuned parameters.

    Parameters
    ----------
    errors : app.gui.error_dialog.ErrorPresenter
        Where a refusal or a failed run is shown (with the command's stderr).
    parent : QWidget, optional
    """

    def __init__(self, errors: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tune baselines on pairs")
        self.errors = errors
        self.process: ProcessJob | None = None
        self.result: dict[str, Any] | None = None
        self.lq_edit = PathEdit(folder=True, caption="Folder of LQ calibration inputs")
        self.gt_edit = PathEdit(folder=True, caption="Folder of their ground truths (same file names)")
        self.out_edit = PathEdit(folder=False, save=True, caption="Write the tuned parameters to",
                                 filter="Tuned baselines (*.json)", placeholder="tuned.json")
        self.baselines_edit = QLineEdit()
        self.baselines_edit.setPlaceholderText("default: gaussian, nlm, tv (the denoisers)")
        self.metric_combo = QComboBox()
        self.metric_combo.addItems(TUNING_METRICS)
        self.overwrite_check = QCheckBox("Replace an existing file")
        form = QFormLayout()
        form.addRow("LQ folder", self.lq_edit)
        form.addRow("GT folder", self.gt_edit)
        form.addRow("Baselines", self.baselines_edit)
        form.addRow("Metric (median over pairs)", self.metric_combo)
        form.addRow("Tuned file", self.out_edit)
        form.addRow("", self.overwrite_check)
        note = QLabel("Tune on pairs that are NOT the fields you will evaluate (e.g. the GAN's training pairs): "
                      "the comparison refuses or labels a baseline tuned on the fields it evaluates.")
        note.setWordWrap(True)
        self.run_button = QPushButton("Tune")
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(RESULT_COLUMNS))
        self.table.setHorizontalHeaderLabels(RESULT_COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        self.resize(720, 480)

    def cli_args(self) -> list[str]:
        """``decongan tune`` arguments of the dialog's choices (the command a user would type)."""
        args = ["tune", "--lq-dir", self.lq_edit.text(), "--gt-dir", self.gt_edit.text(), "--out", self.out_edit.text(),
                "--metric", self.metric_combo.currentText()]
        baselines = ",".join(b.strip() for b in self.baselines_edit.text().split(",") if b.strip())
        if baselines:
            args += ["--baselines", baselines]
        if self.overwrite_check.isChecked():
            args.append("--overwrite")
        return args

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running

    def start(self) -> ProcessJob | None:
        """Run ``decongan tune`` in a child process (the answer comes with :attr:`ProcessJob.finished`)."""
        if self.is_running:
            return self.process
        missing = [n for n, w in (("LQ folder", self.lq_edit), ("GT folder", self.gt_edit),
                                  ("tuned file", self.out_edit)) if not w.text()]
        if missing:
            self.errors.present(ValueError(f"choose the {' and the '.join(missing)}"), context="Tune baselines")
            return None
        self.result = None
        self.table.setRowCount(0)
        self.process = ProcessJob("Tuning", decongan_command(*self.cli_args(), "--json-progress"), parent=self)
        self.process.progress.connect(self._on_progress)
        self.process.failed.connect(lambda err: self.errors.present(err, context="Tune baselines"))
        self.process.finished.connect(self._on_finished)
        self.status.setText(f"$ {self.process.command_line}")
        self.progress.setRange(0, 0)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        return self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def _on_progress(self, event: Any) -> None:
        if event.total:
            self.progress.setRange(0, int(event.total))
            self.progress.setValue(int(event.step))
        if event.message:
            self.status.setText(event.message)

    def _on_finished(self, code: int, outcome: str) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if outcome == "succeeded" else 0)
        if outcome == "stopped":
            self.status.setText("Tuning stopped; nothing was written")
            return
        if outcome != "succeeded":
            self.status.setText(f"Tuning {outcome} (exit status {code}); nothing was written")
            return
        self.show_tuned(self.out_edit.path())

    def show_tuned(self, path: Path | None) -> None:
        """List the baselines of a ``tuned.json`` (read by the engine): parameters, score and how chosen."""
        import json

        from decongan.engine.evaluate.tuning import TuningError, load_tuned

        if path is None:
            return
        try:
            tuned = load_tuned(path)  # the engine's check of the file (format, baselines)
            entries = {b["name"]: b for b in json.loads(path.read_text(encoding="utf-8"))["baselines"]}
        except (TuningError, OSError, ValueError, KeyError) as err:
            self.errors.present(err, context="Tune baselines")
            return
        self.result = {"metric": tuned.metric, "pairs": [p.name for p in tuned.pairs], "baselines": []}
        self.table.setRowCount(len(tuned.baselines))
        for r, baseline in enumerate(tuned.baselines):
            spec = baseline.spec
            units = spec.units
            params = ", ".join(f"{k}={_number(v)}" + (f" {units[k]}" if units.get(k) not in (None, "", "-") else "")
                               for k, v in spec.parameters.items())
            score = "" if baseline.score is None else f"{tuned.metric} {baseline.score:.4g}"
            how = entries.get(baseline.label, {}).get("how", SOURCES[baseline.source])
            for c, text in enumerate((baseline.label, params, score, how)):
                self.table.setItem(r, c, QTableWidgetItem(text))
            self.result["baselines"].append({"name": baseline.label, "parameters": dict(spec.parameters),
                                             "score": baseline.score, "how": how})
        pairs = ", ".join(p.name for p in tuned.pairs)
        self.status.setText(f"Tuned on {len(tuned.pairs)} pair(s) ({pairs}) by median {tuned.metric}; written to "
                            f"{path}. Compare or batch other fields with --baselines {path}."
                            + (" " + " ".join(tuned.notes) if tuned.notes else ""))

    def shutdown(self) -> None:
        """Stop a running tuning (the window is closing)."""
        if self.is_running and self.process is not None:
            self.process.stop(grace_ms=2000)
            self.process.wait(5000)


__all__ = ["TuneDialog"]
