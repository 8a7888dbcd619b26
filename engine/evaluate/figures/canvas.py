"""The figure canvas and what every figure shares: colour palettes, LUTs, display limits, scale bars,
channel merges, the captioned-figure record and atomic PNG/SVG/PDF files (no pyplot)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from decongan.engine.outputs import atomic_path

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

    Text with characters that no installed font can draw (e.g. CJK file names on a machine without
    a CJK font) is drawn as code points; the mapping goes to ``fig.info["relabelled"]``
    (engine.evaluate.figures.labels).

    Parameters
    ----------
    fig : CaptionedFigure or matplotlib Figure
    path_stem : path without suffix
    formats : sequence of {"png", "svg", "pdf"}
    dpi : int
        Raster resolution (PNG; also embedded images of the PDF/SVG). At least 300 for print.
    """
    from decongan.engine.evaluate.figures.labels import make_drawable

    figure = fig.figure if isinstance(fig, CaptionedFigure) else fig
    relabelled = make_drawable(figure)  # characters no installed font has are written as code points
    if relabelled and isinstance(fig, CaptionedFigure):
        fig.info.setdefault("relabelled", {}).update(relabelled)
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



def _tidy(ax: Any, title: str | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
