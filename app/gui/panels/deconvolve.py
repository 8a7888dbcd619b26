"""PSF + Richardson-Lucy panel (mirrors ``decongan psf`` and ``decongan deconvolve``).

Born & Wolf (or Gaussian, or a PSF file) with units and a live preview; RL / RL-TV with the
engine or with Fiji's DeconvolutionLab2 through the bridge; the Fiji status comes from the doctor.

A Born & Wolf PSF is the engine's ``psf_for_grid`` for the LQ image's grid (the PSF of ``decongan
batch`` and ``decongan psf --like``); a Gaussian's axial FWHM is a visible field. The module is
longer than ~500 lines because the form, its background preview, the run job and the equivalent
command line describe one request and are kept together so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from decongan.app.gui.panels.base import Context, PathEdit, WorkflowPanel, combo, double_spin, int_spin
from decongan.app.gui.session import Layer

PSF_MODELS = {"Born & Wolf": "born-wolf", "Gaussian": "gaussian", "From file": "file"}
METHODS = {"RL": "rl", "RL-TV": "rltv"}
EDGES = ("circular", "padded", "zero")
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("engine", "fiji")


def psf_from_parameters(p: dict[str, Any], *, pixel_nm: float | None = None, normalize: str = "sum") -> np.ndarray:
    """The PSF a :meth:`DeconvolvePanel.psf_parameters` dict describes (engine functions; thread-safe).

    Born & Wolf: the engine's one :func:`~decongan.engine.optics.request.psf_for_grid` for the image's
    grid (``p["yx_shape"]``, ``p["nz"]`` planes), the PSF ``decongan batch`` and ``decongan psf --like``
    build for the same image and optics. Gaussian: ``p["size"]``, and for a 3-D PSF the axial FWHM the
    user gave (``p["fwhm_z_nm"]``; never implied). ``pixel_nm`` samples it on another pixel size (e.g.
    the evaluation grid of a comparison).

    Parameters
    ----------
    p : dict
        From :meth:`app.gui.session.Session.psf_parameters`.
    pixel_nm : float, optional
        Lateral pixel size (nm) to sample on instead of ``p["pixel_nm"]``.
    normalize : {"sum", "peak"}

    Returns
    -------
    ndarray, float32, (Y, X) or (Z, Y, X)
    """
    from decongan.engine.optics.psf import gaussian_psf, read_psf

    if p["model"] == "file":
        if not p.get("path"):
            raise ValueError("choose a PSF file (or another PSF model)")
        return np.asarray(read_psf(p["path"]).data, dtype=np.float32)
    pixel = pixel_nm if pixel_nm is not None else p["pixel_nm"]
    if p["model"] == "born-wolf":
        from decongan.engine.optics.request import Optics, psf_for_grid

        if not p.get("yx_shape"):
            raise ValueError("open an image first: the Born & Wolf PSF is sized for the image's grid "
                             "(the engine's energy rule)")
        optics = Optics(na=p["na"], ni=p["ni"], wavelength_nm=p["wavelength_nm"], pixel_nm=pixel,
                        z_step_nm=p.get("z_step_nm"), origin=p.get("origin") or "image")
        psf = psf_for_grid(optics, yx_shape=p["yx_shape"], nz=p.get("nz"))
        return psf if normalize == "sum" else (psf / psf.max()).astype(np.float32)
    nz = p.get("nz")
    if nz and not p.get("fwhm_z_nm"):
        raise ValueError("a 3-D Gaussian PSF needs its axial FWHM: enter it in Gaussian axial FWHM")
    return gaussian_psf(fwhm_nm=p["fwhm_nm"], pixel_nm=pixel, size=p["size"], normalize=normalize,
                        nz=nz, fwhm_z_nm=p.get("fwhm_z_nm") if nz else None, z_step_nm=p.get("z_step_nm"))


class DeconvolvePanel(WorkflowPanel):
    """Build a PSF and deconvolve the current LQ image; the result becomes a viewer layer.

    Signals
    -------
    psf_changed(object)  the new PSF (ndarray) after a preview was computed
    """

    command = "deconvolve"
    title = "Deconvolve"
    psf_changed = Signal(object)

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.psf: np.ndarray | None = None
        self.psf_error: str = ""
        #: PSFs already built, by their parameters (sizing a Born & Wolf PSF for a large grid takes seconds)
        self._psf_cache: dict[str, np.ndarray] = {}
        self._preview_job: Any = None
        self.job = None
        self.fiji_status: Any = None

        form = self.add_group("Point spread function (LQ system)")
        self.model_combo = combo(list(PSF_MODELS), "Born & Wolf", tooltip="Born & Wolf scalar model (PSF Generator)")
        self.na_spin = double_spin(0.05, 1.7, 1.4, decimals=3, step=0.05, tooltip="Numerical aperture of the objective")
        self.ni_spin = double_spin(1.0, 1.8, 1.515, decimals=3, step=0.01,
                                   tooltip="Immersion refractive index: air 1.0, water 1.33, oil 1.515")
        self.wavelength_spin = double_spin(200.0, 1500.0, 520.0, decimals=1, step=5.0, suffix=" nm",
                                           tooltip="Emission wavelength")
        self.pixel_spin = double_spin(1.0, 100000.0, 100.0, decimals=2, step=1.0, suffix=" nm",
                                      tooltip="Lateral pixel size of the image (linked to the Data panel)")
        self.size_spin = int_spin(3, 1025, 65, step=2, suffix=" px",
                                  tooltip="Gaussian PSF side length (odd); a Born & Wolf PSF is sized by the engine's "
                                          "energy rule for the image's grid (shown below the preview)")
        self.nz_spin = int_spin(1, 513, 1, suffix=" planes",
                                tooltip="Gaussian: 1 = 2-D PSF, more for z-stacks; Born & Wolf: the energy rule")
        self.zstep_spin = double_spin(1.0, 100000.0, 200.0, decimals=1, step=10.0, suffix=" nm", tooltip="Axial step")
        self.fwhm_spin = double_spin(1.0, 100000.0, 250.0, decimals=1, step=10.0, suffix=" nm",
                                     tooltip="Lateral FWHM of the Gaussian PSF")
        self.fwhm_z_spin = double_spin(1.0, 100000.0, 750.0, decimals=1, step=10.0, suffix=" nm",
                                       tooltip="Axial FWHM of a 3-D Gaussian PSF (used as shown, never implied)")
        self.psf_file = PathEdit(folder=False, caption="PSF file", filter="TIFF (*.tif *.tiff)")
        for spin in (self.pixel_spin, self.zstep_spin):  # 0 = unknown: the session's value, never a stale one
            spin.setMinimum(0.0)
            spin.setSpecialValueText("unknown")
        form.addRow("Model", self.model_combo)
        form.addRow("NA", self.na_spin)
        form.addRow("Immersion n", self.ni_spin)
        form.addRow("Emission λ", self.wavelength_spin)
        form.addRow("Pixel size", self.pixel_spin)
        form.addRow("Size", self.size_spin)
        form.addRow("Z planes", self.nz_spin)
        form.addRow("Z step", self.zstep_spin)
        form.addRow("Gaussian FWHM", self.fwhm_spin)
        form.addRow("Gaussian axial FWHM", self.fwhm_z_spin)
        form.addRow("PSF file", self.psf_file)
        self._psf_form = form

        preview_row = QHBoxLayout()
        self.preview = pg.GraphicsLayoutWidget()
        self.preview.setFixedSize(150, 150)
        self.preview.setBackground("#202020")
        view = self.preview.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.preview_item = pg.ImageItem(axisOrder="row-major")
        self.preview_item.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=False))
        view.addItem(self.preview_item)
        self.preview_view = view
        self.psf_info = QLabel("")
        self.psf_info.setWordWrap(True)
        preview_row.addWidget(self.preview)
        preview_row.addWidget(self.psf_info, 1)
        self.outer.addLayout(preview_row)

        form2 = self.add_group("Deconvolution")
        self.method_combo = combo(list(METHODS), "RL")
        from decongan.engine.optics.request import DEFAULT_SETTINGS

        self.iterations_spin = int_spin(0, 10000, DEFAULT_SETTINGS.iterations, tooltip="Richardson-Lucy iterations")
        self.tv_spin = double_spin(0.0, 1.0, 0.01, decimals=5, step=0.001, tooltip="TV regularisation weight")
        self.tv_variant_combo = combo(("dey", "dl2"), "dey", tooltip="dey: the published RL-TV (Dey et al. 2006); "
                                      "dl2: DeconvolutionLab2 2.1.2's implementation (circular edges only)")
        self.edges_combo = combo(EDGES, DEFAULT_SETTINGS.edges,
                                 tooltip="padded (default): Bertero-Boccacci borders for real images; circular: "
                                         "DeconvolutionLab2's convention (periodic), for parity with Fiji; zero: scikit-image's")
        self.device_combo = combo(DEVICES, ctx.settings.get("device"))
        self.backend_combo = combo(BACKENDS, "engine", tooltip="engine: DeconGAN's RL; fiji: DeconvolutionLab2 "
                                   "through the Fiji bridge (falls back to the engine when Fiji is unavailable)")
        form2.addRow("Method", self.method_combo)
        form2.addRow("Iterations", self.iterations_spin)
        form2.addRow("TV λ", self.tv_spin)
        form2.addRow("TV variant", self.tv_variant_combo)
        form2.addRow("Edges", self.edges_combo)
        form2.addRow("Device", self.device_combo)
        form2.addRow("Backend", self.backend_combo)

        form3 = self.add_group("Fiji")
        self.fiji_location = PathEdit(folder=True, caption="Fiji.app or ImageJ folder",
                                      placeholder="Fiji.app or ImageJ 1.x folder (optional)")
        self.fiji_location.setText(ctx.settings.get("fiji/location"))
        self.fiji_location.textChanged.connect(lambda t: ctx.settings.set("fiji/location", t.strip()))
        self.fiji_status_label = QLabel("Fiji status: not checked (press Check Fiji)")
        self.fiji_status_label.setWordWrap(True)
        check = QPushButton("Check Fiji")
        check.setToolTip("Run the Fiji doctor (decongan fiji doctor)")
        check.clicked.connect(self.check_fiji)
        form3.addRow("Location", self.fiji_location)
        form3.addRow(check, self.fiji_status_label)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Deconvolve")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.save_psf_button = QPushButton("Save PSF...")
        self.save_psf_button.clicked.connect(self._ask_save_psf)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.save_psf_button)
        buttons.addStretch(1)
        self.footer.addLayout(buttons)  # always visible, also on a 768 px high screen
        self.add_command_row()
        self.outer.addStretch(1)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.update_psf)
        params = (self.model_combo, self.na_spin, self.ni_spin, self.wavelength_spin, self.pixel_spin, self.size_spin,
                  self.nz_spin, self.zstep_spin, self.fwhm_spin, self.fwhm_z_spin, self.psf_file)
        for w in params:
            sig = getattr(w, "valueChanged", None) or getattr(w, "currentTextChanged", None) or w.textChanged
            sig.connect(lambda *a: self._preview_timer.start())
        self.connect_refresh(*params, self.method_combo, self.iterations_spin, self.tv_spin, self.tv_variant_combo,
                             self.edges_combo, self.device_combo, self.backend_combo)
        self.backend_combo.currentTextChanged.connect(
            lambda b: b == "fiji" and self.fiji_status is None and self.check_fiji())
        self.model_combo.currentTextChanged.connect(self._update_enabled)
        self.method_combo.currentTextChanged.connect(self._update_enabled)
        # the optics are the session's (per dataset, with their sources): the form shows and edits them
        self._optic_spins = {"na": self.na_spin, "ni": self.ni_spin, "wavelength_nm": self.wavelength_spin,
                             "pixel_nm": self.pixel_spin, "z_step_nm": self.zstep_spin}
        for key, spin in self._optic_spins.items():
            spin.valueChanged.connect(lambda v, k=key: self._set_optic(k, v))
        for w in (self.model_combo, self.size_spin, self.nz_spin, self.fwhm_spin, self.fwhm_z_spin, self.psf_file):
            sig = getattr(w, "valueChanged", None) or getattr(w, "currentTextChanged", None) or w.textChanged
            sig.connect(self._push_psf_choice)
        self.nz_spin.valueChanged.connect(self._update_enabled)
        ctx.session.layers_changed.connect(self._push_psf_choice)  # nz counts only for z-stacks
        ctx.session.optics_changed.connect(self._optics_from_session)
        self._optics_from_session()
        self._push_psf_choice()
        ctx.session.layers_changed.connect(self._update_enabled)
        self._update_enabled()
        self.refresh_command()
        self._preview_timer.start()

    # -- state -------------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return PSF_MODELS[self.model_combo.currentText()]

    @property
    def method(self) -> str:
        return METHODS[self.method_combo.currentText()]

    def _update_enabled(self, *args: Any) -> None:
        model = self.model
        has_z = bool(self.ctx.session.lq and "Z" in self.ctx.session.lq.image.axes)
        for w in (self.na_spin, self.ni_spin, self.wavelength_spin):
            w.setEnabled(model == "born-wolf")
        self.fwhm_spin.setEnabled(model == "gaussian")
        self.pixel_spin.setEnabled(model != "file")
        self.size_spin.setEnabled(model == "gaussian")  # Born & Wolf: the engine's sizing rule
        self.psf_file.setEnabled(model == "file")
        self.nz_spin.setEnabled(model == "gaussian" and has_z)
        self.fwhm_z_spin.setEnabled(model == "gaussian" and has_z and self.nz_spin.value() > 1)
        self.zstep_spin.setEnabled(model != "file" and has_z)
        self.tv_spin.setEnabled(self.method == "rltv")
        self.tv_variant_combo.setEnabled(self.method == "rltv")
        self.run_button.setEnabled(self.ctx.session.lq is not None)

    def _set_optic(self, key: str, value: float) -> None:
        """A field was edited: the session's optics take it, or refuse it (NA >= ni) and the field shows theirs."""
        from decongan.engine.optics.request import OpticsError

        try:
            self.ctx.session.set_optic(key, value or None)
        except OpticsError as err:
            self.psf_error = str(err)
            self.psf_info.setText(f"<span style='color:#d55e00'>{err}</span>")
            self._optics_from_session()

    def _optics_from_session(self) -> None:
        """Show the session's optics (unknown: "unknown"); each field's tooltip names its source."""
        from decongan.app.gui.session import SOURCE_LABELS, UNKNOWN

        optics = self.ctx.session.optics
        changed = False
        for key, spin in self._optic_spins.items():
            value = getattr(optics, key)
            shown = value.value if value.known else spin.minimum()
            if abs(spin.value() - shown) > 1e-9:
                spin.blockSignals(True)
                spin.setValue(shown)
                spin.blockSignals(False)
                changed = True
            spin.setStatusTip(f"from: {SOURCE_LABELS[value.source] if value.known else UNKNOWN}")
        if changed:
            self.refresh_command()
            self._preview_timer.start()

    def _push_psf_choice(self, *args: Any) -> None:
        nz = self.nz_spin.value() if self.nz_spin.isEnabled() and self.nz_spin.value() > 1 else None
        self.ctx.session.set_psf_choice({"model": self.model, "size": self.size_spin.value(),
                                         "fwhm_nm": self.fwhm_spin.value(), "fwhm_z_nm": self.fwhm_z_spin.value(),
                                         "path": self.psf_file.text(), "nz": nz})

    def psf_parameters(self) -> dict[str, Any]:
        """The PSF of the LQ system (the session's: this form's model with the dataset's optics)."""
        self._push_psf_choice()
        return self.ctx.session.psf_parameters()

    def parameters(self) -> dict[str, Any]:
        p = {"psf": self.psf_parameters(), "iterations": self.iterations_spin.value(), "method": self.method,
             "edges": self.edges_combo.currentText(), "device": self.device_combo.currentText(),
             "backend": self.backend_combo.currentText()}
        if self.method == "rltv":
            p.update(tv_lambda=self.tv_spin.value(), tv_variant=self.tv_variant_combo.currentText())
        return p

    # -- PSF -----------------------------------------------------------------------------------------
    def build_psf(self, *, pixel_nm: float | None = None, normalize: str = "sum") -> np.ndarray:
        """The PSF described by the form (engine functions; sum-normalised for deconvolution).

        Raises
        ------
        ValueError
            The pixel size (or, for a 3-D PSF, the z step) of the current dataset is unknown; the
            message names the file and where to enter it.
        """
        p = self.psf_parameters()
        self._require_calibration(p, pixel_nm)
        key = repr((p, pixel_nm, normalize))
        psf = self._psf_cache.get(key)
        if psf is None:
            psf = psf_from_parameters(p, pixel_nm=pixel_nm, normalize=normalize)
            self._remember_psf(key, psf)
        return psf

    def _remember_psf(self, key: str, psf: np.ndarray) -> None:
        """Keep the last few PSFs (a Born & Wolf PSF for a large grid takes seconds to size)."""
        self._psf_cache[key] = psf
        while len(self._psf_cache) > 4:
            del self._psf_cache[next(iter(self._psf_cache))]

    def _require_calibration(self, p: dict[str, Any], pixel_nm: float | None = None) -> None:
        if p["model"] == "file":
            return
        lq = self.ctx.session.lq
        name = Path(lq.image.path).name if lq is not None and lq.image.path else "the image"
        if pixel_nm is None and not p.get("pixel_nm"):
            raise ValueError(f"the pixel size of {name} is unknown (its file has no calibration): enter it in "
                             "Pixel size (Deconvolve or Data panel), or choose a PSF file")
        if p.get("nz") and not p.get("z_step_nm"):
            raise ValueError(f"the z step of {name} is unknown (its file has no calibration): enter it in Z step, "
                             "or use a 2-D PSF (Z planes 1)")

    def update_psf(self) -> Any:
        """Recompute the PSF preview (debounced). A PSF not computed yet is built in a background job
        (sizing a Born & Wolf PSF for a large grid takes seconds), so the window stays responsive;
        returns that job, or None when the preview was shown at once."""
        try:
            p = self.psf_parameters()
            self._require_calibration(p)
            if p["model"] == "file":  # reading a file: at once
                self.build_psf()
        except (ValueError, OSError) as err:
            self._show_psf_error(err)
            return None
        key = repr((p, None, "sum"))
        cached = self._psf_cache.get(key)
        if cached is not None:
            self._show_psf(cached, p)
            return None
        running = self._preview_job
        if running is not None and running.is_running and getattr(running, "psf_key", None) == key:
            return running  # already being computed
        self.psf_info.setText("computing the PSF...")

        def work(ctx):
            try:
                return key, psf_from_parameters(p), None
            except (ValueError, OSError) as err:  # shown under the preview, not as a dialog
                return key, None, err

        def done(result: tuple[str, np.ndarray | None, Exception | None]) -> None:
            done_key, psf, err = result
            if psf is not None:
                self._remember_psf(done_key, psf)
            if done_key != repr((self.psf_parameters(), None, "sum")):
                return  # the form changed meanwhile: its own preview follows
            if err is not None:
                self._show_psf_error(err)
            else:
                self._show_psf(psf, p)

        self._preview_job = self.ctx.jobs.start("PSF preview", work, on_success=done, background=True)
        self._preview_job.psf_key = key
        return self._preview_job

    def _show_psf_error(self, err: Exception) -> None:
        self.psf = None
        self.psf_error = str(err)
        self.psf_info.setText(f"<span style='color:#d55e00'>PSF: {err}</span>")

    def _show_psf(self, psf: np.ndarray, p: dict[str, Any]) -> None:
        """Show ``psf`` (of the parameters ``p``) in the preview and its description."""
        self.psf = psf
        self.psf_error = ""
        from decongan.engine.optics.request import focal_plane

        focal = focal_plane(psf)  # the peak plane, the engine's rule (not the middle plane)
        self.preview_item.setImage(focal, autoLevels=False, levels=(0.0, float(focal.max()) or 1.0))
        self.preview_view.autoRange(padding=0)
        text = f"{' x '.join(str(s) for s in psf.shape)} px, sum 1"
        if p["model"] == "born-wolf":
            from decongan.engine.optics.psf import airy_fwhm_nm
            from decongan.engine.optics.request import DEFAULT_PSF_ENERGY

            grid = " x ".join(str(n) for n in (*([p["nz"]] if p.get("nz") else []), *p["yx_shape"]))
            text += (f"<br>size: the engine's energy rule ({DEFAULT_PSF_ENERGY:.0%}) for the {grid} image "
                     "(as decongan batch and psf --like)")
            fwhm = airy_fwhm_nm(na=p["na"], wavelength_nm=p["wavelength_nm"])
            text += f"<br>Airy FWHM {fwhm:.0f} nm = {fwhm / p['pixel_nm']:.2f} px"
            nyquist = p["wavelength_nm"] / (4 * p["na"])
            if p["pixel_nm"] > nyquist:
                text += f"<br><span style='color:#e69f00'>pixels coarser than Nyquist ({nyquist:.0f} nm)</span>"
        self.psf_info.setText(text)
        self.psf_changed.emit(psf)

    def _ask_save_psf(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save PSF", "psf.tif", "TIFF (*.tif)")
        if path:
            self.save_psf(path)

    def save_psf(self, path: str | Path) -> Path:
        """Write the PSF as a calibrated float32 TIFF (what ``decongan psf --normalize sum`` writes)."""
        from decongan.engine.io import write_tiff

        psf = self.build_psf()
        p = self.psf_parameters()
        return write_tiff(path, psf, pixel_size_um=p.get("pixel_nm", 0) / 1000.0 or None,
                          z_step_um=(p["z_step_nm"] / 1000.0) if p.get("nz") else None)

    # -- CLI -----------------------------------------------------------------------------------------
    def cli_commands(self) -> list[list[str]]:
        p = self.psf_parameters()
        lq = self.ctx.session.lq
        src = str(lq.image.path) if lq is not None and lq.image.path else "INPUT.tif"
        cmds: list[list[str]] = []
        if p["model"] == "file":
            psf_path = p["path"] or "PSF.tif"
        else:
            psf_path = "psf.tif"
            # an unknown calibration is shown as a placeholder to fill in, never as a guessed number
            pixel = f"{p['pixel_nm']:g}" if p.get("pixel_nm") else "PIXEL_NM"
            z_step = f"{p['z_step_nm']:g}" if p.get("z_step_nm") else "Z_STEP_NM"
            optics = self.ctx.session.optics
            if p["model"] == "born-wolf":  # the same sizing rule: psf --like the input
                psf_cmd = ["psf", "--model", p["model"], "--na", f"{p['na']:g}", "--ni", f"{p['ni']:g}",
                           "--wavelength-nm", f"{p['wavelength_nm']:g}", "--like", src]
                if optics.pixel_nm.source != "metadata":
                    psf_cmd += ["--pixel-nm", pixel]
                if p.get("nz") and optics.z_step_nm.source != "metadata":
                    psf_cmd += ["--z-step-nm", z_step]
            else:
                psf_cmd = ["psf", "--model", p["model"], "--pixel-nm", pixel, "--size", str(p["size"]),
                           "--fwhm-nm", f"{p['fwhm_nm']:g}"]
                if p.get("nz"):
                    psf_cmd += ["--nz", str(p["nz"]), "--z-step-nm", z_step, "--fwhm-z-nm", f"{p['fwhm_z_nm']:g}"]
            psf_cmd += ["--normalize", "sum", "--out", psf_path]
            cmds.append(psf_cmd)
        cmd = ["deconvolve", src, "--psf", psf_path, "--iterations", str(self.iterations_spin.value()),
               "--method", self.method, "--edges", self.edges_combo.currentText(),
               "--device", self.device_combo.currentText()]
        if self.method == "rltv":
            cmd += ["--tv-lambda", f"{self.tv_spin.value():g}", "--tv-variant", self.tv_variant_combo.currentText()]
        if self.backend_combo.currentText() == "fiji":
            cmd += ["--backend", "fiji"]
        if self.ctx.session.pixel_size_override and p["model"] != "file":
            cmd += ["--pixel-nm", f"{p['pixel_nm']:g}"]
        if p.get("nz") and p.get("z_step_nm") and self.ctx.session.optics.z_step_nm.source == "user":
            cmd += ["--z-step-nm", f"{p['z_step_nm']:g}"]  # typed here, not the file's: the result records it
        cmd += ["--out", "deconvolved.tif"]
        cmds.append(cmd)
        return cmds

    def cli_args(self) -> list[str]:
        return self.cli_commands()[-1]

    def refresh_command(self, *args: Any) -> None:
        import shlex

        try:
            self.command_edit.setText(" && ".join("decongan " + " ".join(shlex.quote(a) for a in c)
                                                  for c in self.cli_commands()))
        except Exception as err:  # noqa: BLE001
            self.command_edit.setText(f"(incomplete: {err})")

    # -- run -----------------------------------------------------------------------------------------
    def layer_name(self, backend_label: str) -> str:
        name = "RL-TV" if self.method == "rltv" else "RL"
        return f"{name} {self.iterations_spin.value()} it ({backend_label})"

    def run(self) -> None:
        """Deconvolve the current LQ image in a worker thread; the result is added as a layer."""
        lq = self.ctx.session.lq
        if lq is None:
            self.ctx.errors.present(ValueError("open an image first"), context="Deconvolve")
            return
        p = self.psf_parameters()
        try:  # what can be checked at once is (calibration, a PSF file); a computed PSF is built in the job
            self._require_calibration(p)
            psf = self.build_psf() if p["model"] == "file" else self._psf_cache.get(repr((p, None, "sum")))
        except (ValueError, OSError) as err:
            self.ctx.errors.present(err, context="PSF")
            return
        image = lq.image
        options = {"iterations": self.iterations_spin.value(), "method": self.method,
                   "edges": self.edges_combo.currentText(), "device": self.device_combo.currentText()}
        if self.method == "rltv":
            options.update(tv_lambda=self.tv_spin.value(), tv_variant=self.tv_variant_combo.currentText())
        backend = self.backend_combo.currentText()
        psf_source = f"{self.model} PSF {self.psf_parameters()}"
        # the optics with their sources go into the provenance, as decongan batch records them
        optics = self.ctx.session.optics.provenance() if self.model == "born-wolf" else None
        fiji_dir = self.fiji_location.text() or None

        def work(ctx):
            from decongan.engine.optics.deconvolution import deconvolve_image, iter_deconvolve_image

            nonlocal psf
            if psf is None:
                psf = psf_from_parameters(p)  # the engine's psf_for_grid for this grid (seconds for large ones)
            if backend == "engine":  # generator form: cancellable at every iteration
                result = yield from iter_deconvolve_image(image, psf, psf_source=psf_source, **options)
                return result
            # Fiji: DeconvolutionLab2 through the bridge; without it, the engine with DL2's conventions,
            # labelled "engine (Fiji unavailable)" (app.fiji, what `decongan fiji` uses)
            from decongan.app.fiji.client import get_client, with_engine_fallback
            from decongan.app.fiji.deconvolve import fiji_deconvolve_image

            def kill_fiji() -> None:  # DeconvolutionLab2 cannot poll our token: cancel kills the worker
                try:
                    get_client(fiji_dir).cancel()
                except Exception:  # noqa: BLE001 - no client: nothing to stop
                    pass

            ctx.on_cancel(kill_fiji)

            tv_lambda = options.get("tv_lambda") if options["method"] == "rltv" else None
            fallback = {"iterations": options["iterations"], "method": options["method"], "edges": "circular",
                        "device": options["device"]}
            if tv_lambda is not None:
                fallback.update(tv_lambda=tv_lambda, tv_variant="dl2")
            return with_engine_fallback(
                lambda: fiji_deconvolve_image(image, psf, iterations=options["iterations"], tv_lambda=tv_lambda,
                                              psf_source=psf_source, fiji_dir=fiji_dir, progress=ctx.progress),
                lambda: deconvolve_image(image, psf, psf_source=psf_source, **fallback))

        def rerun(half: Any) -> Any:  # the same engine call on another image (split-half maps)
            from decongan.engine.optics.deconvolution import deconvolve_image

            return deconvolve_image(half, psf if psf is not None else psf_from_parameters(p), psf_source=psf_source,
                                    **options)

        label = "engine" if backend == "engine" else "Fiji"
        self.job = self.ctx.jobs.start("Deconvolution", work, on_success=lambda r: self._done(
            r, label, optics, rerun if backend == "engine" else None))

    def _done(self, result: Any, label: str, optics: dict[str, Any] | None = None, rerun: Any = None) -> None:
        provenance = result.provenance
        if optics:
            provenance.parameters["optics"] = optics
        if label == "Fiji" and "unavailable" in (provenance.backend or "").lower():
            label = "engine, Fiji unavailable"
        layer = Layer(self.layer_name(label), result.image, "restored", provenance, rerun=rerun)
        self.ctx.session.set_layer(layer)

    # -- Fiji ----------------------------------------------------------------------------------------
    def check_fiji(self) -> None:
        """Run the Fiji doctor (what ``decongan fiji doctor`` reports; starts the worker) in a thread."""
        fiji_dir = self.fiji_location.text() or None
        self.fiji_status_label.setText("Fiji status: checking (starting ImageJ)...")

        def work(ctx):
            from decongan.app.fiji.doctor import doctor

            return doctor(fiji_dir)

        self.ctx.jobs.start("Fiji doctor", work, on_success=self._show_fiji_status)

    def _show_fiji_status(self, report: Any) -> None:
        self.fiji_status = report
        self.fiji_status_label.setText(fiji_status_text(report))
        self.fiji_status_label.setToolTip("\n".join(report.lines()))


def fiji_status_text(report: Any) -> str:
    """The doctor's one-line summary, then each backend with why it is (not) used (rich text)."""
    from html import escape

    lines = [f"<b>{escape(report.summary())}</b>"]
    for backend in report.discovery.candidates:
        mark = "&#10003;" if backend.usable else "&#10007;"
        reason = backend.reason if len(backend.reason) < 140 else backend.reason[:137] + "..."
        lines.append(f"{mark} {backend.kind}: {escape(reason)}")
    return "<br>".join(lines)
