"""The side-by-side comparison figure (one row per field, one column per method, with insets, scale
bars and a line-profile column) and its caption."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from decongan.engine.evaluate.figures.canvas import (
    DISPLAY_PERCENTILES,
    IMAGE_CMAPS,
    LINE_COLOURS,
    OKABE_ITO,
    CaptionedFigure,
    Contrast,
    _add_scale_bar,
    display_limits,
    merge_channels,
    new_figure,
)
from decongan.engine.evaluate.figures.regions import (
    _inset_corner,
    default_inset,
    default_line,
    matched_planes,
    normalised_profiles,
)


def _format_metric(key: str, value: Any) -> str:
    from decongan.engine.evaluate.compare import METRIC_LABELS

    if value is None:
        return ""
    label = METRIC_LABELS.get(key, key).replace(" (dB)", "")
    if key == "psnr":
        return f"PSNR {value:.2f} dB"
    if key in ("mse",):
        return f"{label} {value:.2e}"
    if key.endswith("_nm"):
        return f"{label.split(' (')[0]} {value:.0f} nm"
    return f"{label} {value:.3f}"


def comparison_figure(
    evaluations: Sequence[Any],
    *,
    channel: int | Literal["merged"] = 0,
    contrast: Contrast = "shared",
    percentiles: tuple[float, float] = DISPLAY_PERCENTILES,
    cmap: str = "gray",
    inset: tuple[int, int, int] | Literal["auto"] | None = "auto",
    line: tuple[tuple[float, float], tuple[float, float]] | Literal["auto"] | None = "auto",
    line_length_px: int = 128,
    metrics: Sequence[str] = ("ssim", "psnr"),
    max_rows: int = 6,
    panel_in: float = 1.9,
) -> CaptionedFigure:
    """Side-by-side panels: one row per field, one column per method (+ a line-profile column).

    Parameters
    ----------
    evaluations : sequence of engine.evaluate.compare.SetEvaluation
        The fields to show (at most ``max_rows``; the rest are left out and the caption says so).
    channel : int or "merged"
        Which channel; ``"merged"`` shows an RGB merge of all channels (per-panel contrast).
    contrast : {"shared", "per-panel"}
        Display-range policy (module docstring).
    percentiles : (float, float)
        Display percentiles.
    cmap : str
        Image LUT (``gray``, ``magma``, ``cividis``, ...).
    inset : (y0, x0, size), "auto" or None
        Zoom region (pixels of the evaluation grid), the same in every panel of a row.
    line : ((y0, x0), (y1, x1)), "auto" or None
        Profile line, the same in every panel of a row; "auto" = ~``line_length_px`` px through the
        brightest structure of the reference.
    metrics : sequence of str
        Metric values printed under each panel (from the evaluation rows).
    """
    from matplotlib.patches import Rectangle
    from mpl_toolkits.axes_grid1.inset_locator import inset_axes

    from decongan.engine.evaluate.compare import GT_NAME, LQ_NAME

    if contrast not in ("shared", "per-panel"):
        raise ValueError(f"contrast must be 'shared' or 'per-panel', got {contrast!r}")
    if cmap not in IMAGE_CMAPS:
        raise ValueError(f"cmap {cmap!r} is not one of the colour-blind-safe LUTs {IMAGE_CMAPS}")
    shown = list(evaluations)[:max_rows]
    if not shown:
        raise ValueError("nothing to draw: no comparison sets")
    merged = channel == "merged"
    names = [c.name for c in shown[0].cset.columns]
    with_profile = line is not None and not merged
    ratios = [1.0] * len(names) + ([0.32, 1.35] if with_profile else [])
    width = panel_in * sum(ratios) + 0.35
    height = panel_in * 1.2 * len(shown) + 0.55
    fig = new_figure(width, height)
    grid = fig.add_gridspec(len(shown), len(ratios), width_ratios=ratios, left=0.3 / width, right=1 - 0.15 / width,
                            top=1 - 0.3 / height, bottom=0.3 / height, wspace=0.05, hspace=0.3)
    panels = 0
    lines_used = []
    for r, ev in enumerate(shown):
        cset = ev.cset
        ref_name = GT_NAME if cset.gt is not None else LQ_NAME
        if merged:
            planes = {c.name: merge_channels([cset.plane(c, c=k) for k in range(cset.n_channels)], percentiles=percentiles)
                      for c in cset.columns}
            limits = {n: (0.0, 1.0) for n in planes}
            ref_plane = cset.plane(ref_name, c=0)
        else:
            raw = {c.name: cset.plane(c, c=channel) for c in cset.columns}
            ref_plane = raw[ref_name]
            if contrast == "shared":
                planes = matched_planes(raw, ref_name)
                shared = display_limits(planes[ref_name], percentiles)
                limits = {n: shared for n in planes}
            else:
                planes = raw
                limits = {n: display_limits(p, percentiles) for n, p in planes.items()}
        region = default_inset(ref_plane) if inset == "auto" else inset
        row_line = (default_line(ref_plane, length=line_length_px) if line == "auto" else line) if not merged else None
        lines_used.append(row_line)
        for k, name in enumerate(names):
            ax = fig.add_subplot(grid[r, k], label="panel")
            img = planes[name]
            lo, hi = limits[name]
            ax.imshow(img, cmap=None if merged else cmap, vmin=lo, vmax=hi, interpolation="none")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
            if k == 0:
                label = cset.field if not cset.has_z else f"{cset.field} (z={cset.focus_plane(c=0 if merged else channel)})"
                ax.text(-0.04, 0.5, label, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=7)
            corner = _inset_corner(region, img.shape[:2]) if region is not None else "upper right"
            _add_scale_bar(ax, img.shape[1], cset.pixel_size_um,
                           loc="lower right" if corner == "lower left" else "lower left")
            if row_line is not None:
                (y0, x0), (y1, x1) = row_line
                ax.plot([x0, x1], [y0, y1], color=OKABE_ITO[1], lw=0.8)
            if region is not None:
                ry, rx, size = region
                ax.add_patch(Rectangle((rx - 0.5, ry - 0.5), size, size, fill=False, edgecolor=OKABE_ITO[2], lw=0.8))
                sub = inset_axes(ax, width="38%", height="38%", loc=corner, borderpad=0.15)
                sub.imshow(img[ry:ry + size, rx:rx + size], cmap=None if merged else cmap, vmin=lo, vmax=hi,
                           interpolation="none")
                sub.set_xticks([])
                sub.set_yticks([])
                for spine in sub.spines.values():
                    spine.set_edgecolor(OKABE_ITO[2])
                    spine.set_linewidth(0.8)
            text = _metric_text(ev, name, 0 if merged else channel, metrics)
            if text:
                ax.set_xlabel(text, fontsize=6, labelpad=2)
            panels += 1
        if row_line is not None:
            ax = fig.add_subplot(grid[r, len(ratios) - 1], label="profile")
            profiles = normalised_profiles(raw, row_line, ref_name)  # the viewer's plot uses the same function
            for k, name in enumerate(names):
                prof = profiles[name]
                style = {"color": "black", "lw": 1.2} if name == GT_NAME else {"color": LINE_COLOURS[k % len(LINE_COLOURS)], "lw": 0.9}
                dist = np.arange(prof.size) * (cset.pixel_size_um or 1.0)
                ax.plot(dist, prof, label=name, **style)
            ax.set_xlabel("distance (µm)" if cset.pixel_size_um else "distance (px)", fontsize=6, labelpad=1)
            ax.set_ylabel("normalised intensity", fontsize=6, labelpad=1)
            ax.tick_params(labelsize=5)
            if r == 0:  # the legend goes into headroom above the curves, never over a peak
                ax.set_title("line profile", fontsize=8)
                values = np.concatenate([profiles[name] for name in names])
                lo, hi = float(values.min()), float(values.max())
                span = hi - lo if hi > lo else 1.0
                ax.set_ylim(lo - 0.05 * span, hi + (0.2 + 0.12 * math.ceil(len(names) / 2)) * span)
                ax.legend(fontsize=5, frameon=False, loc="upper center", ncol=2, borderaxespad=0.2,
                          handlelength=1.2, columnspacing=0.8)
    caption = comparison_caption(shown, evaluations, channel=channel, contrast=contrast, percentiles=percentiles,
                                 cmap=cmap, inset=inset, line=line, metrics=metrics)
    return CaptionedFigure(fig, caption, "comparison" if not merged else "comparison_merged", panels,
                           {"lines": lines_used})


def _metric_text(ev: Any, name: str, channel: int, metrics: Sequence[str]) -> str:
    row = next((r for r in ev.rows if r["method"] == name and r["channel"] == channel), None)
    if row is None:
        return ""
    parts = [_format_metric(k, row.get(k)) for k in metrics if row.get(k) is not None]
    return " · ".join(p for p in parts if p)


def comparison_caption(shown: Sequence[Any], evaluations: Sequence[Any], *, channel: Any, contrast: str,
                       percentiles: tuple[float, float], cmap: str, inset: Any, line: Any,
                       metrics: Sequence[str]) -> str:
    """The caption of :func:`comparison_figure`: every display convention it used, in words.

    Parameters
    ----------
    shown : sequence of evaluations
        The fields of view drawn (one row each).
    evaluations : sequence of evaluations
        All of them (the others are counted as "in the tables").
    channel : int or "merged"
        The channel shown, or a merged colour composite.
    contrast : {"shared", "per-panel"}
        Display-range policy.
    percentiles : (float, float)
        Display percentiles.
    cmap : str
        Colour map (LUT) name.
    inset : tuple or None
        The zoom region, when insets were drawn.
    line : tuple, "auto" or None
        The profile line, when one was drawn.
    metrics : sequence of str
        Metric names printed under the panels.

    Returns
    -------
    str
        The caption.
    """
    n_left = len(evaluations) - len(shown)
    parts = [f"One row per field of view ({len(shown)} shown"
             + (f"; {n_left} more in the tables" if n_left > 0 else "") + "), one column per method."]
    if channel == "merged":
        parts.append("Channels merged (magenta, green, cyan, yellow), each stretched to its own "
                     f"{percentiles[0]}-{percentiles[1]} percentiles.")
    elif contrast == "shared":
        parts.append("Contrast: every image was gain/offset-matched to the reference (ground truth, else the input) "
                     "with the metric normalisation policy, then all panels of a row share one display range, the "
                     f"reference's {percentiles[0]}-{percentiles[1]} percentiles.")
    else:
        parts.append(f"Contrast: each panel stretched to its own {percentiles[0]}-{percentiles[1]} percentiles "
                     "(compare shapes, not brightness).")
    parts.append(f"LUT: {cmap}. Scale bars from the pixel size.")
    if inset is not None:
        parts.append("Insets: zoom of the outlined square, same place in every panel.")
    if line is not None and channel != "merged":
        parts.append("Orange line: profile plotted at the right on the shared normalised scale"
                     + (" (~128 px through the brightest structure of the reference)." if line == "auto" else "."))
    if metrics:
        parts.append("Under each panel: " + ", ".join(m.upper() for m in metrics) + " against the ground truth.")
    if shown and shown[0].cset.has_z:
        parts.append("Z stacks: the plane z shown is the reference's brightest; metrics cover the stack as stated in the report.")
    return " ".join(parts)

