"""The verdict: paired statistics across fields of view, and one plain sentence per comparison.

Every field of view is measured with every method, so methods are compared **paired**: for a metric,
the differences ``d_i = value(method, field i) - value(reference, field i)`` over the fields both
methods were scored on. The references are the best classical baseline and the LQ input.

For each comparison:

* Wilcoxon signed-rank test (two-sided, zero differences dropped): the exact null distribution
  when the absolute differences have no ties (:func:`scipy.stats.wilcoxon`, ``method="exact"``),
  otherwise the exact sign-flip permutation distribution of the same statistic for up to
  16 differences, else the normal approximation (:func:`engine.evaluate.stats.signed_rank_pvalue`);
* Holm's step-down correction over the comparisons of one metric (one family per metric). The
  family is the product's question, fixed before looking at the data: when learned methods are
  compared, it holds each learned method against the best classical baseline and against the LQ
  input, and the best classical baseline against the LQ input. The other pairs (one classical
  baseline against another) are described with their median difference and interval but not
  tested, so that adding baselines does not dilute the tests that answer the question (with 7
  fields and 15 comparisons nothing could reach p < 0.05). Without learned methods every
  comparison is in the family;
* the median paired difference and its 95 % percentile bootstrap interval
  (:func:`scipy.stats.bootstrap`, 9999 resamples, seeded; :func:`engine.evaluate.stats.median_ci`);
* the matched-pairs rank-biserial correlation ``r = (T+ - T-) / (T+ + T-)`` (Kerby 2014), where
  ``T+`` and ``T-`` are the rank sums of the positive and negative differences: +1 when the method
  is higher on every field, -1 when lower on every field, 0 when the ranks balance.

Below :data:`MIN_FIELDS` paired fields no test is run: with 5 fields the smallest possible exact
two-sided p-value is 2/32 = 0.0625, so no difference could ever be called significant. The sentence
then says "too few fields". Planes of one stack are not independent samples (neighbouring planes
share structure and noise), so for them no test and no interval is computed: the sentence says on
how many planes a method is higher and gives the median difference as a description only.

"The best classical baseline" is the classical method (Richardson-Lucy, RL-TV, Fiji, Wiener,
Gaussian, non-local means, TV ...; see :func:`method_family`) with the best median of the primary
metric (SSIM when it was measured).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from decongan.engine.evaluate.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    adjust_pvalues,
    median_ci,
    rank_biserial,
    signed_rank_pvalue,
)

MIN_FIELDS = 6
#: Metrics the verdict compares, in this order; the first one measured is the primary metric.
VERDICT_METRICS = ("ssim", "psnr", "seg_dice", "seg_f1")
#: Unit written after a difference in a sentence ("by 0.015 SSIM", "by 0.52 dB PSNR").
METRIC_UNITS = {"ssim": "SSIM", "psnr": "dB PSNR", "nrmse": "NRMSE", "mse": "MSE",
                "seg_dice": "segmentation Dice", "seg_jaccard": "segmentation Jaccard",
                "seg_f1": "segmentation object F1"}
#: Name of a metric in "no significant difference in ..." and "highest median ...".
METRIC_NAMES = {"ssim": "SSIM", "psnr": "PSNR", "nrmse": "NRMSE", "mse": "MSE", "seg_dice": "segmentation Dice",
                "seg_jaccard": "segmentation Jaccard", "seg_f1": "segmentation object F1"}

#: the ``test`` of a comparison outside the tested family (described, not tested)
DESCRIBED = "described, not tested"

Family = Literal["learned", "classical", "input", "reference", "other"]
_CLASSICAL_NAME = re.compile(
    r"(^|[^a-z])(rl|rl-tv|richardson|lucy|wiener|tikhonov|gaussian|gauss|nlm|non-local|tv|bm3d|median|"
    r"deconv|denois|fiji|deconvolutionlab)([^a-z]|$)", re.IGNORECASE)
_CLASSICAL_KINDS = {"classical", "denoise", "denoising", "deconvolve", "deconvolution", "combined", "combination",
                    "baseline"}


@dataclass(frozen=True)
class PairedComparison:
    """One method against one reference method for one metric.

    Attributes
    ----------
    metric, method, reference : str
        What was compared; differences are ``method - reference``.
    n : int
        Paired fields (both values finite; zero differences included).
    median_difference : float
        Median of the paired differences (metric units); NaN when ``n == 0``.
    ci_low, ci_high : float
        95 % bootstrap interval of the median difference; NaN when not computed.
    pvalue_raw, pvalue : float or None
        Two-sided p-value before and after Holm's correction; None when no test was run.
    test : str
        How the p-value was computed ("exact", "permutation", "normal approximation") or why not.
    rank_biserial : float
        Matched-pairs rank-biserial correlation in [-1, 1]; NaN when every difference is zero.
    higher_is_better : bool or None
        Direction of the metric (None: neither).
    n_higher, n_lower : int
        Pairs where the method's value is above / below the reference's (the rest are equal).
    sentence : str
        The plain-language reading (filled by :func:`paired_verdict`).
    """

    metric: str
    method: str
    reference: str
    n: int
    median_difference: float
    ci_low: float
    ci_high: float
    pvalue_raw: float | None
    pvalue: float | None
    test: str
    rank_biserial: float
    higher_is_better: bool | None
    n_higher: int = 0
    n_lower: int = 0
    sentence: str = ""

    @property
    def significant(self) -> bool:
        return self.pvalue is not None and self.pvalue < 0.05

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


@dataclass
class Verdict:
    """The paired comparisons of a report and their sentences.

    Attributes
    ----------
    primary_metric : str or None
        The metric that chose the best classical baseline (None: no reference metric measured).
    best_classical : str or None
        The classical method with the best median primary metric (None: no classical method).
    comparisons : list of PairedComparison
        Every comparison, primary metric first.
    notes : list of str
        Why something was not compared (no ground truth, no classical method, ...).
    """

    primary_metric: str | None
    best_classical: str | None
    comparisons: list[PairedComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    families: dict[str, str] = field(default_factory=dict)
    best_median: float | None = None

    @property
    def headline(self) -> str:
        """One paragraph: the best classical baseline, then the primary metric's sentences."""
        parts: list[str] = []
        if self.best_classical is not None and self.primary_metric is not None:
            label = METRIC_NAMES.get(self.primary_metric, self.primary_metric)
            parts.append(f"Best classical baseline: {self.best_classical} (best median {label}, "
                         f"{self.best_median:.3g}).")
        parts.extend(c.sentence for c in self.comparisons
                     if c.metric == self.primary_metric and c.test != DESCRIBED)
        parts.extend(self.notes)
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"primary_metric": self.primary_metric, "best_classical": self.best_classical,
                "best_median": self.best_median, "families": dict(self.families),
                "comparisons": [c.as_dict() for c in self.comparisons], "notes": list(self.notes),
                "min_fields": MIN_FIELDS, "bootstrap_resamples": BOOTSTRAP_RESAMPLES, "bootstrap_seed": BOOTSTRAP_SEED,
                "correction": "holm (one family per metric: learned methods vs the best classical baseline and vs the input, and that baseline vs the input; other pairs described, not tested)"}


