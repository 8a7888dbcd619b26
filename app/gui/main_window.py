"""The DeconGAN main window: data dock, multi-panel viewer, analysis tabs and workflow panels.

This module builds the window (layout, docks, workflow panels, signal wiring) and closes it; each
other job has its own module: menus and actions (:mod:`.window_menus`), opening and saving files
and datasets (:mod:`.window_files`), and the comparison of the field on screen (:mod:`.window_analysis`).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QScrollArea, QSplitter, QTabWidget, QWidget

from decongan.app.gui import analysis
from decongan.app.gui.data_panel import DataPanel
from decongan.app.gui.error_dialog import ErrorPresenter
from decongan.app.gui.jobs import Job, JobManager, JobStatusWidget
from decongan.app.gui.line_profile import LineProfileWidget
from decongan.app.gui.metrics_table import MetricsTable
from decongan.app.gui.panels.base import Context
from decongan.app.gui.session import LQ_ROLE, Session
from decongan.app.gui.settings import Settings
from decongan.app.gui.verdict_view import VerdictView
from decongan.app.gui.viewer import MultiPanelViewer
from decongan.app.gui.window_analysis import WindowAnalysisMixin
from decongan.app.gui.window_files import IMAGE_FILTER, WindowFilesMixin
from decongan.app.gui.window_menus import WindowMenusMixin


class MainWindow(WindowMenusMixin, WindowFilesMixin, WindowAnalysisMixin, QMainWindow):
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
        #: split-half maps of the layers on screen (app.gui.split_half_analysis), their key and the one computing
        self.split_half = None
        self._split_half_key = None
        self._split_half_pending = None
        #: the batch folder whose metrics.csv fills the Dataset table (None: the fields compared in the window)
        self.dataset_rows_from: object = None

        self.viewer = MultiPanelViewer(lut=self.settings.get("viewer/lut"),
                                       shared_contrast=self.settings.get("viewer/contrast_shared"),
                                       low_pct=self.settings.get("viewer/percentile_low"),
                                       high_pct=self.settings.get("viewer/percentile_high"))
        self.profile = LineProfileWidget()
        self.metrics = MetricsTable()
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.profile, "Line profile")
        self.bottom_tabs.addTab(self.metrics, "Metrics")
        self.verdict_view = VerdictView()
        self.bottom_tabs.addTab(self.verdict_view, "Dataset verdict")
        self.verdict_view.compare_button.clicked.connect(self.show_window_verdict)
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
        self.session.comparison_changed.connect(self.schedule_evaluation)
        self.session.notice.connect(lambda text: self.statusBar().showMessage(text, 30000))
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
        self.show_compare()
        self.show_workflow(self.deconvolve_panel)  # the first step on an opened image; Register is optional
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
        #: in the order of the tabs and the Workflows menu
        self.workflow_panels = (self.register_panel, self.deconvolve_panel, self.train_panel, self.predict_panel,
                                self.batch_panel, self.export_panel)
        for panel in self.workflow_panels:
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(panel)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            self.workflow_tabs.addTab(scroll, panel.title)
        self.workflow_dock = self._dock("Workflows", self.workflow_tabs, Qt.DockWidgetArea.RightDockWidgetArea)
        self.workflow_dock.setMinimumWidth(400)
        self.deconvolve_panel.psf_changed.connect(lambda _psf: self.schedule_evaluation())
        self.batch_panel.rows_ready.connect(self._show_batch_rows)

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

    # -- closing -------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self._evaluation_timer.stop()
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.train_panel.shutdown()
        self.batch_panel.shutdown()
        if getattr(self, "tune_dialog", None) is not None:
            self.tune_dialog.shutdown()
        self.jobs.shutdown()
        if "decongan.app.fiji.client" in sys.modules:  # the Fiji worker processes this window started
            sys.modules["decongan.app.fiji.client"].close_clients()
        super().closeEvent(event)


__all__ = ["MainWindow", "LQ_ROLE", "IMAGE_FILTER"]
