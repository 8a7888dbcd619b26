"""The main window's menus and their actions (File, View, Workflows, Help) and the recent-files list.

A mixin of :class:`app.gui.main_window.MainWindow`: the actions call the window's opening
(:mod:`app.gui.window_files`) and showing methods; nothing here computes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox


class WindowMenusMixin:
    """Menu bar, shortcuts and the Recent menu."""

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_sample_action = self._action(file_menu, "Open &sample (widefield vs confocal nucleus)",
                                               self.open_sample)
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
        view.addAction(self._toggle_action("&Split-half map", self.viewer.split_half_button, "H"))
        view.addSeparator()
        view.addAction(self.data_dock.toggleViewAction())
        view.addAction(self.workflow_dock.toggleViewAction())

        work = bar.addMenu("&Workflows")
        for panel in self.workflow_panels:
            self._action(work, panel.title, lambda p=panel: self.show_workflow(p))
        work.addSeparator()
        self._action(work, "&Tune baselines on pairs...", self.open_tune_dialog)
        self._action(work, "&Cancel all jobs", self.jobs.cancel_all)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Open &sample (widefield vs confocal nucleus)", self.open_sample)
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

    def open_tune_dialog(self):
        """Show the "Tune baselines on pairs" dialog (app.gui.tune_dialog). Its folders are not filled from the
        open dataset: the pairs to tune on should be other fields than the ones evaluated."""
        from decongan.app.gui.tune_dialog import TuneDialog

        if getattr(self, "tune_dialog", None) is None:
            self.tune_dialog = TuneDialog(self.errors, self)
        self.tune_dialog.show()
        self.tune_dialog.raise_()
        return self.tune_dialog

    def _about(self) -> None:
        from decongan.engine import __version__

        QMessageBox.about(self, "About DeconGAN",
                          f"DeconGAN {__version__}\nIs a GAN better than deconvolution for these images?\n\n"
                          f"Settings: {self.settings.location}")

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files()
        for path in recent:
            self._action(self.recent_menu, path, lambda p=path: self.open_paths([Path(p)]))
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)
