"""Metrics table: one row per image x method, sortable (numerically), exportable to CSV / JSON.

Two scopes: the current field of view and the whole dataset (rows accumulate as fields are
compared or a batch finishes). Values come from the engine's comparison code.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from decongan.engine.atomic import atomic_open, write_json_atomic

SCOPES = ("Current field", "Dataset")
KEY_COLUMNS = ("image", "method")
#: preferred column order (others follow in first-seen order): identity, reference metrics,
#: no-reference metrics, data consistency
COLUMN_ORDER = ("image", "method", "role", "backend", "channel", "z_plane", "ssim", "psnr", "nrmse", "mse", "snr",
                "bgstd", "cuf", "decorrelation_nm", "decorrelation_px", "dc_flagged_fraction",
                "dc_unsupported_fraction", "dc_rsp", "dc_chi_rms")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def _format(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}"
    return "" if value is None else str(value)


class MetricsTable(QWidget):
    """A sortable table of metric rows with a scope selector and an Export button.

    Signals
    -------
    exported(Path)
    """

    exported = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[str, list[dict[str, Any]]] = {scope: [] for scope in SCOPES}
        self.notes: dict[str, str] = {scope: "" for scope in SCOPES}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.scope_combo = QComboBox()
        self.scope_combo.addItems(SCOPES)
        self.scope_combo.currentTextChanged.connect(lambda _: self._fill())
        self.scope_combo.currentTextChanged.connect(lambda scope: self.note.setText(self.notes.get(scope, "")))
        self.note = QLabel("")
        self.export_button = QPushButton("Export...")
        self.export_button.clicked.connect(self._ask_export)
        top.addWidget(QLabel("Metrics:"))
        top.addWidget(self.scope_combo)
        top.addWidget(self.note, 1)
        top.addWidget(self.export_button)
        layout.addLayout(top)
        self.model = QStandardItemModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setAlternatingRowColors(True)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.view.verticalHeader().setVisible(False)
        layout.addWidget(self.view, 1)

    @property
    def scope(self) -> str:
        return self.scope_combo.currentText()

    def set_scope(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
        self.scope_combo.setCurrentText(scope)

    def set_rows(self, rows: list[dict[str, Any]], scope: str = "Current field", note: str = "") -> None:
        """Replace the rows of ``scope`` (dicts with 'image', 'method' and metric keys)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.rows[scope] = [dict(r) for r in rows]
        self.notes[scope] = note
        if scope == self.scope:
            self.note.setText(note)
            self._fill()

    def merge_rows(self, rows: list[dict[str, Any]], scope: str = "Dataset") -> None:
        """Add rows to ``scope``, replacing rows with the same (image, method, channel)."""
        keep = {(r.get("image"), r.get("method"), r.get("channel")): r for r in self.rows[scope]}
        for r in rows:
            keep[(r.get("image"), r.get("method"), r.get("channel"))] = dict(r)
        self.rows[scope] = list(keep.values())
        images = {r.get("image") for r in self.rows[scope]}
        self.notes[scope] = f"{len(images)} field{'s' if len(images) != 1 else ''}, {len(self.rows[scope])} rows"
        if scope == self.scope:
            self.note.setText(self.notes[scope])
            self._fill()

    def columns(self, scope: str | None = None) -> list[str]:
        rows = self.rows[scope or self.scope]
        present: list[str] = []
        for r in rows:
            for k in r:
                if k not in present:
                    present.append(k)
        ordered = [c for c in COLUMN_ORDER if c in present]
        return ordered + [c for c in present if c not in ordered]

    def _fill(self) -> None:
        rows = self.rows[self.scope]
        cols = self.columns()
        self.model.clear()
        self.model.setHorizontalHeaderLabels(cols)
        for r in rows:
            items = []
            for c in cols:
                value = r.get(c)
                item = QStandardItem(_format(value))
                item.setEditable(False)
                sort_value = value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value or "")
                if isinstance(sort_value, float) and math.isnan(sort_value):
                    sort_value = -math.inf
                item.setData(sort_value, SORT_ROLE)
                if isinstance(value, (int, float)):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                items.append(item)
            self.model.appendRow(items)

    def displayed_rows(self) -> list[list[str]]:
        """The table as shown (sorted), as text."""
        out = []
        for r in range(self.proxy.rowCount()):
            out.append([self.proxy.index(r, c).data() for c in range(self.proxy.columnCount())])
        return out

    def sort_by(self, column: str, descending: bool = False) -> None:
        cols = self.columns()
        self.view.sortByColumn(cols.index(column), Qt.SortOrder.DescendingOrder if descending
                               else Qt.SortOrder.AscendingOrder)

    def export(self, path: str | Path, scope: str | None = None) -> Path:
        """Write the rows of ``scope`` to ``path`` (.csv or .json), atomically."""
        path = Path(path)
        scope = scope or self.scope
        rows = self.rows[scope]
        if path.suffix.lower() == ".json":
            write_json_atomic(path, rows)
        else:
            cols = self.columns(scope)
            with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=cols)
                writer.writeheader()
                for r in rows:
                    writer.writerow({c: r.get(c, "") for c in cols})
        self.exported.emit(path)
        return path

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export metrics", "metrics.csv", "CSV (*.csv);;JSON (*.json)")
        if path:
            self.export(path)


__all__ = ["MetricsTable", "SCOPES"]
