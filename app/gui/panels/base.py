"""What every workflow panel shares: the window context, form helpers and the equivalent CLI command."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPainter, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QStyleOptionFrame,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from decongan.app.gui.error_dialog import ErrorPresenter
from decongan.app.gui.jobs import JobManager
from decongan.app.gui.session import Session
from decongan.app.gui.settings import Settings
from decongan.engine.outputs import write_json_atomic


@dataclass
class Context:
    """What a panel needs from the window."""

    session: Session
    jobs: JobManager
    errors: ErrorPresenter
    settings: Settings
    window: Any = None  # the MainWindow (for the viewer and the PSF of the LQ system)


class WorkflowPanel(QWidget):
    """Base class: a scrollable form (``outer``), a footer that always stays visible (``footer``: the
    panel's action buttons, reachable without scrolling on a 768 px high screen) and a line showing the
    equivalent ``decongan`` command."""

    #: the CLI subcommand this panel mirrors
    command = ""
    title = ""

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.body = QWidget()
        self.outer = QVBoxLayout(self.body)
        self.outer.setContentsMargins(6, 6, 6, 6)
        self.scroll.setWidget(self.body)
        layout.addWidget(self.scroll, 1)
        self.footer = QVBoxLayout()
        self.footer.setContentsMargins(6, 4, 6, 6)
        layout.addLayout(self.footer)
        self.command_edit = QLineEdit()
        self.command_edit.setReadOnly(True)
        self.command_edit.setToolTip("The same work from the command line")

    def add_group(self, title: str) -> QFormLayout:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.outer.addWidget(box)
        return form

    def add_command_row(self) -> None:
        """The equivalent command with Copy and Save-config buttons (call after the form)."""
        row = QHBoxLayout()
        copy = QToolButton(text="Copy")
        copy.setToolTip("Copy the command")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.command_edit.text()))
        save = QToolButton(text="Save config...")
        save.setToolTip("Save these settings as JSON (the same parameters the CLI records)")
        save.clicked.connect(self._ask_save_config)
        row.addWidget(QLabel("CLI:"))
        row.addWidget(self.command_edit, 1)
        row.addWidget(copy)
        row.addWidget(save)
        self.outer.addLayout(row)

    # -- CLI equivalence ---------------------------------------------------------------------------
    def cli_args(self) -> list[str]:
        """Arguments after ``decongan`` that do the same as this panel (override)."""
        return [self.command]

    def parameters(self) -> dict[str, Any]:
        """The panel's settings as a JSON-able dict (override)."""
        return {}

    def refresh_command(self, *args: Any) -> None:
        try:
            self.command_edit.setText("decongan " + " ".join(shlex.quote(a) for a in self.cli_args()))
        except Exception as err:  # noqa: BLE001 - incomplete forms show why
            self.command_edit.setText(f"(incomplete: {err})")

    def config(self) -> dict[str, Any]:
        return {"command": self.command, "argv": ["decongan", *self.cli_args()], "parameters": self.parameters()}

    def save_config(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.config())

    def _ask_save_config(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save configuration", f"{self.command}.json", "JSON (*.json)")
        if path:
            self.save_config(path)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Commands may depend on other panels (PSF, model): refresh when the panel is shown."""
        super().showEvent(event)
        self.refresh_command()

    def connect_refresh(self, *widgets: QWidget) -> None:
        """Update the command line whenever one of ``widgets`` changes."""
        for w in widgets:
            for signal in ("valueChanged", "currentTextChanged", "textChanged", "toggled"):
                if hasattr(w, signal):
                    getattr(w, signal).connect(self.refresh_command)
                    break


# -- opening files ---------------------------------------------------------------------------------
def open_local_file(parent: QWidget, path: str | Path, what: str = "report") -> bool:
    """Open ``path`` with the desktop's application (a browser for HTML); when none opens it (no browser
    installed, a bare server), say so with the full path to open by hand, copied to the clipboard.

    Returns True when the desktop opened it.
    """
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices
    from PySide6.QtWidgets import QMessageBox

    path = Path(path)
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.absolute()))):
        return True
    QGuiApplication.clipboard().setText(str(path.absolute()))
    QMessageBox.information(parent, f"Open the {what}",
                            f"No application (web browser) could open the {what} here. Open it by hand:\n\n"
                            f"{path.absolute()}\n\n(The path is copied to the clipboard.)")
    return False


# -- small widget factories ------------------------------------------------------------------------
def _configured(spin: Any, lo: float, hi: float, value: float, step: float, suffix: str, tooltip: str) -> Any:
    """Range, step and value of a QSpinBox/QDoubleSpinBox; value applied only after Enter or focus-out."""
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setKeyboardTracking(False)
    if suffix:
        spin.setSuffix(suffix)
    if tooltip:
        spin.setToolTip(tooltip)
    return spin


def double_spin(lo: float, hi: float, value: float, *, decimals: int = 3, step: float = 0.1,
                suffix: str = "", tooltip: str = "") -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)  # before the value, which it would round
    return _configured(spin, lo, hi, value, step, suffix, tooltip)


def int_spin(lo: int, hi: int, value: int, *, step: int = 1, suffix: str = "", tooltip: str = "") -> QSpinBox:
    return _configured(QSpinBox(), lo, hi, value, step, suffix, tooltip)


def combo(items: Sequence[str], current: str | None = None, *, tooltip: str = "") -> QComboBox:
    box = QComboBox()
    box.addItems(list(items))
    if current is not None:
        box.setCurrentText(current)
    if tooltip:
        box.setToolTip(tooltip)
    return box


class ElidedLineEdit(QLineEdit):
    """A line edit for paths: while it has no focus, a path too long for it is shown elided in the
    middle (both the start and the file name stay readable); the full path is its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.textChanged.connect(lambda text: self.setToolTip(text))

    def displayed_text(self) -> str:
        """The text as painted now (elided when unfocused and too long)."""
        if self.hasFocus() or not self.text():
            return self.text()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle, self._text_rect().width())

    def _text_rect(self):
        option = QStyleOptionFrame()
        self.initStyleOption(option)
        return self.style().subElementRect(QStyle.SubElement.SE_LineEditContents, option, self).adjusted(2, 0, -2, 0)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        shown = self.displayed_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        option = QStyleOptionFrame()
        self.initStyleOption(option)
        painter = QPainter(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelLineEdit, option, painter, self)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        painter.drawText(self._text_rect(), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, shown)
        painter.end()


class PathEdit(QWidget):
    """A line edit with a Browse button for a file or a folder (long paths elided in the middle)."""

    def __init__(self, *, folder: bool, caption: str, filter: str = "", save: bool = False,
                 placeholder: str = "") -> None:
        super().__init__()
        self.folder = folder
        self.caption = caption
        self.filter = filter
        self.save = save
        self.edit = ElidedLineEdit()
        self.edit.setPlaceholderText(placeholder)
        button = QPushButton("Browse...")
        button.clicked.connect(self.browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(button)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.textChanged = self.edit.textChanged

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str | Path) -> None:  # noqa: N802 - Qt naming
        self.edit.setText(str(text))

    def path(self) -> Path | None:
        return Path(self.text()) if self.text() else None

    def browse(self) -> None:
        start = self.text()
        if self.folder:
            path = QFileDialog.getExistingDirectory(self, self.caption, start)
        elif self.save:
            path, _ = QFileDialog.getSaveFileName(self, self.caption, start, self.filter)
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, start, self.filter)
        if path:
            self.setText(path)
