"""Exports of a comparison: metric tables (CSV, JSON), figures, restored TIFFs and a self-contained HTML report.

:func:`write_comparison_outputs` is the one place that turns evaluated comparison sets
(:func:`engine.evaluate.compare.evaluate_set`) into files, for ``decongan compare``, ``decongan batch`` and
``decongan demo``::

    OUT/metrics.csv          one row per image x method x channel: image, method, backend, every metric
    OUT/metrics.json         the same rows + per-method summaries + statistics + context
    OUT/summary.csv          per method and metric: n, median, q1, q3, IQR
    OUT/figures/*.png|svg|pdf  comparison panels (+ merged channels), box plots, consistency, error maps
    OUT/restored/<field>__<method>.tif   restored images as calibrated float32 ImageJ TIFFs (provenance in Info)
    OUT/report.html          everything above in one file (figures embedded as base64 PNG)

Every file is written atomically. The HTML has no external references: figures are embedded, tables
are inline, and it states the normalisation policy, the data-consistency method and thresholds, the
statistics and their caveat, every method's parameters and backend (Fiji or engine), the model
configuration, the assumptions given by the caller and the software versions.

Why this module is long
-----------------------
The HTML renderer (:func:`render_html`) states every section the report must carry (normalisation
policy, consistency method and thresholds, statistics and their caveat, parameters, versions) from
the same data as the CSV and JSON writers beside it, so what the HTML says and what the tables say
cannot drift apart.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decongan.engine.atomic import write_text_atomic
from decongan.engine.outputs import check_distinct, safe_filename
from decongan.engine.progress import CancelToken, Progress

NO_REFERENCE_CAVEAT = (
    "No-reference metrics (BGSTD, CUF, SNR, decorrelation resolution) are shown next to the input's own value "
    "and the ground truth's. They do not know what the object looks like: decorrelation analysis and FRC reward "
    "any high-frequency content, including structure a network invented, and CUF rises with noise as well as "
    "with detail. An improvement in them alone is not evidence of a faithful restoration; read them together "
    "with the reference metrics and the data-consistency map."
)
STATISTICS_CAVEAT = (
    "Statistics follow S1 (Panek et al.): Kruskal-Wallis across methods and Dunn's pairwise test with a "
    "multiple-comparison correction, run only when every method has at least 3 images. The images are paired "
    "(every field is measured with every method) while these tests treat the groups as independent, which makes "
    "them conservative; the paired Friedman test is given alongside. Planes of one stack are not independent "
    "fields of view."
)


@dataclass
class ReportContext:
    """What the report says about how the comparison was made (beyond each method's provenance).

    Attributes
    ----------
    title : str
    command : str
        The command line or action that produced the outputs.
    parameters : dict
        Options of the run (PSF, iterations, registration, contrast policy ...).
    assumptions : list of str
        Facts the run assumed rather than read from the data (e.g. optics not in the metadata).
    fiji_backend : str
        Which Fiji/ImageJ backend produced Fiji results, or why none was used.
    model : dict or None
        Configuration of the GAN run(s) used (``{"name": ..., "config": {...}}``), None when no model.
    notes : list of str
        Anything else worth saying (a method left out and why, files skipped ...).
    """

    title: str = "DeconGAN comparison"
    command: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    fiji_backend: str = "not used"
    model: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ComparisonOutputs:
    """Paths written by :func:`write_comparison_outputs`."""

    out_dir: Path
    metrics_csv: Path
    metrics_json: Path
    summary_csv: Path
    report_html: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)
    restored: list[Path] = field(default_factory=list)


def normalisation_policy_text() -> str:
    """The reference-metric normalisation policy, quoted from engine.metrics.reference."""
    from decongan.engine.metrics import reference

    doc = reference.__doc__ or ""
    start = doc.find("Normalisation policy")
    end = doc.find("Metrics (on")
    text = doc[start:end] if start >= 0 else doc
    lines = [ln for ln in text.splitlines()[2:] if not set(ln.strip()) <= {"-"}]
    return "\n".join(lines).strip()


def consistency_method_text() -> str:
    """The data-consistency algorithm and threshold rationale, quoted from engine.evaluate.consistency."""
    from decongan.engine.evaluate import consistency

    doc = consistency.__doc__ or ""
    start = doc.find("Algorithm")
    end = doc.find("Scores\n")
    text = doc[start:end] if start >= 0 else doc
    lines = [ln for ln in text.splitlines()[2:] if not set(ln.strip()) <= {"-"}]
    return "\n".join(lines).strip()


def restored_file_name(out: Path, field: str, method: str) -> Path:
    """``OUT/restored/<field>__<method>.tif``: the field (an image's file stem) keeps its Unicode name,
    only characters no file name may hold are replaced; the method label becomes a safe stem.

    Parameters
    ----------
    out : Path
        The comparison's output folder.
    field : str
        The field of view (an input image's file stem).
    method : str
        The method label (e.g. ``"RL 20 it (engine)"``).

    Returns
    -------
    Path
        The planned file (nothing is written or checked here; see :func:`engine.outputs.check_distinct`).
    """
    from decongan.engine.io import safe_stem

    return Path(out) / "restored" / safe_filename(f"{safe_filename(field)}__{safe_stem(method)}.tif")


def write_comparison_outputs(
    evaluations: Sequence[Any],
    out_dir: str | Path,
    *,
    context: ReportContext | None = None,
    contrast: str = "shared",
    cmap: str = "gray",
    line: Any = "auto",
    inset: Any = "auto",
    p_adjust: str = "holm",
    formats: Sequence[str] = ("png", "svg", "pdf"),
    dpi: int = 300,
    save_restored: bool = True,
    show: Sequence[str] | None = None,
    extra_figures: Sequence[Any] = (),
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
) -> ComparisonOutputs:
    """Write tables, figures, restored TIFFs and the HTML report of evaluated comparison sets.

    Parameters
    ----------
    evaluations : sequence of engine.evaluate.compare.SetEvaluation
    out_dir : path
        Created if missing. Existing files of the same names are replaced atomically.
    context : ReportContext, optional
    contrast, cmap, line, inset
        Passed to :func:`engine.evaluate.figures.comparison_figure`.
    p_adjust : str
        Dunn's correction ("holm" or "bonferroni").
    formats, dpi
        Figure files (PNG always included for the HTML report).
    save_restored : bool
        Write every restored column as a calibrated float32 TIFF.
    show : sequence of str, optional
        Fields drawn in the image figures (default: the first six); tables and box plots use all.
    extra_figures : sequence of engine.evaluate.figures.CaptionedFigure
        More figures made by the caller (e.g. an orthogonal view of a stack), saved and reported too.
    progress : callable, optional
        Receives a :class:`Progress` per output step.
    cancel : engine.progress.CancelToken, optional
        Checked before every file; :class:`engine.progress.Cancelled` stops the export there. Files
        already written stay (each was written atomically); ``report.html`` is written last, so a
        cancelled export never leaves a report that points at missing files.
    """
    from decongan.engine.evaluate import figures as figs
    from decongan.engine.evaluate.compare import MetricTable

    if not evaluations:
        raise ValueError("nothing to report: no comparison set was evaluated")
    context = context or ReportContext()
    out = Path(out_dir)
    # restored TIFF names keep Unicode field names; two sets or columns mapping to one file are refused
    # before anything is written (never an overwrite that loses a result)
    planned_restored = [(f"{ev.cset.field} / {col.name}", restored_file_name(out, ev.cset.field, col.name))
                        for ev in evaluations for col in ev.cset.restored] if save_restored else []
    check_distinct(planned_restored, what="restored images")
    out.mkdir(parents=True, exist_ok=True)
    formats = list(dict.fromkeys(["png", *formats]))
    table = MetricTable.from_evaluations(evaluations)
    steps = ["tables", "figures", "restored", "report"]

    def tick(i: int, message: str) -> None:
        if progress is not None:
            progress(Progress(step=i, total=len(steps), message=message))

    def check() -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()

    check()

    # -- tables ---------------------------------------------------------------------------------
    summary = table.summary()
    stats = {m: table.statistics(m, p_adjust=p_adjust) for m in table.metrics}
    metrics_csv = table.write_csv(out / "metrics.csv")
    summary_csv = write_text_atomic(out / "summary.csv", _summary_csv(table, summary))
    metrics_json = table.write_json(out / "metrics.json", extra={
        "summary": {m: {k: s.as_dict() for k, s in per.items()} for m, per in summary.items()},
        "statistics": {k: v.as_dict() for k, v in stats.items()},
        "context": _context_dict(context),
        "sets": [_set_dict(ev) for ev in evaluations],
    })
    tick(1, "tables written")
    check()

    # -- figures --------------------------------------------------------------------------------
    fig_dir = out / "figures"
    made: list[figs.CaptionedFigure] = []
    drawn = [ev for ev in evaluations if ev.cset.field in set(show)] if show else list(evaluations)
    if not drawn:
        raise ValueError(f"none of the fields to show ({', '.join(show or [])}) is in the comparison")
    first = drawn[0].cset
    channels: list[Any] = list(range(first.n_channels))
    if first.n_channels > 1:
        channels.append("merged")
    for ch in channels:
        cf = figs.comparison_figure(drawn, channel=ch, contrast=contrast, cmap=cmap,  # type: ignore[arg-type]
                                    line=None if ch == "merged" else line, inset=inset)
        if first.n_channels > 1 and ch != "merged":
            cf.name = f"comparison_c{ch}"
        made.append(cf)
    box_metrics = [m for m in ("ssim", "psnr", "nrmse", "snr", "decorrelation_nm", "decorrelation_px", "dc_rsp")
                   if m in table.metrics]
    if "decorrelation_nm" in box_metrics and "decorrelation_px" in box_metrics:
        box_metrics.remove("decorrelation_px")
    if box_metrics:
        made.append(figs.boxplot_figure(table, box_metrics, p_adjust=p_adjust, statistics=stats))
    for ch in range(first.n_channels):
        for builder in (figs.consistency_figure, figs.error_map_figure):
            try:
                cf = builder(drawn, channel=ch)
            except ValueError:
                continue  # no consistency maps / no ground truth
            if first.n_channels > 1:
                cf.name = f"{cf.name}_c{ch}"
            made.append(cf)
    made.extend(extra_figures)
    figure_paths: dict[str, list[Path]] = {}
    for cf in made:
        check()
        figure_paths[cf.name] = figs.save_figure(cf, fig_dir / cf.name, formats=formats, dpi=dpi)
        write_text_atomic(fig_dir / f"{cf.name}.caption.txt", cf.caption + "\n")
    tick(2, "figures written")

    # -- restored images --------------------------------------------------------------------------
    restored_paths: list[Path] = []
    if save_restored:
        from decongan.engine.io import write_tiff

        for ev in evaluations:
            cset = ev.cset
            for col in cset.restored:
                check()
                path = restored_file_name(out, cset.field, col.name)
                write_tiff(path, col.data, axes=cset.axes, pixel_size_um=cset.pixel_size_um, z_step_um=cset.z_step_um,
                           description=col.provenance.model_dump_json())
                restored_paths.append(path)
    tick(3, "restored images written")
    check()

    # -- HTML -----------------------------------------------------------------------------------
    page = render_html(evaluations, table, summary, stats, made, figure_paths, context,
                       outputs={"metrics.csv": metrics_csv, "metrics.json": metrics_json, "summary.csv": summary_csv},
                       restored=restored_paths, out_dir=out)
    report_html = write_text_atomic(out / "report.html", page)
    tick(4, "report written")
    return ComparisonOutputs(out, metrics_csv, metrics_json, summary_csv, report_html, figure_paths, restored_paths)


def _summary_csv(table: Any, summary: dict[str, dict[str, Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "metric", "n", "median", "q1", "q3", "iqr"])
    for method in table.methods:
        for metric, s in summary.get(method, {}).items():
            writer.writerow([method, metric, s.n, _num(s.median), _num(s.q1), _num(s.q3), _num(s.iqr)])
    return buffer.getvalue()


def _num(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else ""


def _context_dict(context: ReportContext) -> dict[str, Any]:
    from decongan.engine.provenance import software_versions

    return {"title": context.title, "command": context.command, "parameters": context.parameters,
            "assumptions": context.assumptions, "fiji_backend": context.fiji_backend, "model": context.model,
            "notes": context.notes, "versions": software_versions("matplotlib", "scikit_posthocs", "torch"),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _set_dict(ev: Any) -> dict[str, Any]:
    cset = ev.cset
    return {
        "field": cset.field, "axes": cset.axes, "shape": list(cset.columns[0].data.shape),
        "pixel_size_um": cset.pixel_size_um, "z_step_um": cset.z_step_um, "focus_plane": cset.focus_plane(),
        "notes": cset.notes + ev.notes, "registration": cset.registration,
        "methods": [{"name": c.name, "role": c.role, "provenance": json.loads(c.provenance.model_dump_json())}
                    for c in cset.columns],
        "consistency": {f"{name} (c{ch})": {"scores": r.scores, "parameters": r.parameters}
                        for (name, ch), r in ev.consistency.items()},
    }


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}th,td{border:1px solid #bbb;padding:.25em .5em;
text-align:right}th{background:#f0f0f0}td.t,th.t{text-align:left}figure{margin:1em 0}figure img{max-width:100%;
border:1px solid #ddd}figcaption{font-size:.85em;color:#333}pre{background:#f7f7f7;padding:.7em;overflow-x:auto;
font-size:.8em;white-space:pre-wrap}.note{background:#fff8e1;border-left:4px solid #E69F00;padding:.5em .8em}
code{font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, metric: str = "") -> str:
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


def render_html(evaluations: Sequence[Any], table: Any, summary: dict[str, dict[str, Any]], stats: dict[str, Any],
                figures: Sequence[Any], figure_paths: dict[str, list[Path]], context: ReportContext, *,
                outputs: dict[str, Path], restored: Sequence[Path], out_dir: Path) -> str:
    """The self-contained report page (see the module docstring).

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
        Figure name -> the files written; the PNG is embedded (base64), the others are listed.
    context : ReportContext
        Title, command, notes, assumptions and versions stated in the report.
    outputs : dict of str to Path
        Table files listed in the page (label -> path).
    restored : sequence of Path
        Restored TIFFs written (counted in the page).
    out_dir : Path
        The output folder; listed paths are relative to it.

    Returns
    -------
    str
        The HTML document (UTF-8 text, no external references).
    """
    from decongan.engine.evaluate.compare import GT_NAME, HIGHER_IS_BETTER, LQ_NAME, METRIC_LABELS
    from decongan.engine.evaluate.stats import format_p

    ctx = _context_dict(context)
    parts: list[str] = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
                        f"<title>{_e(context.title)}</title><style>{_CSS}</style></head><body>",
                        f"<h1>{_e(context.title)}</h1>",
                        f"<p>Created {_e(ctx['created'])} by DeconGAN {_e(ctx['versions'].get('decongan', ''))}. "
                        f"{len(evaluations)} field(s) of view, methods: {_e(', '.join(table.methods))}.</p>"]
    if context.command:
        parts.append(f"<p>Command: <code>{_e(context.command)}</code></p>")
    if context.notes:
        parts.append("<div class='note'>" + "<br>".join(_e(n) for n in context.notes) + "</div>")

    # summary table
    metrics = table.metrics
    parts.append("<h2>Summary: median [IQR] per method</h2>")
    parts.append("<table><tr><th class='t'>method</th><th>n</th>" + "".join(
        f"<th>{_e(METRIC_LABELS.get(m, m))}{' ↑' if HIGHER_IS_BETTER.get(m) else ' ↓' if HIGHER_IS_BETTER.get(m) is False else ''}</th>"
        for m in metrics) + "</tr>")
    for method in table.methods:
        per = summary.get(method, {})
        n = max((s.n for s in per.values()), default=0)
        cells = []
        for m in metrics:
            s = per.get(m)
            cells.append("<td>–</td>" if s is None or s.n == 0 else
                         f"<td>{_fmt(s.median, m)} [{_fmt(s.iqr, m)}]</td>")
        parts.append(f"<tr><td class='t'>{_e(method)}</td><td>{n}</td>{''.join(cells)}</tr>")
    parts.append("</table>")
    parts.append(f"<p>{_e(LQ_NAME)} is the input scored like a method; {_e(GT_NAME)} is the reference (its "
                 "reference metrics are not defined; its no-reference and consistency values show what a real "
                 "high-quality image scores).</p>")

    # statistics
    parts.append("<h2>Statistics</h2><table><tr><th class='t'>metric</th><th>Kruskal-Wallis H</th><th>p</th>"
                 "<th>Friedman p (paired)</th><th class='t'>Dunn pairs significant after correction</th>"
                 "<th class='t'>note</th></tr>")
    for metric, result in stats.items():
        kw = result.kruskal
        pairs = "; ".join(f"{p.group_a} vs {p.group_b} ({format_p(p.pvalue)})" for p in result.significant_pairs)
        parts.append(f"<tr><td class='t'>{_e(METRIC_LABELS.get(metric, metric))}</td>"
                     f"<td>{_fmt(kw.statistic) if kw else '–'}</td><td>{_e(format_p(kw.pvalue)) if kw else '–'}</td>"
                     f"<td>{_e(format_p(result.friedman_pvalue))}</td><td class='t'>{_e(pairs or ('none' if kw else '–'))}</td>"
                     f"<td class='t'>{_e(result.skipped_reason or '')}</td></tr>")
    parts.append(f"</table><p>{_e(STATISTICS_CAVEAT)} Correction: {_e(next(iter(stats.values())).p_adjust if stats else '')}.</p>")

    # figures
    parts.append("<h2>Figures</h2>")
    for cf in figures:
        png = next((p for p in figure_paths.get(cf.name, []) if p.suffix == ".png"), None)
        if png is None:
            continue
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        others = ", ".join(_e(p.relative_to(out_dir)) for p in figure_paths[cf.name])
        parts.append(f"<figure id='fig-{_e(cf.name)}'><img alt='{_e(cf.name)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption><b>{_e(cf.name)}.</b> {_e(cf.caption)} <br><small>Files: {others}</small>"
                     "</figcaption></figure>")

    # per-image table
    parts.append("<h2>Per-image metrics</h2><table id='metrics'><tr>" +
                 "".join(f"<th class='t'>{_e(c)}</th>" if c in ("image", "method", "role", "backend") else f"<th>{_e(c)}</th>"
                         for c in table.columns) + "</tr>")
    for row in table.rows:
        parts.append("<tr>" + "".join(
            f"<td class='t'>{_e(row.get(c, ''))}</td>" if c in ("image", "method", "role", "backend")
            else f"<td>{_fmt(row.get(c), c)}</td>" for c in table.columns) + "</tr>")
    parts.append("</table>")

    # methods text
    parts.append("<h2>How the numbers were made</h2><h3>Normalisation policy (reference metrics)</h3>")
    parts.append(f"<pre>{_e(normalisation_policy_text())}</pre>")
    parts.append(f"<h3>No-reference metrics</h3><p>{_e(NO_REFERENCE_CAVEAT)}</p>")
    parts.append(f"<h3>Data-consistency map</h3><pre>{_e(consistency_method_text())}</pre>")
    dc_rows = []
    for ev in evaluations:
        for (name, ch), res in ev.consistency.items():
            s, p = res.scores, res.parameters
            dc_rows.append(f"<tr><td class='t'>{_e(ev.cset.field)}</td><td class='t'>{_e(name)}</td><td>{ch}</td>"
                           f"<td>{100 * s['flagged_fraction']:.3f}</td><td>{100 * s['unsupported_fraction']:.3f}</td>"
                           f"<td>{int(s['n_regions'])}</td><td>{_fmt(s['rsp'])}</td><td>{_fmt(s['rse'])}</td>"
                           f"<td>{_fmt(s['chi_rms'])}</td><td>{_fmt(p['threshold'])}</td>"
                           f"<td>{_e(', '.join(f'{v:g}' for v in p['detection_scales_px']))}</td>"
                           f"<td class='t'>{_e(p['forward_model'])}</td></tr>")
    if dc_rows:
        parts.append("<table><tr><th class='t'>image</th><th class='t'>method</th><th>ch</th><th>flagged %</th>"
                     "<th>unsupported %</th><th>regions</th><th>RSP</th><th>RSE</th><th>chi RMS</th><th>threshold</th>"
                     "<th>filter sigmas (px)</th><th class='t'>forward model</th></tr>" + "".join(dc_rows) + "</table>")

    # provenance
    parts.append("<h2>Methods, parameters and backends</h2>")
    seen: set[str] = set()
    for ev in evaluations:
        for col in ev.cset.columns:
            if col.role == "input" or col.name in seen:
                continue
            seen.add(col.name)
            prov = json.loads(col.provenance.model_dump_json())
            parts.append(f"<h3>{_e(col.name)}</h3><p>Method: {_e(prov['method'])}; backend: <b>{_e(prov['backend'])}</b></p>"
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
    parts.append("<h2>Files</h2><ul>" + "".join(f"<li>{_e(k)}: {_e(v.relative_to(out_dir))}</li>" for k, v in outputs.items())
                 + (f"<li>restored images: {len(restored)} calibrated TIFFs in restored/</li>" if restored else "") + "</ul>")
    parts.append("<h2>Software versions</h2><table>" + "".join(
        f"<tr><td class='t'>{_e(k)}</td><td class='t'>{_e(v)}</td></tr>" for k, v in ctx["versions"].items()) + "</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
