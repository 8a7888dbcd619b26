"""The DeconGAN main window: data dock, multi-panel viewer, analysis tabs and workflow panels."""

from __future__ import annotations

import sys
from pathlib import Path

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

from decongan.app.gui import analysis
from decongan.app.gui.data_panel import DataPanel
from decongan.app.gui.error_dialog import ErrorPresenter
from decongan.app.gui.jobs import Job, JobManager, JobStatusWidget
from decongan.app.gui.line_profile import LineProfileWidget, engine_profile
from decongan.app.gui.metrics_table import MetricsTable
from decongan.app.gui.panels.base import Context
from decongan.app.gui.session import (
    LQ_ROLE,
    RESTORED_ROLE,
    Dataset,
    FieldOfView,
    Layer,
    Session,
    build_dataset,
    load_field,
)
from decongan.app.gui.settings import Settings
from decongan.app.gui.viewer import MultiPanelViewer
from decongan.engine.io import IMAGE_SUFFIXES, read_image

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
        #: the evaluation on screen; the cache of evaluations is the session's (per dataset)
        self.evaluation: analysis.FieldEvaluation | None = None
        self._evaluation_key = None

        self.viewer = MultiPanelViewer(lut=self.settings.get("viewer/lut"),
                                       shared_contrast=self.settings.get("viewer/contrast_shared"),
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
        self.central_tabs = QTabWidget()
        self.central_tabs.setDocumentMode(True)
        self.central_tabs.addTab(splitter, "Compare")
        self.compare_page = splitter
        self.setCentralWidget(self.central_tabs)

        self.data_panel = DataPanel(self.session)
        self.data_dock = self._dock("Data", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._build_workflows()
        self.central_tabs.addTab(self.train_panel.monitor, "Training monitor")
        self.central_tabs.addTab(self.export_panel.preview_page, "Figure preview")
        self._build_menus()
        self.job_status = JobStatusWidget(self.jobs)
        self.statusBar().addPermanentWidget(self.job_status, 1)

        self.session.layers_changed.connect(self._layers_changed)
        self.session.pixel_size_changed.connect(self._pixel_size_changed)
        self.session.field_changed.connect(self._field_changed)
        self.session.optics_changed.connect(self.schedule_evaluation)
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
        self.viewer.line_button.toggled.connect(self._line_tool_toggled)
        self._evaluation_timer = QTimer(self)
        self._evaluation_timer.setSingleShot(True)
        self._evaluation_timer.setInterval(300)
        self._evaluation_timer.timeout.connect(self.compute_evaluation)

        geometry, state = self.settings.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 950)
            self.resizeDocks([self.data_dock, self.workflow_dock], [240, 420], Qt.Orientation.Horizontal)
        if state is not None:
            self.restoreState(state)
        self._refresh_recent_menu()

    @property
    def evaluations_by_field(self) -> dict[str, analysis.FieldEvaluation]:
        """The latest evaluation of every field compared in this dataset (the export's "all fields")."""
        return self.session.evaluations_by_field

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
        from decongan.app.gui.panels.batch import BatchPanel
        from decongan.app.gui.panels.deconvolve import DeconvolvePanel
        from decongan.app.gui.panels.export import ExportPanel
        from decongan.app.gui.panels.predict import PredictPanel
        from decongan.app.gui.panels.register import RegisterPanel
        from decongan.app.gui.panels.train import TrainPanel

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
        self.deconvolve_panel.psf_changed.connect(lambda _psf: self.schedule_evaluation())
        self.batch_panel.rows_ready.connect(lambda rows: self.metrics.merge_rows(rows, "Dataset"))

    def show_training_monitor(self) -> None:
        self.central_tabs.setCurrentWidget(self.train_panel.monitor)

    def show_figure_preview(self) -> None:
        self.central_tabs.setCurrentWidget(self.export_panel.preview_page)

    def show_compare(self) -> None:
        self.central_tabs.setCurrentWidget(self.compare_page)

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
        from decongan.engine import __version__

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
            return
        files = [p for p in paths if p.exists() or p.suffix]
        if not files:
            return
        from decongan.engine.io import image_stem

        fields = [FieldOfView(image_stem(p), p, None) for p in files]
        dataset = Dataset(None, None, False, fields)
        self.session.set_dataset(dataset)
        self.metrics.set_rows([], "Dataset")
        for path in reversed(files):
            if path.exists():
                self.settings.add_recent(path)
        self._refresh_recent_menu()
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
        self.session.set_dataset(dataset)  # drops the previous dataset's layers, optics and evaluations
        self.metrics.set_rows([], "Dataset")
        # the recent list gets the dataset: its parent when it holds lq/ and hq/ (reopens paired)
        base = Path(lq_dir or hq_dir)
        if hq_dir is not None and paired and Path(hq_dir).parent == base.parent \
                and {base.name, Path(hq_dir).name} == {"lq", "hq"}:
            base = base.parent
        self.settings.add_recent(base)
        self._refresh_recent_menu()
        if dataset.fields:
            self.load_field(dataset.fields[0])
        return dataset

    def load_field(self, fov: FieldOfView) -> Job:
        """Read the field's files in a worker thread and show them."""
        override = self.session.pixel_size_override
        dataset_number = self.session.dataset_number

        def work(ctx):
            return load_field(fov, pixel_size_um=override)

        def done(layers: list[Layer]) -> None:
            if self.session.dataset_number != dataset_number:
                return  # another dataset was opened meanwhile: this field is no longer part of what is shown
            self.session.set_field(fov, layers)
            self.data_panel.select_field(fov)

        return self.jobs.start(f"Opening {fov.name}", work, on_success=done)

    def open_ground_truth(self, path: Path) -> Job:
        def done(image) -> None:
            self.session.attach_ground_truth(path, image)
            self.settings.add_recent(path)

        return self.jobs.start(f"Opening {path.name}", lambda ctx: read_image(path), on_success=done)

    def open_method(self, path: Path, name: str) -> Job:
        """Add a restored image from disk as a method layer (e.g. an output of another tool)."""
        def done(image) -> None:
            from decongan.engine.provenance import Provenance

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
        from decongan.engine.io import write_tiff

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
        self.evaluation = None
        self._evaluation_key = None

    def _layers_changed(self) -> None:
        self.viewer.set_layers(self.session.layers)
        self.show_compare()  # a new result: show it
        self.schedule_evaluation()

    def _pixel_size_changed(self, um: float | None) -> None:
        self.viewer.pixel_size_um = um
        self.viewer._redraw(full=False)
        self._update_profiles_from_viewer()
        self.schedule_evaluation()

    def _plane_changed(self) -> None:
        self._update_profiles_from_viewer()
        if self._evaluation_stale():
            self.schedule_evaluation()  # a new time point is a new comparison set
        else:
            self._show_maps()

    # -- analysis: one engine comparison of the field feeds the table and the maps ---------------------
    def current_planes(self) -> dict[str, np.ndarray]:
        """Layer name -> the 2-D plane on screen (current channel / z / t), for every layer."""
        return {lay.name: self.viewer.plane_of(lay) for lay in self.session.layers}

    def schedule_evaluation(self) -> None:
        """Re-evaluate the field shortly (changes in quick succession give one evaluation)."""
        self._evaluation_timer.start()

    def _evaluation_inputs_key(self):
        """The session's key of the evaluation the screen needs (layer versions, never ``id()``)."""
        return self.session.evaluation_key(t=self.viewer.position["t"], psf_parameters=self.session.psf_parameters())

    def _evaluation_stale(self) -> bool:
        return self._evaluation_key != self._evaluation_inputs_key()

    def compute_evaluation(self) -> Job | None:
        """Compare the current field with the engine (metrics, error maps, consistency maps) in a worker.

        Nothing is recomputed when the field, its layers, the time point and the PSF are unchanged.
        """
        session = self.session
        if session.field is None or session.lq is None:
            self.metrics.set_rows([], "Current field")
            return None
        key = self._evaluation_inputs_key()
        if key == self._evaluation_key and self.evaluation is not None:
            return None
        cached = session.cached_evaluation(key)
        if cached is not None:
            self._show_evaluation(cached, key)
            return None
        lq, gt = session.lq, session.gt
        restored = {lay.name: (lay.image, lay.provenance) for lay in session.restored}
        psf_parameters = session.psf_parameters()
        name = session.field.name
        t = self.viewer.position["t"]

        def work(ctx):
            return analysis.evaluate_field(name, (lq.name, lq.image), gt=(gt.name, gt.image) if gt else None,
                                           restored=restored, psf_parameters=psf_parameters, t=t)

        def done(result: analysis.FieldEvaluation) -> None:
            session.store_evaluation(key, result)
            if key != self._evaluation_inputs_key():
                self.schedule_evaluation()  # the field changed meanwhile
                return
            self._show_evaluation(result, key)

        return self._run_analysis("evaluation", f"Comparing {name}", work, done)

    def _show_evaluation(self, result: analysis.FieldEvaluation, key) -> None:
        """Put ``result`` (the evaluation of ``key``) in the metrics table and the maps."""
        self.evaluation = result
        self._evaluation_key = key
        rows = [dict(r) for r in result.rows]
        t = key.t
        self.metrics.set_rows(rows, "Current field", note=f"{key.field}" + (f", t={t}" if t else ""))
        self.metrics.merge_rows(rows, "Dataset")
        self._show_maps()

    def _run_analysis(self, key: str, name: str, work, on_success) -> Job:
        old = self._analysis_jobs.get(key)
        if old is not None and old.is_running:
            old.cancel()
        job = self.jobs.start(name, work, on_success=on_success, background=True)
        self._analysis_jobs[key] = job
        return job

    def _map_mode_changed(self, mode: str) -> None:
        if mode == "image":
            return
        self.show_compare()
        if self.evaluation is None or self._evaluation_stale():
            self.statusBar().showMessage("Comparing the field (metrics and maps)...", 3000)
            self.compute_evaluation()
        else:
            self._show_maps()

    def _show_maps(self) -> None:
        """Give the viewer the maps of the current channel / z from the evaluation."""
        ev = self.evaluation
        if ev is None:
            return
        c, z = self.viewer.position["c"], self.viewer.position["z"]
        self.viewer.set_maps("error", ev.maps("error", c=c, z=z))
        self.viewer.set_maps("consistency", ev.maps("consistency", c=c, z=z), note=ev.psf_note)
        mode = self.viewer.map_mode
        if mode == "error" and self.session.gt is None:
            self.statusBar().showMessage("Error maps need a ground truth (GT) layer", 8000)
        elif mode == "consistency":
            flagged = ev.consistency_summary(c=c)
            if flagged:
                summary = ", ".join(f"{k}: {100 * v:.2f}% flagged" for k, v in flagged.items())
                self.statusBar().showMessage(f"Data consistency vs LQ (red: brighter than the input supports, "
                                             f"blue: input signal missing) - {summary}", 20000)
            else:
                self.statusBar().showMessage(ev.psf_note, 15000)

    def _line_tool_toggled(self, on: bool) -> None:
        if on:
            self.show_compare()
            self.bottom_tabs.setCurrentWidget(self.profile)
        else:
            self.profile.set_profiles({}, {})

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

    # -- closing -------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self._evaluation_timer.stop()
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.train_panel.shutdown()
        self.batch_panel.shutdown()
        self.jobs.shutdown()
        if "decongan.app.fiji.client" in sys.modules:  # the Fiji worker processes this window started
            sys.modules["decongan.app.fiji.client"].close_clients()
        super().closeEvent(event)


__all__ = ["MainWindow", "LQ_ROLE"]
