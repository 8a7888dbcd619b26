"""Map modes of the viewer: "error" (|method - GT|, one common scale) and "consistency" (signed).

The maps are computed by the engine off the GUI thread (``app.gui.analysis``); the viewer only shows
them in place of the images, with one LUT and one scale for all panels.
"""

from __future__ import annotations

import numpy as np

from decongan.app.gui.viewer.contrast import percentile_levels

#: map kind -> (LUT, levels policy): errors are >= 0; consistency maps are signed (blue: the input holds
#: signal the restoration lacks, red: the restoration shows structure the input does not support)
MAP_STYLES: dict[str, tuple[str, str]] = {"error": ("inferno", "positive"), "consistency": ("CET-D4", "symmetric")}
CONSISTENCY_THRESHOLD = 5.0
MAP_KINDS = ("image", "error", "consistency")


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


class MapsMixin:
    """The map part of :class:`MultiPanelViewer` (``map_mode``, ``maps``, ``map_notes`` are the viewer's)."""

    map_levels = staticmethod(map_levels)

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
