"""The DeconGAN main window: data dock, multi-panel viewer, analysis tabs and workflow panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QWidget,
)

from app.gui import analysis
from app.gui.data_panel import DataPanel
from app.gui.error_dialog import ErrorPresenter
from app.gui.jobs import Job, JobManager, JobStatusWidget
from app.gui.line_profile import LineProfileWidget, engine_profile
from app.gui.metrics_table import MetricsTable
from app.gui.panels.base import Context
from app.gui.session import (
    GT_ROLE,
    LQ_ROLE,
    RESTORED_ROLE,
    Dataset,
    FieldOfView,
    Layer,
    Session,
    build_dataset,
    load_field,
)
from app.gui.settings import Settings
from app.gui.viewer import MultiPanelViewer
from engine.io import IMAGE_SUFFIXES, read_image

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"


class MainWindow(QMainWindow):
    """The workbench window.

    Parameters
    ----------
    settings : Settings, optional
        Persisted settings (default: the user's store, or ``DECONGAN_SETTINGS``).
    show_error_dialogs : bool
        Open the error dialog for each error (non-blocking). Tests may switch it off and read
        ``window.errors.history`` instead.
    """

    def __init__(self, settings: Settings | None = None, *, show_error_dialogs: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("DeconGAN")
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.errors = ErrorPresenter(self, show_dialogs=show_error_dialogs)
        self.jobs = JobManager(self.errors, self)
        self.session = Session(self)
        self.ctx = Context(self.session, self.jobs, self.errors, self.settings, self)
        self._analysis_jobs: dict[str, Job] = {}
        self._metrics_cache: dict[str, tuple[tuple, dict[str, Any]]] = {}
        self.map_scores: dict[str, dict[str, float]] = {}

        self.viewer = MultiPanelViewer(lut=self.settings.get("viewer/lut"),
                                       shared_contrast=self.settings.get("viewer/contrast_shared", False),
                                       low_pct=self.settings.get("viewer/percentile_low"),
                                       high_pct=self.settings.get("viewer/percentile_high"))
        self.profile = LineProfileWidget()
        self.metrics = MetricsTable()
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.profile, "Line profile")
        self.bottom_tabs.addTab(self.metrics, "Metrics")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.viewer)
        splitter.addWidget(self.bottom_tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([640, 240])
        self.setCentralWidget(splitter)

        self.data_panel = DataPanel(self.session)
        self.data_dock = self._dock("Data", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._build_workflows()
        self._build_menus()
        self.job_status = JobStatusWidget(self.jobs)
        self.statusBar().addPermanentWidget(self.job_status, 1)

        self.session.layers_changed.connect(self._layers_changed)
        self.session.pixel_size_changed.connect(self._pixel_size_changed)
        self.session.field_changed.connect(self._field_changed)
        self.data_panel.dataset_requested.connect(self.open_dataset)
        self.data_panel.field_requested.connect(self.load_field)
        self.viewer.line_changed.connect(self._update_profiles)
        self.viewer.plane_changed.connect(self._plane_changed)
        self.viewer.map_mode_changed.connect(self._map_mode_changed)
        self.viewer.panels_changed.connect(self._update_profiles_from_viewer)
        self.viewer.lut_combo.currentTextChanged.connect(lambda t: self.settings.set("viewer/lut", t))
        self.viewer.shared_check.toggled.connect(lambda on: self.settings.set("viewer/contrast_shared", on))
        self.viewer.low_spin.valueChanged.connect(lambda v: self.settings.set("viewer/percentile_low", v))
        self.viewer.high_spin.valueChanged.connect(lambda v: self.settings.set("viewer/percentile_high", v))
        self.viewer.line_button.toggled.connect(lambda on: on and self.bottom_tabs.setCurrentWidget(self.profile))
        self._metrics_timer = QTimer(self)
        self._metrics_timer.setSingleShot(True)
        self._metrics_timer.setInterval(300)
        self._metrics_timer.timeout.connect(self.compute_metrics)

        geometry, state = self.settings.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 950)
        if state is not None:
            self.restoreState(state)
        self._refresh_recent_menu()

    # -- construction --------------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _build_workflows(self) -> None:
        from app.gui.panels.batch import BatchPanel
        from app.gui.panels.deconvolve import DeconvolvePanel
        from app.gui.panels.export import ExportPanel
        from app.gui.panels.predict import PredictPanel
        from app.gui.panels.register import RegisterPanel
        from app.gui.panels.train import TrainPanel

        self.workflow_tabs = QTabWidget()
        self.register_panel = RegisterPanel(self.ctx)
        self.deconvolve_panel = DeconvolvePanel(self.ctx)
        self.train_panel = TrainPanel(self.ctx)
        self.predict_panel = PredictPanel(self.ctx)
        self.batch_panel = BatchPanel(self.ctx)
        self.export_panel = ExportPanel(self.ctx)
        for panel in (self.register_panel, self.deconvolve_panel, self.train_panel, self.predict_panel,
                      self.batch_panel, self.export_panel):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(panel)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            self.workflow_tabs.addTab(scroll, panel.title)
        self.workflow_dock = self._dock("Workflows", self.workflow_tabs, Qt.DockWidgetArea.RightDockWidgetArea)
        self.workflow_dock.setMinimumWidth(400)
        self.deconvolve_panel.psf_changed.connect(lambda _psf: self._invalidate_maps("consistency"))
        self.batch_panel.rows_ready.connect(lambda rows: self.metrics.merge_rows(rows, "Dataset"))

    def show_workflow(self, panel: QWidget) -> None:
        """Bring the tab holding ``panel`` to the front."""
        for i in range(self.workflow_tabs.count()):
            if self.workflow_tabs.widget(i).widget() is panel:
                self.workflow_tabs.setCurrentIndex(i)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open image...", self._ask_open_files, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &folder...", self._ask_open_folder, "Ctrl+Shift+O")
        self._action(file_menu, "Open &ground truth for this field...", self._ask_open_gt)
        self._action(file_menu, "Add a &restored image as a method...", self._ask_open_method)
        self.recent_menu = file_menu.addMenu("&Recent")
        file_menu.addSeparator()
        self._action(file_menu, "&Save layer as TIFF...", self._ask_save_layer, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Export &metrics...", self.metrics._ask_export)
        self._action(file_menu, "&Export figure, tables and report...",
                     lambda: self.show_workflow(self.export_panel))
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view = bar.addMenu("&View")
        self._action(view, "&Fit image", self.viewer.reset_view, "Ctrl+0")
        view.addAction(self._toggle_action("&Line profile", self.viewer.line_button, "L"))
        view.addAction(self._toggle_action("&Error map", self.viewer.error_button, "E"))
        view.addAction(self._toggle_action("&Consistency map", self.viewer.consistency_button, "C"))
        view.addSeparator()
        view.addAction(self.data_dock.toggleViewAction())
        view.addAction(self.workflow_dock.toggleViewAction())

        work = bar.addMenu("&Workflows")
        for panel in (self.register_panel, self.deconvolve_panel, self.train_panel, self.predict_panel,
                      self.batch_panel, self.export_panel):
            self._action(work, panel.title, lambda p=panel: self.show_workflow(p))
        work.addSeparator()
        self._action(work, "&Cancel all jobs", self.jobs.cancel_all)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Check &Fiji (doctor)", self.deconvolve_panel.check_fiji)
        self._action(help_menu, "&About DeconGAN", self._about)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    def _toggle_action(self, text: str, button, shortcut: str) -> QAction:
        action = QAction(text, self, checkable=True)
        action.setShortcut(QKeySequence(shortcut))
        action.toggled.connect(button.setChecked)
        button.toggled.connect(action.setChecked)
        return action

    def _about(self) -> None:
        from engine import __version__

        QMessageBox.about(self, "About DeconGAN",
                          f"DeconGAN {__version__}\nIs a GAN better than deconvolution for these images?\n\n"
                          f"Settings: {self.settings.location}")

    # -- opening -------------------------------------------------------------------------------------
    def _start_dir(self) -> str:
        return self.settings.get("last_dir") or str(Path.home())

    def _ask_open_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self._start_dir(), IMAGE_FILTER)
        if paths:
            self.open_paths([Path(p) for p in paths])

    def _ask_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder (or a dataset with lq/ and hq/)",
                                                self._start_dir())
        if path:
            self.open_paths([Path(path)])

    def _ask_open_gt(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Ground truth for this field", self._start_dir(), IMAGE_FILTER)
        if path:
            self.open_ground_truth(Path(path))

    def _ask_open_method(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A restored image of this field", self._start_dir(), IMAGE_FILTER)
        if path:
            name, ok = QInputDialog.getText(self, "Method name", "Name shown for this method:",
                                            text=Path(path).stem)
            if ok and name:
                self.open_method(Path(path), name)

    def open_paths(self, paths: list[Path]) -> None:
        """Open files (each a field) or a folder (a dataset; ``lq/`` + ``hq/`` inside = paired)."""
        paths = [Path(p) for p in paths]
        folders = [p for p in paths if p.is_dir()]
        if folders:
            folder = folders[0]
            if (folder / "lq").is_dir() and (folder / "hq").is_dir():
                self.open_dataset(folder / "lq", folder / "hq", True)
            else:
                self.open_dataset(folder, None, True)
            self.settings.add_recent(folder)
            self._refresh_recent_menu()
            return
        files = [p for p in paths if p.exists() or p.suffix]
        if not files:
            return
        from engine.training.data import image_stem

        fields = [FieldOfView(image_stem(p), p, None) for p in files]
        dataset = Dataset(None, None, False, fields)
        self.session.set_dataset(dataset)
        self.load_field(fields[0])

    def open_dataset(self, lq_dir: Path | None, hq_dir: Path | None = None, paired: bool = True) -> Dataset | None:
        """List a dataset's fields and show the first one."""
        if not lq_dir and not hq_dir:
            self.errors.present(ValueError("choose at least an LQ folder"), context="Open dataset")
            return None
        try:
            dataset = build_dataset(lq_dir, hq_dir, paired=paired)
        except (OSError, ValueError) as err:
            self.errors.present(err, context="Open dataset")
            return None
        self.session.set_dataset(dataset)
        self.metrics.set_rows([], "Dataset")
        if dataset.fields:
            self.load_field(dataset.fields[0])
        return dataset

    def load_field(self, fov: FieldOfView) -> Job:
        """Read the field's files in a worker thread and show them."""
        override = self.session.pixel_size_override

        def work(ctx):
            return load_field(fov, pixel_size_um=override)

        def done(layers: list[Layer]) -> None:
            self.session.set_field(fov, layers)
            self.data_panel.select_field(fov)
            for path in (fov.lq, fov.hq):
                if path is not None:
                    self.settings.add_recent(path)
            self._refresh_recent_menu()

        return self.jobs.start(f"Opening {fov.name}", work, on_success=done)

    def open_ground_truth(self, path: Path) -> Job:
        def done(image) -> None:
            self.session.set_layer(Layer("GT", image, GT_ROLE))
            self.settings.add_recent(path)

        return self.jobs.start(f"Opening {path.name}", lambda ctx: read_image(path), on_success=done)

    def open_method(self, path: Path, name: str) -> Job:
        """Add a restored image from disk as a method layer (e.g. an output of another tool)."""
        def done(image) -> None:
            from engine.provenance import Provenance

            self.session.set_layer(Layer(name, image, RESTORED_ROLE,
                                         Provenance(method=name, backend="file", parameters={"path": str(path)})))

        return self.jobs.start(f"Opening {path.name}", lambda ctx: read_image(path), on_success=done)

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files()
        for path in recent:
            self._action(self.recent_menu, path, lambda p=path: self.open_paths([Path(p)]))
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)

    # -- drag and drop ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # -- saving --------------------------------------------------------------------------------------
    def _ask_save_layer(self) -> None:
        names = [lay.name for lay in self.session.layers]
        if not names:
            return
        name, ok = QInputDialog.getItem(self, "Save layer", "Layer:", names, 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save as TIFF", f"{name}.tif", "TIFF (*.tif)")
        if path:
            self.save_layer(name, Path(path))

    def save_layer(self, name: str, path: Path) -> Job:
        """Write a layer as a calibrated float32 TIFF with its provenance (never over its own input)."""
        from engine.io import write_tiff

        layer = self.session.layer(name)
        if layer is None:
            raise KeyError(name)
        if layer.image.path is not None and Path(path).resolve() == Path(layer.image.path).resolve():
            raise ValueError(f"{path} is the layer's own input file; choose another name (inputs are never overwritten)")
        description = layer.provenance.model_dump_json() if layer.provenance is not None else None
        return self.jobs.start(f"Saving {name}",
                               lambda ctx: write_tiff(path, layer.image, dtype="float32", description=description))

    # -- reacting to the session -----------------------------------------------------------------------
    def _field_changed(self) -> None:
        name = self.session.field.name if self.session.field else ""
        self.setWindowTitle(f"DeconGAN - {name}" if name else "DeconGAN")
        self.map_scores = {}
        self._metrics_cache = {}

    def _layers_changed(self) -> None:
        self.viewer.set_layers(self.session.layers)
        for kind in ("error", "consistency"):
            self._invalidate_maps(kind)
        self._metrics_timer.start()

    def _pixel_size_changed(self, um: float | None) -> None:
        self.viewer.pixel_size_um = um
        self.viewer._redraw(full=False)
        self._update_profiles_from_viewer()

    def _plane_changed(self) -> None:
        self._update_profiles_from_viewer()
        self._metrics_timer.start()
        if self.viewer.map_mode != "image":
            self.compute_maps(self.viewer.map_mode)

    # -- analysis ------------------------------------------------------------------------------------
    def current_planes(self) -> dict[str, np.ndarray]:
        """Layer name -> the 2-D plane on screen (current channel / z / t), for every layer."""
        return {lay.name: self.viewer.plane_of(lay) for lay in self.session.layers}

    def _run_analysis(self, key: str, name: str, work, on_success) -> Job:
        old = self._analysis_jobs.get(key)
        if old is not None and old.is_running:
            old.cancel()
        job = self.jobs.start(name, work, on_success=on_success, background=True)
        self._analysis_jobs[key] = job
        return job

    def _metrics_key(self, layer: Layer) -> tuple:
        gt = self.session.gt
        return (layer.image.data, gt.image.data if gt is not None and gt is not layer else None,
                tuple(self.viewer.position.values()), self.session.pixel_size_um)

    def _cached_row(self, layer: Layer) -> dict[str, Any] | None:
        entry = self._metrics_cache.get(layer.name)
        if entry is None:
            return None
        key, row = entry
        new = self._metrics_key(layer)
        same = all((a is b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else a == b
                   for a, b in zip(key, new, strict=True))
        return row if same else None

    def compute_metrics(self) -> Job | None:
        """Metrics of every layer of the current plane (reference metrics against GT when there is one).

        Rows already computed for the same pixels, plane and reference are reused (no work twice).
        """
        if not self.session.layers or self.session.field is None:
            self.metrics.set_rows([], "Current field")
            return None
        gt = self.session.gt
        image_name = self.session.field.name
        pixel = self.session.pixel_size_um
        position = dict(self.viewer.position)
        where = ", ".join(f"{a}={i}" for a, i in position.items() if i)
        note = f"{image_name} {where}".strip()
        layers = list(self.session.layers)
        cached = {lay.name: self._cached_row(lay) for lay in layers}
        todo = [lay for lay in layers if cached[lay.name] is None]
        keys = {lay.name: self._metrics_key(lay) for lay in layers}

        def publish(new_rows: list[dict[str, Any]]) -> None:
            by_name = {r["method"]: r for r in new_rows}
            for lay in todo:
                if lay.name in by_name:
                    self._metrics_cache[lay.name] = (keys[lay.name], by_name[lay.name])
            rows = [cached[lay.name] or by_name.get(lay.name) for lay in layers]
            rows = [r for r in rows if r is not None]
            self.metrics.set_rows(rows, "Current field", note=note)
            self.metrics.merge_rows(rows, "Dataset")

        if not todo:
            publish([])
            return None
        planes = {lay.name: self.viewer.plane_of(lay) for lay in layers}
        wanted = {lay.name for lay in todo}

        def work(ctx):
            return analysis.field_metrics(planes, reference=gt.name if gt else None, image_name=image_name,
                                          pixel_size_um=pixel, only=wanted)

        return self._run_analysis("metrics", "Metrics", work, publish)

    def _update_profiles_from_viewer(self) -> None:
        line = self.viewer.line()
        if line is not None:
            self._update_profiles(*line)
        else:
            self.profile.set_profiles({}, {})

    def _update_profiles(self, start, end) -> None:
        profiles = {p.layer.name: engine_profile(p.plane, start, end) for p in self.viewer.panels if p.plane is not None}
        colours = {p.layer.name: p.colour for p in self.viewer.panels}
        self.profile.set_profiles(profiles, colours, line=(start, end), pixel_size_um=self.session.pixel_size_um)

    def _invalidate_maps(self, kind: str) -> None:
        self.viewer.set_maps(kind, {})
        if self.viewer.map_mode == kind:
            self.compute_maps(kind)

    def _map_mode_changed(self, mode: str) -> None:
        if mode != "image" and not self.viewer.maps.get(mode):
            self.compute_maps(mode)

    def compute_maps(self, kind: str) -> Job | None:
        """Compute the error or data-consistency maps of the planes on screen (worker thread)."""
        planes = self.current_planes()
        if kind == "error":
            gt = self.session.gt
            if gt is None:
                self.statusBar().showMessage("Error maps need a ground truth (GT) layer", 5000)
                return None

            def work(ctx):
                return analysis.error_maps(planes, reference=gt.name)

            return self._run_analysis("error", "Error maps", work, lambda maps: self.viewer.set_maps("error", maps))
        if kind == "consistency":
            lq = self.session.lq
            if lq is None:
                return None
            panel = self.deconvolve_panel
            try:
                psfs = {shape: panel.psf_for_grid(shape) for shape in {p.shape for p in planes.values()}}
            except (ValueError, OSError) as err:
                self.errors.present(err, context="Consistency map (PSF from the Deconvolve panel)")
                return None

            def work(ctx):
                return analysis.consistency_maps(planes, lq=lq.name, psf_for=lambda shape: psfs.get(shape))

            def done(result) -> None:
                maps, scores = result
                self.map_scores = scores
                summary = ", ".join(f"{k}: {100 * v['flagged_fraction']:.2f}% flagged" for k, v in scores.items())
                self.viewer.set_maps("consistency", maps, note=summary)
                self.statusBar().showMessage(f"Data consistency vs LQ - {summary}", 10000)

            return self._run_analysis("consistency", "Consistency maps", work, done)
        raise ValueError(f"unknown map kind {kind!r}")

    # -- closing -------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self._metrics_timer.stop()
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.train_panel.shutdown()
        self.batch_panel.shutdown()
        self.jobs.shutdown()
        super().closeEvent(event)


__all__ = ["MainWindow", "LQ_ROLE"]
