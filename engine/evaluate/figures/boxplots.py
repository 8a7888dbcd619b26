"""Box plots per metric across methods with the Kruskal-Wallis p value and Dunn's significant pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from decongan.engine.evaluate.figures.canvas import LINE_COLOURS, CaptionedFigure, new_figure

#: Box plots side by side before a new row starts.
BOXPLOTS_PER_ROW = 3


def boxplot_figure(table: Any, metrics: Sequence[str], *, p_adjust: str = "holm", alpha: float = 0.05,
                   statistics: dict[str, Any] | None = None) -> CaptionedFigure:
    """One box plot per metric across methods, with Kruskal-Wallis p and Dunn's significant pairs.

    Parameters
    ----------
    table : engine.evaluate.compare.MetricTable
    metrics : sequence of str
        Metrics to draw (those without values are skipped).
    p_adjust : str
        Dunn's multiple-comparison correction ("holm" or "bonferroni").
    statistics : dict, optional
        Precomputed ``table.statistics(metric)`` results by metric (computed here when missing).
    """
    from decongan.engine.evaluate.compare import HIGHER_IS_BETTER, METRIC_LABELS
    from decongan.engine.evaluate.stats import format_p, significance_stars

    metrics = [m for m in metrics if table.methods_with(m)]
    if not metrics:
        raise ValueError("no metric has values to plot")
    n = len(metrics)
    n_methods = max(len(table.methods_with(m)) for m in metrics)
    ncols = min(BOXPLOTS_PER_ROW, n)  # a grid, not a row of tiny plots
    nrows = math.ceil(n / ncols)
    width = max(3.0, 0.6 * n_methods + 1.4)
    fig = new_figure(width * ncols, 3.6 * nrows)
    fig.set_layout_engine("constrained")
    stats_out = {}
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(nrows, ncols, i + 1, label="boxplot")
        methods = table.methods_with(metric)
        data = [[v for v in table.values(metric, m) if v is not None and math.isfinite(v)] for m in methods]
        # one colour per method in every panel (a method missing from one panel does not shift the others)
        colours = [LINE_COLOURS[table.methods.index(m) % len(LINE_COLOURS)] for m in methods]
        boxes = ax.boxplot(data, tick_labels=methods, patch_artist=True, widths=0.6, showfliers=False,
                           medianprops={"color": "black", "lw": 1.2})
        for patch, colour in zip(boxes["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.55)
        rng = np.random.default_rng(0)
        for k, values in enumerate(data):
            ax.scatter(k + 1 + rng.uniform(-0.12, 0.12, len(values)), values, s=6, color="black", zorder=3)
        result = (statistics or {}).get(metric) or table.statistics(metric, p_adjust=p_adjust, alpha=alpha)
        stats_out[metric] = result
        direction = HIGHER_IS_BETTER.get(metric)
        arrow = " (↑ better)" if direction else " (↓ better)" if direction is False else ""
        ax.set_ylabel(METRIC_LABELS.get(metric, metric) + arrow, fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        if result.kruskal is not None:
            ax.set_title(f"Kruskal-Wallis {format_p(result.kruskal.pvalue)}", fontsize=8)
            _draw_brackets(ax, methods, data, result.significant_pairs, significance_stars)
        else:
            ax.set_title(f"no test: {result.skipped_reason}", fontsize=7)
    caption = (f"Box plots per metric over all fields (box: quartiles, line: median, whiskers: 1.5 IQR, dots: "
               f"images). Title: Kruskal-Wallis test across methods; brackets: pairs that differ by Dunn's test "
               f"with {p_adjust.capitalize()} correction (* p<0.05, ** p<0.01, *** p<0.001), run only when every "
               "method has >= 3 images. Images are paired across methods while these tests assume independent "
               "groups (conservative); the report also gives the paired Friedman test.")
    return CaptionedFigure(fig, caption, "boxplots", len(metrics), {"statistics": stats_out})


def _draw_brackets(ax: Any, methods: list[str], data: list[list[float]], pairs: Sequence[Any], stars: Any) -> None:
    if not pairs:
        return
    top = max((max(d) for d in data if d), default=1.0)
    bottom = min((min(d) for d in data if d), default=0.0)
    span = (top - bottom) or abs(top) or 1.0
    step = 0.08 * span
    y = top + step
    for pair in pairs:
        a, b = methods.index(pair.group_a) + 1, methods.index(pair.group_b) + 1
        ax.plot([a, a, b, b], [y, y + step * 0.3, y + step * 0.3, y], color="black", lw=0.7)
        ax.text((a + b) / 2, y + step * 0.35, stars(pair.pvalue), ha="center", va="bottom", fontsize=6)
        y += step
    ax.set_ylim(top=y + step)

