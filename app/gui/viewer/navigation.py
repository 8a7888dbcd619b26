"""Channel / z / t navigation of the viewer: one position shared by every panel.

Plane numbers are 0-based, as the engine, the exported figure (``z=19``) and the metrics table count
them; the labels say so. A new field opens at the plane the comparison shows
(:func:`engine.evaluate.compare.focus_plane` of the GT, else the LQ), not at a blurred plane 0.
"""

from __future__ import annotations

import numpy as np

from decongan.app.gui.session import GT_ROLE, LQ_ROLE, Layer

AXIS_LABELS = {"c": "Channel", "z": "Z", "t": "T"}


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
            self.nav_labels[axis].setText(f"{AXIS_LABELS[axis]} (0-{sizes[axis] - 1})")
            spin.setToolTip(f"{AXIS_LABELS[axis]} index, counted from 0 as in the exported figure and the metrics "
                            f"table ({sizes[axis]} in all)")

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

    def focus_position(self) -> int | None:
        """The plane a comparison of this field shows (engine's focus_plane of the GT, else the LQ), or None (2-D)."""
        from decongan.engine.evaluate.compare import focus_plane

        ref = next((lay for lay in self.layers if lay.role == GT_ROLE), None) or \
            next((lay for lay in self.layers if lay.role == LQ_ROLE), None)
        if ref is None or ref.image.size("Z") <= 1:
            return None
        image = ref.image
        c = min(self.position["c"], image.size("C") - 1)
        t = min(self.position["t"], image.size("T") - 1)
        return focus_plane(np.stack([image.plane(c=c, z=z, t=t) for z in range(image.size("Z"))]))
