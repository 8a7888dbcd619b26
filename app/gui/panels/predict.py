"""Prediction panel (mirrors ``decongan predict``): apply a trained generator to the current image.

Before predicting, the image is checked against the model's training domain
(:func:`engine.learn.domain.check_domain`: pixel size, intensity statistics). Warnings are shown in the
panel and asked about ("Predict anyway" / Cancel); a result predicted anyway carries them in its provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from decongan.app.gui.panels.base import Context, PathEdit, WorkflowPanel, combo, int_spin
from decongan.app.gui.session import Layer

DEVICES = ("auto", "cpu", "cuda")


def bundled_models() -> list[Path]:
    """Run directories shipped in resources/models (each holds a run config)."""
    from decongan.engine.learn.checkpoint import is_run_dir
    from decongan.resources import resource_path

    root = Path(resource_path("models"))
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and is_run_dir(p))


class PredictPanel(WorkflowPanel):
    """Choose a run directory (trained or bundled), tiling and device; predict the current LQ image."""

    command = "predict"
    title = "Predict"

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.job = None
        form = self.add_group("Model")
        self.bundled_combo = QComboBox()
        self.bundled_combo.addItem("(choose a run folder)", None)
        for path in bundled_models():
            self.bundled_combo.addItem(f"bundled: {path.name}", str(path))
        self.bundled_combo.currentIndexChanged.connect(self._bundled_chosen)
        self.run_edit = PathEdit(folder=True, caption="Training run folder", placeholder="RUN_DIR of decongan train")
        self.which_combo = combo(("best", "last"), "best", tooltip="best: the checkpoint with the best validation "
                                 "score; last: the latest")
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        form.addRow("Bundled", self.bundled_combo)
        form.addRow("Run folder", self.run_edit)
        form.addRow("Checkpoint", self.which_combo)
        form.addRow(self.model_info)
        self.domain_info = QLabel("")
        self.domain_info.setWordWrap(True)
        self.domain_info.setToolTip("The current image checked against the model's training data (pixel size, "
                                    "intensity statistics) before predicting")
        form.addRow(self.domain_info)

        form2 = self.add_group("Inference")
        self.tile_spin = int_spin(0, 8192, ctx.settings.get("predict/tile"), step=64, suffix=" px",
                                  tooltip="Tile side (0 = whole image at once)")
        self.overlap_spin = int_spin(0, 1024, ctx.settings.get("predict/overlap"), step=8, suffix=" px",
                                     tooltip="Overlap between tiles, blended with a taper")
        self.device_combo = combo(DEVICES, ctx.settings.get("device"))
        form2.addRow("Tile", self.tile_spin)
        form2.addRow("Overlap", self.overlap_spin)
        form2.addRow("Device", self.device_combo)
        self.tile_spin.valueChanged.connect(lambda v: ctx.settings.set("predict/tile", v))
        self.overlap_spin.valueChanged.connect(lambda v: ctx.settings.set("predict/overlap", v))
        self.device_combo.currentTextChanged.connect(lambda v: ctx.settings.set("device", v))

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Predict")
        self.run_button.clicked.connect(self.run)
        buttons.addWidget(self.run_button)
        buttons.addStretch(1)
        self.footer.addLayout(buttons)  # always visible, also on a 768 px high screen
        self.add_command_row()
        self.outer.addStretch(1)
        self.run_edit.textChanged.connect(self._describe_model)
        self.run_edit.textChanged.connect(self._sync_bundled)
        self.connect_refresh(self.run_edit, self.which_combo, self.tile_spin, self.overlap_spin, self.device_combo)
        ctx.session.layers_changed.connect(self.refresh_command)
        self.refresh_command()

    def _bundled_chosen(self, index: int) -> None:
        path = self.bundled_combo.itemData(index)
        if path:
            self.run_edit.setText(path)

    def set_run_dir(self, path: str | Path) -> None:
        self.run_edit.setText(str(path))
        self._sync_bundled(str(path))

    def _sync_bundled(self, text: str) -> None:
        """The Bundled list says which bundled model the run folder is (or that another folder was chosen)."""
        chosen = Path(text).resolve() if text.strip() else None
        index = next((i for i in range(1, self.bundled_combo.count())
                      if chosen is not None and Path(self.bundled_combo.itemData(i)).resolve() == chosen), 0)
        self.bundled_combo.blockSignals(True)
        self.bundled_combo.setCurrentIndex(index)
        self.bundled_combo.blockSignals(False)

    def _describe_model(self, *args: Any) -> None:
        run = self.run_edit.path()
        if run is None:
            self.model_info.setText("")
            return
        try:
            from decongan.engine.learn.checkpoint import load_run_config

            config = load_run_config(run)
        except Exception as err:  # noqa: BLE001 - shown inline while typing
            self.model_info.setText(f"<span style='color:#d55e00'>{err}</span>")
            return
        preset = getattr(config, "preset_name", "?")
        px = getattr(config, "pixel_size_um", None)
        scale = getattr(config, "scale", 1)
        self.model_info.setText(f"preset {preset}, scale x{scale}"
                                + (f", trained at {px:.4g} µm/px" if px else "") + f" - {run.name}")

    def parameters(self) -> dict[str, Any]:
        return {"run_dir": self.run_edit.text(), "which": self.which_combo.currentText(),
                "tile": self.tile_spin.value(), "overlap": self.overlap_spin.value(),
                "device": self.device_combo.currentText()}

    def cli_args(self) -> list[str]:
        lq = self.ctx.session.lq
        src = str(lq.image.path) if lq is not None and lq.image.path else "INPUT.tif"
        return ["predict", self.run_edit.text() or "RUN_DIR", src, "--out", "predictions",
                "--tile", str(self.tile_spin.value()), "--overlap", str(self.overlap_spin.value()),
                "--device", self.device_combo.currentText()]

    @staticmethod
    def layer_name(provenance: Any, run: Path) -> str:
        """Panel title: the engine's label ("S1 GAN") and the run folder's name."""
        return f"{provenance.method} ({run.name})"

    def run(self) -> None:
        """Predict the current LQ image in a worker thread; the output becomes a layer."""
        lq = self.ctx.session.lq
        run = self.run_edit.path()
        if lq is None or run is None:
            self.ctx.errors.present(ValueError("open an image and choose a trained run folder first"),
                                    context="Predict")
            return
        image = lq.image
        try:
            check = self.check_domain(run, image)
        except Exception as err:  # noqa: BLE001 - a run folder that cannot be read is refused with its reason
            self.ctx.errors.present(err, context="Predict")
            return
        if check.warnings and not self.ask_predict_anyway(check.warnings):
            return
        options = {"tile": self.tile_spin.value(), "overlap": self.overlap_spin.value(),
                   "device": self.device_combo.currentText(), "which": self.which_combo.currentText()}

        def work(ctx):
            from decongan.engine.learn.inference import iter_predict_image

            restored, provenance = yield from iter_predict_image(run, image, cancel=ctx.cancel, **options)
            return restored, provenance

        self.job = self.ctx.jobs.start("Prediction", work, on_success=lambda r: self._done(r, run, check.warnings))

    # -- the model's domain ------------------------------------------------------------------------------
    def check_domain(self, run: Path, image: Any) -> Any:
        """``engine.learn.domain.check_domain`` of ``image`` (at the dataset's pixel size) for ``run``; shown in
        the panel (orange with the warnings, or what was checked)."""
        from decongan.engine.learn.domain import check_domain

        check = check_domain(run, image, pixel_size_um=self.ctx.session.pixel_size_um or image.pixel_size_um)
        if check.warnings:
            self.domain_info.setText("<span style='color:#d55e00'><b>Outside the model's training domain:</b> "
                                     + "; ".join(check.warnings) + "</span>")
        else:
            self.domain_info.setText("Within the model's training domain (pixel size, intensities)"
                                     + (f"; {'; '.join(check.notes)}" if check.notes else ""))
        return check

    def ask_predict_anyway(self, warnings: list[str]) -> bool:
        """Ask before predicting an image outside the model's domain; True = predict anyway."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Image outside the model's training domain")
        box.setText("This image is unlike the data the model was trained on; its output may look plausible and be "
                    "wrong.")
        box.setInformativeText("\n".join(f"- {w}" for w in warnings))
        anyway = box.addButton("Predict anyway", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return box.clickedButton() is anyway

    def _done(self, result: Any, run: Path, domain_warnings: list[str] | None = None) -> None:
        restored, provenance = result
        if domain_warnings:  # predicted anyway: the result says so wherever it goes (report, TIFF)
            provenance.parameters["domain_warnings"] = list(domain_warnings)
        self.ctx.session.set_layer(Layer(self.layer_name(provenance, run), restored, "restored", provenance))
