"""Exports of a comparison: metric tables (CSV, JSON), figures, restored TIFFs and a self-contained HTML report.

:func:`write_comparison_outputs` is the one place that turns evaluated comparison sets
(:func:`engine.evaluate.compare.evaluate_set`) into files, for ``decongan compare``, ``decongan batch`` and
``decongan demo``::

    OUT/metrics.csv          one row per image x method x channel: image, method, backend, every metric
    OUT/metrics.json         the same rows + per-method summaries + statistics + context
    OUT/summary.csv          per method and metric: n, median, q1, q3, IQR
    OUT/figures/*.png|svg|pdf  comparison panels (+ merged channels), box plots, consistency, error maps,
                             split-half and models/seeds disagreement maps (when computed)
    OUT/restored/<field>__<method>.tif   restored images as calibrated float32 ImageJ TIFFs (provenance in Info)
    OUT/report.html          the verdict, then the figures (small embedded previews linking the files in
                             figures/), tables and methods (engine.evaluate.report_html renders it)

Every file is written atomically. The report opens with the paired verdict
(:mod:`engine.evaluate.verdict`) and states the normalisation policy, the data-consistency method and
thresholds, the statistics and their caveat, every method's parameters and backend (Fiji or engine),
the model configuration, the assumptions given by the caller and the software versions. It refers
to nothing outside the output folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decongan.engine.outputs import check_distinct, safe_filename, write_text_atomic
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
    pairs_unit : str
        What one compared image is, in the verdict's sentences ("fields", "planes").
    pairs_independent : bool
        False when the compared images are planes of one stack: the verdict then describes the
        paired differences without claiming significance (engine.evaluate.verdict).
    """

    title: str = "DeconGAN comparison"
    command: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    fiji_backend: str = "not used"
    model: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    pairs_unit: str = "fields"
    pairs_independent: bool = True


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
    verdict: Any = None  #: engine.evaluate.verdict.Verdict, as the report states it


def normalisation_policy_text() -> str:
    """The reference-metric normalisation policy, quoted from engine.metrics.reference (reStructuredText)."""
    from decongan.engine.evaluate.report_html import docstring_section
    from decongan.engine.metrics import reference

    return docstring_section(reference, "Normalisation policy", "Metrics (on")


def consistency_method_text() -> str:
    """The data-consistency algorithm and threshold rationale, quoted from engine.evaluate.consistency."""
    from decongan.engine.evaluate import consistency
    from decongan.engine.evaluate.report_html import docstring_section

    return docstring_section(consistency, "Algorithm", "Scores\n")


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
    from decongan.engine.evaluate.report_html import render_html
    from decongan.engine.evaluate.verdict import families_of, paired_verdict

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
    verdict = paired_verdict(table.rows, families_of(evaluations), unit=context.pairs_unit,
                             independent=context.pairs_independent)
    metrics_csv = table.write_csv(out / "metrics.csv")
    summary_csv = write_text_atomic(out / "summary.csv", _summary_csv(table, summary))
    metrics_json = table.write_json(out / "metrics.json", extra={
        "summary": {m: {k: s.as_dict() for k, s in per.items()} for m, per in summary.items()},
        "statistics": {k: v.as_dict() for k, v in stats.items()},
        "verdict": verdict.as_dict(),
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
    box_metrics = [m for m in ("ssim", "psnr", "nrmse", "seg_f1", "snr", "decorrelation_nm", "decorrelation_px", "dc_rsp")
                   if m in table.metrics]
    if "decorrelation_nm" in box_metrics and "decorrelation_px" in box_metrics:
        box_metrics.remove("decorrelation_px")
    if box_metrics:
        made.append(figs.boxplot_figure(table, box_metrics, p_adjust=p_adjust, statistics=stats))
    for ch in range(first.n_channels):
        for builder in (figs.consistency_figure, figs.error_map_figure, figs.split_half_figure, figs.ensemble_figure):
            try:
                cf = builder(drawn, channel=ch)
            except ValueError:
                continue  # no consistency / split-half / models-seeds maps, or no ground truth
            if first.n_channels > 1:
                cf.name = f"{cf.name}_c{ch}"
            made.append(cf)
    made.extend(extra_figures)
    figure_paths: dict[str, list[Path]] = {}
    relabelled: dict[str, str] = {}
    for cf in made:
        check()
        figure_paths[cf.name] = figs.save_figure(cf, fig_dir / cf.name, formats=formats, dpi=dpi)
        relabelled.update(getattr(cf, "info", {}).get("relabelled", {}))
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
                       restored=restored_paths, out_dir=out, verdict=verdict, relabelled=relabelled)
    report_html = write_text_atomic(out / "report.html", page)
    tick(4, "report written")
    return ComparisonOutputs(out, metrics_csv, metrics_json, summary_csv, report_html, figure_paths, restored_paths,
                             verdict)


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
        "split_half": {f"{name} (c{ch})": {"flagged_fraction": r.flagged_fraction, "parameters": r.parameters}
                       for (name, ch), r in ev.split_half.items()},
        "disagreement": {f"{name} (c{ch})": {"flagged_fraction": r.flagged_fraction, "parameters": r.parameters,
                                             "member_fractions": r.member_fractions}
                         for (name, ch), r in ev.disagreement.items()},
    }
