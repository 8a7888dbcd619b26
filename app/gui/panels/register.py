"""Registration panel (mirrors ``decongan register``): align one layer to another, preview, accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from decongan.app.gui.panels.base import Context, WorkflowPanel, combo, int_spin
from decongan.app.gui.session import GT_ROLE, LQ_ROLE, Layer

TRANSFORMS = ("translation", "rigid", "similarity", "affine")


def overlay_rgb(fixed: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Green = fixed, magenta = moving (each scaled to its 0.5-99.5 percentiles); grey where they agree."""
    def scaled(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        lo, hi = np.percentile(a[:: max(1, a.shape[0] // 256), :: max(1, a.shape[1] // 256)], [0.5, 99.5])
        return np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)

    f, m = scaled(fixed), scaled(moving)
    return (np.stack([m, f, m], axis=-1) * 255).astype(np.uint8)


class RegisterPanel(WorkflowPanel):
    """Register the moving layer (default GT) onto the fixed layer's grid (default LQ)."""

    command = "register"
    title = "Register"

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.result: Any = None
        self._inputs: tuple[str, str] | None = None
        self._options: dict[str, Any] = {}
        form = self.add_group("Pair")
        self.moving_combo = combo([], tooltip="Image to move (usually the HQ / ground truth)")
        self.fixed_combo = combo([], tooltip="Reference grid (usually the LQ input)")
        self.transform_combo = combo(TRANSFORMS, "rigid", tooltip="similarity adds scale (e.g. 10x vs 60x pairs)")
        self.backend_combo = combo(("engine", "fiji"), "engine",
                                   tooltip="fiji: TurboReg/StackReg or SIFT through the Fiji bridge")
        self.iterations_spin = int_spin(1, 1000, 40, tooltip="Optimiser iterations per pyramid level")
        self.crop_check = QCheckBox("Crop both to the common valid area on accept")
        form.addRow("Moving", self.moving_combo)
        form.addRow("Fixed", self.fixed_combo)
        form.addRow("Transform", self.transform_combo)
        form.addRow("Backend", self.backend_combo)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow(self.crop_check)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Register")
        self.run_button.clicked.connect(self.run)
        self.accept_button = QPushButton("Accept")
        self.accept_button.setToolTip("Replace the moving layer by the aligned image")
        self.accept_button.setEnabled(False)
        self.accept_button.clicked.connect(self.accept)
        self.save_button = QPushButton("Save transform...")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._ask_save_transform)
        for b in (self.run_button, self.accept_button, self.save_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.footer.addLayout(buttons)  # always visible, also on a 768 px high screen

        self.summary = QLabel("Overlay: green = fixed, magenta = moving (grey where they agree)")
        self.summary.setWordWrap(True)
        self.outer.addWidget(self.summary)
        self.before_check = QCheckBox("Show before registration")
        self.before_check.toggled.connect(self._show_overlay)
        self.outer.addWidget(self.before_check)
        self.preview = pg.GraphicsLayoutWidget()
        self.preview.setMinimumHeight(260)
        self.preview.setBackground("#202020")
        self.preview_view = self.preview.addViewBox(lockAspect=True, invertY=True)
        self.preview_item = pg.ImageItem(axisOrder="row-major")
        self.preview_view.addItem(self.preview_item)
        self.outer.addWidget(self.preview, 1)
        self.add_command_row()

        self._chosen: dict[str, str] = {}  # combos the user set by hand keep their choice
        self.moving_combo.activated.connect(lambda _i: self._chosen.update(moving=self.moving_combo.currentText()))
        self.fixed_combo.activated.connect(lambda _i: self._chosen.update(fixed=self.fixed_combo.currentText()))
        self.connect_refresh(self.moving_combo, self.fixed_combo, self.transform_combo, self.backend_combo)
        ctx.session.layers_changed.connect(self._layers_changed)
        self._layers_changed()

    def _layers_changed(self) -> None:
        names = [lay.name for lay in self.ctx.session.layers]
        for key, box, role in (("moving", self.moving_combo, GT_ROLE), ("fixed", self.fixed_combo, LQ_ROLE)):
            chosen = self._chosen.get(key)
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            default = next((lay.name for lay in self.ctx.session.layers if lay.role == role), None)
            box.setCurrentText(chosen if chosen in names else (default or (names[0] if names else "")))
            box.blockSignals(False)
        self.run_button.setEnabled(len(names) >= 2)
        self.refresh_command()

    def parameters(self) -> dict[str, Any]:
        return {"moving": self.moving_combo.currentText(), "fixed": self.fixed_combo.currentText(),
                "transform": self.transform_combo.currentText(), "backend": self.backend_combo.currentText(),
                "max_iterations": self.iterations_spin.value(), "crop": self.crop_check.isChecked()}

    def cli_args(self) -> list[str]:
        def path(name: str) -> str:
            lay = self.ctx.session.layer(name)
            return str(lay.image.path) if lay is not None and lay.image.path else f"{name or 'IMAGE'}.tif"

        args = ["register", path(self.moving_combo.currentText()), path(self.fixed_combo.currentText()),
                "--transform", self.transform_combo.currentText(), "--max-iterations", str(self.iterations_spin.value())]
        window = self.ctx.window
        moving = self.ctx.session.layer(self.moving_combo.currentText())
        if window is not None and moving is not None:  # the plane on screen is the one registered
            if "C" in moving.image.axes:
                args += ["--channel", str(window.viewer.position["c"])]
            if "Z" in moving.image.axes:
                args += ["--plane", str(window.viewer.position["z"])]
        if self.backend_combo.currentText() == "fiji":
            args += ["--backend", "fiji"]
        return args + ["--out", "aligned.tif", "--transform-out", "transform.json"]

    # -- run -----------------------------------------------------------------------------------------
    def run(self) -> None:
        moving = self.ctx.session.layer(self.moving_combo.currentText())
        fixed = self.ctx.session.layer(self.fixed_combo.currentText())
        if moving is None or fixed is None or moving is fixed:
            self.ctx.errors.present(ValueError("choose two different layers to register"), context="Register")
            return
        viewer = self.ctx.window.viewer
        m_plane, f_plane = viewer.plane_of(moving), viewer.plane_of(fixed)
        transform = self.transform_combo.currentText()
        backend = self.backend_combo.currentText()
        # the same options the CLI passes to the engine / the bridge
        options = {"transform": transform, "moving_pixel_size_um": moving.image.pixel_size_um,
                   "fixed_pixel_size_um": fixed.image.pixel_size_um, "max_iterations": self.iterations_spin.value()}
        self._options = {**options, "backend": backend, "moving": moving.name, "fixed": fixed.name}

        fiji_dir = self.ctx.settings.get("fiji/location") or None

        def work(ctx):
            if backend == "engine":  # generator form: cancellable between stages
                from decongan.engine.optics.registration import iter_register

                result = yield from iter_register(moving=m_plane, fixed=f_plane, **options)
                return result
            from decongan.app.fiji.register import (
                iter_fiji_register,  # TurboReg/StackReg or SIFT through the bridge
            )

            result = yield from iter_fiji_register(moving=m_plane, fixed=f_plane, fiji_dir=fiji_dir, **options)
            return result

        self._inputs = (moving.name, fixed.name)
        self._planes = (m_plane, f_plane)
        self.accept_button.setEnabled(False)
        self.ctx.jobs.start("Registration", work, on_success=self._done)

    def _done(self, result: Any) -> None:
        self.result = result
        self.summary.setText(result.summary())
        self.accept_button.setEnabled(True)
        self.save_button.setEnabled(True)
        self._show_overlay()

    def _show_overlay(self, *args: Any) -> None:
        if self.result is None:
            return
        m_plane, f_plane = self._planes
        if self.before_check.isChecked():
            from skimage.transform import resize

            moving = m_plane if m_plane.shape == f_plane.shape else resize(m_plane, f_plane.shape, order=1)
        else:
            moving = self.result.aligned
        self.preview_item.setImage(overlay_rgb(f_plane, moving), autoLevels=False, levels=(0, 255))
        self.preview_view.autoRange(padding=0)

    def accept(self) -> None:
        """Replace the moving layer by the aligned image on the fixed grid (all planes, same transform)."""
        if self.result is None or self._inputs is None:
            return
        from decongan.engine.optics.registration import apply_transform

        session = self.ctx.session
        moving, fixed = session.layer(self._inputs[0]), session.layer(self._inputs[1])
        if moving is None or fixed is None:
            return
        if moving.image.data.ndim == 2:
            data = self.result.aligned.astype(np.float32)
        else:  # every plane of the moving stack with the same transform (as the CLI does)
            data, _ = apply_transform(moving.image.data, self.result.transform)
        aligned = moving.image.with_data(data)
        aligned.pixel_size_um = fixed.image.pixel_size_um
        from decongan.engine.provenance import Provenance

        opts = self._options
        layer = Layer(moving.name, aligned, moving.role,
                      Provenance(method=f"registered ({opts['transform']}, {opts['backend']})", backend=opts["backend"],
                                 parameters={**opts, "matrix": self.result.transform.matrix.tolist(),
                                             "ncc_before": self.result.ncc_before,
                                             "ncc_after": self.result.ncc_after}))
        if self.crop_check.isChecked():
            _, _, (y0, y1, x0, x1) = self.result.crop(self._planes[1])
            for lay in list(session.layers):
                if lay.image.yx_shape == fixed.image.yx_shape and lay.name != moving.name:
                    session.set_layer(Layer(lay.name, lay.image.with_data(lay.image.data[..., y0:y1, x0:x1]),
                                            lay.role, lay.provenance))
            layer = Layer(layer.name, aligned.with_data(aligned.data[..., y0:y1, x0:x1]), layer.role, layer.provenance)
        session.set_layer(layer)
        self.accept_button.setEnabled(False)

    def _ask_save_transform(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save transform", "transform.json", "JSON (*.json)")
        if path:
            self.save_transform(path)

    def save_transform(self, path: str | Path) -> Path:
        """Write the transform JSON (what ``decongan register --transform-out`` writes)."""
        from decongan.engine.outputs import write_text_atomic

        return write_text_atomic(path, self.result.to_json() + "\n")
