"""Export panel (mirrors ``decongan compare``): the comparison figure, tables, restored TIFFs and the
HTML report of the compared fields, with a preview of the figure.

Everything is written by :func:`engine.evaluate.report.write_comparison_outputs` from the same
:class:`engine.evaluate.compare.SetEvaluation` the window shows, with the viewer's contrast policy, LUT and
profile line.
"""

from __future__ import annotations

import io
import shlex
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from decongan.app.gui.panels.base import Context, PathEdit, WorkflowPanel, combo, int_spin
from decongan.app.gui.panels.export_folder import (
    EXPORT_MANIFEST,
    ask_existing_results,
    owned_files,
    recording_owned_files,
    remove_owned,
)

SCOPES = ("Current field", "All compared fields")
CONTRASTS = ("shared", "per-panel")
#: viewer LUT names -> matplotlib colour maps of engine.evaluate.figures.IMAGE_CMAPS
FIGURE_CMAPS = {"grey": "gray", "magma": "magma", "inferno": "inferno", "viridis": "viridis", "cividis": "cividis"}
PREVIEW_DPI = 150
PREVIEW_PLACEHOLDER = "Press Preview (Export panel) to see the comparison figure here."


class ExportPanel(WorkflowPanel):
    """Preview and write the comparison outputs.

    Signals
    -------
    exported(object)  the engine's ComparisonOutputs
    """

    command = "compare"
    title = "Export"
    exported = Signal(object)

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.outputs: Any = None
        self.preview_png: bytes | None = None
        self.preview_ready = False
        self.large_dialog: QDialog | None = None
        form = self.add_group("What")
        self.scope_combo = combo(SCOPES, SCOPES[0], tooltip="The field on screen, or every field compared so far")
        self.contrast_combo = combo(CONTRASTS, "shared" if ctx.settings.get("viewer/contrast_shared")
                                    else "per-panel", tooltip="One display range for all panels of a row, or one "
                                    "per panel (stated in the caption)")
        self.cmap_combo = combo(list(FIGURE_CMAPS.values()), FIGURE_CMAPS.get(ctx.settings.get("viewer/lut"), "gray"))
        self.viewer_line_check = QCheckBox("Use the viewer's profile line")
        self.viewer_line_check.setChecked(True)
        self.viewer_line_check.setToolTip("Otherwise a line through the brightest structure is chosen")
        form.addRow("Fields", self.scope_combo)
        form.addRow("Contrast", self.contrast_combo)
        form.addRow("LUT", self.cmap_combo)
        form.addRow(self.viewer_line_check)

        form2 = self.add_group("Files")
        self.out_edit = PathEdit(folder=True, caption="Output folder", placeholder="folder for figures, tables, report")
        self.png_check = QCheckBox("PNG")
        self.svg_check = QCheckBox("SVG")
        self.pdf_check = QCheckBox("PDF")
        for box in (self.png_check, self.svg_check, self.pdf_check):
            box.setChecked(True)
        self.png_check.setEnabled(False)  # the HTML report embeds the PNGs
        formats = QHBoxLayout()
        for box in (self.png_check, self.svg_check, self.pdf_check):
            formats.addWidget(box)
        formats.addStretch(1)
        self.dpi_spin = int_spin(72, 1200, 300, step=50, suffix=" dpi", tooltip="PNG resolution (>= 300 for print)")
        self.restored_check = QCheckBox("Restored images as calibrated TIFFs")
        self.restored_check.setChecked(True)
        form2.addRow("Folder", self.out_edit)
        form2.addRow("Figures", formats)
        form2.addRow("Resolution", self.dpi_spin)
        form2.addRow(self.restored_check)

        buttons = QHBoxLayout()
        self.preview_button = QPushButton("Preview")
        self.preview_button.clicked.connect(self.preview)
        self.large_button = QPushButton("Full size...")
        self.large_button.setToolTip("Show the figure at full size in its own window")
        self.large_button.setEnabled(False)
        self.large_button.clicked.connect(self.show_large_preview)
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.export)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.large_button)
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        self.footer.addLayout(buttons)  # always visible, also on a 768 px high screen

        # the preview page: shown large in the window's central area (a wide figure needs the room)
        self.preview_page = QScrollArea()
        self.preview_page.setWidgetResizable(True)
        self.page_label = QLabel(PREVIEW_PLACEHOLDER)
        self.page_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.page_label.setStyleSheet("background: white;")
        self.preview_page.setWidget(self.page_label)
        self.preview_page.installEventFilter(self)
        self.preview_label = QLabel("Press Preview to see the comparison figure.")
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumHeight(200)
        self.preview_scroll = QScrollArea()
        self.preview_scroll.setWidgetResizable(True)
        self.preview_scroll.setWidget(self.preview_label)
        self.preview_scroll.setMinimumHeight(260)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.written = QPlainTextEdit()
        self.written.setReadOnly(True)
        self.written.setMaximumHeight(120)
        self.written.setPlaceholderText("Files written appear here.")
        self.outer.addWidget(self.preview_scroll, 1)
        self.outer.addWidget(self.caption)
        self.outer.addWidget(self.written)
        self.add_command_row()
        self.connect_refresh(self.scope_combo, self.contrast_combo, self.cmap_combo, self.out_edit, self.dpi_spin)
        ctx.session.layers_changed.connect(self.refresh_command)
        # the preview shows this field's figure or nothing: another field or dataset clears it
        ctx.session.field_changed.connect(self.clear_preview)
        ctx.session.field_changed.connect(self.propose_folder)
        self._proposed_folder = ""
        ctx.session.dataset_changed.connect(self.clear_preview)
        ctx.session.layers_changed.connect(self._mark_preview_outdated)
        self.refresh_command()

    def propose_folder(self) -> None:
        """Fill an empty output folder (or replace the one proposed earlier) with a new folder for this field,
        ``~/DeconGAN exports/<field>``: shown before Export, and a folder that holds files is never written
        without asking (:meth:`export`)."""
        field = self.ctx.session.field
        text = self.out_edit.text()
        if field is None or (text and text != self._proposed_folder):
            return  # the user's own choice stays
        from decongan.engine.outputs import safe_filename

        self._proposed_folder = str(Path.home() / "DeconGAN exports" / safe_filename(field.name))
        self.out_edit.setText(self._proposed_folder)

    def clear_preview(self) -> None:
        """Forget the previewed figure (another field or dataset is shown)."""
        self.preview_png = None
        self.preview_ready = False
        self._page_pixmap = None
        self.page_label.clear()
        self.page_label.setText(PREVIEW_PLACEHOLDER)
        self.page_label.setToolTip("")
        self.preview_label.clear()
        self.preview_label.setText("Press Preview to see the comparison figure.")
        self.caption.setText("")
        self.large_button.setEnabled(False)
        if self.large_dialog is not None:
            self.large_dialog.close()

    def _mark_preview_outdated(self) -> None:
        if self.preview_png is not None:
            self.caption.setText("The layers changed since this preview: press Preview again.")

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        from PySide6.QtCore import QEvent

        if watched is self.preview_page and event.type() in (QEvent.Type.Show, QEvent.Type.Resize):
            self.fit_preview_page()
        return super().eventFilter(watched, event)

    # -- inputs --------------------------------------------------------------------------------------
    def evaluations(self) -> list[Any]:
        """The engine SetEvaluations to export (current field first)."""
        window = self.ctx.window
        if window is None or window.evaluation is None:
            return []
        if self.scope_combo.currentText() == SCOPES[0]:
            return [window.evaluation.evaluation]
        current = window.evaluation.evaluation
        others = [fe.evaluation for name, fe in window.evaluations_by_field.items()
                  if name != current.cset.field]
        return [current, *others]

    def figure_options(self) -> dict[str, Any]:
        """contrast, cmap and line for engine.evaluate.figures / engine.evaluate.report, from the form and the viewer."""
        line: Any = "auto"
        window = self.ctx.window
        if self.viewer_line_check.isChecked() and window is not None and window.evaluation is not None:
            viewer_line = window.viewer.line()
            lq = self.ctx.session.lq
            cset = window.evaluation.evaluation.cset
            if viewer_line is not None and lq is not None and lq.image.yx_shape == cset.yx_shape:
                line = viewer_line  # same grid: the line on screen is the line in the figure
        return {"contrast": self.contrast_combo.currentText(), "cmap": self.cmap_combo.currentText(), "line": line}

    def parameters(self) -> dict[str, Any]:
        return {"scope": self.scope_combo.currentText(), **{k: (list(v) if isinstance(v, tuple) else v)
                                                            for k, v in self.figure_options().items()},
                "formats": self.formats(), "dpi": self.dpi_spin.value(),
                "save_restored": self.restored_check.isChecked(), "out": self.out_edit.text()}

    def formats(self) -> list[str]:
        return [f for f, box in (("png", self.png_check), ("svg", self.svg_check), ("pdf", self.pdf_check))
                if box.isChecked()]

    def equivalent(self, out: Path | None = None) -> Any:
        """The ``decongan compare`` that recomputes this export from the files it writes to ``out/inputs``
        (app.gui.export_command), or None before anything is compared."""
        from decongan.app.gui.export_command import equivalent_compare

        evaluations = self.evaluations()
        out = out or self.out_edit.path()
        if not evaluations or out is None:
            return None
        window = self.ctx.window
        psf = window.evaluation.psf if window is not None and window.evaluation is not None else None
        return equivalent_compare(evaluations, out, psf=psf, figure_options=self.figure_options(),
                                  formats=self.formats(), dpi=self.dpi_spin.value())

    def cli_args(self) -> list[str]:
        equivalent = self.equivalent()
        if equivalent is not None:
            return equivalent.args
        session = self.ctx.session
        lq = session.lq
        args = ["compare", "--lq", str(lq.image.path) if lq is not None and lq.image.path else "LQ.tif"]
        gt = session.gt
        if gt is not None:
            args += ["--gt", str(gt.image.path) if gt.image.path else "GT.tif"]
        for layer in session.restored:
            from decongan.engine.io import safe_stem

            path = layer.image.path if layer.provenance is not None and layer.provenance.backend == "file" else None
            args += ["--method", f"{layer.name}={path or 'restored/' + safe_stem(layer.name) + '.tif'}"]
        if session.pixel_size_um:
            args += ["--pixel-nm", f"{session.pixel_size_um * 1000:g}"]
        return args + ["--out", self.out_edit.text() or "OUT_DIR"]

    def report_context(self, equivalent: Any = None) -> Any:
        """What the report states about this export (command, parameters, Fiji backend, models);
        ``equivalent`` (app.gui.export_command.EquivalentCompare) gives the command."""
        from decongan.engine.evaluate.report import ReportContext

        window = self.ctx.window
        parameters: dict[str, Any] = {"export": self.parameters()}
        fiji = "not used"
        model = None
        notes: list[str] = []
        if window is not None:
            try:
                parameters["psf (consistency maps, Deconvolve panel)"] = window.deconvolve_panel.psf_parameters()
                parameters["optics (value and source)"] = self.ctx.session.optics_sources()
            except (ValueError, KeyError):
                pass
            if window.evaluation is not None and window.evaluation.psf_note:
                notes.append(window.evaluation.psf_note)
        for layer in self.ctx.session.restored:
            prov = layer.provenance
            if prov is None:
                continue
            if "fiji" in prov.backend.lower() or "imagej" in prov.backend.lower():
                fiji = prov.backend
            if "GAN" in prov.method and model is None:
                model = {"name": layer.name, "config": prov.parameters}
        assumptions = []
        if not self.ctx.session.pixel_size_um:
            assumptions.append("pixel size unknown: no scale bars, resolution in pixels")
        command = equivalent.command if equivalent is not None else shlex.join(["decongan", *self.cli_args()])
        return ReportContext(title="DeconGAN comparison", command=command, parameters=parameters, assumptions=assumptions,
                             fiji_backend=fiji, model=model, notes=notes)

    # -- preview -------------------------------------------------------------------------------------
    def preview(self) -> None:
        """Render the comparison figure (engine.evaluate.figures) in a worker and show it."""
        evaluations = self.evaluations()
        if not evaluations:
            self._nothing_to_show()
            return
        options = self.figure_options()
        self.preview_ready = False
        self.preview_label.setText("Rendering...")

        def work(ctx):
            from decongan.engine.evaluate.figures import comparison_figure

            figure = comparison_figure(evaluations, **options)
            buffer = io.BytesIO()
            figure.figure.savefig(buffer, format="png", dpi=PREVIEW_DPI)
            return buffer.getvalue(), figure.caption

        self.ctx.jobs.start("Figure preview", work, on_success=self._show_preview)

    def _nothing_to_show(self) -> None:
        window = self.ctx.window
        busy = window is not None and window.session.lq is not None
        self.ctx.errors.present(ValueError("nothing compared yet: open a field" + (
            " and wait for its comparison (metrics) to finish" if busy else "")), context="Export")

    def _show_preview(self, result: tuple[bytes, str]) -> None:
        png, caption = result
        self.preview_png = png
        pixmap = QPixmap()
        pixmap.loadFromData(png, "PNG")
        width = max(200, self.preview_scroll.viewport().width() - 8)
        self.preview_label.setPixmap(pixmap.scaledToWidth(min(width, pixmap.width()),
                                                          Qt.TransformationMode.SmoothTransformation))
        self._page_pixmap = pixmap
        self.fit_preview_page()
        self.page_label.setToolTip(caption)
        self.caption.setText(caption)
        self.preview_ready = True
        self.large_button.setEnabled(True)
        window = self.ctx.window
        if window is not None and hasattr(window, "show_figure_preview"):
            window.show_figure_preview()
        if self.large_dialog is not None and self.large_dialog.isVisible():
            self.show_large_preview()

    def fit_preview_page(self) -> None:
        """Scale the preview to the width of the central page (called again when it is shown or resized)."""
        pixmap = getattr(self, "_page_pixmap", None)
        if pixmap is None or pixmap.isNull():
            return
        width = max(300, self.preview_page.viewport().width() - 16)
        self.page_label.setPixmap(pixmap.scaledToWidth(min(width, pixmap.width()),
                                                       Qt.TransformationMode.SmoothTransformation))

    def show_large_preview(self) -> QDialog | None:
        """The previewed figure at full size in a non-modal window (reused)."""
        if self.preview_png is None:
            return None
        if self.large_dialog is None:
            self.large_dialog = QDialog(self)
            self.large_dialog.setWindowTitle("DeconGAN: comparison figure preview")
            layout = QVBoxLayout(self.large_dialog)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            self._large_label = QLabel()
            self._large_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            scroll.setWidget(self._large_label)
            layout.addWidget(scroll)
        pixmap = QPixmap()
        pixmap.loadFromData(self.preview_png, "PNG")
        self._large_label.setPixmap(pixmap)
        self.large_dialog.resize(min(pixmap.width() + 40, 1500), min(pixmap.height() + 60, 900))
        self.large_dialog.show()
        self.large_dialog.raise_()
        return self.large_dialog

    # -- export --------------------------------------------------------------------------------------
    def export(self) -> None:
        """Write figures, tables, restored TIFFs and report.html into the output folder (worker thread)."""
        out = self.out_edit.path()
        if out is None:
            self.ctx.errors.present(ValueError("choose an output folder"), context="Export")
            return
        evaluations = self.evaluations()
        if not evaluations:
            self._nothing_to_show()
            return
        inputs = {Path(p).resolve() for lay in self.ctx.session.layers if (p := lay.image.path)}
        if out.resolve() in {p.parent for p in inputs}:
            self.ctx.errors.present(ValueError(f"{out} holds the input images; choose another output folder "
                                               "(inputs are never overwritten)"), context="Export")
            return
        if not self._may_write_into(out):
            return
        options = self.figure_options()
        equivalent = self.equivalent(out)  # its inputs are written with the export
        context = self.report_context(equivalent)
        formats, dpi, save_restored = self.formats(), self.dpi_spin.value(), self.restored_check.isChecked()

        def work(ctx):
            from decongan.engine.evaluate.report import write_comparison_outputs

            equivalent.write(ctx.cancel)
            return write_comparison_outputs(evaluations, out, context=context, formats=formats, dpi=dpi,
                                            save_restored=save_restored, progress=ctx.progress, cancel=ctx.cancel,
                                            **options)

        self.ctx.jobs.start("Export", recording_owned_files(work, out), on_success=self._exported)

    def _may_write_into(self, out: Path) -> bool:
        """True when ``out`` is new or empty, or the user chose Replace (the earlier export's files are then
        removed); "Choose another folder..." starts the export again with the folder chosen."""
        from decongan.engine.outputs import OutputError, check_results_folder

        try:
            check_results_folder(out)  # the engine's one rule: a folder that holds files is not written silently
            return True
        except OutputError as err:
            if out.exists() and not out.is_dir():
                self.ctx.errors.present(err, context="Export")
                return False
        owned = owned_files(out)
        other = sum(1 for p in out.rglob("*") if p.is_file() and p.name != EXPORT_MANIFEST) - len(owned)
        answer = ask_existing_results(self, out, len(owned), other)
        if answer == "replace":
            remove_owned(out)
            return True
        if answer == "another":
            folder = QFileDialog.getExistingDirectory(self, "Output folder", str(out.parent))
            if folder:
                self.out_edit.setText(folder)
                self.export()
        return False

    def _exported(self, outputs: Any) -> None:
        self.outputs = outputs
        files = [outputs.report_html, outputs.metrics_csv, outputs.metrics_json, outputs.summary_csv]
        files += [p for paths in outputs.figures.values() for p in paths] + list(outputs.restored)
        self.written.setPlainText("\n".join(str(p) for p in files))
        self.exported.emit(outputs)
