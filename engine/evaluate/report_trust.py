"""The report's "Trust without ground truth" section: the maps a user without a ground truth can check.

:func:`trust_section_html` links the figures of the data-consistency, split-half and models/seeds
disagreement maps (:mod:`engine.evaluate.figures.trust`) and tabulates, per field and method, each
map's flagged fraction with the parameters it was made with: photon gain and offset and how they were
estimated, thinning seed, threshold and noise floor. The split-half method and its limits are quoted
from :mod:`engine.evaluate.split_half`, so the page and the engine say the same.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Figures the section links to (figure name prefixes; multi-channel figures add ``_c<k>``).
TRUST_FIGURES = ("consistency", "split_half", "ensemble_disagreement")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _split_half_table(evaluations: Sequence[Any]) -> str:
    rows = []
    for ev in evaluations:
        for (name, ch), result in ev.split_half.items():
            p = result.parameters
            cal, split = p["calibration"], p["split"]
            rows.append(f"<tr><td class='t'>{_e(ev.cset.field)}</td><td class='t'>{_e(name)}</td><td>{ch}</td>"
                        f"<td>{100 * result.flagged_fraction:.3f}</td><td>{cal['gain']:.4g}</td>"
                        f"<td>{cal['offset']:.4g}</td><td>{split['seed']}</td><td>{split['mean_counts']:.4g}</td>"
                        f"<td>{p['threshold']:g}</td><td>{float(p['noise_floor']):.4g}</td></tr>")
    if not rows:
        return ""
    hows = list(dict.fromkeys(r.parameters["calibration"]["method"] for ev in evaluations
                              for r in ev.split_half.values()))
    floors = list(dict.fromkeys(r.parameters["noise_floor_how"] for ev in evaluations for r in ev.split_half.values()))
    return ("<h3>Split-half maps</h3><table class='trust'><tr><th class='t'>image</th><th class='t'>method</th>"
            "<th>ch</th><th>flagged %</th><th>gain (units/photon)</th><th>offset (units)</th><th>seed</th>"
            "<th>photons/px</th><th>threshold</th><th>noise floor (units)</th></tr>" + "".join(rows) + "</table>"
            "<p>Gain and offset: " + "<br>".join(_e(h) for h in hows) + "</p><p>Noise floor: "
            + "<br>".join(_e(f) for f in floors) + "</p>")


def _ensemble_table(evaluations: Sequence[Any]) -> str:
    rows = []
    for ev in evaluations:
        for (group, ch), result in ev.disagreement.items():
            p = result.parameters
            members = ", ".join(f"{m} {100 * f:.3f} %" for m, f in zip(p.get("group", []), result.member_fractions,
                                                                      strict=False))
            rows.append(f"<tr><td class='t'>{_e(ev.cset.field)}</td><td class='t'>{_e(group)}</td><td>{ch}</td>"
                        f"<td>{100 * result.flagged_fraction:.3f}</td><td class='t'>{_e(members)}</td>"
                        f"<td>{p['threshold']:g}</td><td>{float(p['noise_floor']):.4g}</td></tr>")
    if not rows:
        return ""
    return ("<h3>Disagreement of models or seeds</h3><table class='trust'><tr><th class='t'>image</th>"
            "<th class='t'>group</th><th>ch</th><th>flagged %</th><th class='t'>departing, per member</th>"
            "<th>threshold</th><th>noise floor (units)</th></tr>" + "".join(rows) + "</table>")


def trust_section_html(evaluations: Sequence[Any], figure_links: Mapping[str, str]) -> str:
    """The "Trust without ground truth" section, or ``""`` when the comparison made none of its maps.

    Parameters
    ----------
    evaluations : sequence of engine.evaluate.compare.SetEvaluation
        The evaluated comparison sets (``consistency``, ``split_half``, ``disagreement`` maps).
    figure_links : mapping of str to str
        Figure name -> its PNG, relative to the report (linked from here when the figure is a trust map).

    Returns
    -------
    str
        HTML: links to the trust figures, a table per kind of map, the split-half method and its limits.
    """
    from decongan.engine.evaluate import split_half
    from decongan.engine.evaluate.report_html import docstring_section, rst_to_html

    has_split = any(ev.split_half for ev in evaluations)
    has_ensemble = any(ev.disagreement for ev in evaluations)
    has_consistency = any(ev.consistency for ev in evaluations)
    if not (has_split or has_ensemble or has_consistency):
        return ""
    linked = {n: href for n, href in figure_links.items() if re.sub(r"_c\d+$", "", n) in TRUST_FIGURES}
    parts = ["<h2 id='trust'>Trust without ground truth</h2>",
             "<p>Maps that need no ground truth: the data-consistency map (is the restoration supported by the input?), "
             "the split-half map (is it stable when the input's photons are split in two?) and, where several models or "
             "seeds exist, their disagreement. A flag marks a region to doubt; no flag is not proof of correctness."
             + (" Figures: " + ", ".join(f"<a href='{_e(href)}'>{_e(n)}</a>" for n, href in linked.items()) if linked else "")
             + "</p>"]
    if has_split:
        parts.append(_split_half_table(evaluations))
        parts.append("<h3>How the split-half map is made</h3>"
                     + rst_to_html(docstring_section(split_half, "Split-half map (", "Thresholds"))
                     + "<h3>What the split-half map cannot see</h3>"
                     + rst_to_html(docstring_section(split_half, "What it cannot see")))
    if has_ensemble:
        parts.append(_ensemble_table(evaluations))
    return "\n".join(parts)


__all__ = ["TRUST_FIGURES", "trust_section_html"]