def compare_paired(method_values: Sequence[float | None], reference_values: Sequence[float | None], *,
                   metric: str, method: str, reference: str, higher_is_better: bool | None = None,
                   min_fields: int = MIN_FIELDS, independent: bool = True, tested: bool = True) -> PairedComparison:
    """Paired statistics of one method against one reference (p-value not yet corrected).

    Parameters
    ----------
    method_values, reference_values : sequence of float or None
        One value per field, the same field at the same position; a pair with a missing or
        non-finite value is left out.
    metric, method, reference : str
        Names carried into the result and the sentence.
    higher_is_better : bool or None
        Direction of the metric.
    min_fields : int
        Fewest pairs for which a test is run.
    independent : bool
        False for planes of one stack: no test and no interval (module docstring).
    tested : bool
        False for a pair outside the tested family: median difference and interval, no test.

    Returns
    -------
    PairedComparison
        ``pvalue`` equals ``pvalue_raw`` here; :func:`paired_verdict` applies Holm's correction.
    """
    a = np.asarray([np.nan if v is None else v for v in method_values], dtype=float)
    b = np.asarray([np.nan if v is None else v for v in reference_values], dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"{metric}: {method} has {a.size} values but {reference} has {b.size}; pair them by field")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    median = float(np.median(d)) if n else float("nan")
    if not independent:
        low = high = float("nan")
        p: float | None = None
        test = "not independent (planes of one stack)"
    elif not tested:
        low, high = median_ci(d) if n >= min_fields else (float("nan"), float("nan"))
        p = None
        test = DESCRIBED
    elif n < min_fields:
        low = high = float("nan")
        p = None
        test = f"too few fields (n={n} < {min_fields})"
    else:
        low, high = median_ci(d)
        p, test = signed_rank_pvalue(d)
    return PairedComparison(metric, method, reference, n, median, low, high, p, p, test, rank_biserial(d),
                            higher_is_better, int(np.sum(d > 0)), int(np.sum(d < 0)))


