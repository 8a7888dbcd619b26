"""The one place errors are rendered: a report built from an exception, and a dialog with details.

Every failure in the window (a job, a process, a file that cannot be read) goes through
:meth:`ErrorPresenter.present`. The dialog is opened *non-blocking* (``QDialog.open``), so a
failing job never freezes the window and tests can inspect :attr:`ErrorPresenter.history`
and :attr:`ErrorPresenter.last_dialog` without a modal loop.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

#: (attribute, label) of exception attributes shown in the details: the bridge's RemoteError.details
#: (worker traceback, Java stack trace included), MacroError.log / .macro, WorkerCrashed.log, and
#: ProcessFailed.details (a child process's stderr)
DETAIL_ATTRIBUTES = (("details", "Details"), ("log", "ImageJ / worker log"), ("macro", "Macro that ran"))
#: attribute names under which exceptions may carry a Java stack trace
JAVA_TRACE_ATTRIBUTES = ("java_traceback", "java_stack_trace", "java_stacktrace", "java_trace", "stack_trace")


@dataclass
class ErrorReport:
    """What the user is told: a title, one readable message, and details for a bug report."""

    title: str
    message: str
    details: str = ""
    context: str = ""
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def text(self) -> str:
        """Everything in one string (used by tests and by the Copy button)."""
        head = f"{self.context}: " if self.context else ""
        return f"{self.title}\n{head}{self.message}\n\n{self.details}".strip()


def _java_trace(exc: BaseException) -> str:
    for name in JAVA_TRACE_ATTRIBUTES:
        value = getattr(exc, name, None)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, (list, tuple)) and value:
            return "\n".join(str(v) for v in value)
    return ""


def describe_error(exc: BaseException, *, context: str = "") -> ErrorReport:
    """Turn an exception into an :class:`ErrorReport` (message first, traceback in the details)."""
    from decongan.engine.io import ImageReadError, ImageWriteError

    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    java = _java_trace(exc)
    parts: list[str] = []
    for attr, label in DETAIL_ATTRIBUTES:
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value.strip() and value.strip() not in str(exc):
            parts.append(f"{label}:\n{value.strip()}")
    if java:
        parts.append(f"Java stack trace:\n{java.strip()}")
    parts.append(f"Python traceback:\n{trace.strip()}" if parts else trace.strip())
    details = "\n\n".join(parts)
    from_fiji = type(exc).__module__.startswith("decongan.imagej_bridge") or bool(java)
    if isinstance(exc, ImageReadError):
        name = exc.path.name if exc.path is not None else "input"
        return ErrorReport(f"Cannot read {name}", f"{name}: {exc.problem}",
                           f"File: {exc.path}\n\n{details}", context, exc)
    if isinstance(exc, ImageWriteError):
        return ErrorReport("Cannot write the output", str(exc), details, context, exc)
    if isinstance(exc, FileNotFoundError):
        return ErrorReport("File not found", str(exc), details, context, exc)
    if isinstance(exc, MemoryError):
        return ErrorReport("Out of memory", "The computer ran out of memory. Try a smaller tile size or image.",
                           details, context, exc)
    kind = type(exc).__name__
    title = "Fiji reported an error" if from_fiji else (f"{context} failed" if context else "Something went wrong")
    message = str(exc) or kind
    if kind not in ("CommandError", "ValueError", "ProcessFailed") and not from_fiji:
        message = f"{kind}: {message}"
    return ErrorReport(title, message, details, context, exc)


class ErrorDialog(QDialog):
    """A dialog with the message, an expandable details box (tracebacks, Java stack traces) and Copy."""

    def __init__(self, report: ErrorReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle(f"DeconGAN: {report.title}")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)

        row = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical).pixmap(40, 40))
        row.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        text = QVBoxLayout()
        self.title_label = QLabel(f"<b>{_escape(report.title)}</b>")
        self.message_label = QLabel(((f"{report.context}: ") if report.context else "") + report.message)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.addWidget(self.title_label)
        text.addWidget(self.message_label)
        row.addLayout(text, 1)
        layout.addLayout(row)

        self.details_edit = QPlainTextEdit(report.details)
        self.details_edit.setReadOnly(True)
        self.details_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details_edit.setMinimumHeight(220)
        self.details_edit.setVisible(False)
        layout.addWidget(self.details_edit, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.details_button = QPushButton("Show details")
        self.details_button.setCheckable(True)
        self.details_button.setEnabled(bool(report.details))
        self.details_button.toggled.connect(self._toggle_details)
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(report.text))
        buttons.addButton(self.details_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _toggle_details(self, shown: bool) -> None:
        self.details_edit.setVisible(shown)
        self.details_button.setText("Hide details" if shown else "Show details")
        self.adjustSize()

    def text(self) -> str:
        """Title, message and details as plain text."""
        return self.report.text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ErrorPresenter(QObject):
    """Shows errors (non-blocking) and remembers them; the only error renderer of the window.

    Signals
    -------
    presented(ErrorReport)
        After a dialog was opened for a report.
    """

    presented = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, show_dialogs: bool = True) -> None:
        super().__init__(parent)
        self._parent = parent
        self.show_dialogs = show_dialogs
        self.history: list[ErrorReport] = []
        self.last_dialog: ErrorDialog | None = None

    def present(self, error: BaseException | ErrorReport, *, context: str = "") -> ErrorReport:
        """Show ``error`` (an exception or a ready report) in the error dialog and return its report."""
        report = error if isinstance(error, ErrorReport) else describe_error(error, context=context)
        if context and not report.context:
            report.context = context
        self.history.append(report)
        if self.show_dialogs:
            if self.last_dialog is not None and self.last_dialog.isVisible() and len(self.history) > 20:
                self.last_dialog.close()
            dialog = ErrorDialog(report, self._parent)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
            dialog.open()  # window-modal but never blocks the caller
            self.last_dialog = dialog
        self.presented.emit(report)
        return report
