"""The synchronised multi-panel viewer: LQ | restored methods | GT, side by side.

One pyqtgraph ``GraphicsLayoutWidget`` holds a title and a ``ViewBox`` per visible layer; every
view box is linked to the first (pan and zoom move together). Each panel draws its current 2-D
plane with an ``ImageItem`` in row-major order that references the layer's array (no copy per
repaint); contrast changes only call ``setLevels``. Auto contrast takes percentiles of a strided
sub-sample, so a 2048 x 2048 16-bit plane costs a few milliseconds.

Features: any subset of panels, LUTs, auto-percentile or min/max contrast shared or per panel,
channel / z / t navigation, a cursor readout (intensity in every panel, position in px and µm),
a line tool whose segment is the same in every panel (``line_changed``), and map modes
("error": |method - GT| on a common scale, "consistency": the data-consistency map) whose
arrays are supplied by the window (computed with the engine off the GUI thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from decongan.app.gui.panels.base import double_spin
from decongan.app.gui.session import GT_ROLE, LQ_ROLE, Layer

#: LUT names shown to the user -> pyqtgraph colormap names (None = grey ramp)
LUTS: dict[str, str | None] = {
    "grey": None, "magma": "magma", "inferno": "inferno", "viridis": "viridis", "cividis": "cividis",
}
#: map kind -> (LUT, levels policy): errors are >= 0; consistency maps are signed (blue: the input holds
#: signal the restoration lacks, red: the restoration shows structure the input does not support)
MAP_STYLES: dict[str, tuple[str, str]] = {"error": ("inferno", "positive"), "consistency": ("CET-D4", "symmetric")}
CONSISTENCY_THRESHOLD = 5.0
#: Okabe-Ito colour-blind-safe colours, one per panel (line profiles, panel titles)
PANEL_COLOURS = ["#DDDDDD", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]
GT_COLOUR = "#CC79A7"
MAP_KINDS = ("image", "error", "consistency")
AUTO_SAMPLE_PIXELS = 262_144


def lookup_table(name: str) -> np.ndarray | None:
    """256 x 3 uint8 LUT for ``name`` (None for the plain grey ramp, which needs no table)."""
    cmap_name = LUTS.get(name, name)
    if cmap_name is None:
        return None
    return pg.colormap.get(cmap_name).getLookupTable(nPts=256, alpha=False)


def subsample(plane: np.ndarray, max_pixels: int = AUTO_SAMPLE_PIXELS) -> np.ndarray:
    """A strided view of ``plane`` with at most about ``max_pixels`` pixels (no copy)."""
    step = max(1, int(math.ceil(math.sqrt(plane.size / max_pixels))))
    return plane[::step, ::step]


def percentile_levels(planes: list[np.ndarray], low: float, high: float) -> tuple[float, float]:
    """Contrast limits at the ``low`` / ``high`` percentiles (%) of the pixels of ``planes`` together."""
    samples = [np.asarray(subsample(p), dtype=np.float32).ravel() for p in planes if p is not None and p.size]
    if not samples:
        return 0.0, 1.0
    values = np.concatenate(samples) if len(samples) > 1 else samples[0]
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if hi <= lo:
        hi = lo + (1.0 if values.dtype.kind in "ui" or lo == 0 else abs(lo) * 1e-3)
    return lo, hi


@dataclass(frozen=True)
class Contrast:
    """Contrast of a panel: ``auto`` (percentiles ``low_pct``..``high_pct``) or ``manual`` (vmin..vmax)."""

    mode: str = "auto"
    low_pct: float = 0.1
    high_pct: float = 99.9
    vmin: float = 0.0
    vmax: float = 1.0


class ScaleBar(pg.GraphicsObject):
    """A bar of a round physical length (µm) in the lower-right corner of a view box."""

    def __init__(self, view: pg.ViewBox) -> None:
        super().__init__()
        self.view = view
        self.setParentItem(view)
        self.setZValue(20)
        self.bar = pg.QtWidgets.QGraphicsRectItem(self)
        self.bar.setPen(pg.mkPen(None))
        self.bar.setBrush(pg.mkBrush("w"))
        self.text = pg.TextItem(color="w", anchor=(0.5, 1.0))
        self.text.setParentItem(self)
        self.pixel_size_um: float | None = None
        view.sigRangeChanged.connect(self.update_bar)
        view.sigResized.connect(self.update_bar)

    def boundingRect(self):  # noqa: N802 - Qt API
        return pg.QtCore.QRectF()

    def paint(self, *args) -> None:
        pass

    def set_pixel_size(self, um: float | None) -> None:
        self.pixel_size_um = um
        self.update_bar()

    def update_bar(self, *args) -> None:
        if not self.pixel_size_um or self.pixel_size_um <= 0:
            self.setVisible(False)
            return
        (x0, x1), _ = self.view.viewRange()
        width_px = self.view.width()
        if x1 <= x0 or width_px <= 0:
            return
        screen_per_pixel = width_px / (x1 - x0)
        target_um = (x1 - x0) * self.pixel_size_um * 0.2
        exponent = math.floor(math.log10(target_um)) if target_um > 0 else 0
        nice = min((m * 10 ** exponent for m in (1, 2, 5, 10)), key=lambda v: abs(v - target_um))
        length = nice / self.pixel_size_um * screen_per_pixel
        self.bar.setRect(0, 0, length, 4)
        self.text.setText(f"{nice:g} µm")
        self.text.setPos(length / 2, -2)
        geom = self.view.boundingRect()
        self.setPos(geom.width() - length - 12, geom.height() - 14)
        self.setVisible(True)


class ImagePanel:
    """One layer's title, view box, image item and line segment inside the shared layout."""

    def __init__(self, layer: Layer, colour: str) -> None:
        self.layer = layer
        self.colour = colour
        self.view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setDefaultPadding(0.0)
        # title drawn over the view (screen coordinates), so it stays put while panning and zooming
        self.title = pg.TextItem(color=colour, anchor=(0, 0), fill=pg.mkBrush(0, 0, 0, 150))
        self.title.setParentItem(self.view)
        self.title.setPos(4, 4)
        self.title.setZValue(30)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        # outline of the image extent: maps whose values sit at the LUT's dark centre stay readable
        self.outline = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        self.outline.setPen(pg.mkPen("#6a6a6a", width=1, cosmetic=True))
        self.outline.setZValue(5)
        self.view.addItem(self.outline)
        self.scale_bar = ScaleBar(self.view)
        self.line: pg.LineSegmentROI | None = None
        self.plane: np.ndarray | None = None
        self.displayed: np.ndarray | None = None
        self.levels: tuple[float, float] = (0.0, 1.0)

    def show(self, data: np.ndarray, levels: tuple[float, float], lut: np.ndarray | None) -> None:
        self.displayed = data
        self.levels = levels
        self.item.setImage(data, autoLevels=False, levels=levels, lut=lut)
        if self.plane is not None:
            self.outline.setRect(0, 0, self.plane.shape[1], self.plane.shape[0])
        if self.plane is not None and data.shape != self.plane.shape:  # e.g. a map on the coarser LQ grid
            self.item.setRect(0, 0, self.plane.shape[1], self.plane.shape[0])

    def set_levels(self, levels: tuple[float, float]) -> None:
        self.levels = levels
        self.item.setLevels(levels)

    def set_title(self, text: str) -> None:
        self.title.setText(text, color=self.colour)
        self.title_text = text


