"""The synchronised multi-panel viewer widget: LQ | restored methods | GT, side by side.

One pyqtgraph ``GraphicsLayoutWidget`` holds a title and a ``ViewBox`` per visible layer; every
view box is linked to the first (pan and zoom move together). Each panel draws its current 2-D
plane with an ``ImageItem`` in row-major order that references the layer's array (no copy per
repaint).

This module builds the widget, its panels and their grid and draws them; each other job has its
own module: contrast (:mod:`.contrast`), maps (:mod:`.maps`), navigation (:mod:`.navigation`),
cursor readout (:mod:`.cursor`) and the line tool (:mod:`.line_tool`).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from decongan.app.gui.panels.base import double_spin
from decongan.app.gui.session import GT_ROLE, LQ_ROLE, Layer
from decongan.app.gui.viewer.colour_bar import ColourBar
from decongan.app.gui.viewer.contrast import LUTS, Contrast, ContrastMixin, lookup_table
from decongan.app.gui.viewer.cursor import CursorReadoutMixin
from decongan.app.gui.viewer.line_tool import LineToolMixin
from decongan.app.gui.viewer.maps import MAP_STYLES, MapsMixin, map_lut, outline_rgba
from decongan.app.gui.viewer.navigation import NavigationMixin
from decongan.app.gui.viewer.panel import GT_COLOUR, PANEL_COLOURS, ImagePanel


class MultiPanelViewer(ContrastMixin, MapsMixin, NavigationMixin, CursorReadoutMixin, LineToolMixin, QWidget):
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
        self.maps: dict[str, dict[str, np.ndarray]] = {"error": {}, "consistency": {}, "split_half": {}}
        self.map_notes: dict[str, str] = {}
        #: map kind -> layer name -> why that layer has no map of the kind (said in its title)
        self.map_missing: dict[str, dict[str, str]] = {}
        #: consistency maps: layer name -> (flagged mask of the plane, plane fraction, whole-image fraction)
        self.flagged: dict[str, tuple[np.ndarray, float, float]] = {}
        #: split-half maps, the same
        self.split_half_flagged: dict[str, tuple[np.ndarray, float, float]] = {}
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
        # the panel toggles scroll sideways instead of widening the window (8 layers made it 1928 px wide)
        strip = QWidget()
        self.panel_buttons_box = QHBoxLayout(strip)
        self.panel_buttons_box.setContentsMargins(0, 0, 0, 0)
        self.panel_buttons_box.addStretch(1)
        self.panel_buttons: dict[str, QToolButton] = {}
        self.panel_strip = QScrollArea()
        self.panel_strip.setWidget(strip)
        self.panel_strip.setWidgetResizable(True)
        self.panel_strip.setFrameShape(QFrame.Shape.NoFrame)
        self.panel_strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.panel_strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.panel_strip.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.panel_strip.setMinimumWidth(120)
        self.panel_strip.setFixedHeight(QToolButton(text="X").sizeHint().height() + 16)
        row0.addWidget(self.panel_strip, 1)
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

        # row 1: tools (line profile, maps), LUT; short labels (the tooltips and the View menu say more) so the
        # window fits 1366 px with four panels
        row1 = QHBoxLayout()
        self.line_button = QToolButton(text="Profile", checkable=True)
        self.line_button.setToolTip("Line profile: draw the same line in every panel and plot its profiles")
        self.line_button.toggled.connect(self.set_line_enabled)
        self.error_button = QToolButton(text="Errors", checkable=True)
        self.error_button.setToolTip("Error map: |method - GT| after the metrics' normalisation, one common scale")
        self.consistency_button = QToolButton(text="Consistency", checkable=True)
        self.consistency_button.setToolTip("Consistency map: the restored image re-blurred with the LQ PSF vs the LQ input: normalised residual\n"
                                           "(purple: structure the input does not support; orange: signal it lacks;\n"
                                           "outlines: flagged regions, as in the exported figure)")
        self.split_half_button = QToolButton(text="Split-half", checkable=True)
        self.split_half_button.setToolTip("Split-half map: the input's photons split in two halves, each restored again by the layer's "
                                          "method: where the two\nrestorations disagree beyond noise (instability at "
                                          "half the photons, not correctness; outlines: flagged)")
        self.error_button.toggled.connect(lambda on: self.set_map_mode("error" if on else "image"))
        self.consistency_button.toggled.connect(lambda on: self.set_map_mode("consistency" if on else "image"))
        self.split_half_button.toggled.connect(lambda on: self.set_map_mode("split_half" if on else "image"))
        reset = QToolButton(text="Fit")
        reset.setToolTip("Show the whole image")
        reset.clicked.connect(self.reset_view)
        self.lut_combo = QComboBox()
        self.lut_combo.addItems(list(LUTS))
        self.lut_combo.setCurrentText(self.lut_name if self.lut_name in LUTS else "grey")
        for w in (self.line_button, self.error_button, self.consistency_button, self.split_half_button, reset):
            row1.addWidget(w)
        row1.addStretch(1)
        row1.addWidget(QLabel("LUT:"))
        row1.addWidget(self.lut_combo)
        layout.addLayout(row1)
        self._tools_row = row1  # the contrast sharing controls join it (the window fits 1366 px)

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
                  self.min_spin, self.max_spin):
            row2.addWidget(w)
        row2.addStretch(1)
        layout.addLayout(row2)
        self.shared_check.setText("Same for all")
        self.shared_check.setToolTip("One contrast for all panels (else each panel its own; choose the panel on the right)")
        self._tools_row.insertWidget(self._tools_row.count() - 2, self.shared_check)
        self._tools_row.insertWidget(self._tools_row.count() - 2, self.target_combo)

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
        images = QHBoxLayout()
        images.setSpacing(2)
        images.addWidget(self.graphics, 1)
        self.colour_bar = ColourBar()  # the maps' scale, as in the exported figures
        self.colour_bar.setVisible(False)
        images.addWidget(self.colour_bar)
        layout.addLayout(images, 1)

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
        old_names = self.layer_names()
        old_images = {lay.role: lay.image for lay in self.layers if lay.role in (LQ_ROLE, GT_ROLE)}
        self.layers = list(layers)
        new_images = {lay.role: lay.image for lay in self.layers if lay.role in (LQ_ROLE, GT_ROLE)}
        if any(new_images.get(role) is not old_images.get(role) for role in new_images):
            focus = self.focus_position()  # a new field (or a GT added): open at the plane the comparison shows
            if focus is not None:
                self.position["z"] = focus
        names = {lay.name for lay in layers}
        self.hidden &= names
        self.contrast_per_panel = {k: v for k, v in self.contrast_per_panel.items() if k in names}
        for kind in self.maps:
            self.maps[kind] = {k: v for k, v in self.maps[kind].items() if k in names}
        self.flagged = {k: v for k, v in self.flagged.items() if k in names}
        self.split_half_flagged = {k: v for k, v in self.split_half_flagged.items() if k in names}
        lq = next((lay for lay in layers if lay.role == LQ_ROLE), layers[0] if layers else None)
        self.pixel_size_um = lq.image.pixel_size_um if lq is not None else None
        new_shape = self.layers[0].image.yx_shape if self.layers else None
        view_range = self._kept_range() if old_shape == new_shape else None
        if old_shape != new_shape:
            self._line_points = None
        self._rebuild_panel_buttons()
        self._update_nav()
        self._rebuild(view_range)
        if not self.layers:
            self.readout.setText("Open an image (File > Open) or drop files here.")
        elif old_names != self.layer_names() or self.readout.text().startswith("Open an image"):
            # the readout never names layers that are gone (e.g. those of the previous dataset)
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
        self._rebuild(self._kept_range())

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
            self.panel_buttons_box.insertWidget(self.panel_buttons_box.count() - 1, button)  # before the stretch
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
            # the grid's geometry settles after the event loop lays it out: a fitted view fits again then
            self.panels[0].view.sigResized.connect(self._refit_if_whole)
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
            self._rebuild(self._kept_range())

    def shows_whole_image(self) -> bool:
        """True when the first panel shows the whole image (fitted, or zoomed out): not zoomed in or panned."""
        if not self.panels or not self.layers:
            return True
        h, w = self.layers[0].image.yx_shape
        (x0, x1), (y0, y1) = self.panels[0].view.viewRange()
        tol = 0.5
        return x0 <= tol and x1 >= w - tol and y0 <= tol and y1 >= h - tol

    def _kept_range(self):
        """The view range to keep across a rebuild: the user's zoom, or None (fit again) when the whole
        image was shown, so that panels added or removed never leave small images in a grey field."""
        if not self.panels or self.shows_whole_image():
            return None
        return self.panels[0].view.viewRange()

    def _refit_if_whole(self, *args) -> None:
        if self.panels and self.shows_whole_image():
            self.reset_view()

    def reset_view(self) -> None:
        """Zoom to fit the whole image."""
        if self.panels and self.layers:
            h, w = self.layers[0].image.yx_shape
            self.panels[0].view.setRange(xRange=(0, w), yRange=(0, h), padding=0)

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
        _, policy, bar_title = MAP_STYLES.get(self.map_mode, ("magma", "positive", ""))
        lut_of_maps = map_lut(self.map_mode) if self.map_mode in MAP_STYLES else None
        shown = [(p, *self._display_data(p)) for p in self.panels]
        map_arrays = [d for _, d, is_map in shown if is_map]
        map_levels = self.map_levels(map_arrays, policy)
        image_levels = self._image_levels([p for p, _, is_map in shown if not is_map])
        for panel, data, is_map in shown:
            levels = map_levels if is_map else image_levels[panel.layer.name]
            if full or panel.displayed is not data:
                panel.show(data, levels, lut_of_maps if is_map else lut)
            else:
                panel.set_levels(levels)
                panel.item.setLookupTable(lut_of_maps if is_map else lut)
            title = panel.layer.name
            flags = {"consistency": self.flagged, "split_half": self.split_half_flagged}.get(self.map_mode, {})
            flagged = flags.get(panel.layer.name) if is_map else None
            if is_map:
                title += f"  [{self.map_mode.replace('_', '-')} map]"
                if flagged is not None:  # the plane's share (outlined here) and the whole image's (the table's)
                    plane, whole = 100 * flagged[1], 100 * flagged[2]
                    title += f"\nflagged {plane:.2f} %" + (f" here, {whole:.2f} % overall" if plane != whole else "")
            elif self.map_mode != "image":
                why = self.map_missing.get(self.map_mode, {}).get(panel.layer.name)
                title += f"  [no map: {why}]" if why else "  [no map]"
            panel.set_title(title)
            panel.set_overlay(outline_rgba(flagged[0]) if flagged is not None and flagged[0].any() else None)
            panel.scale_bar.set_pixel_size(self.pixel_size_um if panel is self.panels[0] else None)
        if map_arrays and lut_of_maps is not None:
            self.colour_bar.set_scale(lut_of_maps, map_levels, bar_title)
        self.colour_bar.setVisible(bool(map_arrays))
        self._sync_contrast_controls()
