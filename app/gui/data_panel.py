"""The Data dock: LQ / HQ folders (paired by name or unpaired), the list of fields, pixel size."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from decongan.app.gui.panels.base import PathEdit
from decongan.app.gui.session import Dataset, FieldOfView, Session


class InfoArea(QScrollArea):
    """Word-wrapped labels that scroll when the dock is too short for them (never cut at the bottom).

    Its size hint is the labels' height at the area's width, so with room to spare nothing scrolls."""

    def __init__(self, *labels: QLabel) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the labels wrap instead
        self.setSizePolicy(self.sizePolicy().horizontalPolicy(), QSizePolicy.Policy.Preferred)
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        for label in labels:
            column.addWidget(label)
        column.addStretch(1)
        self.setWidget(content)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        width = max(self.viewport().width(), 1)
        return QSize(super().sizeHint().width(), self.widget().heightForWidth(width) + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(super().minimumSizeHint().width(), self.fontMetrics().lineSpacing() * 3)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()  # the wrapped height depends on the width


class DataPanel(QWidget):
    """Choose a dataset and a field; show and edit the pixel size.

    Signals
    -------
    dataset_requested(object lq_dir, object hq_dir, bool paired)
    field_requested(FieldOfView)
    """

    dataset_requested = Signal(object, object, bool)
    field_requested = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        self.lq_edit = PathEdit(folder=True, caption="Folder of LQ (input) images", placeholder="LQ folder")
        self.hq_edit = PathEdit(folder=True, caption="Folder of HQ (ground truth / target) images",
                                placeholder="HQ folder (optional)")
        self.paired_check = QCheckBox("Paired by file name")
        self.paired_check.setChecked(True)
        self.paired_check.setToolTip("Checked: LQ and HQ files with the same name show the same field.\n"
                                     "Unchecked: unpaired domains (e.g. for cycleGAN training).")
        load = QPushButton("Load dataset")
        load.clicked.connect(self._request_dataset)
        form.addRow("LQ", self.lq_edit)
        form.addRow("HQ", self.hq_edit)
        row = QHBoxLayout()
        row.addWidget(self.paired_check)
        row.addStretch(1)
        row.addWidget(load)
        form.addRow(row)
        layout.addLayout(form)
        self.summary = QLabel("No dataset")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.fields = QListWidget()
        self.fields.itemActivated.connect(self._request_field)
        self.fields.currentItemChanged.connect(lambda cur, _prev: self._request_field(cur))
        layout.addWidget(self.fields, 1)

        cal = QFormLayout()
        self.pixel_spin = QDoubleSpinBox()
        self.pixel_spin.setRange(0.0, 1000.0)
        self.pixel_spin.setDecimals(5)
        self.pixel_spin.setSingleStep(0.001)
        self.pixel_spin.setSuffix(" µm")
        self.pixel_spin.setSpecialValueText("unknown")
        self.pixel_spin.setKeyboardTracking(False)
        self.pixel_spin.setToolTip("Lateral pixel size of the LQ image (from the file's metadata; edit to override)")
        self.pixel_spin.valueChanged.connect(self._pixel_edited)
        self.image_info = QLabel("")
        self.image_info.setWordWrap(True)
        self.image_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        #: what the session said about the layers of this field (stays until another field is shown)
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #E69F00;")
        cal.addRow("Pixel size", self.pixel_spin)
        self.resample_check = QCheckBox("Resample LQ onto the GT grid")
        self.resample_check.setToolTip("Off (default): an LQ and a ground truth of different sizes are not compared.\n"
                                       "On: the LQ is resampled onto the ground truth's grid for display and metrics "
                                       "(as decongan compare --resample), and the results say so.")
        self.resample_check.toggled.connect(session.set_resample_lq)
        cal.addRow(self.resample_check)
        layout.addLayout(cal)
        #: the layers' descriptions and the notices: they scroll when the dock is short (a 1080 px screen)
        self.info_area = InfoArea(self.image_info, self.notice)
        layout.addWidget(self.info_area)

        session.dataset_changed.connect(self._show_dataset)
        session.pixel_size_changed.connect(self._show_pixel_size)
        session.layers_changed.connect(self._show_image_info)
        session.notice.connect(self._add_notice)
        session.field_changed.connect(lambda: self.notice.setText(""))
        session.pixel_size_changed.connect(lambda um: self.notice.setText("") if um else None)
        self._updating = False

    def _request_dataset(self) -> None:
        self.dataset_requested.emit(self.lq_edit.path(), self.hq_edit.path(), self.paired_check.isChecked())

    def _request_field(self, item: QListWidgetItem | None) -> None:
        if item is None or self._updating:
            return
        fov = item.data(Qt.ItemDataRole.UserRole)
        if fov is not None and fov is not self.session.field:
            self.field_requested.emit(fov)

    def _show_dataset(self) -> None:
        ds: Dataset | None = self.session.dataset
        self._updating = True
        try:
            self.fields.clear()
            self.resample_check.setChecked(self.session.resample_lq)  # per dataset: off when one is opened
            if ds is None:
                self.summary.setText("No dataset")
                return
            if ds.lq_dir:
                self.lq_edit.setText(ds.lq_dir)
            self.hq_edit.setText(ds.hq_dir or "")
            self.paired_check.setChecked(ds.paired)
            self.summary.setText(ds.description)  # from the session's fields: counts a GT opened later
            for fov in ds.fields:
                mark = "" if fov.hq or not ds.paired or not ds.hq_dir else "  (no HQ)"
                item = QListWidgetItem(fov.name + mark)
                item.setData(Qt.ItemDataRole.UserRole, fov)
                item.setToolTip("\n".join(str(p) for p in (fov.lq, fov.hq) if p))
                self.fields.addItem(item)
                if fov is self.session.field:
                    self.fields.setCurrentItem(item)
        finally:
            self._updating = False

    def select_field(self, fov: FieldOfView) -> None:
        """Highlight ``fov`` in the list without requesting it again."""
        self._updating = True
        try:
            for i in range(self.fields.count()):
                if self.fields.item(i).data(Qt.ItemDataRole.UserRole) is fov:
                    self.fields.setCurrentRow(i)
        finally:
            self._updating = False

    def _show_pixel_size(self, um: float | None) -> None:
        self.pixel_spin.blockSignals(True)
        self.pixel_spin.setValue(um or 0.0)
        self.pixel_spin.blockSignals(False)
        self._show_image_info()

    def show_notice(self, text: str) -> None:
        """Show ``text`` under the image information until another field is shown."""
        self._add_notice(text)

    def _add_notice(self, text: str) -> None:
        lines = [ln for ln in self.notice.text().split("\n") if ln and ln != text]
        self.notice.setText("\n".join([*lines, text]))
        self.info_area.updateGeometry()

    def _pixel_edited(self, um: float) -> None:
        self.session.set_pixel_size(um if um > 0 else None)

    def _show_image_info(self) -> None:
        lines = []
        for lay in self.session.layers:
            im = lay.image
            shape = " x ".join(str(s) for s in im.data.shape)
            px = f", {im.pixel_size_um:.4g} µm/px" if im.pixel_size_um else ""
            z = f", z step {im.z_step_um:.4g} µm" if im.z_step_um else ""
            src = f" - {Path(im.path).name}" if im.path else ""
            lines.append(f"<b>{lay.name}</b>: {im.axes} {shape} {im.data.dtype}{px}{z}{src}")
        self.image_info.setText("<br>".join(lines))
        self.info_area.updateGeometry()
