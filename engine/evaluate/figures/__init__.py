"""Publication figures for comparisons: panels, line profiles, box plots, consistency and error maps.

Matplotlib's object-oriented API only (``matplotlib.figure.Figure`` + the Agg canvas): no pyplot,
so no global state leaks between figures, threads or tests, and no display is ever needed.

Conventions (every figure's caption states the ones it uses)
------------------------------------------------------------
- **Contrast** (``contrast=``):
  ``"shared"`` (default): every panel of a row is first mapped onto the reference's scale with the
  metric normalisation policy (the ground truth, else the input, percentile-normalised; each other
  image least-squares gain/offset-matched to it), then all panels of the row use ONE display range,
  the reference's 0.5th-99.8th percentiles. Brightness differences between panels are therefore
  real differences after the same affine matching the metrics use.
  ``"per-panel"``: every panel stretched to its own 0.5th-99.8th percentiles (shape comparison only).
- **LUTs**: colour-blind-safe: ``gray`` (default), ``magma`` or ``cividis`` for images; ``magma`` for
  error maps; the diverging ``PuOr_r`` for the data-consistency z-map; Okabe-Ito colours for lines,
  boxes and overlays; channel merges in magenta / green / cyan / yellow (Okabe-Ito-like, CVD-safe).
- **Scale bars** from the pixel size (a round length near 1/5 of the panel width); none without one.
- **Zoom insets**: the same region in every panel (default: a square around the brightest structure of
  the reference), drawn in the corner farthest from that region, outlined in the panel.
- **Line profile**: the same line in every panel (default: ~128 px through the brightest structure of
  the reference, the orientation among 0/45/90/135 degrees that crosses most structure), plotted on
  the shared normalised scale.
- Files: PNG (300 dpi by default), SVG and PDF, each written atomically.

Modules: ``canvas`` (palettes, display limits, scale bars, merges, files), ``regions`` (default line,
inset, profiles, matched planes), ``comparison`` (the side-by-side figure and caption), ``boxplots``
(statistics plots), ``maps`` (consistency, error maps, orthogonal sections) and ``trust`` (split-half
and models/seeds disagreement maps). Public names resolve
lazily from here, so ``from decongan.engine.evaluate.figures import comparison_figure`` keeps working.
"""

from decongan.engine._lazy import lazy_api

_API = {
    **dict.fromkeys(("OKABE_ITO", "LINE_COLOURS", "MERGE_COLOURS", "DISPLAY_PERCENTILES", "IMAGE_CMAPS",
                     "DEFAULT_FORMATS", "Contrast", "CaptionedFigure", "new_figure", "save_figure",
                     "display_limits", "nice_length", "scale_bar_spec", "merge_channels"), "canvas"),
    **dict.fromkeys(("brightest_point", "default_line", "line_profile", "default_inset", "matched_planes",
                     "normalised_profiles"),
                    "regions"),
    **dict.fromkeys(("comparison_figure", "comparison_caption"), "comparison"),
    "boxplot_figure": "boxplots",
    **dict.fromkeys(("consistency_figure", "error_map_figure", "orthogonal_view_figure"), "maps"),
    **dict.fromkeys(("split_half_figure", "ensemble_figure", "flagged_label", "SPLIT_HALF_LABEL", "ENSEMBLE_LABEL"),
                    "trust"),
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_api(__name__, _API, globals())
