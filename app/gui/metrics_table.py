"""Metrics table: one row per image x method, sortable (numerically), exportable to CSV / JSON.

Two scopes: the current field of view and the whole dataset (rows accumulate as fields are
compared or a batch finishes). Values come from the engine's comparison code; headers, units and
tooltips from the engine's glossary (:mod:`engine.evaluate.glossary`, which the report uses too). For
stacks every metric header says where it is measured: "whole stack" or the focus plane "plane zN" (the
plane the figures show), and the note names the plane the viewer shows when it is another one.
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

from decongan.engine.evaluate import glossary
from decongan.engine.outputs import atomic_open, write_json_atomic

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
        #: the plane the viewer shows (0-based), to say when the table's focus plane is another
        self.viewer_plane: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.scope_combo = QComboBox()
        self.scope_combo.addItems(SCOPES)
        self.scope_combo.currentTextChanged.connect(lambda _: self._fill())
        self.scope_combo.currentTextChanged.connect(lambda scope: self._show_note())
        self.note = QLabel("")
        self.note.setWordWrap(True)
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
            self._show_note()
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
            self._show_note()
            self._fill()

    def focus_planes(self, scope: str | None = None) -> list[int]:
        """The focus planes (0-based) of the rows of ``scope``; empty for 2-D images."""
        return sorted({int(r["z_plane"]) for r in self.rows[scope or self.scope] if r.get("z_plane") is not None})

    def set_viewer_plane(self, z: int | None) -> None:
        """The plane the viewer shows (0-based); the note says so when the metrics' focus plane differs."""
        self.viewer_plane = z
        self._show_note()

    def scope_note(self, scope: str | None = None) -> str:
        """Where the metrics of ``scope`` are measured (stacks only): whole stack vs the focus plane."""
        planes = self.focus_planes(scope)
        if not planes:
            return ""
        where = f"plane z{planes[0]}" if len(planes) == 1 else "each row's focus plane (column z_plane)"
        text = (f"Stack: SSIM, PSNR, errors and data consistency cover the whole stack; BGSTD, CUF, SNR, resolution "
                f"and segmentation are measured on {where}, the GT's brightest, which the figures show.")
        if len(planes) == 1 and self.viewer_plane is not None and self.viewer_plane != planes[0]:
            text += f" The viewer shows plane z{self.viewer_plane}."
        return text

    def _show_note(self) -> None:
        self.note.setText(" ".join(t for t in (self.notes.get(self.scope, ""), self.scope_note()) if t))

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
        planes = self.focus_planes()
        stack = bool(planes)
        self.model.setHorizontalHeaderLabels([self.header(c) for c in cols])
        for i, c in enumerate(cols):
            self.model.setHeaderData(i, Qt.Orientation.Horizontal,
                                     glossary.describe(c, stack=stack, plane=planes[0] if len(planes) == 1 else None),
                                     Qt.ItemDataRole.ToolTipRole)
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

    def header(self, column: str) -> str:
        """The header shown for ``column`` (the glossary's label with its unit and, for stacks, its scope)."""
        planes = self.focus_planes()
        text = glossary.header(column, stack=bool(planes))
        return text.replace("plane z", f"plane z{planes[0]}") if len(planes) == 1 and column != "z_plane" else text

    def headers(self) -> list[str]:
        """The headers as shown."""
        return [self.model.headerData(i, Qt.Orientation.Horizontal) for i in range(self.model.columnCount())]

    def tooltip(self, column: str) -> str:
        """The tooltip of ``column``'s header."""
        i = self.columns().index(column)
        return self.model.headerData(i, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)

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
