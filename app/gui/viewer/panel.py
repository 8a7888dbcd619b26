"""One panel of the viewer (title, view box, image item, outline, scale bar) and its colours."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from decongan.app.gui.session import Layer

#: Okabe-Ito colour-blind-safe colours, one per panel (line profiles, panel titles)
PANEL_COLOURS = ["#DDDDDD", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]
GT_COLOUR = "#CC79A7"


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
        # flagged regions of a consistency map, outlined above the image (transparent elsewhere)
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(10)
        self.overlay.setVisible(False)
        self.view.addItem(self.overlay)
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

    def set_overlay(self, rgba: np.ndarray | None) -> None:
        """Show an RGBA overlay (Y, X, 4) on this panel's grid, or hide it (None)."""
        if rgba is None:
            self.overlay.setVisible(False)
            return
        self.overlay.setImage(rgba, autoLevels=False)
        if self.plane is not None:
            self.overlay.setRect(0, 0, self.plane.shape[1], self.plane.shape[0])
        self.overlay.setVisible(True)

    def set_levels(self, levels: tuple[float, float]) -> None:
        self.levels = levels
        self.item.setLevels(levels)

    def set_title(self, text: str) -> None:
        self.title.setText(text, color=self.colour)
        self.title_text = text
