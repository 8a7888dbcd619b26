"""Cursor readout of the viewer: the value of every visible panel and the position in px and µm."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF


class CursorReadoutMixin:
    """The readout part of :class:`MultiPanelViewer` (``readout`` is the viewer's label)."""

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        for panel in self.panels:
            if panel.view.sceneBoundingRect().contains(scene_pos):
                point = panel.view.mapSceneToView(scene_pos)
                self.show_readout(point.y(), point.x())
                return

    def values_at(self, row: int, col: int) -> dict[str, float]:
        """Displayed value of every visible panel at pixel (row, col) (NaN outside an image)."""
        values: dict[str, float] = {}
        for panel in self.panels:
            data = panel.displayed
            if data is not None and 0 <= row < data.shape[0] and 0 <= col < data.shape[1]:
                values[panel.layer.name] = float(data[row, col])
            else:
                values[panel.layer.name] = float("nan")
        return values

    def show_readout(self, y: float, x: float) -> dict:
        """Update the readout for view coordinates (x, y) and return what it shows."""
        row, col = int(math.floor(y)), int(math.floor(x))
        values = self.values_at(row, col)
        info = {"x": col, "y": row, "x_um": None, "y_um": None, "values": values}
        pos = f"x {col}, y {row} px"
        if self.pixel_size_um:
            info["x_um"] = (col + 0.5) * self.pixel_size_um
            info["y_um"] = (row + 0.5) * self.pixel_size_um
            pos = f"x {info['x_um']:.3f} µm, y {info['y_um']:.3f} µm ({col}, {row} px)"
        parts = [f"{name}: {_format_value(v)}" for name, v in values.items()]
        self.readout.setText(f"{pos}   |   " + "   ".join(parts))
        self.cursor_moved.emit(info)
        return info


def _format_value(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    if float(value).is_integer() and abs(value) < 1e7:
        return f"{int(value)}"
    return f"{value:.4g}"
