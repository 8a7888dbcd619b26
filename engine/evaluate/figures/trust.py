"""Figures of the trust maps that need no ground truth: split-half maps (a method's restorations of two
photon halves of its input) and the disagreement of several models or seeds.

Drawn with the data-consistency figure's conventions (:mod:`engine.evaluate.figures.maps`): the
diverging ``PuOr_r`` LUT over ``-zlim..+zlim``, flagged regions outlined in Okabe-Ito green, a colour
bar, a scale bar, the flagged fraction under each panel. The caption states how each map was made
(photon gain/offset and how they were estimated, thinning seed, threshold, noise floor) and what the
map measures: instability, not correctness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decongan.engine.evaluate.figures.canvas import (
    CaptionedFigure,
    _add_scale_bar,
    _tidy,
    display_limits,
    new_figure,
)
from decongan.engine.evaluate.figures.maps import CONSISTENCY_CMAP, CONSISTENCY_ZLIM, FLAGGED_COLOUR

SPLIT_HALF_LABEL = "split-half disagreement z (first half − second half) / spread"
ENSEMBLE_LABEL = "disagreement z (member − mean of the others) / spread"


def flagged_label(fraction: float) -> str:
    """The text under a trust-map panel, e.g. ``"flagged 0.12 %"`` (the figure and the viewer say the same).

    Parameters
    ----------
    fraction : float
        Flagged fraction of the map, 0-1.

    Returns
    -------
    str
        The percentage with two decimals.
    """
    return f"flagged {100 * fraction:.2f} %"


def _plane(array: np.ndarray, z: int | None) -> np.ndarray:
    if array.ndim == 3:
        return array[z if z is not None and z < array.shape[0] else array.shape[0] // 2]
    return array


def _maps_figure(evaluations: Sequence[Any], attribute: str, *, channel: int, max_rows: int, zlim: float,
                 panel_in: float, label: str, name: str) -> tuple[CaptionedFigure, list[tuple[str, str, Any]]]:
    """Rows of fields: LQ input, then one panel per map of ``ev.<attribute>`` for ``channel``."""
    from matplotlib.colors import Normalize

    shown = [ev for ev in evaluations if any(k[1] == channel for k in getattr(ev, attribute))][:max_rows]
    if not shown:
        raise ValueError(f"no {name.replace('_', ' ')} maps were computed")
    keys = list(dict.fromkeys(k[0] for ev in shown for k in getattr(ev, attribute) if k[1] == channel))
    width = panel_in * (len(keys) + 1) + 1.3
    height = panel_in * 1.12 * len(shown) + 0.4
    fig = new_figure(width, height)
    grid = fig.add_gridspec(len(shown), len(keys) + 1, left=0.3 / width, right=1 - 1.0 / width,
                            top=1 - 0.3 / height, bottom=0.2 / height, wspace=0.04, hspace=0.22)
    norm = Normalize(-zlim, zlim)
    drawn: list[tuple[str, str, Any]] = []
    image = None
    panels = 0
    for r, ev in enumerate(shown):
        cset = ev.cset
        z = cset.focus_plane(c=channel)
        lq = _plane(cset.native_lq(c=channel), z)
        ax = fig.add_subplot(grid[r, 0], label="panel")
        lo, hi = display_limits(lq)
        ax.imshow(lq, cmap="gray", vmin=lo, vmax=hi, interpolation="none")
        _tidy(ax, "LQ (input)" if r == 0 else None)
        ax.text(-0.04, 0.5, cset.field, transform=ax.transAxes, rotation=90, ha="right", va="center", fontsize=7)
        _add_scale_bar(ax, lq.shape[1], cset.lq_pixel_size_um)
        panels += 1
        for k, key in enumerate(keys):
            result = getattr(ev, attribute).get((key, channel))
            ax = fig.add_subplot(grid[r, k + 1], label="panel")
            panels += 1
            _tidy(ax, key if r == 0 else None)
            if result is None:
                continue
            zmap, flagged = _plane(result.zmap, z), _plane(result.flagged, z)
            image = ax.imshow(zmap, cmap=CONSISTENCY_CMAP, norm=norm, interpolation="none")
            if flagged.any():
                ax.contour(flagged.astype(float), levels=[0.5], colors=[FLAGGED_COLOUR], linewidths=0.7)
            # same field of view as the input: the map's pixel size follows from its width
            pixel = cset.lq_pixel_size_um * lq.shape[1] / zmap.shape[1] if cset.lq_pixel_size_um else None
            _add_scale_bar(ax, zmap.shape[1], pixel)
            ax.set_xlabel(flagged_label(result.flagged_fraction), fontsize=6, labelpad=2)
            drawn.append((cset.field, key, result))
    if image is not None:
        cax = fig.add_axes((1 - 0.85 / width, 0.15, 0.12 / width, 0.7))
        bar = fig.colorbar(image, cax=cax)
        bar.set_label(label, fontsize=6)
        bar.ax.tick_params(labelsize=6)
    info = {"flagged_fraction": {f"{f} / {k}": float(r.flagged_fraction) for f, k, r in drawn}}
    return CaptionedFigure(fig, "", name, panels, info), drawn


def _detection_text(drawn: Sequence[tuple[str, str, Any]]) -> str:
    params = [r.parameters for _, _, r in drawn]
    thresholds = sorted({float(p["threshold"]) for p in params})
    sigmas = sorted({float(s) for p in params for s in p.get("detection_scales_px", [])})
    areas = sorted({int(p["min_area_px"]) for p in params})
    return (f"Flagged (green outlines): matched-filtered disagreement beyond threshold "
            f"{', '.join(f'{t:g}' for t in thresholds)} (robust spread units; filter sigmas "
            f"{', '.join(f'{s:g}' for s in sigmas)} px; components of at least {', '.join(map(str, areas))} px).")


def split_half_figure(evaluations: Sequence[Any], *, channel: int = 0, max_rows: int = 6,
                      zlim: float = CONSISTENCY_ZLIM, panel_in: float = 1.9) -> CaptionedFigure:
    """Per field: the LQ input, then each method's split-half map with its flagged regions.

    Parameters
    ----------
    evaluations : sequence of evaluations
        Comparison results holding split-half maps (``ev.split_half[(method, channel)]``,
        :func:`engine.evaluate.trust_maps.attach_split_half`).
    channel : int
        Channel shown.
    max_rows : int
        Fields of view drawn at most (the first ones).
    zlim : float
        Colour range of the normalised disagreement z, ``-zlim`` to ``+zlim`` (dimensionless).
    panel_in : float
        Panel side in inches.

    Returns
    -------
    CaptionedFigure
        Named ``"split_half"``; ``info["flagged_fraction"]`` maps ``"field / method"`` to the flagged
        fraction drawn (0-1), ``info["calibration"]`` ``"field"`` to the gain/offset used.

    Raises
    ------
    ValueError
        When no split-half map was computed for ``channel``.
    """
    cf, drawn = _maps_figure(evaluations, "split_half", channel=channel, max_rows=max_rows, zlim=zlim,
                             panel_in=panel_in, label=SPLIT_HALF_LABEL, name="split_half")
    calibrations: dict[str, dict[str, Any]] = {}
    seeds: set[int] = set()
    floors = []
    for field, method, result in drawn:
        p = result.parameters
        calibrations.setdefault(field, p["calibration"])
        seeds.add(int(p["split"]["seed"]))
        floors.append(f"{field} / {method} {float(p['noise_floor']):.4g}")
    hows = list(dict.fromkeys(p.parameters["noise_floor_how"] for p in (r for _, _, r in drawn)))
    estimated = list(dict.fromkeys(c["method"] for c in calibrations.values()))
    cf.info["calibration"] = calibrations
    cf.caption = (
        "Split-half maps: each input's photons split into two independent halves by binomial thinning (p = 0.5), "
        "both halves restored by the same method, and the two restorations compared; z is their difference "
        f"divided by the spread noise explains (colour −{zlim:g} to +{zlim:g}; purple: the first half's "
        "restoration is darker). The map measures how unstable a restoration is at half the photons, not whether "
        "it is correct: a hallucination the method makes the same way from both halves, blur or a wrong PSF is "
        "not flagged. Photon calibration (intensity units per photon, offset) per field: "
        + "; ".join(f"{f}: gain {c['gain']:.4g}, offset {c['offset']:.4g}" for f, c in calibrations.items())
        + ". How they were estimated: " + " | ".join(estimated) + f". Thinning seed {', '.join(map(str, sorted(seeds)))}"
        + (" (+ channel index)" if channel else "") + ". " + _detection_text(drawn)
        + " Noise floor (intensity units, per pixel): " + "; ".join(floors) + " — " + " | ".join(hows) + ".")
    return cf


def ensemble_figure(evaluations: Sequence[Any], *, channel: int = 0, max_rows: int = 6,
                    zlim: float = CONSISTENCY_ZLIM, panel_in: float = 1.9) -> CaptionedFigure:
    """Per field: the LQ input, then the disagreement map of each group of models or seeds.

    Parameters
    ----------
    evaluations : sequence of evaluations
        Comparison results holding disagreement maps (``ev.disagreement[("a, b", channel)]``,
        :func:`engine.evaluate.trust_maps.attach_ensemble_disagreement`).
    channel : int
        Channel shown.
    max_rows : int
        Fields of view drawn at most (the first ones).
    zlim : float
        Colour range of the normalised disagreement z, ``-zlim`` to ``+zlim`` (dimensionless).
    panel_in : float
        Panel side in inches.

    Returns
    -------
    CaptionedFigure
        Named ``"ensemble_disagreement"``; ``info["flagged_fraction"]`` maps ``"field / group"`` to the
        flagged fraction drawn (0-1).

    Raises
    ------
    ValueError
        When no disagreement map was computed for ``channel``.
    """
    cf, drawn = _maps_figure(evaluations, "disagreement", channel=channel, max_rows=max_rows, zlim=zlim,
                             panel_in=panel_in, label=ENSEMBLE_LABEL, name="ensemble_disagreement")
    floors = "; ".join(f"{f} / {g} {float(r.parameters['noise_floor']):.4g}" for f, g, r in drawn)
    hows = " | ".join(dict.fromkeys(r.parameters["noise_floor_how"] for _, _, r in drawn))
    cf.caption = (
        "Disagreement of several models or seeds of one method (columns named above each panel): z is the member "
        "deviation of largest magnitude from the mean of the others, divided by the spread expected at the input's "
        f"local intensity (colour −{zlim:g} to +{zlim:g}). Agreement is not correctness: members trained alike can "
        "invent the same structure. " + _detection_text(drawn) + " Noise floor (intensity units, per pixel): "
        + floors + " — " + hows + ". Each member's share of the departing pixels is column ens_flagged_fraction.")
    return cf


__all__ = ["ENSEMBLE_LABEL", "SPLIT_HALF_LABEL", "ensemble_figure", "flagged_label", "split_half_figure"]
