"""The synchronised multi-panel viewer, one module per job.

- :mod:`.widget`: :class:`MultiPanelViewer` (panels, grid, drawing)
- :mod:`.panel`: one panel (:class:`ImagePanel`, :class:`ScaleBar`) and the panel colours
- :mod:`.contrast`: LUTs, percentile / min-max levels, shared or per panel
- :mod:`.maps`: error and consistency map modes
- :mod:`.navigation`: channel / z / t position
- :mod:`.cursor`: the cursor readout
- :mod:`.line_tool`: the line segment shared by every panel
"""

from decongan.app.gui.viewer.contrast import (
    AUTO_SAMPLE_PIXELS,
    LUTS,
    Contrast,
    lookup_table,
    percentile_levels,
    subsample,
)
from decongan.app.gui.viewer.maps import CONSISTENCY_THRESHOLD, MAP_KINDS, MAP_STYLES, map_levels
from decongan.app.gui.viewer.panel import GT_COLOUR, PANEL_COLOURS, ImagePanel, ScaleBar
from decongan.app.gui.viewer.widget import MultiPanelViewer

__all__ = [
    "AUTO_SAMPLE_PIXELS", "CONSISTENCY_THRESHOLD", "GT_COLOUR", "LUTS", "MAP_KINDS", "MAP_STYLES", "PANEL_COLOURS",
    "Contrast", "ImagePanel", "MultiPanelViewer", "ScaleBar", "lookup_table", "map_levels", "percentile_levels",
    "subsample",
]