# ---------------------------------------------------------------------------------------------
# sentences
# ---------------------------------------------------------------------------------------------
def _decimals(x: float) -> int:
    """Decimals that show two significant digits of ``x`` (at least 1, at most 6)."""
    if not math.isfinite(x) or x == 0:
        return 3
    return int(min(6, max(1, 1 - math.floor(math.log10(abs(x))))))


def _num(x: float, decimals: int | None = None) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.{_decimals(x) if decimals is None else decimals}f}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 1e-3 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def sentence(c: PairedComparison, *, unit: str = "fields") -> str:
    """The plain-language reading of one comparison, never claiming more than its statistics.

    Parameters
    ----------
    c : PairedComparison
        A comparison with its Holm-corrected p-value.
    unit : str
        What one pair is ("fields", "planes").

    Returns
    -------
    str
        "too few ..." below the minimum n; "no significant difference ..." when the corrected
        p-value is 0.05 or more (still giving the median paired difference and its 95 % interval,
        so a large but untestable difference is not hidden); otherwise the direction, the median paired difference with its
        95 % interval and the corrected p-value (and a caveat when the interval includes 0).
    """
    label = METRIC_UNITS.get(c.metric, c.metric)
    name = METRIC_NAMES.get(c.metric, c.metric)
    if c.pvalue is None:
        if c.n == 0:
            return f"{c.method} vs {c.reference}: no field has a {name} value for both."
        if c.test == DESCRIBED:
            interval = ("" if not math.isfinite(c.ci_low) else
                        f", 95 % CI {_num(c.ci_low, _decimals(c.median_difference or c.ci_high))} to "
                        f"{_num(c.ci_high, _decimals(c.median_difference or c.ci_high))}")
            return (f"{c.method} vs {c.reference} in {name}: {c.method} is higher on {c.n_higher}{_lower(c)} of "
                    f"{c.n} {unit} (median paired difference {_signed(c.median_difference)} {label}{interval}); "
                    "described, not tested (the tests answer whether the learned methods beat the best classical "
                    "baseline and the input).")
        if c.test.startswith("not independent"):
            return (f"{c.method} vs {c.reference} in {name}: {c.method} is higher on {c.n_higher}{_lower(c)} of {c.n} {unit} "
                    f"(median paired difference {_signed(c.median_difference)}); the {unit} come from one stack and "
                    "are not independent samples, so no significance test is claimed.")
        return (f"{c.method} vs {c.reference} in {name}: {c.test.replace('fields', unit)} for a test; the median "
                f"paired difference {_signed(c.median_difference)} is descriptive only.")
    if not c.significant:
        # the size stays visible (median and its interval): "no significant difference" alone hides a large one
        size = _decimals(c.median_difference if c.median_difference else c.ci_high)
        return (f"No significant difference in {name} between {c.method} and {c.reference} on these {c.n} {unit} "
                f"(Wilcoxon {_p(c.pvalue)}, Holm; {c.method} higher on {c.n_higher}{_lower(c)} of {c.n}; "
                f"median paired difference {_signed(c.median_difference)} {label}, 95 % CI "
                f"{_num(c.ci_low, size)} to {_num(c.ci_high, size)}).")
    direction_sign = np.sign(c.median_difference) or np.sign(c.rank_biserial)
    word = "higher" if direction_sign > 0 else "lower"
    better = ""
    if c.higher_is_better is not None:
        better = " (better)" if (direction_sign > 0) == c.higher_is_better else " (worse)"
    decimals = _decimals(c.median_difference if c.median_difference else c.ci_high)
    lo, hi = sorted((abs(c.ci_low), abs(c.ci_high))) if direction_sign * c.ci_low > 0 else (c.ci_low, c.ci_high)
    ci = f"95 % CI {_num(lo, decimals)} to {_num(hi, decimals)}"
    caveat = ""
    if not (c.ci_low > 0 or c.ci_high < 0):
        caveat = "; the interval includes 0, so the size of the difference is uncertain"
    return (f"{c.method} is {word}{better} than {c.reference} by {_num(abs(c.median_difference), decimals)} {label} "
            f"(median paired difference over {c.n} {unit}, {ci}; Wilcoxon {_p(c.pvalue)}, Holm{caveat}).")


