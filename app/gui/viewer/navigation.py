"""Channel / z / t navigation of the viewer: one position shared by every panel."""

from __future__ import annotations

import numpy as np

from decongan.app.gui.session import Layer


class NavigationMixin:
    """The navigation part of :class:`MultiPanelViewer` (``position`` and ``nav_spins`` are the viewer's)."""

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
