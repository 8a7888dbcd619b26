"""Line-profile plot: the same segment through every panel, one curve per method.

The profiles are the engine's (:func:`engine.evaluate.figures.normalised_profiles`, the function the
exported comparison figure plots): every plane is mapped onto the reference's normalised scale (the
ground truth, else the input: its 0.1th percentile is 0, its 99.9th is 1; every other image
gain/offset-matched to it, the metrics' normalisation policy), so a GAN output in 0-960 and a ground
truth in 0-64000 are compared on one axis, on screen as in the figure. The legend sits above the
plot (never over the curves) and "Export CSV..." writes what is plotted.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from decongan.engine.outputs import atomic_open

Line = tuple[tuple[float, float], tuple[float, float]]


def engine_profile(plane: np.ndarray, start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    """Intensity along the segment ``start`` -> ``end`` ((row, col), pixel centres), as the engine samples it."""
    from decongan.engine.evaluate.figures import line_profile

    return np.asarray(line_profile(plane, (tuple(start), tuple(end))))


def normalised_engine_profiles(planes: dict[str, np.ndarray], line: Line, reference: str) -> tuple[
        dict[str, np.ndarray], list[str]]:
    """The engine's normalised profiles of the planes on the reference's grid.

    Parameters
    ----------
    planes : dict of str to ndarray
        Panel name -> 2-D plane; must include ``reference``.
    line : ((row0, col0), (row1, col1))
        The segment, in pixels of the reference's grid.
    reference : str
        Name of the reference plane (the GT, else the LQ).

    Returns
    -------
    profiles : dict of str to ndarray
        Name -> profile on the reference's normalised scale.
    left_out : list of str
        Names of planes on another grid (no profile: the line's pixels are not theirs).
    """
    from decongan.engine.evaluate.figures import normalised_profiles

    shape = np.shape(planes[reference])
    same = {k: np.asarray(v, dtype=np.float64) for k, v in planes.items() if np.shape(v) == shape}
    left_out = [k for k in planes if k not in same]
    line = (tuple(map(float, line[0])), tuple(map(float, line[1])))
    return normalised_profiles(same, line, reference), left_out


class LineProfileWidget(QWidget):
    """A plot of normalised intensity along the line, distance in µm when the pixel size is known."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        top = QHBoxLayout()
        #: the legend: names in their curve colours, above the plot (never over the peaks)
        self.legend_label = QLabel("")
        self.legend_label.setWordWrap(True)
        self.export_button = QPushButton("Export CSV...")
        self.export_button.setToolTip("Write the plotted profiles (distance and one column per panel) as CSV")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._ask_export_csv)
        top.addWidget(self.legend_label, 1)
        top.addWidget(self.export_button)
        layout.addLayout(top)
        self.plot = pg.PlotWidget(background="#202020")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setLabel("left", "normalised intensity")
        self.plot.setLabel("bottom", "distance", units="px")
        layout.addWidget(self.plot)
        self.profiles: dict[str, np.ndarray] = {}
        self.colours: dict[str, str] = {}
        self.distance: np.ndarray | None = None
        self.unit = "px"
        self.reference: str | None = None
        self.line: Line | None = None

    def set_profiles(self, profiles: dict[str, np.ndarray], colours: dict[str, str], *,
                     line: Line | None = None, pixel_size_um: float | None = None,
                     reference: str | None = None, note: str = "") -> None:
        """Plot ``profiles`` (name -> 1-D array) with the given colours (name -> '#RRGGBB').

        ``reference`` names the plane whose normalised scale the profiles are on (axis label);
        ``note`` is shown after the legend (e.g. panels left out).
        """
        self.profiles = {k: np.asarray(v, dtype=float) for k, v in profiles.items()}
        self.colours = dict(colours)
        self.line = line
        self.reference = reference
        self.plot.clear()
        self.export_button.setEnabled(bool(self.profiles))
        if not self.profiles:
            self.distance = None
            self.legend_label.setText(note)
            return
        n = max(len(v) for v in self.profiles.values())
        length_px = float(np.hypot(line[1][0] - line[0][0], line[1][1] - line[0][1])) if line else float(n - 1)
        scale = pixel_size_um if pixel_size_um else 1.0
        self.unit = "µm" if pixel_size_um else "px"
        self.plot.setLabel("bottom", "distance", units=None)
        self.plot.getAxis("bottom").setLabel(f"distance ({self.unit})")
        self.plot.getAxis("left").setLabel(f"intensity ({reference} scale: 0-1)" if reference
                                           else "normalised intensity")
        for name, values in self.profiles.items():
            x = np.linspace(0.0, length_px * scale, len(values)) if len(values) > 1 else np.zeros(1)
            if len(values) == n:
                self.distance = x
            self.plot.plot(x, values, pen=pg.mkPen(colours.get(name, "#FFFFFF"), width=2), name=name)
        entries = "&nbsp;&nbsp;".join(f"<span style='color:{colours.get(k, '#FFFFFF')}'>&#9644; {html.escape(k)}</span>"
                                      for k in self.profiles)
        tail = f"&nbsp;&nbsp;<i>{html.escape(note)}</i>" if note else ""
        self.legend_label.setText(entries + tail)

    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export line profile", "line_profile.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> Path:
        """Write distance and one column per profile, as plotted (normalised), atomically."""
        path = Path(path)
        names = list(self.profiles)
        n = max((len(v) for v in self.profiles.values()), default=0)
        suffix = f" ({self.reference} scale)" if self.reference else ""
        with atomic_open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([f"distance_{self.unit}", *(f"{k}{suffix}" for k in names)])
            for i in range(n):
                d = self.distance[i] if self.distance is not None and i < len(self.distance) else i
                writer.writerow([f"{d:.6g}", *[(f"{self.profiles[k][i]:.6g}" if i < len(self.profiles[k]) else "")
                                             for k in names]])
        return path
