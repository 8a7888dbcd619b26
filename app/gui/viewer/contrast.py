"""Contrast of the viewer: LUTs, auto-percentile or min/max levels, shared or per panel, and their controls.

Auto contrast takes percentiles of a strided sub-sample, so a 2048 x 2048 16-bit plane costs a few
milliseconds; changing the contrast only calls ``setLevels`` on the panels' image items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg

if TYPE_CHECKING:
    from decongan.app.gui.viewer.panel import ImagePanel

#: LUT names shown to the user -> pyqtgraph colormap names (None = grey ramp)
LUTS: dict[str, str | None] = {
    "grey": None, "magma": "magma", "inferno": "inferno", "viridis": "viridis", "cividis": "cividis",
}
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


class ContrastMixin:
    """The contrast part of :class:`MultiPanelViewer` (its attributes and controls are the viewer's)."""

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