class MultiPanelViewer(QWidget):
    """Side-by-side panels with linked views, shared navigation, contrast, cursor readout and a line tool.

    Signals
    -------
    line_changed(tuple, tuple)
        The line segment moved: ``((row0, col0), (row1, col1))`` in pixel coordinates (pixel centres
        at integer positions, like ``skimage.measure.profile_line``).
    cursor_moved(dict)
        ``{"x": col, "y": row, "x_um": .., "y_um": .., "values": {panel: value}}``.
    plane_changed()
        Channel, z or t changed.
    map_mode_changed(str)
        "image", "error" or "consistency".
    """

    line_changed = Signal(object, object)
    cursor_moved = Signal(dict)
    plane_changed = Signal()
    map_mode_changed = Signal(str)
    panels_changed = Signal()

    def __init__(self, parent: QWidget | None = None, *, lut: str = "grey", shared_contrast: bool = False,
                 low_pct: float = 0.1, high_pct: float = 99.9) -> None:
        super().__init__(parent)
        self.layers: list[Layer] = []
        self.hidden: set[str] = set()
        self.panels: list[ImagePanel] = []
        self.lut_name = lut
        self.shared_contrast = shared_contrast
        self.contrast_shared = Contrast(low_pct=low_pct, high_pct=high_pct)
        self.contrast_per_panel: dict[str, Contrast] = {}
        self.map_mode = "image"
        self.maps: dict[str, dict[str, np.ndarray]] = {"error": {}, "consistency": {}}
        self.map_notes: dict[str, str] = {}
        self.position = {"c": 0, "z": 0, "t": 0}
        self.pixel_size_um: float | None = None
        self._line_points: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._syncing_line = False
        self._build_ui()

    # -- UI ----------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)

        # row 0: which panels, and channel / z / t navigation
        row0 = QHBoxLayout()
        row0.addWidget(QLabel("Panels:"))
        self.panel_buttons_box = QHBoxLayout()
        self.panel_buttons: dict[str, QToolButton] = {}
        row0.addLayout(self.panel_buttons_box)
        row0.addStretch(1)
        self.nav_spins: dict[str, QSpinBox] = {}
        self.nav_labels: dict[str, QLabel] = {}
        for axis in ("c", "z", "t"):
            label = QLabel({"c": "Channel", "z": "Z", "t": "T"}[axis])
            spin = QSpinBox()
            spin.setMinimum(0)
            spin.valueChanged.connect(lambda v, a=axis: self.set_position(**{a: v}))
            self.nav_spins[axis] = spin
            self.nav_labels[axis] = label
            row0.addWidget(label)
            row0.addWidget(spin)
        layout.addLayout(row0)

        # row 1: tools (line profile, maps), LUT
        row1 = QHBoxLayout()
        self.line_button = QToolButton(text="Line profile", checkable=True)
        self.line_button.setToolTip("Draw the same line in every panel and plot its profiles")
        self.line_button.toggled.connect(self.set_line_enabled)
        self.error_button = QToolButton(text="Error map", checkable=True)
        self.error_button.setToolTip("|method - GT| after the metrics' normalisation, one common scale")
        self.consistency_button = QToolButton(text="Consistency map", checkable=True)
        self.consistency_button.setToolTip("Restored image re-blurred with the LQ PSF vs the LQ input\n"
                                           "(red: structure the input does not support; blue: signal it lacks)")
        self.error_button.toggled.connect(lambda on: self.set_map_mode("error" if on else "image"))
        self.consistency_button.toggled.connect(lambda on: self.set_map_mode("consistency" if on else "image"))
        reset = QToolButton(text="Fit")
        reset.setToolTip("Show the whole image")
        reset.clicked.connect(self.reset_view)
        self.lut_combo = QComboBox()
        self.lut_combo.addItems(list(LUTS))
        self.lut_combo.setCurrentText(self.lut_name if self.lut_name in LUTS else "grey")
        for w in (self.line_button, self.error_button, self.consistency_button, reset):
            row1.addWidget(w)
        row1.addStretch(1)
        row1.addWidget(QLabel("LUT:"))
        row1.addWidget(self.lut_combo)
        layout.addLayout(row1)

        # row 2: contrast
        row2 = QHBoxLayout()
        self.auto_radio = QRadioButton("Auto %")
        self.manual_radio = QRadioButton("Min/max")
        self.auto_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.auto_radio)
        group.addButton(self.manual_radio)
        self.low_spin = double_spin(0.0, 50.0, self.contrast_shared.low_pct, decimals=2, step=0.1, suffix=" %")
        self.high_spin = double_spin(50.0, 100.0, self.contrast_shared.high_pct, decimals=2, step=0.1, suffix=" %")
        self.min_spin = double_spin(-1e9, 1e9, 0.0, decimals=3, step=1.0)
        self.max_spin = double_spin(-1e9, 1e9, 1.0, decimals=3, step=1.0)
        for w in (self.low_spin, self.high_spin, self.min_spin, self.max_spin):
            w.setMaximumWidth(90)
        self.low_spin.setToolTip("Lower percentile mapped to black")
        self.high_spin.setToolTip("Upper percentile mapped to white")
        self.min_spin.setToolTip("Display minimum (intensity units)")
        self.max_spin.setToolTip("Display maximum (intensity units)")
        self.shared_check = QCheckBox("Same for all panels")
        self.shared_check.setChecked(self.shared_contrast)
        self.target_combo = QComboBox()
        self.target_combo.setToolTip("Panel whose contrast the controls change (when not shared)")
        self.target_combo.setMinimumWidth(100)
        for w in (QLabel("Contrast:"), self.auto_radio, self.low_spin, self.high_spin, self.manual_radio,
                  self.min_spin, self.max_spin, self.shared_check, self.target_combo):
            row2.addWidget(w)
        row2.addStretch(1)
        layout.addLayout(row2)

        for w in (self.low_spin, self.high_spin):
            w.valueChanged.connect(self._contrast_controls_changed)
        for w in (self.min_spin, self.max_spin):
            w.valueChanged.connect(self._manual_controls_changed)
        self.auto_radio.toggled.connect(self._contrast_controls_changed)
        self.shared_check.toggled.connect(self.set_shared_contrast)
        self.target_combo.currentTextChanged.connect(self._load_target_controls)
        self.lut_combo.currentTextChanged.connect(self.set_lut)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#202020")
        self.graphics.ci.setSpacing(4)
        self.graphics.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)
        layout.addWidget(self.graphics, 1)

        self.readout = QLabel("Open an image (File > Open) or drop files here.")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setMinimumHeight(20)
        layout.addWidget(self.readout)
        self._update_nav()
        self._sync_contrast_controls()

    # -- layers and panels -------------------------------------------------------------------------
    def set_layers(self, layers: list[Layer]) -> None:
        """Show these layers (in order). Keeps the view range and line when the image size is unchanged."""
        old_shape = self.layers[0].image.yx_shape if self.layers else None
        self.layers = list(layers)
        names = {lay.name for lay in layers}
        self.hidden &= names
        self.contrast_per_panel = {k: v for k, v in self.contrast_per_panel.items() if k in names}
        for kind in self.maps:
            self.maps[kind] = {k: v for k, v in self.maps[kind].items() if k in names}
        lq = next((lay for lay in layers if lay.role == LQ_ROLE), layers[0] if layers else None)
        self.pixel_size_um = lq.image.pixel_size_um if lq is not None else None
        new_shape = self.layers[0].image.yx_shape if self.layers else None
        view_range = self.panels[0].view.viewRange() if self.panels and old_shape == new_shape else None
        if old_shape != new_shape:
            self._line_points = None
        self._rebuild_panel_buttons()
        self._update_nav()
        self._rebuild(view_range)
        if self.layers and self.readout.text().startswith("Open an image"):
            self.readout.setText("Move the pointer over an image for its values and position.")

    def layer_names(self) -> list[str]:
        return [lay.name for lay in self.layers]

    @property
    def visible_layers(self) -> list[Layer]:
        return [lay for lay in self.layers if lay.name not in self.hidden]

    def set_visible(self, name: str, visible: bool) -> None:
        """Show or hide the panel of layer ``name``."""
        if visible:
            self.hidden.discard(name)
        else:
            self.hidden.add(name)
        button = self.panel_buttons.get(name)
        if button is not None and button.isChecked() != visible:
            button.blockSignals(True)
            button.setChecked(visible)
            button.blockSignals(False)
        view_range = self.panels[0].view.viewRange() if self.panels else None
        self._rebuild(view_range)

    def panel(self, name: str) -> ImagePanel | None:
        return next((p for p in self.panels if p.layer.name == name), None)

    def _colour(self, layer: Layer) -> str:
        if layer.role == GT_ROLE:
            return GT_COLOUR
        if layer.role == LQ_ROLE:
            return PANEL_COLOURS[0]
        restored = [lay.name for lay in self.layers if lay.role not in (LQ_ROLE, GT_ROLE)]
        index = restored.index(layer.name) if layer.name in restored else 0
        palette = PANEL_COLOURS[1:7]
        return palette[index % len(palette)]

    def _rebuild_panel_buttons(self) -> None:
        for button in self.panel_buttons.values():
            self.panel_buttons_box.removeWidget(button)
            button.hide()  # deleteLater waits for the event loop; never leave it painted meanwhile
            button.deleteLater()
        self.panel_buttons = {}
        for lay in self.layers:
            button = QToolButton(text=lay.name, checkable=True)
            button.setChecked(lay.name not in self.hidden)
            button.setToolTip(f"Show or hide the {lay.name} panel")
            button.toggled.connect(lambda on, n=lay.name: self.set_visible(n, on))
            self.panel_buttons_box.addWidget(button)
            self.panel_buttons[lay.name] = button
        current = self.target_combo.currentText()
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        self.target_combo.addItems(self.layer_names())
        if current in self.layer_names():
            self.target_combo.setCurrentText(current)
        self.target_combo.blockSignals(False)

    def _rebuild(self, view_range=None) -> None:
        ci = self.graphics.ci
        for panel in self.panels:
            if panel.line is not None:
                panel.view.removeItem(panel.line)
        ci.clear()
        self.panels = []
        visible = self.visible_layers
        n = len(visible)
        if n:
            rows, cols = self.grid_shape(n)
            self._grid = (rows, cols)
            for i, lay in enumerate(visible):
                panel = ImagePanel(lay, self._colour(lay))
                r, c = divmod(i, cols)
                ci.addItem(panel.view, row=r, col=c)
                if self.panels:
                    panel.view.setXLink(self.panels[0].view)
                    panel.view.setYLink(self.panels[0].view)
                self.panels.append(panel)
        self._refresh_images()
        if self.panels:
            if view_range is not None:
                self.panels[0].view.setRange(xRange=view_range[0], yRange=view_range[1], padding=0)
            else:
                self.reset_view()
        if self.line_button.isChecked():
            self._install_lines()
        self.panels_changed.emit()

    def grid_shape(self, n: int) -> tuple[int, int]:
        """(rows, columns) for ``n`` panels that show the image largest in the current widget size."""
        width = max(1, self.graphics.width())
        height = max(1, self.graphics.height())
        img_h, img_w = self.layers[0].image.yx_shape if self.layers else (1, 1)
        best, best_scale = (1, n), -1.0
        for rows in range(1, n + 1):
            cols = math.ceil(n / rows)
            if (rows - 1) * cols >= n:
                continue
            scale = min(width / cols / img_w, height / rows / img_h)
            if scale > best_scale * 1.001:
                best, best_scale = (rows, cols), scale
        return best

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        panels = len(self.panels)
        if panels and self.grid_shape(panels) != getattr(self, "_grid", None):
            self._rebuild(self.panels[0].view.viewRange())

    def reset_view(self) -> None:
        """Zoom to fit the whole image."""
        if self.panels and self.layers:
            h, w = self.layers[0].image.yx_shape
            self.panels[0].view.setRange(xRange=(0, w), yRange=(0, h), padding=0)

    # -- navigation --------------------------------------------------------------------------------
    def _sizes(self) -> dict[str, int]:
        sizes = {"c": 1, "z": 1, "t": 1}
        for lay in self.layers:
            for axis in sizes:
                sizes[axis] = max(sizes[axis], lay.image.size(axis.upper()))
        return sizes

    def _update_nav(self) -> None:
        sizes = self._sizes()
        for axis, spin in self.nav_spins.items():
            spin.blockSignals(True)
            spin.setMaximum(max(0, sizes[axis] - 1))
            self.position[axis] = min(self.position[axis], sizes[axis] - 1)
            spin.setValue(self.position[axis])
            spin.blockSignals(False)
            spin.setVisible(sizes[axis] > 1)
            self.nav_labels[axis].setVisible(sizes[axis] > 1)
            self.nav_labels[axis].setText({"c": "Channel", "z": "Z", "t": "T"}[axis] + f" (of {sizes[axis]})")

    def set_position(self, *, c: int | None = None, z: int | None = None, t: int | None = None) -> None:
        """Select the channel / z plane / time point shown in every panel."""
        changed = False
        for axis, value in (("c", c), ("z", z), ("t", t)):
            if value is not None and value != self.position[axis]:
                self.position[axis] = int(value)
                changed = True
                spin = self.nav_spins[axis]
                if spin.value() != value:
                    spin.blockSignals(True)
                    spin.setValue(int(value))
                    spin.blockSignals(False)
        if changed:
            for kind in self.maps:
                self.maps[kind] = {}
            self._refresh_images()
            self.plane_changed.emit()
            self._emit_line()

    def plane_of(self, layer: Layer) -> np.ndarray:
        """The 2-D plane of ``layer`` at the current channel / z / t (clamped to the layer's size)."""
        image = layer.image
        pos = {a: min(self.position[a], image.size(a.upper()) - 1) for a in ("c", "z", "t")}
        return image.plane(**pos)

    # -- display -----------------------------------------------------------------------------------
    def _refresh_images(self) -> None:
        for panel in self.panels:
            panel.plane = self.plane_of(panel.layer)
        self._redraw(full=True)

    def _display_data(self, panel: ImagePanel) -> tuple[np.ndarray, bool]:
        """(array to show, is_map) for the current map mode."""
        if self.map_mode != "image":
            data = self.maps.get(self.map_mode, {}).get(panel.layer.name)
            if data is not None:
                return data, True
        return panel.plane, False

    def _redraw(self, *, full: bool) -> None:
        if not self.panels:
            return
        lut = lookup_table(self.lut_name)
        map_lut_name, policy = MAP_STYLES.get(self.map_mode, ("inferno", "positive"))
        map_lut = lookup_table(map_lut_name)
        shown = [(p, *self._display_data(p)) for p in self.panels]
        map_arrays = [d for _, d, is_map in shown if is_map]
        map_levels = self.map_levels(map_arrays, policy)
        image_levels = self._image_levels([p for p, _, is_map in shown if not is_map])
        for panel, data, is_map in shown:
            levels = map_levels if is_map else image_levels[panel.layer.name]
            if full or panel.displayed is not data:
                panel.show(data, levels, map_lut if is_map else lut)
            else:
                panel.set_levels(levels)
                panel.item.setLookupTable(map_lut if is_map else lut)
            title = panel.layer.name
            if is_map:
                title += f"  [{self.map_mode} map]"
            elif self.map_mode != "image":
                title += "  [no map]"
            panel.set_title(title)
            panel.scale_bar.set_pixel_size(self.pixel_size_um if panel is self.panels[0] else None)
        self._sync_contrast_controls()

    @staticmethod
    def map_levels(arrays: list[np.ndarray], policy: str) -> tuple[float, float]:
        """One common scale for all maps: [0, p99.5] (errors) or symmetric around 0 (consistency)."""
        if not arrays:
            return 0.0, 1.0
        if policy == "symmetric":
            _, hi = percentile_levels([np.abs(a) for a in arrays], 0.0, 99.5)
            hi = max(hi, CONSISTENCY_THRESHOLD)
            return -hi, hi
        _, hi = percentile_levels(arrays, 0.0, 99.5)
        return 0.0, max(hi, 1e-12)

    def _image_levels(self, panels: list[ImagePanel]) -> dict[str, tuple[float, float]]:
        levels: dict[str, tuple[float, float]] = {}
        if self.shared_contrast:
            c = self.contrast_shared
            shared = (percentile_levels([p.plane for p in panels], c.low_pct, c.high_pct)
                      if c.mode == "auto" else (c.vmin, c.vmax))
            return {p.layer.name: shared for p in panels}
        for p in panels:
            c = self.contrast_per_panel.get(p.layer.name, replace(self.contrast_shared, mode="auto")
                                            if self.contrast_shared.mode == "manual" else self.contrast_shared)
            levels[p.layer.name] = (percentile_levels([p.plane], c.low_pct, c.high_pct)
                                    if c.mode == "auto" else (c.vmin, c.vmax))
        return levels

    def levels(self) -> dict[str, tuple[float, float]]:
        """Current display levels of every visible panel."""
        return {p.layer.name: p.levels for p in self.panels}

    def set_lut(self, name: str) -> None:
        if name not in LUTS:
            raise ValueError(f"unknown LUT {name!r}; choose one of {', '.join(LUTS)}")
        self.lut_name = name
        if self.lut_combo.currentText() != name:
            self.lut_combo.setCurrentText(name)
        self._redraw(full=False)

    def set_shared_contrast(self, shared: bool) -> None:
        self.shared_contrast = bool(shared)
        if self.shared_check.isChecked() != shared:
            self.shared_check.setChecked(shared)
        self._redraw(full=False)

    def set_contrast(self, contrast: Contrast, panel: str | None = None) -> None:
        """Set the contrast of every panel (``panel`` None or shared mode) or of one panel."""
        if panel is None or self.shared_contrast:
            self.contrast_shared = contrast
            if panel is None:
                self.contrast_per_panel = {}
        else:
            self.contrast_per_panel[panel] = contrast
        self._redraw(full=False)

    def _target(self) -> str | None:
        return None if self.shared_contrast else (self.target_combo.currentText() or None)

    def _current_contrast(self) -> Contrast:
        target = self._target()
        if target is None:
            return self.contrast_shared
        return self.contrast_per_panel.get(target, self.contrast_shared)

    def _contrast_controls_changed(self, *args) -> None:
        if getattr(self, "_loading_controls", False):
            return
        c = self._current_contrast()
        mode = "auto" if self.auto_radio.isChecked() else "manual"
        vmin, vmax = c.vmin, c.vmax
        if mode == "manual" and c.mode == "auto":  # start from what is on screen
            shown = self.panel(self._target()) if self._target() else (self.panels[0] if self.panels else None)
            if shown is not None:
                vmin, vmax = shown.levels
        self.set_contrast(replace(c, mode=mode, low_pct=self.low_spin.value(), high_pct=self.high_spin.value(),
                                  vmin=vmin, vmax=vmax), self._target())

    def _manual_controls_changed(self, *args) -> None:
        if getattr(self, "_loading_controls", False):
            return
        c = self._current_contrast()
        vmin, vmax = self.min_spin.value(), self.max_spin.value()
        if vmax <= vmin:
            return
        self.manual_radio.blockSignals(True)
        self.manual_radio.setChecked(True)
        self.manual_radio.blockSignals(False)
        self.set_contrast(replace(c, mode="manual", vmin=vmin, vmax=vmax), self._target())

    def _load_target_controls(self, *args) -> None:
        self._sync_contrast_controls()

    def _sync_contrast_controls(self) -> None:
        """Show the current contrast in the controls without feeding back."""
        self._loading_controls = True
        try:
            c = self._current_contrast()
            self.auto_radio.setChecked(c.mode == "auto")
            self.manual_radio.setChecked(c.mode == "manual")
            self.low_spin.setValue(c.low_pct)
            self.high_spin.setValue(c.high_pct)
            target = self._target()
            shown = self.panel(target) if target else (self.panels[0] if self.panels else None)
            if shown is not None and not (self.map_mode != "image" and shown.displayed is not shown.plane):
                lo, hi = shown.levels
                self.min_spin.setValue(lo)
                self.max_spin.setValue(hi)
            self.target_combo.setEnabled(not self.shared_contrast)
        finally:
            self._loading_controls = False

    # -- maps --------------------------------------------------------------------------------------
    def set_map_mode(self, mode: str) -> None:
        """Show the images ("image") or the "error" / "consistency" maps where they are available."""
        if mode not in MAP_KINDS:
            raise ValueError(f"unknown map mode {mode!r}; choose one of {', '.join(MAP_KINDS)}")
        self.map_mode = mode
        for button, kind in ((self.error_button, "error"), (self.consistency_button, "consistency")):
            if button.isChecked() != (mode == kind):
                button.blockSignals(True)
                button.setChecked(mode == kind)
                button.blockSignals(False)
        self._redraw(full=True)
        self.map_mode_changed.emit(mode)

    def set_maps(self, kind: str, maps: dict[str, np.ndarray], note: str = "") -> None:
        """Provide the maps of ``kind`` for the current plane (layer name -> 2-D array)."""
        if kind not in self.maps:
            raise ValueError(f"unknown map kind {kind!r}")
        self.maps[kind] = dict(maps)
        self.map_notes[kind] = note
        if self.map_mode == kind:
            self._redraw(full=True)

    # -- cursor ------------------------------------------------------------------------------------
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

    # -- line tool ---------------------------------------------------------------------------------
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


def _format_value(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    if float(value).is_integer() and abs(value) < 1e7:
        return f"{int(value)}"
    return f"{value:.4g}"
