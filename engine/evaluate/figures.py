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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from decongan.engine.atomic import atomic_path

#: Okabe & Ito (2008) colour-blind-safe palette (black first, then orange, sky blue, green, ...).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
#: Line / box colours by position (black skipped: it is the background of many panels).
LINE_COLOURS = OKABE_ITO[1:]
#: Channel colours for merged multichannel panels (magenta, green, cyan, yellow).
MERGE_COLOURS = ((1.0, 0.0, 1.0), (0.0, 1.0, 0.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0))
DISPLAY_PERCENTILES = (0.5, 99.8)
IMAGE_CMAPS = ("gray", "magma", "cividis", "viridis", "inferno")
DEFAULT_FORMATS = ("png", "svg", "pdf")

Contrast = Literal["shared", "per-panel"]


@dataclass
class CaptionedFigure:
    """A matplotlib Figure, its caption (stating every convention used) and what it contains."""

    figure: Any
    caption: str
    name: str
    panels: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def new_figure(width_in: float, height_in: float) -> Any:
    """A Figure bound to the Agg canvas (no pyplot).

    Parameters
    ----------
    width_in, height_in : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot, so it needs no display and no ``plt.close``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout=None)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: CaptionedFigure | Any, path_stem: str | Path, *, formats: Sequence[str] = DEFAULT_FORMATS,
                dpi: int = 300) -> list[Path]:
    """Write ``path_stem.png/.svg/.pdf`` atomically; return the paths.

    Parameters
    ----------
    fig : CaptionedFigure or matplotlib Figure
    path_stem : path without suffix
    formats : sequence of {"png", "svg", "pdf"}
    dpi : int
        Raster resolution (PNG; also embedded images of the PDF/SVG). At least 300 for print.
    """
    figure = fig.figure if isinstance(fig, CaptionedFigure) else fig
    out = []
    stem = Path(path_stem)
    for fmt in formats:
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"unsupported figure format {fmt!r} (png, svg, pdf)")
        dest = stem.with_name(stem.name + "." + fmt)
        with atomic_path(dest) as tmp:
            figure.savefig(tmp, format=fmt, dpi=dpi, metadata=_file_metadata(fmt))
        out.append(dest)
    return out


def _file_metadata(fmt: str) -> dict[str, Any]:
    # reproducible files: no creation date in PDF/SVG
    if fmt == "pdf":
        return {"Creator": "DeconGAN", "CreationDate": None}
    if fmt == "svg":
        return {"Creator": "DeconGAN", "Date": None}
    return {"Software": "DeconGAN"}


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def display_limits(image: np.ndarray, percentiles: tuple[float, float] = DISPLAY_PERCENTILES) -> tuple[float, float]:
    """(low, high) display limits at the given percentiles; never a zero-width range.

    Parameters
    ----------
    image : ndarray, any shape
        Intensities (any units).
    percentiles : (float, float)
        Low and high percentiles in [0, 100] (0.5 and 99.8 by default).

    Returns
    -------
    low, high : float
        In the image's units, ``high > low`` (for a flat image, ``high`` is its maximum or ``low + 1``).
    """
    lo, hi = (float(v) for v in np.percentile(image, percentiles))
    if not hi > lo:
        hi = lo + (float(np.max(image)) - lo or 1.0)
    return lo, hi


def nice_length(target: float) -> float:
    """The largest 1/2/5 x 10^k value <= ``target`` (for scale bars)."""
    if target <= 0:
        return 0.0
    exponent = math.floor(math.log10(target))
    for mantissa in (5, 2, 1):
        value = mantissa * 10.0 ** exponent
        if value <= target:
            return value
    return 10.0 ** exponent


def scale_bar_spec(width_px: int, pixel_size_um: float | None) -> tuple[float, str] | None:
    """(length in pixels, label) of a round scale bar near 1/5 of the width; None without a pixel size.

    Parameters
    ----------
    width_px : int
        Image width in px.
    pixel_size_um : float or None
        Lateral pixel size in um; None or 0 when unknown.

    Returns
    -------
    (float, str) or None
        The bar length in px (a 1/2/5 x 10^k length in um, at most a fifth of the width) and its
        label in nm below 1 um, else in um.
    """
    if not pixel_size_um:
        return None
    length_um = nice_length(width_px * pixel_size_um / 5.0)
    if length_um <= 0:
        return None
    if length_um < 1:
        label = f"{length_um * 1000:g} nm"
    else:
        label = f"{length_um:g} µm"
    return length_um / pixel_size_um, label


def brightest_point(image: np.ndarray, *, sigma: float = 2.0, margin: int = 0) -> tuple[int, int]:
    """(y, x) of the maximum of the Gaussian-smoothed image (a robust 'brightest structure').

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Intensities.
    sigma : float
        Gaussian sigma of the smoothing in px.
    margin : int
        Border in px excluded from the search (ignored when the image is too small for it).

    Returns
    -------
    (int, int)
        Row and column in px.
    """
    from scipy.ndimage import gaussian_filter

    smoothed = gaussian_filter(np.asarray(image, dtype=np.float64), sigma)
    if margin > 0 and min(smoothed.shape) > 2 * margin + 1:
        inner = np.full(smoothed.shape, -np.inf)
        inner[margin:-margin, margin:-margin] = smoothed[margin:-margin, margin:-margin]
        smoothed = inner
    y, x = np.unravel_index(int(np.argmax(smoothed)), smoothed.shape)
    return int(y), int(x)


def default_line(reference: np.ndarray, *, length: int = 128) -> tuple[tuple[float, float], tuple[float, float]]:
    """A ~``length`` px line through the brightest structure, oriented to cross the most structure.

    Returns ``((y0, x0), (y1, x1))`` inside the image. The length shrinks to 80 % of the smaller side
    on small images. Among 0/45/90/135 degrees the orientation with the largest profile variance wins.

    Parameters
    ----------
    reference : ndarray, shape (Y, X)
        The image the line is chosen on (ground truth, else the input).
    length : int
        Wanted line length in px.

    Returns
    -------
    ((float, float), (float, float))
        End points (row, column) in px.
    """
    ny, nx = reference.shape
    length = int(min(length, 0.8 * min(ny, nx)))
    cy, cx = brightest_point(reference, margin=min(ny, nx) // 10)
    best, best_var = None, -1.0
    for angle in (0.0, 45.0, 90.0, 135.0):
        dy, dx = math.sin(math.radians(angle)), math.cos(math.radians(angle))
        half = length / 2.0
        # shift the centre so the line stays inside the image
        y0, x0, y1, x1 = cy - dy * half, cx - dx * half, cy + dy * half, cx + dx * half
        sy = _shift_inside(min(y0, y1), max(y0, y1), ny)
        sx = _shift_inside(min(x0, x1), max(x0, x1), nx)
        line = ((y0 + sy, x0 + sx), (y1 + sy, x1 + sx))
        var = float(np.var(line_profile(reference, line)))
        if var > best_var:
            best, best_var = line, var
    assert best is not None
    return best


def _shift_inside(lo: float, hi: float, n: int) -> float:
    if lo < 0:
        return -lo
    if hi > n - 1:
        return (n - 1) - hi
    return 0.0


def line_profile(image: np.ndarray, line: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    """Values along ``line`` ((y0, x0), (y1, x1)), one sample per pixel of length, linear interpolation.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Intensities.
    line : ((float, float), (float, float))
        End points (row, column) in px; positions outside take the nearest edge value.

    Returns
    -------
    ndarray, float64, shape (n,)
        ``n = round(length in px) + 1`` samples (at least 2), in the image's units.
    """
    from scipy.ndimage import map_coordinates

    (y0, x0), (y1, x1) = line
    n = max(2, int(round(math.hypot(y1 - y0, x1 - x0))) + 1)
    ys = np.linspace(y0, y1, n)
    xs = np.linspace(x0, x1, n)
    return map_coordinates(np.asarray(image, dtype=np.float64), [ys, xs], order=1, mode="nearest")


def default_inset(reference: np.ndarray, *, fraction: float = 0.2) -> tuple[int, int, int]:
    """(y0, x0, size) of a square zoom region around the brightest structure, inside the image.

    Parameters
    ----------
    reference : ndarray, shape (Y, X)
        The image the region is chosen on.
    fraction : float
        Side of the square as a fraction of the image's smaller side (at least 8 px).

    Returns
    -------
    (int, int, int)
        Top-left row, top-left column and side, in px.
    """
    ny, nx = reference.shape
    size = max(8, int(round(fraction * min(ny, nx))))
    cy, cx = brightest_point(reference, margin=min(ny, nx) // 10)
    y0 = int(min(max(cy - size // 2, 0), ny - size))
    x0 = int(min(max(cx - size // 2, 0), nx - size))
    return y0, x0, size


def _inset_corner(region: tuple[int, int, int], shape: tuple[int, int]) -> str:
    """The panel corner farthest from the zoomed region (matplotlib 'loc' string)."""
    y0, x0, size = region
    cy, cx = y0 + size / 2, x0 + size / 2
    vertical = "lower" if cy < shape[0] / 2 else "upper"
    horizontal = "right" if cx < shape[1] / 2 else "left"
    return f"{vertical} {horizontal}"


def matched_planes(planes: dict[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """Map every plane onto the reference's normalised scale (the metric normalisation policy).

    Parameters
    ----------
    planes : dict of str to ndarray
        Method name -> plane, all the same shape (Y, X) (or (Z, X) sections).
    reference : str
        The key of the reference plane (ground truth, else the input).

    Returns
    -------
    dict of str to ndarray
        Same keys; the reference percentile-normalised (0.1 -> 0, 99.9 -> 1), every other plane
        least-squares gain/offset-matched to it (float64, dimensionless).
    """
    from decongan.engine.metrics.reference import normalize_pair

    ref = planes[reference]
    out = {}
    for name, plane in planes.items():
        if name == reference:
            _, ref_n, _ = normalize_pair(plane, ref)
            out[name] = ref_n
        else:
            pred_n, _, _ = normalize_pair(plane, ref)
            out[name] = pred_n
    return out


def merge_channels(planes: Sequence[np.ndarray], *, percentiles: tuple[float, float] = DISPLAY_PERCENTILES) -> np.ndarray:
    """RGB composite (H, W, 3) of channels in magenta/green/cyan/yellow, each stretched to its percentiles.

    Parameters
    ----------
    planes : sequence of ndarray, each shape (H, W)
        One plane per channel, at most four.
    percentiles : (float, float)
        Display percentiles of each channel.

    Returns
    -------
    ndarray, float64, shape (H, W, 3)
        RGB values in [0, 1].

    Raises
    ------
    ValueError
        With more than four channels.
    """
    if len(planes) > len(MERGE_COLOURS):
        raise ValueError(f"at most {len(MERGE_COLOURS)} channels can be merged, got {len(planes)}")
    rgb = np.zeros((*planes[0].shape, 3))
    for plane, colour in zip(planes, MERGE_COLOURS, strict=False):
        lo, hi = display_limits(plane, percentiles)
        norm = np.clip((plane - lo) / (hi - lo), 0, 1)
        rgb += norm[..., None] * np.asarray(colour)[None, None, :]
    return np.clip(rgb, 0, 1)


def _add_scale_bar(ax: Any, width_px: int, pixel_size_um: float | None, *, colour: str = "white",
                   loc: str = "lower left") -> str | None:
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    spec = scale_bar_spec(width_px, pixel_size_um)
    if spec is None:
        return None
    length_px, label = spec
    bar = AnchoredSizeBar(ax.transData, length_px, label, loc, pad=0.3, color=colour, frameon=False,
                          size_vertical=max(1.0, width_px / 120), fontproperties=FontProperties(size=6))
    ax.add_artist(bar)
    return label


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


# ---------------------------------------------------------------------------------------------
# the side-by-side comparison
# ---------------------------------------------------------------------------------------------
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
            ref_planes = planes if contrast == "shared" else matched_planes(planes, ref_name)
            for k, name in enumerate(names):
                prof = line_profile(ref_planes[name], row_line)
                style = {"color": "black", "lw": 1.2} if name == GT_NAME else {"color": LINE_COLOURS[k % len(LINE_COLOURS)], "lw": 0.9}
                dist = np.arange(prof.size) * (cset.pixel_size_um or 1.0)
                ax.plot(dist, prof, label=name, **style)
            ax.set_xlabel("distance (µm)" if cset.pixel_size_um else "distance (px)", fontsize=6, labelpad=1)
            ax.set_ylabel("normalised intensity", fontsize=6, labelpad=1)
            ax.tick_params(labelsize=5)
            if r == 0:
                ax.set_title("line profile", fontsize=8)
                ax.legend(fontsize=5, frameon=True, framealpha=0.8, edgecolor="none")
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


# ---------------------------------------------------------------------------------------------
# box plots with statistics
# ---------------------------------------------------------------------------------------------
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
    width = max(2.2, 0.55 * n_methods + 1.0)
    fig = new_figure(width * n, 3.2)
    stats_out = {}
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, n, i + 1, label="boxplot")
        methods = table.methods_with(metric)
        data = [[v for v in table.values(metric, m) if v is not None and math.isfinite(v)] for m in methods]
        colours = [LINE_COLOURS[k % len(LINE_COLOURS)] for k in range(len(methods))]
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
        ax.set_ylabel(METRIC_LABELS.get(metric, metric) + arrow, fontsize=7)
        ax.tick_params(axis="x", labelrotation=30, labelsize=6)
        ax.tick_params(axis="y", labelsize=6)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        if result.kruskal is not None:
            ax.set_title(f"Kruskal-Wallis {format_p(result.kruskal.pvalue)}", fontsize=7)
            _draw_brackets(ax, methods, data, result.significant_pairs, significance_stars)
        else:
            ax.set_title(f"no test: {result.skipped_reason}", fontsize=6)
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.3, top=0.88, wspace=0.45)
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


# ---------------------------------------------------------------------------------------------
# consistency and error maps
# ---------------------------------------------------------------------------------------------
def consistency_figure(evaluations: Sequence[Any], *, channel: int = 0, max_rows: int = 6,
                       zlim: float = 5.0, panel_in: float = 1.9) -> CaptionedFigure:
    """Per field: the LQ input, then each restoration's normalised residual map with flagged regions.

    Parameters
    ----------
    evaluations : sequence of evaluations
        Comparison results holding data-consistency maps (``ev.consistency``).
    channel : int
        Channel shown.
    max_rows : int
        Fields of view drawn at most (the first ones).
    zlim : float
        Colour range of the normalised residual z, ``-zlim`` to ``+zlim`` (dimensionless).
    panel_in : float
        Panel side in inches.

    Returns
    -------
    CaptionedFigure
        Named ``"consistency"``.

    Raises
    ------
    ValueError
        When no data-consistency map was computed for ``channel``.
    """
    from matplotlib.colors import Normalize

    shown = [ev for ev in evaluations if any(k[1] == channel for k in ev.consistency)][:max_rows]
    if not shown:
        raise ValueError("no data-consistency maps were computed")
    names = [c.name for c in shown[0].cset.columns if (c.name, channel) in shown[0].consistency]
    width = panel_in * (len(names) + 1) + 1.3
    height = panel_in * 1.12 * len(shown) + 0.4
    fig = new_figure(width, height)
    grid = fig.add_gridspec(len(shown), len(names) + 1, left=0.3 / width, right=1 - 1.0 / width,
                            top=1 - 0.3 / height, bottom=0.2 / height, wspace=0.04, hspace=0.22)
    norm = Normalize(-zlim, zlim)
    panels = 0
    image = None
    for r, ev in enumerate(shown):
        cset = ev.cset
        z = cset.focus_plane(c=channel)
        lq = cset.native_lq(c=channel)
        lq = lq if z is None else lq[z]
        ax = fig.add_subplot(grid[r, 0], label="panel")
        ax.imshow(lq, cmap="gray", vmin=display_limits(lq)[0], vmax=display_limits(lq)[1], interpolation="none")
        _tidy(ax, "LQ (input)" if r == 0 else None)
        ax.text(-0.04, 0.5, cset.field, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=7)
        _add_scale_bar(ax, lq.shape[1], cset.lq_pixel_size_um)
        panels += 1
        for k, name in enumerate(names):
            result = ev.consistency.get((name, channel))
            ax = fig.add_subplot(grid[r, k + 1], label="panel")
            panels += 1
            if result is None:
                _tidy(ax, name if r == 0 else None)
                continue
            zmap = result.zmap if z is None else result.zmap[z]
            flagged = result.flagged if z is None else result.flagged[z]
            image = ax.imshow(zmap, cmap="PuOr_r", norm=norm, interpolation="none")
            if flagged.any():
                ax.contour(flagged.astype(float), levels=[0.5], colors=[OKABE_ITO[3]], linewidths=0.7)
            _tidy(ax, name if r == 0 else None)
            ax.set_xlabel(f"flagged {100 * result.scores['flagged_fraction']:.2f} % · RSP {result.scores['rsp']:.3f}",
                          fontsize=6, labelpad=2)
    if image is not None:
        cax = fig.add_axes((1 - 0.85 / width, 0.15, 0.12 / width, 0.7))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label("normalised residual z (input − re-imaged restoration)", fontsize=6)
        bar.ax.tick_params(labelsize=6)
    caption = ("Data consistency: each restoration re-imaged through the LQ system (PSF, gain/offset fitted) and "
               "subtracted from the LQ input, divided by the expected spread at that input brightness. "
               f"Colour: z from −{zlim:g} (purple: the restoration is brighter than the input supports, i.e. "
               f"possibly invented) to +{zlim:g} (orange-brown: input signal the restoration lacks). Green outlines: "
               "regions flagged by the matched-filter detector (threshold in the report). The ground truth "
               "column shows what a real high-quality image scores.")
    return CaptionedFigure(fig, caption, "consistency", panels)


def error_map_figure(evaluations: Sequence[Any], *, channel: int = 0, max_rows: int = 6,
                     percentile: float = 99.5, panel_in: float = 1.9) -> CaptionedFigure:
    """|method − GT| after the normalisation policy, ONE colour scale for every panel of the figure.

    Parameters
    ----------
    evaluations : sequence of evaluations
        Comparison results holding error maps (``ev.error_maps``, only with a ground truth).
    channel : int
        Channel shown.
    max_rows : int
        Fields of view drawn at most (the first ones).
    percentile : float
        Percentile of all maps' values used as the top of the shared colour scale.
    panel_in : float
        Panel side in inches.

    Returns
    -------
    CaptionedFigure
        Named ``"error_maps"``; ``info["vmax"]`` is the top of the scale in normalised units.

    Raises
    ------
    ValueError
        When there is no error map (no ground truth).
    """
    shown = [ev for ev in evaluations if any(k[1] == channel for k in ev.error_maps)][:max_rows]
    if not shown:
        raise ValueError("no error maps: the comparison has no ground truth")
    names = [c.name for c in shown[0].cset.columns if (c.name, channel) in shown[0].error_maps]
    planes = {}
    for ev in shown:
        z = ev.cset.focus_plane(c=channel)
        for name in names:
            emap = ev.error_maps.get((name, channel))
            if emap is not None:
                planes[(ev.cset.field, name)] = emap if z is None else emap[z]
    vmax = float(np.percentile(np.concatenate([p.ravel() for p in planes.values()]), percentile)) or 1.0
    width = panel_in * len(names) + 1.3
    height = panel_in * 1.08 * len(shown) + 0.4
    fig = new_figure(width, height)
    grid = fig.add_gridspec(len(shown), len(names), left=0.3 / width, right=1 - 1.0 / width, top=1 - 0.3 / height,
                            bottom=0.05 / height, wspace=0.04, hspace=0.15)
    image = None
    panels = 0
    for r, ev in enumerate(shown):
        for k, name in enumerate(names):
            ax = fig.add_subplot(grid[r, k], label="panel")
            panels += 1
            plane = planes.get((ev.cset.field, name))
            if plane is not None:
                image = ax.imshow(plane, cmap="magma", vmin=0, vmax=vmax, interpolation="none")
                _add_scale_bar(ax, plane.shape[1], ev.cset.pixel_size_um)
            _tidy(ax, name if r == 0 else None)
            if k == 0:
                ax.text(-0.04, 0.5, ev.cset.field, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=7)
    if image is not None:
        cax = fig.add_axes((1 - 0.85 / width, 0.15, 0.12 / width, 0.7))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label("|method − GT| (normalised units)", fontsize=6)
        bar.ax.tick_params(labelsize=6)
    caption = ("Absolute error |method − GT| after the metric normalisation policy (GT percentile-normalised, each "
               f"image least-squares matched to it). One colour scale for all panels: 0 to the {percentile:g}th "
               f"percentile of all maps ({vmax:.3f}); LUT magma.")
    return CaptionedFigure(fig, caption, "error_maps", panels, {"vmax": vmax})


def _tidy(ax: Any, title: str | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


# ---------------------------------------------------------------------------------------------
# stacks: orthogonal view
# ---------------------------------------------------------------------------------------------
def orthogonal_view_figure(volumes: dict[str, np.ndarray], *, reference: str, y: int | None = None,
                           pixel_size_um: float | None = None, z_step_um: float | None = None,
                           percentiles: tuple[float, float] = DISPLAY_PERCENTILES, cmap: str = "gray",
                           panel_in: float = 1.9) -> CaptionedFigure:
    """XZ sections of (Z, Y, X) stacks through the same row ``y``, shared contrast, true aspect ratio.

    Every volume is gain/offset-matched to ``reference`` (the metric normalisation policy) and shown with
    the reference's percentile range; the Z axis is stretched by ``z_step / pixel_size`` so distances are
    isotropic. Default row: through the reference's brightest structure (max projection).

    Parameters
    ----------
    volumes : dict of str to ndarray
        Method name -> (Z, Y, X) stack, all the same shape.
    reference : str
        The key of the reference stack.
    y : int, optional
        Row of the section in px.
    pixel_size_um, z_step_um : float, optional
        Lateral pixel size and Z step in um (aspect ratio and scale bar; 1:1 when either is unknown).
    percentiles : (float, float)
        Display percentiles of the reference's section.
    cmap : str
        One of :data:`IMAGE_CMAPS`.
    panel_in : float
        Panel width in inches.

    Returns
    -------
    CaptionedFigure
        Named ``"orthogonal_xz"``; ``info["y"]`` is the row used.

    Raises
    ------
    ValueError
        For another colour map or a reference that is not (Z, Y, X).
    """
    if cmap not in IMAGE_CMAPS:
        raise ValueError(f"cmap {cmap!r} is not one of the colour-blind-safe LUTs {IMAGE_CMAPS}")
    ref = volumes[reference]
    if ref.ndim != 3:
        raise ValueError("orthogonal views need (Z, Y, X) stacks")
    if y is None:
        y = brightest_point(ref.max(axis=0))[0]
    sections = {name: vol[:, y, :] for name, vol in volumes.items()}
    matched = matched_planes(sections, reference)
    lo, hi = display_limits(matched[reference], percentiles)
    aspect = (z_step_um / pixel_size_um) if (z_step_um and pixel_size_um) else 1.0
    nz, nx = ref.shape[0], ref.shape[2]
    height = panel_in * nz * aspect / nx + 0.5
    fig = new_figure(panel_in * len(volumes) + 0.3, height)
    grid = fig.add_gridspec(1, len(volumes), left=0.02, right=0.98, top=1 - 0.3 / height, bottom=0.12 / height,
                            wspace=0.05)
    for k, name in enumerate(volumes):
        ax = fig.add_subplot(grid[0, k], label="panel")
        ax.imshow(matched[name], cmap=cmap, vmin=lo, vmax=hi, aspect=aspect, interpolation="none")
        _tidy(ax, name)
        _add_scale_bar(ax, nx, pixel_size_um)
    caption = (f"XZ sections through row y={y} (the reference's brightest structure); Z stretched by the z step / pixel "
               f"size ratio ({aspect:.2f}) so distances are isotropic. Contrast: each stack gain/offset-matched to "
               f"{reference} with the metric normalisation policy, one display range ({percentiles[0]}-{percentiles[1]} "
               f"percentiles of {reference}'s section). LUT: {cmap}.")
    return CaptionedFigure(fig, caption, "orthogonal_xz", len(volumes), {"y": int(y)})
