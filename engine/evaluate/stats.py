"""Statistics for method comparisons: per-method summaries, Kruskal-Wallis, Dunn's post-hoc test,
and the paired tests of the verdict (Wilcoxon signed-rank, rank-biserial, bootstrap interval of the median).

This is the analysis of S1 (Panek et al.): one value of a metric per image and method, a box plot
per method, Kruskal-Wallis across the methods, and Dunn's pairwise test with a multiple-comparison
correction (Holm by default, Bonferroni on request) when every method has at least three images.

Caveat stated in every report: the images of a comparison are *paired* (each field of view is
measured with every method) while Kruskal-Wallis and Dunn treat the groups as independent samples,
which makes them conservative. The Friedman test (paired, rank based) is computed alongside as a
check when every method has the same images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

PAdjust = Literal["holm", "bonferroni", "holm-sidak", "sidak", "fdr_bh"]
MIN_SAMPLES = 3


@dataclass(frozen=True)
class Summary:
    """Robust summary of one method's values of one metric (NaN/Inf dropped and counted).

    ``q1``/``q3`` are the 25th/75th percentiles (numpy's linear interpolation); ``iqr = q3 - q1``.
    """

    n: int
    median: float
    q1: float
    q3: float
    iqr: float
    mean: float
    std: float
    min: float
    max: float
    n_dropped: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class KruskalResult:
    """Kruskal-Wallis H test (tie-corrected, scipy.stats.kruskal); ``dof`` = groups - 1."""

    statistic: float
    pvalue: float
    dof: int


@dataclass(frozen=True)
class PairwiseResult:
    """One Dunn comparison: ``pvalue`` is corrected with ``p_adjust``, ``pvalue_raw`` is not."""

    group_a: str
    group_b: str
    pvalue: float
    pvalue_raw: float
    significant: bool


@dataclass
class MetricStatistics:
    """Everything a box plot and a table need for one metric across methods.

    ``kruskal``/``dunn``/``friedman_pvalue`` are empty when ``skipped_reason`` says why
    (fewer than :data:`MIN_SAMPLES` values in a group, fewer than two groups, all values equal).
    """

    metric: str
    groups: list[str]
    summaries: dict[str, Summary]
    alpha: float
    p_adjust: str
    kruskal: KruskalResult | None = None
    dunn: list[PairwiseResult] = field(default_factory=list)
    friedman_pvalue: float | None = None
    skipped_reason: str | None = None

    @property
    def significant_pairs(self) -> list[PairwiseResult]:
        return [pair for pair in self.dunn if pair.significant]

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "groups": list(self.groups),
            "summaries": {name: s.as_dict() for name, s in self.summaries.items()},
            "alpha": self.alpha,
            "p_adjust": self.p_adjust,
            "kruskal": asdict(self.kruskal) if self.kruskal else None,
            "dunn": [asdict(pair) for pair in self.dunn],
            "friedman_pvalue": self.friedman_pvalue,
            "skipped_reason": self.skipped_reason,
        }


def _finite(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, int]:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float).ravel()
    keep = np.isfinite(arr)
    return arr[keep], int(arr.size - keep.sum())


def summarize(values: Sequence[float] | np.ndarray) -> Summary:
    """Median, quartiles, IQR, mean, std (ddof=1), min, max of the finite values.

    Parameters
    ----------
    values : sequence of float
        One value per image; None, NaN and +-Inf are dropped and counted in ``n_dropped``.

    Returns
    -------
    Summary
        All statistics NaN when no finite value remains.
    """
    arr, dropped = _finite(values)
    if arr.size == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, nan, dropped)
    q1, median, q3 = (float(v) for v in np.percentile(arr, [25, 50, 75]))
    return Summary(
        n=int(arr.size), median=median, q1=q1, q3=q3, iqr=q3 - q1, mean=float(arr.mean()),
        std=float(arr.std(ddof=1)) if arr.size > 1 else float("nan"),
        min=float(arr.min()), max=float(arr.max()), n_dropped=dropped,
    )


def kruskal_wallis(groups: Mapping[str, Sequence[float]]) -> KruskalResult:
    """Kruskal-Wallis H test across groups (finite values only).

    Raises
    ------
    ValueError
        Fewer than two groups, an empty group, or all values identical.
    """
    from scipy import stats

    samples = [_finite(v)[0] for v in groups.values()]
    if len(samples) < 2:
        raise ValueError("Kruskal-Wallis needs at least two groups")
    if any(s.size == 0 for s in samples):
        raise ValueError("Kruskal-Wallis: a group has no finite values")
    result = stats.kruskal(*samples)
    return KruskalResult(float(result.statistic), float(result.pvalue), len(samples) - 1)


def dunn_test(groups: Mapping[str, Sequence[float]], *, p_adjust: PAdjust = "holm",
              alpha: float = 0.05) -> list[PairwiseResult]:
    """Dunn's pairwise rank test (tie-corrected) via scikit-posthocs, every unordered pair once.

    Parameters
    ----------
    groups : mapping of name -> values
        One entry per method (finite values only are used).
    p_adjust : str
        Multiple-comparison correction over the ``k(k-1)/2`` pairs (statsmodels names: ``"holm"``,
        ``"bonferroni"``, ...).
    alpha : float
        Family-wise significance level applied to the corrected p-values.
    """
    import pandas as pd
    import scikit_posthocs as sp

    names = list(groups)
    frames = [pd.DataFrame({"value": _finite(groups[n])[0], "group": n}) for n in names]
    data = pd.concat(frames, ignore_index=True)
    raw = sp.posthoc_dunn(data, val_col="value", group_col="group", p_adjust=None)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    raw_p = [float(raw.loc[a, b]) for a, b in pairs]
    if p_adjust in ("holm", "bonferroni"):
        adjusted_p = adjust_pvalues(raw_p, p_adjust)
    else:  # other corrections: scikit-posthocs via statsmodels
        adjusted = sp.posthoc_dunn(data, val_col="value", group_col="group", p_adjust=p_adjust)
        adjusted_p = [float(adjusted.loc[a, b]) for a, b in pairs]
    return [PairwiseResult(a, b, p, r, bool(p < alpha)) for (a, b), p, r in zip(pairs, adjusted_p, raw_p, strict=True)]


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Family-wise corrected p-values: Bonferroni (``p * m``) or Holm's step-down, capped at 1.

    Same values as ``statsmodels.stats.multitest.multipletests(p, method=...)[1]`` (which
    scikit-posthocs uses), computed here because that function runs a full garbage collection on
    every call (~0.3 s each).

    Parameters
    ----------
    pvalues : sequence of float
        The m raw p-values of one family of tests, each in [0, 1].
    method : {"holm", "bonferroni"}
        The correction.

    Returns
    -------
    list of float
        Corrected p-values in the input order, each in [0, 1].

    Raises
    ------
    ValueError
        For an unknown ``method``.
    """
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    if method == "bonferroni":
        return [float(v) for v in np.minimum(1.0, p * m)]
    if method != "holm":
        raise ValueError(f"unknown correction {method!r} (holm or bonferroni)")
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = stepped
    return [float(v) for v in out]


def compare_groups(groups: Mapping[str, Sequence[float]], *, metric: str = "", alpha: float = 0.05,
                   p_adjust: PAdjust = "holm", min_samples: int = MIN_SAMPLES) -> MetricStatistics:
    """Summaries for every group; Kruskal-Wallis + Dunn when every group has ``>= min_samples`` values.

    Parameters
    ----------
    groups : mapping of name -> values
        Method name -> one value per image (same image order in every group for the Friedman check).
    metric : str
        Name carried into the result (e.g. ``"ssim"``).
    alpha : float
        Significance level for the corrected Dunn p-values.
    p_adjust : str
        Correction for Dunn's pairs (``"holm"`` default, ``"bonferroni"``).
    min_samples : int
        Smallest group size for which tests are run (default 3).
    """
    summaries = {name: summarize(values) for name, values in groups.items()}
    result = MetricStatistics(metric=metric, groups=list(groups), summaries=summaries, alpha=alpha,
                              p_adjust=p_adjust)
    if len(groups) < 2:
        result.skipped_reason = "fewer than two methods"
        return result
    small = [n for n, s in summaries.items() if s.n < min_samples]
    if small:
        result.skipped_reason = f"fewer than {min_samples} images for {', '.join(small)}"
        return result
    pooled = np.concatenate([_finite(v)[0] for v in groups.values()])
    if np.ptp(pooled) == 0:
        result.skipped_reason = "all values are identical"
        return result
    result.kruskal = kruskal_wallis(groups)
    result.dunn = dunn_test(groups, p_adjust=p_adjust, alpha=alpha)
    result.friedman_pvalue = _friedman(groups)
    return result


def _friedman(groups: Mapping[str, Sequence[float]]) -> float | None:
    """Friedman test p-value over images measured by every method (paired); None when not applicable."""
    from scipy import stats

    columns = [np.asarray([np.nan if v is None else v for v in values], dtype=float) for values in groups.values()]
    if len(columns) < 3 or len({c.size for c in columns}) != 1:
        return None
    matrix = np.stack(columns, axis=1)
    matrix = matrix[np.all(np.isfinite(matrix), axis=1)]
    if matrix.shape[0] < 2:
        return None
    try:
        p = float(stats.friedmanchisquare(*matrix.T).pvalue)
    except ValueError:
        return None
    return p if math.isfinite(p) else None


def format_p(p: float | None) -> str:
    """``"p = 0.012"``, ``"p < 0.001"``, or ``"n/a"``."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return "p < 0.001" if p < 1e-3 else f"p = {p:.3f}"


def significance_stars(p: float) -> str:
    """``***`` p < 0.001, ``**`` < 0.01, ``*`` < 0.05, ``ns`` otherwise."""
    return "***" if p < 1e-3 else "**" if p < 1e-2 else "*" if p < 0.05 else "ns"


# ---------------------------------------------------------------------------------------------
# paired differences (the verdict, engine.evaluate.verdict)
# ---------------------------------------------------------------------------------------------
#: Largest number of non-zero paired differences whose exact sign-flip distribution is enumerated (2^n).
MAX_PERMUTATION_N = 16
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 20260


def rank_biserial(differences: Sequence[float] | np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation ``(T+ - T-) / (T+ + T-)`` of paired differences.

    Parameters
    ----------
    differences : sequence of float
        Paired differences (method - reference), any units; zeros are dropped as in Wilcoxon's test.

    Returns
    -------
    float
        In [-1, 1]; NaN when no difference is non-zero. Ties share their mean rank.
    """
    from scipy.stats import rankdata

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return float("nan")
    ranks = rankdata(np.abs(d))
    plus, minus = float(ranks[d > 0].sum()), float(ranks[d < 0].sum())
    return (plus - minus) / (plus + minus)


def signed_rank_pvalue(differences: Sequence[float] | np.ndarray) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, and how it was computed.

    Parameters
    ----------
    differences : sequence of float
        Paired differences (method - reference); zeros are dropped.

    Returns
    -------
    (float, str)
        The p-value (1.0 when every difference is zero) and ``"exact"`` (no tied absolute
        differences), ``"permutation"`` (exact sign-flip distribution, ties present, at most
        :data:`MAX_PERMUTATION_N` non-zero differences) or ``"normal approximation"``.
    """
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return 1.0, "no non-zero difference"
    tied = np.unique(np.abs(d)).size < d.size
    if not tied and d.size <= 50:
        return float(stats.wilcoxon(d, method="exact").pvalue), "exact"
    if d.size <= MAX_PERMUTATION_N:
        return _sign_flip_pvalue(d), "permutation"
    return float(stats.wilcoxon(d, method="asymptotic", correction=False).pvalue), "normal approximation"


def _sign_flip_pvalue(d: np.ndarray) -> float:
    """Exact two-sided p of ``T+`` (mid-ranks) under all ``2^n`` sign assignments."""
    from scipy.stats import rankdata

    ranks = rankdata(np.abs(d))
    observed = float(ranks[d > 0].sum())
    centre = ranks.sum() / 2.0
    n = d.size
    signs = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float)
    t_plus = signs @ ranks
    extreme = np.abs(t_plus - centre) >= abs(observed - centre) - 1e-9
    return float(extreme.mean())


def median_ci(differences: Sequence[float] | np.ndarray, *, seed: int = BOOTSTRAP_SEED,
              n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the median of paired differences.

    Parameters
    ----------
    differences : sequence of float
        Paired differences (metric units), at least two.
    seed : int
        Seed of the numpy Generator that draws the resamples (same seed, same interval).
    n_resamples : int
        Number of bootstrap resamples.

    Returns
    -------
    (float, float)
        Lower and upper bound, in the differences' units; both equal the value when all are equal.
    """
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return float("nan"), float("nan")
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    result = stats.bootstrap((d,), np.median, n_resamples=n_resamples, method="percentile",
                             confidence_level=0.95, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