def _lower(c: PairedComparison) -> str:
    """", lower on k" when some pairs are equal (so "higher on" alone would not say the rest is lower)."""
    return f", lower on {c.n_lower}" if c.n_higher + c.n_lower < c.n else ""


def _signed(x: float) -> str:
    return "n/a" if not math.isfinite(x) else ("+" if x > 0 else "") + _num(x)


# ---------------------------------------------------------------------------------------------
# families of methods and the verdict of a table
# ---------------------------------------------------------------------------------------------
def method_family(name: str, role: str, backend: str = "", parameters: Mapping[str, Any] | None = None) -> Family:
    """Whether a column is the input, the reference, a learned model, a classical method or other.

    Parameters
    ----------
    name : str
        Column name (the method label).
    role : {"input", "restored", "reference"}
        The column's role in the comparison set.
    backend : str
        Provenance backend (``"fiji:..."`` and ``"imagej1:..."`` are classical).
    parameters : mapping, optional
        Provenance parameters: a ``"baseline"`` record (engine.optics.classical) marks a classical
        baseline; a ``"kind"`` entry (``"learned"``, ``"classical"``, ``"denoise"``,
        ``"deconvolution"``, ``"combination"``) decides; a ``"run_dir"`` or ``"generator"`` entry
        marks a learned model; an ``"iterations"`` entry without them marks RL.

    Returns
    -------
    str
        ``"input"``, ``"reference"``, ``"learned"``, ``"classical"`` or ``"other"`` (e.g. an image
        read from a file whose method is unknown).
    """
    if role == "input":
        return "input"
    if role == "reference":
        return "reference"
    params = dict(parameters or {})
    baseline = params.get("baseline")
    if isinstance(baseline, Mapping):  # engine.optics.classical records {"method", "kind", ...} here
        return "classical"
    kind = str(params.get("kind", "")).lower()
    if kind in ("learned", "gan", "network"):
        return "learned"
    if kind in _CLASSICAL_KINDS:
        return "classical"
    if "run_dir" in params or "generator" in params:
        return "learned"
    if backend.startswith(("fiji", "imagej")) or "iterations" in params or _CLASSICAL_NAME.search(name):
        return "classical"
    return "other"


def families_of(evaluations: Iterable[Any]) -> dict[str, Family]:
    """Method name -> family for every column of evaluated comparison sets.

    Parameters
    ----------
    evaluations : iterable of SetEvaluation
        From :func:`engine.evaluate.compare.evaluate_set`.

    Returns
    -------
    dict of str to str
        See :func:`method_family`.
    """
    out: dict[str, Family] = {}
    for ev in evaluations:
        for col in ev.cset.columns:
            out.setdefault(col.name, method_family(col.name, col.role, col.provenance.backend,
                                                   col.provenance.parameters))
    return out


