"""Figures of maps: data-consistency residuals, error maps against the ground truth (one shared scale)
and orthogonal XZ sections of stacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decongan.engine.evaluate.figures.canvas import (
    DISPLAY_PERCENTILES,
    IMAGE_CMAPS,
    OKABE_ITO,
    CaptionedFigure,
    _add_scale_bar,
    _tidy,
    display_limits,
    new_figure,
)
from decongan.engine.evaluate.figures.regions import brightest_point, matched_planes

#: How maps are drawn, in the exported figures and on screen (app.gui.viewer): one truth for both.
#: Data-consistency z-map: diverging LUT over -CONSISTENCY_ZLIM..+CONSISTENCY_ZLIM, flagged regions outlined.
CONSISTENCY_CMAP = "PuOr_r"
CONSISTENCY_ZLIM = 5.0
CONSISTENCY_LABEL = "normalised residual z (input − re-imaged restoration)"
FLAGGED_COLOUR = OKABE_ITO[3]
#: Error maps |method − GT|: sequential LUT from 0 to this percentile of all maps shown together.
ERROR_CMAP = "magma"
ERROR_PERCENTILE = 99.5
ERROR_LABEL = "|method − GT| (normalised units)"


def consistency_figure(evaluations: Sequence[Any], *, channel: int = 0, max_rows: int = 6,
                       zlim: float = CONSISTENCY_ZLIM, panel_in: float = 1.9) -> CaptionedFigure:
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
            image = ax.imshow(zmap, cmap=CONSISTENCY_CMAP, norm=norm, interpolation="none")
            if flagged.any():
                ax.contour(flagged.astype(float), levels=[0.5], colors=[FLAGGED_COLOUR], linewidths=0.7)
            _tidy(ax, name if r == 0 else None)
            ax.set_xlabel(f"flagged {100 * result.scores['flagged_fraction']:.2f} % · RSP {result.scores['rsp']:.3f}",
                          fontsize=6, labelpad=2)
    if image is not None:
        cax = fig.add_axes((1 - 0.85 / width, 0.15, 0.12 / width, 0.7))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label(CONSISTENCY_LABEL, fontsize=6)
        bar.ax.tick_params(labelsize=6)
    caption = ("Data consistency: each restoration re-imaged through the LQ system (PSF, gain/offset fitted) and "
               "subtracted from the LQ input, divided by the expected spread at that input brightness. "
               f"Colour: z from −{zlim:g} (purple: the restoration is brighter than the input supports, i.e. "
               f"possibly invented) to +{zlim:g} (orange-brown: input signal the restoration lacks). Green outlines: "
               "regions flagged by the matched-filter detector (threshold in the report). The ground truth "
               "column shows what a real high-quality image scores.")
    return CaptionedFigure(fig, caption, "consistency", panels)


def error_map_figure(evaluations: Sequence[Any], *, channel: int = 0, max_rows: int = 6,
                     percentile: float = ERROR_PERCENTILE, panel_in: float = 1.9) -> CaptionedFigure:
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
                image = ax.imshow(plane, cmap=ERROR_CMAP, vmin=0, vmax=vmax, interpolation="none")
                _add_scale_bar(ax, plane.shape[1], ev.cset.pixel_size_um)
            _tidy(ax, name if r == 0 else None)
            if k == 0:
                ax.text(-0.04, 0.5, ev.cset.field, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=7)
    if image is not None:
        cax = fig.add_axes((1 - 0.85 / width, 0.15, 0.12 / width, 0.7))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label(ERROR_LABEL, fontsize=6)
        bar.ax.tick_params(labelsize=6)
    caption = ("Absolute error |method − GT| after the metric normalisation policy (GT percentile-normalised, each "
               f"image least-squares matched to it). One colour scale for all panels: 0 to the {percentile:g}th "
               f"percentile of all maps ({vmax:.3f}); LUT magma.")
    return CaptionedFigure(fig, caption, "error_maps", panels, {"vmax": vmax})


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
