"""A vertical colour bar for the viewer's maps: the LUT, its limits and what the colours mean."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

BAR_WIDTH = 14
LABEL_WIDTH = 46


def matplotlib_lut(name: str) -> np.ndarray:
    """256 x 3 uint8 lookup table of the matplotlib colour map ``name`` (the exported figures' LUTs)."""
    import matplotlib

    return (np.asarray(matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256)))[:, :3] * 255).round().astype(np.uint8)


class ColourBar(QWidget):
    """Shows a LUT from ``levels[0]`` (bottom) to ``levels[1]`` (top) with tick values and a title."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lut: np.ndarray | None = None
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.title = ""
        self.marks: list[tuple[float, str]] = []
        self.setFixedWidth(BAR_WIDTH + LABEL_WIDTH + 26)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(120)

    def set_scale(self, lut: np.ndarray, levels: tuple[float, float], title: str,
                  marks: list[tuple[float, str]] | None = None) -> None:
        """Draw ``lut`` (N x 3 uint8) over ``levels``; ``marks`` are extra labelled values (e.g. a threshold)."""
        self.lut = np.ascontiguousarray(lut[::-1], dtype=np.uint8)  # top = high
        self.levels = (float(levels[0]), float(levels[1]))
        self.title = title.split(" (", 1)[0]  # short enough to read along the bar; the tooltip says it all
        self.marks = list(marks or [])
        self.setToolTip(title)
        self.update()

    def ticks(self) -> list[float]:
        """Values labelled on the bar: both ends and the middle (0 for a symmetric scale)."""
        lo, hi = self.levels
        return [hi, (lo + hi) / 2, lo]

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.lut is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        top, bottom = 10, self.height() - 10
        height = max(bottom - top, 1)
        strip = np.repeat(self.lut[:, None, :], BAR_WIDTH, axis=1)
        image = QImage(strip.tobytes(), BAR_WIDTH, strip.shape[0], BAR_WIDTH * 3, QImage.Format.Format_RGB888)
        painter.drawImage(QRectF(4, top, BAR_WIDTH, height), image)
        painter.setPen(QPen(QColor("#bbbbbb")))
        painter.drawRect(QRectF(4, top, BAR_WIDTH, height))
        lo, hi = self.levels
        span = (hi - lo) or 1.0

        def y_of(value: float) -> float:
            return top + (hi - value) / span * height

        font = painter.font()
        font.setPointSizeF(max(font.pointSizeF() - 1, 6))
        painter.setFont(font)
        for value in self.ticks():
            y = y_of(value)
            painter.drawLine(4 + BAR_WIDTH, int(y), 8 + BAR_WIDTH, int(y))
            painter.drawText(QRectF(10 + BAR_WIDTH, y - 8, LABEL_WIDTH, 16),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{value:.3g}")
        # the title, rotated, beside the labels
        painter.save()
        painter.translate(self.width() - 4, top + height / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-height / 2, -14, height, 14), Qt.AlignmentFlag.AlignCenter,
                         painter.fontMetrics().elidedText(self.title, Qt.TextElideMode.ElideRight, int(height)))
        painter.restore()
        painter.end()


__all__ = ["ColourBar", "matplotlib_lut"]
