"""The line tool of the viewer: one segment, the same in every panel (``line_changed``)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF

from decongan.app.gui.session import GT_ROLE
from decongan.app.gui.viewer.panel import ImagePanel


class LineToolMixin:
    """The line-tool part of :class:`MultiPanelViewer` (``line_button`` and ``_line_points`` are the viewer's)."""

    def set_line_enabled(self, enabled: bool) -> None:
        if self.line_button.isChecked() != enabled:
            self.line_button.setChecked(enabled)
            return
        if enabled:
            self._install_lines()
            self._emit_line()
        else:
            for panel in self.panels:
                if panel.line is not None:
                    panel.view.removeItem(panel.line)
                    panel.line = None

    def _default_line(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The engine's default profile line (through the brightest structure of GT, else LQ), as figures use."""
        if not self.layers:
            return (50.0, 25.0), (50.0, 75.0)
        from decongan.engine.evaluate.figures import default_line

        reference = next((lay for lay in self.layers if lay.role == GT_ROLE), self.layers[0])
        (y0, x0), (y1, x1) = default_line(np.asarray(self.plane_of(reference), dtype=np.float32))
        return (float(y0), float(x0)), (float(y1), float(x1))

    def _install_lines(self) -> None:
        if not self.panels:
            return
        if self._line_points is None:
            self._line_points = self._default_line()
        (r0, c0), (r1, c1) = self._line_points
        for panel in self.panels:
            if panel.line is not None:
                panel.view.removeItem(panel.line)
            roi = pg.LineSegmentROI([[c0 + 0.5, r0 + 0.5], [c1 + 0.5, r1 + 0.5]],
                                    pen=pg.mkPen("#FFD400", width=2), hoverPen=pg.mkPen("#FFFFFF", width=2))
            roi.setZValue(10)
            panel.view.addItem(roi)
            roi.sigRegionChanged.connect(lambda r, p=panel: self._line_moved(p))
            panel.line = roi

    @staticmethod
    def _roi_points(roi: pg.LineSegmentROI) -> tuple[tuple[float, float], tuple[float, float]]:
        p0, p1 = (roi.mapToParent(h.pos()) for h in roi.getHandles())
        return (p0.y() - 0.5, p0.x() - 0.5), (p1.y() - 0.5, p1.x() - 0.5)

    def _line_moved(self, source: ImagePanel) -> None:
        if self._syncing_line or source.line is None:
            return
        self._line_points = self._roi_points(source.line)
        self._syncing_line = True
        try:
            for panel in self.panels:
                if panel is not source and panel.line is not None:
                    _place_roi(panel.line, self._line_points)
        finally:
            self._syncing_line = False
        self._emit_line()

    def set_line(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Put the line from ``start`` to ``end`` ((row, col), pixel centres) in every panel."""
        self._line_points = ((float(start[0]), float(start[1])), (float(end[0]), float(end[1])))
        if not self.line_button.isChecked():
            self.line_button.setChecked(True)  # installs the ROIs at _line_points and emits
            return
        self._syncing_line = True
        try:
            for panel in self.panels:
                if panel.line is not None:
                    _place_roi(panel.line, self._line_points)
        finally:
            self._syncing_line = False
        self._emit_line()

    def line(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The line's ((row0, col0), (row1, col1)) in pixel coordinates, or None when the tool is off."""
        return self._line_points if self.line_button.isChecked() else None

    def _emit_line(self) -> None:
        line = self.line()
        if line is not None:
            self.line_changed.emit(*line)


def _place_roi(roi: pg.LineSegmentROI, points) -> None:
    (r0, c0), (r1, c1) = points
    handles = roi.getHandles()
    roi.movePoint(handles[0], QPointF(c0 + 0.5, r0 + 0.5), finish=False)
    roi.movePoint(handles[1], QPointF(c1 + 0.5, r1 + 0.5), finish=True)
