"""Line-profile plot: the same segment through every panel, one curve per method.

The profiles are computed by the engine's line-profile function (the one the comparison
figure uses), so the plot in the window and the exported figure agree.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from decongan.engine.atomic import atomic_open


def engine_profile(plane: np.ndarray, start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    """Intensity along the segment ``start`` -> ``end`` ((row, col), pixel centres), as the engine samples it."""
    from decongan.engine.evaluate.figures import line_profile

    return np.asarray(line_profile(plane, (tuple(start), tuple(end))))


class LineProfileWidget(QWidget):
    """A plot of intensity along the line, with distance in µm when the pixel size is known."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(background="#202020")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setLabel("left", "intensity")
        self.plot.setLabel("bottom", "distance", units="px")
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextColor="#DDDDDD", brush=pg.mkBrush(32, 32, 32, 190))
        layout.addWidget(self.plot)
        self.profiles: dict[str, np.ndarray] = {}
        self.distance: np.ndarray | None = None
        self.unit = "px"
        self.line: tuple[tuple[float, float], tuple[float, float]] | None = None

    def set_profiles(self, profiles: dict[str, np.ndarray], colours: dict[str, str], *,
                     line: tuple[tuple[float, float], tuple[float, float]] | None = None,
                     pixel_size_um: float | None = None) -> None:
        """Plot ``profiles`` (name -> 1-D array) with the given colours (name -> '#RRGGBB')."""
        self.profiles = {k: np.asarray(v, dtype=float) for k, v in profiles.items()}
        self.line = line
        self.plot.clear()
        self.legend.clear()
        if not self.profiles:
            self.distance = None
            return
        n = max(len(v) for v in self.profiles.values())
        length_px = float(np.hypot(line[1][0] - line[0][0], line[1][1] - line[0][1])) if line else float(n - 1)
        scale = pixel_size_um if pixel_size_um else 1.0
        self.unit = "µm" if pixel_size_um else "px"
        self.plot.setLabel("bottom", "distance", units=None)
        self.plot.getAxis("bottom").setLabel(f"distance ({self.unit})")
        for name, values in self.profiles.items():
            x = np.linspace(0.0, length_px * scale, len(values)) if len(values) > 1 else np.zeros(1)
            if len(values) == n:
                self.distance = x
            self.plot.plot(x, values, pen=pg.mkPen(colours.get(name, "#FFFFFF"), width=2), name=name)

    def export_csv(self, path: str | Path) -> Path:
        """Write distance and one column per profile (atomically)."""
        path = Path(path)
        names = list(self.profiles)
        n = max((len(v) for v in self.profiles.values()), default=0)
        with atomic_open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([f"distance_{self.unit}", *names])
            for i in range(n):
                d = self.distance[i] if self.distance is not None and i < len(self.distance) else i
                writer.writerow([f"{d:.6g}", *[(f"{self.profiles[k][i]:.6g}" if i < len(self.profiles[k]) else "")
                                             for k in names]])
        return path