def paired_verdict(rows: Sequence[Mapping[str, Any]], families: Mapping[str, str], *,
                   metrics: Sequence[str] = VERDICT_METRICS, min_fields: int = MIN_FIELDS,
                   higher_is_better: Mapping[str, bool | None] | None = None, unit: str | None = None,
                   independent: bool = True) -> Verdict:
    """Compare every restoration with the best classical baseline and with the LQ input, paired by field.

    Parameters
    ----------
    rows : sequence of mapping
        Metric rows (``image``, ``method``, ``channel`` and metric values), as in
        :class:`engine.evaluate.compare.MetricTable`.
    families : mapping of str to str
        Method name -> family (:func:`families_of`).
    metrics : sequence of str
        Metrics compared when measured; the first measured one chooses the best classical baseline.
    min_fields : int
        Fewest pairs for which a test is run.
    higher_is_better : mapping, optional
        Metric direction (default: engine.evaluate.compare.HIGHER_IS_BETTER).
    unit : str, optional
        What one pair is called in sentences (default "fields", or "field-channels" when there is
        more than one channel; "planes" for planes of one stack).
    independent : bool
        False when the rows are planes of one stack: descriptive sentences only, no tests.

    Returns
    -------
    Verdict
        The comparisons of every metric, Holm-corrected within each metric, with sentences.
    """
    from decongan.engine.evaluate.compare import HIGHER_IS_BETTER, LQ_NAME

    direction = dict(HIGHER_IS_BETTER if higher_is_better is None else higher_is_better)
    keys = list(dict.fromkeys((r["image"], r.get("channel", 0)) for r in rows))
    if unit is None:
        unit = "fields" if len({k[1] for k in keys}) <= 1 else "field-channels"
    by_key: dict[tuple[str, str], dict[Any, Any]] = {}
    for r in rows:
        for m in metrics:
            by_key.setdefault((r["method"], m), {})[(r["image"], r.get("channel", 0))] = r.get(m)

    def values(method: str, metric: str) -> list[Any]:
        got = by_key.get((method, metric), {})
        return [got.get(k) for k in keys]

    measured = [m for m in metrics if any(v is not None for (_, mm), got in by_key.items() if mm == m
                                          for v in got.values())]
    verdict = Verdict(primary_metric=measured[0] if measured else None, best_classical=None,
                      families={k: str(v) for k, v in families.items()})
    if not measured:
        verdict.notes.append("No ground truth: no reference metric, so no method can be called better or worse "
                             "here; read the data-consistency and trust maps instead.")
        return verdict
    primary = measured[0]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    classical = [m for m in methods if families.get(m) == "classical"]
    sign = -1.0 if direction.get(primary) is False else 1.0
    medians = {m: float(np.nanmedian(np.asarray([np.nan if v is None else v for v in values(m, primary)], float)))
               for m in classical if any(v is not None for v in values(m, primary))}
    if medians:
        verdict.best_classical = max(medians, key=lambda m: sign * medians[m])
        verdict.best_median = medians[verdict.best_classical]
    else:
        verdict.notes.append("No classical method in this comparison: the restorations are compared with the "
                             "input only.")
    restored = [m for m in methods if families.get(m) not in ("input", "reference")]
    learned = {m for m in restored if families.get(m) == "learned"}

    def in_family(method: str, reference: str) -> bool:
        # the product's question (module docstring); without learned methods, every pair
        return not learned or method in learned or (method == verdict.best_classical and reference == LQ_NAME)

    pairs: list[tuple[str, str]] = []
    if verdict.best_classical is not None:
        pairs += [(m, verdict.best_classical) for m in restored if m != verdict.best_classical]
    if LQ_NAME in methods:
        pairs += [(m, LQ_NAME) for m in restored]
    for metric in measured:
        family = [compare_paired(values(m, metric), values(ref, metric), metric=metric, method=m, reference=ref,
                                 higher_is_better=direction.get(metric), min_fields=min_fields,
                                 independent=independent, tested=in_family(m, ref))
                  for m, ref in pairs]
        tested = [i for i, c in enumerate(family) if c.pvalue_raw is not None]
        adjusted = adjust_pvalues([family[i].pvalue_raw for i in tested], "holm") if tested else []
        for i, p in zip(tested, adjusted, strict=True):
            family[i] = _replace(family[i], pvalue=p)
        family = [_replace(c, sentence=sentence(c, unit=unit)) for c in family]
        if tested:
            note = _power_note(max(family[i].n for i in tested), len(tested), unit)
            if note and note not in verdict.notes:
                verdict.notes.append(note)
        # learned methods against the best classical baseline first: that is the product's question
        family.sort(key=lambda c: (c.reference != verdict.best_classical, families.get(c.method) != "learned"))
        verdict.comparisons.extend(family)
    return verdict


def _power_note(n: int, m: int, unit: str, alpha: float = 0.05) -> str:
    """Say so when no comparison of a metric could reach ``alpha`` after Holm (too few pairs for m tests)."""
    smallest = min(1.0, m * 2.0 / 2 ** n)  # exact two-sided minimum 2/2^n, Holm multiplies the smallest by m
    if smallest < alpha:
        return ""
    needed = next(k for k in range(n, 64) if m * 2.0 / 2 ** k < alpha)
    return (f"With {n} {unit} and {m} comparisons per metric, no difference can reach "
            f"p < {alpha:g} after Holm's correction (smallest possible p = {smallest:.3f}); at least {needed} {unit} "
            "are needed.")


def _replace(c: PairedComparison, **changes: Any) -> PairedComparison:
    from dataclasses import replace

    return replace(c, **changes)
