"""Map modes of the viewer: "error" (|method - GT|, one common scale), "consistency" and "split_half" (signed z-maps).

The maps are computed by the engine off the GUI thread (``app.gui.analysis``); the viewer only shows
them in place of the images, with one LUT, one scale and a colour bar for all panels -- the LUTs, scales
and labels of the exported figures (``engine.evaluate.figures.maps``), so screen and file look alike:
consistency = the normalised residual z over a fixed -5..+5 (purple: the restoration is brighter than the
input supports, orange: input signal it lacks) with the flagged regions outlined; errors = magma from 0
to the 99.5th percentile of the maps shown; split-half = the disagreement z of the restorations of two
photon halves, on the consistency map's LUT and scale (engine.evaluate.figures.trust).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from decongan.app.gui.viewer.contrast import percentile_levels
from decongan.engine.evaluate.figures.maps import (
    CONSISTENCY_CMAP,
    CONSISTENCY_LABEL,
    CONSISTENCY_ZLIM,
    ERROR_CMAP,
    ERROR_LABEL,
    ERROR_PERCENTILE,
    FLAGGED_COLOUR,
)
from decongan.engine.evaluate.figures.trust import SPLIT_HALF_LABEL

#: map kind -> (matplotlib LUT, levels policy, colour-bar title)
MAP_STYLES: dict[str, tuple[str, str, str]] = {
    "error": (ERROR_CMAP, "positive", ERROR_LABEL),
    "consistency": (CONSISTENCY_CMAP, "symmetric", CONSISTENCY_LABEL + "; outlines: flagged"),
    "split_half": (CONSISTENCY_CMAP, "symmetric", SPLIT_HALF_LABEL + "; outlines: flagged"),
}
CONSISTENCY_THRESHOLD = CONSISTENCY_ZLIM
MAP_KINDS = ("image", "error", "consistency", "split_half")
#: map kinds whose flagged regions are outlined and quoted in the panel titles
FLAGGED_KINDS = ("consistency", "split_half")


def map_levels(arrays: list[np.ndarray], policy: str) -> tuple[float, float]:
    """One common scale for all maps: [0, p99.5] (errors) or the fixed -5..+5 of the exported figure (consistency)."""
    if policy == "symmetric":
        return -CONSISTENCY_ZLIM, CONSISTENCY_ZLIM
    if not arrays:
        return 0.0, 1.0
    _, hi = percentile_levels(arrays, 0.0, ERROR_PERCENTILE)
    return 0.0, max(hi, 1e-12)


@cache
def map_lut(kind: str) -> np.ndarray:
    """256 x 3 uint8 LUT of a map kind (the exported figure's matplotlib colour map)."""
    from decongan.app.gui.viewer.colour_bar import matplotlib_lut

    return matplotlib_lut(MAP_STYLES[kind][0])


def outline_rgba(mask: np.ndarray, colour: str = FLAGGED_COLOUR) -> np.ndarray:
    """An RGBA overlay (Y, X, 4 uint8) drawing the boundary pixels of ``mask`` in ``colour``, transparent elsewhere."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    edge = mask & ~ndimage.binary_erosion(mask)
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[edge] = [int(colour[i:i + 2], 16) for i in (1, 3, 5)] + [255]
    return rgba


class MapsMixin:
    """The map part of :class:`MultiPanelViewer` (``map_mode``, ``maps``, ``map_notes`` are the viewer's)."""

    map_levels = staticmethod(map_levels)

    def set_map_mode(self, mode: str) -> None:
        """Show the images ("image") or the "error" / "consistency" maps where they are available."""
        if mode not in MAP_KINDS:
            raise ValueError(f"unknown map mode {mode!r}; choose one of {', '.join(MAP_KINDS)}")
        self.map_mode = mode
        for button, kind in ((self.error_button, "error"), (self.consistency_button, "consistency"),
                             (self.split_half_button, "split_half")):
            if button.isChecked() != (mode == kind):
                button.blockSignals(True)
                button.setChecked(mode == kind)
                button.blockSignals(False)
        self._redraw(full=True)
        self.map_mode_changed.emit(mode)

    def set_maps(self, kind: str, maps: dict[str, np.ndarray], note: str = "",
                 flagged: dict[str, tuple[np.ndarray, float, float]] | None = None,
                 missing: dict[str, str] | None = None) -> None:
        """Provide the maps of ``kind`` for the current plane (layer name -> 2-D array); for consistency
        and split-half maps ``flagged`` gives layer name -> (flagged mask of the plane, its flagged
        fraction, the whole image's), outlined on the map and quoted in the panel title; ``missing``
        gives layer name -> why that layer has no map (shown in its title instead of the map)."""
        if kind not in self.maps:
            raise ValueError(f"unknown map kind {kind!r}")
        self.maps[kind] = dict(maps)
        self.map_notes[kind] = note
        self.map_missing[kind] = dict(missing or {})
        if kind == "consistency":
            self.flagged = dict(flagged or {})
        elif kind == "split_half":
            self.split_half_flagged = dict(flagged or {})
        if self.map_mode == kind:
            self._redraw(full=True)
