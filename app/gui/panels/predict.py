"""Prediction panel (mirrors ``decongan predict``): apply a trained generator to the current image.

The model is a training run folder or a bioimage.io model package (``.zip``, ``rdf.yaml`` or
``bioimageio.yaml``, run by :mod:`engine.learn.bioimageio_run` with its own pre/postprocessing and
halo). Before predicting, the image is checked against the model's domain: a run's training domain
(:func:`engine.learn.domain.check_domain`: pixel size, intensity statistics), a package's declared
pixel size (:func:`engine.learn.bioimageio_describe.check_bioimageio_pixel_size`). Warnings are shown in
the panel and asked about ("Predict anyway" / Cancel); a result predicted anyway carries them in its
provenance. A package DeconGAN cannot run is refused with the engine's message before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QWidget,
)

from decongan.app.gui.panels.base import Context, PathEdit, WorkflowPanel, combo, int_spin
from decongan.app.gui.session import Layer

DEVICES = ("auto", "cpu", "cuda")
PACKAGE_FILTER = "bioimage.io model package (*.zip rdf.yaml bioimageio.yaml *.bioimageio.yaml)"


def is_package(path: str | Path | None) -> bool:
    """True when ``path`` is a bioimage.io model package (the engine's test), not a run folder."""
    from decongan.engine.learn.bioimageio_run import is_bioimageio_source

    return path is not None and str(path).strip() != "" and is_bioimageio_source(path)


_DESCRIPTIONS: dict[tuple[str, float], Any] = {}


def describe_package(path: Path) -> Any:
    """``engine.learn.bioimageio_run.describe_bioimageio_model`` of ``path``, remembered while the file is
    unchanged (the form asks on every edit); raises its refusal."""
    from decongan.engine.learn.bioimageio_run import describe_bioimageio_model

    key = (str(Path(path).resolve()), Path(path).stat().st_mtime)
    if key not in _DESCRIPTIONS:
        _DESCRIPTIONS[key] = describe_bioimageio_model(path)
    return _DESCRIPTIONS[key]


def package_text(info: Any) -> str:
    """What the form says about a package: name, description, declared pixel size, weights and halo."""
    from html import escape

    px = (f"{info.pixel_size_um:.4g} µm/px (its input axes' scale)" if info.pixel_size_um
          else "no pixel size declared (its axes have no micrometre scale)")
    source = info.source.name if info.source.suffix.lower() == ".zip" else f"{info.source.parent.name}/{info.source.name}"
    return (f"bioimage.io package <b>{escape(info.name)}</b> (format {escape(str(info.descr.format_version))}): "
            f"{escape(info.description)}<br>pixel size {px}; {info.weight_format} weights; scale x{info.scale}; "
            f"halo {info.halo} px (sets the tile overlap) - {escape(source)}")


def refusal_text(err: Exception) -> str:
    """An engine refusal shown in orange in a form."""
    from html import escape

    return f"<span style='color:#d55e00'>{escape(str(err))}</span>".replace("\n", "<br>")


class ModelPathEdit(PathEdit):
    """A model path: a training run folder or a bioimage.io package file; Browse asks which."""

    def __init__(self, *, caption: str, placeholder: str = "") -> None:
        super().__init__(folder=True, caption=caption, placeholder=placeholder)
        self.setToolTip("A training run folder (decongan train), or a bioimage.io model package: a .zip, "
                        "or the rdf.yaml / bioimageio.yaml of an unpacked one")

    def ask_kind(self) -> str | None:
        """A menu at the pointer: "folder", "package" or None (dismissed)."""
        menu = QMenu(self)
        folder = menu.addAction("Training run folder...")
        package = menu.addAction("bioimage.io package (.zip, rdf.yaml)...")
        chosen = menu.exec(QCursor.pos())
        return "folder" if chosen is folder else "package" if chosen is package else None

    def browse(self) -> None:
        kind = self.ask_kind()
        if kind == "folder":
            self.browse_folder()
        elif kind == "package":
            self.browse_package()

    def browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.caption, self.text())
        if path:
            self.setText(path)

    def browse_package(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"{self.caption}: bioimage.io package", self.text(),
                                              f"{PACKAGE_FILTER};;All files (*)")
        if path:
            self.setText(path)


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
        self.run_edit = ModelPathEdit(caption="Training run folder",
                                      placeholder="RUN_DIR of decongan train, or a bioimage.io MODEL.zip")
        self.which_combo = combo(("best", "last"), "best", tooltip="best: the checkpoint with the best validation "
                                 "score; last: the latest")
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        form.addRow("Bundled", self.bundled_combo)
        form.addRow("Model", self.run_edit)
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
        package = is_package(run)
        self.which_combo.setEnabled(not package)  # a package has one set of weights
        self.overlap_spin.setEnabled(not package)  # its declared halo sets the overlap
        self.domain_info.setText("")
        if run is None:
            self.model_info.setText("")
            return
        if package:
            try:
                self.model_info.setText(package_text(describe_package(run)))
            except Exception as err:  # noqa: BLE001 - the engine's refusal, shown before anything runs
                self.model_info.setText(refusal_text(err))
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
        overlap = [] if is_package(self.run_edit.path()) else ["--overlap", str(self.overlap_spin.value())]
        return ["predict", self.run_edit.text() or "RUN_DIR", src, "--out", "predictions",
                "--tile", str(self.tile_spin.value()), *overlap, "--device", self.device_combo.currentText()]

    @staticmethod
    def layer_name(provenance: Any, run: Path) -> str:
        """Panel title: the engine's label ("S1 GAN") and the run folder's name; for a package its name and
        file (the folder of an unpacked one)."""
        if provenance.backend.startswith("bioimageio"):
            where = run.name if run.suffix.lower() == ".zip" else run.parent.name
            return f"{provenance.parameters['name']} ({where})"
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
            if is_package(run):
                self.domain_info.setText(refusal_text(err))
            self.ctx.errors.present(err, context="Predict")
            return
        if check.warnings and not self.ask_predict_anyway(check.warnings):
            return
        if is_package(run):
            tile, device = self.tile_spin.value(), self.device_combo.currentText()

            def work(ctx):
                from decongan.engine.device import resolve_device
                from decongan.engine.learn.bioimageio_run import iter_predict_bioimageio

                restored, provenance = yield from iter_predict_bioimageio(
                    run, image, tile=tile, device=resolve_device(device), cancel=ctx.cancel)
                return restored, provenance
        else:
            options = {"tile": self.tile_spin.value(), "overlap": self.overlap_spin.value(),
                       "device": self.device_combo.currentText(), "which": self.which_combo.currentText()}

            def work(ctx):
                from decongan.engine.learn.inference import iter_predict_image

                restored, provenance = yield from iter_predict_image(run, image, cancel=ctx.cancel, **options)
                return restored, provenance

        self.job = self.ctx.jobs.start("Prediction", work, on_success=lambda r: self._done(r, run, check.warnings))

    # -- the model's domain ------------------------------------------------------------------------------
    def check_domain(self, run: Path, image: Any) -> Any:
        """``engine.learn.domain.check_domain`` of ``image`` (at the dataset's pixel size) for ``run``, or for a
        bioimage.io package the engine's check against its declared pixel size (its refusal raised); shown in
        the panel (orange with the warnings, or what was checked)."""
        pixel_size_um = self.ctx.session.pixel_size_um or image.pixel_size_um
        if is_package(run):
            from decongan.engine.learn.bioimageio_run import check_bioimageio_pixel_size

            check = check_bioimageio_pixel_size(describe_package(run), pixel_size_um)
            if check.warnings:
                self.domain_info.setText("<span style='color:#d55e00'><b>Unlike the package's declared pixel size:"
                                         "</b> " + "; ".join(check.warnings) + "</span>")
            else:
                self.domain_info.setText("Pixel size checked against the package's declared one; "
                                         + "; ".join(check.notes))
            return check
        from decongan.engine.learn.domain import check_domain

        check = check_domain(run, image, pixel_size_um=pixel_size_um)
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
