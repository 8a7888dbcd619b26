"""The HTML page of a comparison report: verdict first, then figures, tables and how the numbers were made.

:func:`render_html` turns what :func:`engine.evaluate.report.write_comparison_outputs` computed into
one UTF-8 page with no external references. Figures appear as small embedded JPEG previews
(:data:`PREVIEW_WIDTH_PX` wide) that link to the full-resolution files in ``figures/`` beside the
page, so a report of 14 fields stays well under 2 MB. Every metric in the summary table carries its
unit and a one-line definition directly below the table. Docstring text quoted from the engine
(normalisation policy, data-consistency method, verdict statistics) is converted from its
reStructuredText markup to HTML rather than shown with raw asterisks and backticks.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PREVIEW_WIDTH_PX = 1100
PREVIEW_JPEG_QUALITY = 80

#: One-line definitions shown under the summary table (unit first).
METRIC_DEFINITIONS = {
    "mse": "mean squared error against the ground truth after the normalisation policy (normalised units²; lower is better).",
    "nrmse": "root of the squared error divided by the ground truth's norm (dimensionless; lower is better).",
    "psnr": "peak signal-to-noise ratio against the ground truth, data range 1 (dB; higher is better).",
    "ssim": "structural similarity to the ground truth, Wang et al. 2004 (0-1; 1 = identical).",
    "seg_dice": "overlap of the Otsu + watershed foreground with the ground truth's (0-1; 1 = same pixels).",
    "seg_jaccard": "intersection over union of the two foregrounds (0-1).",
    "seg_f1": "object-level F1: objects matched one to one at IoU >= 0.5 (0-1; 1 = every object found, none invented).",
    "bgstd": "background standard deviation on the image's own 0.1-99.9 percentile scale (dimensionless; lower = cleaner).",
    "cuf": "cut-off frequency: radius holding 95 % of the spectral energy (cycles/px; 0.5 = Nyquist). Rises with "
           "detail and with noise alike.",
    "snr": "signal-to-noise ratio |signal - background| / background std (dimensionless; higher is better).",
    "decorrelation_px": "decorrelation resolution estimate, Descloux 2019 (px; smaller = finer; rewards any high "
                        "frequencies, invented ones included).",
    "decorrelation_nm": "decorrelation resolution estimate, Descloux 2019 (nm; smaller = finer; rewards any high "
                        "frequencies, invented ones included).",
    "dc_flagged_fraction": "data consistency: fraction of the image where the restoration, re-imaged through the LQ "
                           "system, disagrees with the input beyond noise (0-1; lower is better).",
    "dc_unsupported_fraction": "data consistency: the part of the flagged area where the restoration is brighter "
                               "than the input supports, i.e. possibly invented structure (0-1).",
    "dc_rsp": "data consistency: RSP, resolution-scaled Pearson correlation of the re-imaged restoration with the "
              "input (SQUIRREL; -1 to 1, 1 = perfect).",
    "dc_chi_rms": "data consistency: RMS of the residual divided by the input's noise floor (dimensionless; about "
                  "1 = explains the input down to the noise, above 1 = misses or invents signal).",
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}th,td{border:1px solid #bbb;padding:.25em .5em;
text-align:right}th{background:#f0f0f0}td.t,th.t{text-align:left}figure{margin:1em 0}figure img{max-width:100%;
border:1px solid #ddd}figcaption{font-size:.85em;color:#333}pre{background:#f7f7f7;padding:.7em;overflow-x:auto;
font-size:.8em;white-space:pre-wrap}.note{background:#fff8e1;border-left:4px solid #E69F00;padding:.5em .8em}
.verdict{background:#eef6ee;border-left:4px solid #009E73;padding:.5em 1em}dl.defs{font-size:.85em}
dl.defs dt{font-weight:bold;float:left;clear:left;margin-right:.5em}dl.defs dd{margin:0 0 .2em 0}
code{font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt_value(value: Any, metric: str = "") -> str:
    """A table cell's text: 4 decimals, 2 for PSNR/SNR, scientific below 1e-3, "–" for None.

    Parameters
    ----------
    value : float, int, str or None
        The value.
    metric : str
        The metric key (changes the number of decimals).

    Returns
    -------
    str
        HTML-escaped text.
    """
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return _e(value)
        if metric == "mse" or (value != 0 and abs(value) < 1e-3):
            return f"{value:.3e}"
        if metric in ("psnr", "snr"):
            return f"{value:.2f}"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return _e(value)


_ROLE = re.compile(r":(?:func|mod|class|data|meth|attr):`~?([^`]+)`")
_INLINE = re.compile(r"\*\*(.+?)\*\*|\*(\S(?:.*?\S)?)\*|`([^`]+)`")


def rst_to_html(text: str) -> str:
    """Docstring text (reStructuredText subset) as HTML: paragraphs, numbered/bulleted lists, code, bold.

    Parameters
    ----------
    text : str
        Lines of a docstring section: ``1.``/``-`` start list items, indented lines continue them,
        ````code````, ``*italic*``, ``**bold**`` and ``:func:`name``` roles inline.

    Returns
    -------
    str
        HTML with every piece of text escaped and no raw markup characters left.
    """
    blocks: list[tuple[str, list[str]]] = []  # (kind, lines): kind "p", "ol", "ul"
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            blocks.append(("p", []))
            continue
        numbered, bullet = re.match(r"^\d+\.\s", stripped), stripped.startswith("- ")
        if (numbered or bullet) and not line.startswith(" "):
            kind = "ol" if numbered else "ul"
            item = re.sub(r"^(\d+\.|-)\s+", "", stripped)
            if blocks and blocks[-1][0] == kind:
                blocks[-1][1].append(item)
            else:
                blocks.append((kind, [item]))
        elif line.startswith(" ") and blocks and blocks[-1][0] in ("ol", "ul"):
            blocks[-1][1][-1] += " " + stripped
        elif blocks and blocks[-1][0] == "p" and blocks[-1][1]:
            blocks[-1][1][-1] += " " + stripped
        else:
            blocks.append(("p", [stripped]))
    out = []
    for kind, lines in blocks:
        if not lines:
            continue
        if kind == "p":
            out.append(f"<p>{_inline(lines[0])}</p>")
        else:
            out.append(f"<{kind}>" + "".join(f"<li>{_inline(item)}</li>" for item in lines) + f"</{kind}>")
    return "\n".join(out)


def _inline(text: str) -> str:
    pieces = re.split(r"``(.+?)``", text)
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:
            out.append(f"<code>{_e(piece)}</code>")
            continue
        piece = _ROLE.sub(lambda m: f"`{m.group(1)}`", piece)
        pos = 0
        for m in _INLINE.finditer(piece):
            out.append(_e(piece[pos:m.start()]))
            bold, italic, code = m.groups()
            out.append(f"<b>{_e(bold)}</b>" if bold is not None else f"<i>{_e(italic)}</i>" if italic is not None
                       else f"<code>{_e(code)}</code>")
            pos = m.end()
        out.append(_e(piece[pos:]))
    return "".join(out)


def docstring_section(module: Any, start: str, end: str | None = None) -> str:
    """The text of a docstring between the heading ``start`` and the heading ``end`` (underlines dropped).

    Parameters
    ----------
    module : module
        The module whose docstring is quoted.
    start : str
        Heading (dropped with its underline) or first words (kept) where the section starts.
    end : str, optional
        Heading where it ends (default: the end of the docstring).

    Returns
    -------
    str
        The section's lines, without the heading and its underline.
    """
    doc = module.__doc__ or ""
    i = doc.find(start)
    j = doc.find(end, i + 1) if end and i >= 0 else -1
    text = doc[i:j if j > 0 else None] if i >= 0 else doc
    lines = text.splitlines()
    if len(lines) > 1 and lines[1].strip() and set(lines[1].strip()) <= {"-", "="}:
        lines = lines[2:]  # a heading and its underline
    return "\n".join(lines).strip()


def preview_uri(png: Path, *, width_px: int = PREVIEW_WIDTH_PX) -> str:
    """A small JPEG preview of a figure PNG as a ``data:`` URI (white background, at most ``width_px`` wide).

    Parameters
    ----------
    png : Path
        The full-resolution PNG file.
    width_px : int
        Largest preview width in pixels (the height keeps the aspect ratio).

    Returns
    -------
    str
        ``data:image/jpeg;base64,...``.
    """
    from PIL import Image

    with Image.open(png) as img:
        rgba = img.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.split()[-1])
    if flat.width > width_px:
        flat = flat.resize((width_px, max(1, round(flat.height * width_px / flat.width))), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    flat.save(buffer, format="JPEG", quality=PREVIEW_JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def report_title(title: str, methods: Sequence[str], families: dict[str, str], n_fields: int) -> str:
    """The page title: the caller's title, then every method compared (learned models marked) and the field count.

    Parameters
    ----------
    title : str
        The caller's title (e.g. "DeconGAN comparison").
    methods : sequence of str
        Method names in table order (input first, ground truth last).
    families : dict of str to str
        Method -> family (engine.evaluate.verdict.method_family).
    n_fields : int
        Fields of view compared.

    Returns
    -------
    str
        e.g. ``"DeconGAN comparison: LQ (input) | RL 20 it | S1 (learned) | GT, 14 fields"``.
    """
    names = [f"{m} (learned)" if families.get(m) == "learned" and "gan" not in m.lower() else m for m in methods]
    return f"{title}: {' | '.join(names)}, {n_fields} field{'s' if n_fields != 1 else ''}"


def verdict_html(verdict: Any) -> str:
    """The verdict section: best classical baseline, the primary metric's sentences, and every comparison.

    Parameters
    ----------
    verdict : engine.evaluate.verdict.Verdict
        From :func:`engine.evaluate.verdict.paired_verdict`.

    Returns
    -------
    str
        HTML (a highlighted block and a table of all paired comparisons).
    """
    from decongan.engine.evaluate.verdict import METRIC_NAMES, MIN_FIELDS

    parts = ["<h2 id='verdict'>Verdict</h2><div class='verdict'>"]
    if verdict.best_classical is not None and verdict.primary_metric is not None:
        name = METRIC_NAMES.get(verdict.primary_metric, verdict.primary_metric)
        parts.append(f"<p>Best classical baseline: <b>{_e(verdict.best_classical)}</b> (best median {_e(name)}, "
                     f"{verdict.best_median:.3g}).</p>")
    primary = [c for c in verdict.comparisons if c.metric == verdict.primary_metric]
    if primary:
        parts.append("<ul>" + "".join(f"<li>{_e(c.sentence)}</li>" for c in primary) + "</ul>")
    parts.extend(f"<p>{_e(n)}</p>" for n in verdict.notes)
    parts.append("</div>")
    if verdict.comparisons:
        others = [c for c in verdict.comparisons if c.metric != verdict.primary_metric]
        if others:
            parts.append("<p>Other metrics:</p><ul>" + "".join(f"<li>{_e(c.sentence)}</li>" for c in others) + "</ul>")
        parts.append("<details><summary>All paired comparisons (numbers)</summary><table><tr><th class='t'>metric</th>"
                     "<th class='t'>method</th><th class='t'>vs</th><th>n</th><th>median difference</th>"
                     "<th>95 % CI</th><th>p (raw)</th><th>p (Holm)</th><th>rank-biserial r</th><th class='t'>test</th>"
                     "</tr>")
        for c in verdict.comparisons:
            ci = "–" if not math.isfinite(c.ci_low) else f"{c.ci_low:.4g} to {c.ci_high:.4g}"
            parts.append(f"<tr><td class='t'>{_e(METRIC_NAMES.get(c.metric, c.metric))}</td><td class='t'>{_e(c.method)}"
                         f"</td><td class='t'>{_e(c.reference)}</td><td>{c.n}</td><td>{c.median_difference:.4g}</td>"
                         f"<td>{ci}</td><td>{'–' if c.pvalue_raw is None else f'{c.pvalue_raw:.3g}'}</td>"
                         f"<td>{'–' if c.pvalue is None else f'{c.pvalue:.3g}'}</td><td>{c.rank_biserial:.2f}</td>"
                         f"<td class='t'>{_e(c.test)}</td></tr>")
        parts.append("</table></details>")
    parts.append(f"<p><small>Paired by field: Wilcoxon signed-rank test per comparison (no test below {MIN_FIELDS} "
                 "fields), Holm's correction within each metric, median paired difference with a seeded bootstrap "
                 "95 % interval, matched-pairs rank-biserial effect size; details under “How the numbers were "
                 "made”.</small></p>")
    return "\n".join(parts)


def render_html(evaluations: Sequence[Any], table: Any, summary: dict[str, dict[str, Any]], stats: dict[str, Any],
                figures: Sequence[Any], figure_paths: dict[str, list[Path]], context: Any, *,
                outputs: dict[str, Path], restored: Sequence[Path], out_dir: Path, verdict: Any = None,
                relabelled: dict[str, str] | None = None) -> str:
    """The report page (module docstring): verdict, figures, summary, statistics, per-image table, methods.

    Parameters
    ----------
    evaluations : sequence of evaluations
        The evaluated comparison sets (:func:`engine.evaluate.compare.evaluate_set`).
    table : engine.evaluate.compare.MetricTable
        Their metric rows.
    summary : dict
        Method -> metric -> summary (n, median, IQR), from ``table.summary()``.
    stats : dict
        Metric -> statistics (Kruskal-Wallis, Friedman, Dunn pairs), from ``table.statistics``.
    figures : sequence of CaptionedFigure
        The figures made, in page order.
    figure_paths : dict of str to list of Path
        Figure name -> the files written; the PNG is previewed (embedded JPEG) and linked.
    context : engine.evaluate.report.ReportContext
        Title, command, notes, assumptions and versions stated in the report.
    outputs : dict of str to Path
        Table files listed in the page (label -> path).
    restored : sequence of Path
        Restored TIFFs written (counted in the page).
    out_dir : Path
        The output folder; links and listed paths are relative to it.
    verdict : engine.evaluate.verdict.Verdict, optional
        The paired verdict shown first (computed here from ``table`` when None).
    relabelled : dict of str to str, optional
        Names drawn differently in figures (real name -> label drawn) because no installed font has
        their characters; listed so every figure label can be read back to its file.

    Returns
    -------
    str
        The HTML document (UTF-8 text; figures link to files in ``out_dir``).
    """
    from decongan.engine.evaluate import consistency
    from decongan.engine.evaluate import verdict as verdict_module
    from decongan.engine.evaluate.compare import GT_NAME, HIGHER_IS_BETTER, LQ_NAME, METRIC_LABELS
    from decongan.engine.evaluate.report import NO_REFERENCE_CAVEAT, STATISTICS_CAVEAT, _context_dict
    from decongan.engine.evaluate.report_trust import trust_section_html
    from decongan.engine.evaluate.stats import format_p
    from decongan.engine.metrics import reference, segmentation

    families = verdict_module.families_of(evaluations)
    if verdict is None:
        verdict = verdict_module.paired_verdict(table.rows, families)
    ctx = _context_dict(context)
    title = report_title(context.title, table.methods, families, len(table.images))
    parts: list[str] = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
                        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
                        f"<h1>{_e(title)}</h1>",
                        f"<p>Created {_e(ctx['created'])} by DeconGAN {_e(ctx['versions'].get('decongan', ''))}. "
                        f"{len(evaluations)} field(s) of view: {_e(', '.join(table.images))}.</p>"]
    if context.command:
        parts.append(f"<p>Command: <code>{_e(context.command)}</code></p>")
    if context.notes:
        parts.append("<div class='note'>" + "<br>".join(_e(n) for n in context.notes) + "</div>")
    parts.append(verdict_html(verdict))

    # figures: small previews, linked to the full-resolution files
    parts.append("<h2>Figures</h2><p>Each preview links to its full-resolution PNG; SVG/PDF files are listed under "
                 "it.</p>")
    for cf in figures:
        files = figure_paths.get(cf.name, [])
        png = next((p for p in files if p.suffix == ".png"), None)
        if png is None:
            continue
        href = png.relative_to(out_dir).as_posix()
        links = ", ".join(f"<a href='{_e(p.relative_to(out_dir).as_posix())}'>{_e(p.name)}</a>" for p in files)
        parts.append(f"<figure id='fig-{_e(cf.name)}'><a href='{_e(href)}'><img alt='{_e(cf.name)}' "
                     f"src='{preview_uri(png)}'></a><figcaption><b>{_e(cf.name)}.</b> {_e(cf.caption)} <br>"
                     f"<small>Files: {links}</small></figcaption></figure>")
    if relabelled:
        parts.append("<p class='note'>The fonts on this machine cannot draw some characters of these names, so the "
                     "figures show them as code points: " + "; ".join(
                         f"{_e(label)} = {_e(name)}" for name, label in relabelled.items()) + ".</p>")

    parts.append(trust_section_html(evaluations, {
        name: png.relative_to(out_dir).as_posix() for name, files in figure_paths.items()
        for png in files if png.suffix == ".png"}))

    # summary table with units and definitions right below it
    metrics = table.metrics
    parts.append("<h2>Summary: median [IQR] per method</h2>")
    parts.append("<table><tr><th class='t'>method</th><th>n</th>" + "".join(
        f"<th title='{_e(METRIC_DEFINITIONS.get(m, ''))}'>{_e(METRIC_LABELS.get(m, m))}"
        f"{' ↑' if HIGHER_IS_BETTER.get(m) else ' ↓' if HIGHER_IS_BETTER.get(m) is False else ''}</th>"
        for m in metrics) + "</tr>")
    for method in table.methods:
        per = summary.get(method, {})
        n = max((s.n for s in per.values()), default=0)
        cells = []
        for m in metrics:
            s = per.get(m)
            cells.append("<td>–</td>" if s is None or s.n == 0 else
                         f"<td>{fmt_value(s.median, m)} [{fmt_value(s.iqr, m)}]</td>")
        parts.append(f"<tr><td class='t'>{_e(method)}</td><td>{n}</td>{''.join(cells)}</tr>")
    parts.append("</table><dl class='defs'>" + "".join(
        f"<dt>{_e(METRIC_LABELS.get(m, m))}</dt><dd>{_e(METRIC_DEFINITIONS[m])}</dd>" for m in metrics
        if m in METRIC_DEFINITIONS) + "<dt>↑ / ↓</dt><dd>higher / lower is better.</dd></dl>")
    parts.append(f"<p>{_e(LQ_NAME)} is the input scored like a method; {_e(GT_NAME)} is the reference (its "
                 "reference metrics are not defined; its no-reference and consistency values show what a real "
                 "high-quality image scores).</p>")

    # unpaired statistics across all methods
    parts.append("<h2>Across all methods (unpaired tests)</h2><table><tr><th class='t'>metric</th>"
                 "<th>Kruskal-Wallis H</th><th>p</th><th>Friedman p (paired)</th>"
                 "<th class='t'>Dunn pairs significant after correction</th><th class='t'>note</th></tr>")
    for metric, result in stats.items():
        kw = result.kruskal
        pairs = "; ".join(f"{p.group_a} vs {p.group_b} ({format_p(p.pvalue)})" for p in result.significant_pairs)
        parts.append(f"<tr><td class='t'>{_e(METRIC_LABELS.get(metric, metric))}</td>"
                     f"<td>{fmt_value(kw.statistic) if kw else '–'}</td><td>{_e(format_p(kw.pvalue)) if kw else '–'}</td>"
                     f"<td>{_e(format_p(result.friedman_pvalue))}</td><td class='t'>{_e(pairs or ('none' if kw else '–'))}</td>"
                     f"<td class='t'>{_e(result.skipped_reason or '')}</td></tr>")
    correction = next(iter(stats.values())).p_adjust if stats else ""
    parts.append(f"</table><p>{_e(STATISTICS_CAVEAT)} Correction: {_e(correction)}. The verdict above uses "
                 "the paired tests.</p>")

    # per-image table
    text_cols = ("image", "method", "role", "backend")
    parts.append("<h2>Per-image metrics</h2><table id='metrics'><tr>" +
                 "".join(f"<th class='t'>{_e(c)}</th>" if c in text_cols else
                         f"<th title='{_e(METRIC_DEFINITIONS.get(c, ''))}'>{_e(c)}</th>" for c in table.columns) + "</tr>")
    for row in table.rows:
        parts.append("<tr>" + "".join(
            f"<td class='t'>{_e(row.get(c, ''))}</td>" if c in text_cols
            else f"<td>{fmt_value(row.get(c), c)}</td>" for c in table.columns) + "</tr>")
    parts.append("</table>")

    # methods text
    parts.append("<h2>How the numbers were made</h2><h3>Normalisation policy (reference metrics)</h3>")
    parts.append(rst_to_html(docstring_section(reference, "Normalisation policy", "Metrics (on")))
    parts.append("<h3>Verdict statistics</h3>" + rst_to_html(docstring_section(verdict_module, "Every field", None)))
    if any(m.startswith("seg_") for m in metrics):
        parts.append("<h3>Task-based segmentation score</h3>" + rst_to_html(docstring_section(segmentation, "A restoration")))
    parts.append(f"<h3>No-reference metrics</h3><p>{_e(NO_REFERENCE_CAVEAT)}</p>")
    parts.append("<h3>Data-consistency map</h3>" + rst_to_html(docstring_section(consistency, "Algorithm", "Scores\n")))
    parts.append(_consistency_table(evaluations))

    # provenance
    parts.append("<h2>Methods, parameters and backends</h2>")
    seen: set[str] = set()
    for ev in evaluations:
        for col in ev.cset.columns:
            if col.role == "input" or col.name in seen:
                continue
            seen.add(col.name)
            prov = json.loads(col.provenance.model_dump_json())
            parts.append(f"<h3>{_e(col.name)}</h3><p>Method: {_e(prov['method'])}; backend: <b>{_e(prov['backend'])}</b>; "
                         f"family: {_e(families.get(col.name, 'other'))}</p>"
                         f"<pre>{_e(json.dumps(prov['parameters'], indent=2, default=str))}</pre>")
            if prov.get("notes"):
                parts.append("<p>Notes: " + _e("; ".join(prov["notes"])) + "</p>")
    parts.append(f"<p>Fiji / ImageJ backend: <b>{_e(context.fiji_backend)}</b></p>")
    if context.model:
        parts.append(f"<h3>Model configuration</h3><pre>{_e(json.dumps(context.model, indent=2, default=str))}</pre>")
    else:
        parts.append("<p>Model: none used in this comparison.</p>")
    if context.assumptions:
        parts.append("<h3>Assumptions</h3><ul>" + "".join(f"<li>{_e(a)}</li>" for a in context.assumptions) + "</ul>")
    if context.parameters:
        parts.append(f"<h3>Run parameters</h3><pre>{_e(json.dumps(context.parameters, indent=2, default=str))}</pre>")
    set_notes = [f"{ev.cset.field}: {n}" for ev in evaluations for n in ev.cset.notes + ev.notes]
    if set_notes:
        parts.append("<h3>Image handling</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in set_notes) + "</ul>")

    # files and versions
    parts.append("<h2>Files</h2><ul>" + "".join(
        f"<li>{_e(k)}: <a href='{_e(v.relative_to(out_dir).as_posix())}'>{_e(v.relative_to(out_dir))}</a></li>"
        for k, v in outputs.items())
        + (f"<li>restored images: {len(restored)} calibrated TIFFs in restored/</li>" if restored else "") + "</ul>")
    parts.append("<h2>Software versions</h2><table>" + "".join(
        f"<tr><td class='t'>{_e(k)}</td><td class='t'>{_e(v)}</td></tr>" for k, v in ctx["versions"].items()) + "</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _consistency_table(evaluations: Sequence[Any]) -> str:
    rows = []
    for ev in evaluations:
        for (name, ch), res in ev.consistency.items():
            s, p = res.scores, res.parameters
            rows.append(f"<tr><td class='t'>{_e(ev.cset.field)}</td><td class='t'>{_e(name)}</td><td>{ch}</td>"
                        f"<td>{100 * s['flagged_fraction']:.3f}</td><td>{100 * s['unsupported_fraction']:.3f}</td>"
                        f"<td>{int(s['n_regions'])}</td><td>{fmt_value(s['rsp'])}</td><td>{fmt_value(s['rse'])}</td>"
                        f"<td>{fmt_value(s['chi_rms'])}</td><td>{fmt_value(p['threshold'])}</td>"
                        f"<td>{_e(', '.join(f'{v:g}' for v in p['detection_scales_px']))}</td>"
                        f"<td class='t'>{_e(p['forward_model'])}</td></tr>")
    if not rows:
        return ""
    return ("<table><tr><th class='t'>image</th><th class='t'>method</th><th>ch</th><th>flagged %</th>"
            "<th>unsupported %</th><th>regions</th><th>RSP (-1..1)</th><th>RSE (LQ units)</th><th>chi RMS</th>"
            "<th>threshold</th><th>filter sigmas (px)</th><th class='t'>forward model</th></tr>" + "".join(rows)
            + "</table>")
