"""Statistics: summaries, Kruskal-Wallis and Dunn (Holm) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from decongan.engine.evaluate.stats import (
    compare_groups,
    dunn_test,
    format_p,
    kruskal_wallis,
    significance_stars,
    summarize,
)

GROUPS = {
    "LQ (input)": [0.61, 0.55, 0.70, 0.58, 0.66],
    "RL": [0.72, 0.69, 0.80, 0.74, 0.70],  # 0.70 ties with LQ
    "GAN": [0.88, 0.85, 0.91, 0.83, 0.90],
}


def _hand_dunn_holm(groups: dict[str, list[float]]) -> dict[tuple[str, str], tuple[float, float]]:
    """Dunn (1964) z with the tie correction, two-sided normal p, Holm step-down; by hand."""
    names = list(groups)
    values = np.concatenate([groups[n] for n in names])
    ranks = sst.rankdata(values)
    n_total = values.size
    _, counts = np.unique(values, return_counts=True)
    ties = float(np.sum(counts ** 3 - counts))
    sizes = [len(groups[n]) for n in names]
    bounds = np.cumsum([0, *sizes])
    mean_rank = {n: ranks[bounds[i]:bounds[i + 1]].mean() for i, n in enumerate(names)}
    raw = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            var = (n_total * (n_total + 1) / 12.0 - ties / (12.0 * (n_total - 1))) * (1 / len(groups[a]) + 1 / len(groups[b]))
            z = abs(mean_rank[a] - mean_rank[b]) / math.sqrt(var)
            raw[(a, b)] = 2 * (1 - sst.norm.cdf(z))
    order = sorted(raw, key=raw.get)
    m = len(order)
    adjusted, running = {}, 0.0
    for k, pair in enumerate(order):
        running = max(running, min(1.0, raw[pair] * (m - k)))
        adjusted[pair] = running
    return {pair: (adjusted[pair], raw[pair]) for pair in raw}


def test_summary_matches_numpy_and_drops_nonfinite():
    values = [3.0, 1.0, float("nan"), 4.0, 1.5, float("inf"), 9.0, None]
    s = summarize(values)
    finite = np.array([3.0, 1.0, 4.0, 1.5, 9.0])
    assert s.n == 5 and s.n_dropped == 3
    assert s.median == pytest.approx(3.0)
    assert s.q1 == pytest.approx(1.5) and s.q3 == pytest.approx(4.0)
    assert s.iqr == pytest.approx(2.5)
    assert s.std == pytest.approx(finite.std(ddof=1))
    assert math.isnan(summarize([]).median)


def test_kruskal_wallis_equals_hand_formula_with_ties():
    names = list(GROUPS)
    values = np.concatenate([GROUPS[n] for n in names])
    ranks = sst.rankdata(values)
    n = values.size
    h = 12.0 / (n * (n + 1)) * sum(ranks[5 * i:5 * i + 5].sum() ** 2 / 5 for i in range(3)) - 3 * (n + 1)
    _, counts = np.unique(values, return_counts=True)
    h /= 1 - np.sum(counts ** 3 - counts) / (n ** 3 - n)
    result = kruskal_wallis(GROUPS)
    assert result.statistic == pytest.approx(h, rel=1e-12)
    assert result.pvalue == pytest.approx(sst.chi2.sf(h, 2), rel=1e-12)
    assert result.dof == 2


def test_dunn_holm_equals_hand_computation():
    expected = _hand_dunn_holm(GROUPS)
    pairs = dunn_test(GROUPS, p_adjust="holm")
    assert len(pairs) == 3
    for pair in pairs:
        adjusted, raw = expected[(pair.group_a, pair.group_b)]
        assert pair.pvalue_raw == pytest.approx(raw, rel=1e-9)
        assert pair.pvalue == pytest.approx(adjusted, rel=1e-9)
        assert pair.significant == (adjusted < 0.05)
    # GAN vs LQ is the one clear difference at this sample size
    by_pair = {(p.group_a, p.group_b): p for p in pairs}
    assert by_pair[("LQ (input)", "GAN")].significant
    assert not by_pair[("LQ (input)", "RL")].significant


def test_bonferroni_is_raw_times_number_of_pairs():
    pairs = dunn_test(GROUPS, p_adjust="bonferroni")
    for pair in pairs:
        assert pair.pvalue == pytest.approx(min(1.0, 3 * pair.pvalue_raw), rel=1e-9)


def test_compare_groups_runs_tests_only_with_enough_images():
    full = compare_groups(GROUPS, metric="ssim")
    assert full.skipped_reason is None and full.kruskal is not None and len(full.dunn) == 3
    assert full.friedman_pvalue == pytest.approx(sst.friedmanchisquare(*GROUPS.values()).pvalue)
    assert [p.group_b for p in full.significant_pairs] == ["GAN"]
    small = compare_groups({k: v[:2] for k, v in GROUPS.items()}, metric="ssim")
    assert small.kruskal is None and small.dunn == []
    assert "fewer than 3 images" in small.skipped_reason
    flat = compare_groups({"a": [1.0] * 3, "b": [1.0] * 3}, metric="psnr")
    assert flat.skipped_reason == "all values are identical"
    d = full.as_dict()
    assert d["summaries"]["GAN"]["median"] == pytest.approx(0.88)


def test_holm_and_bonferroni_equal_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from decongan.engine.evaluate.stats import adjust_pvalues

    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04]
    for method in ("holm", "bonferroni"):
        np.testing.assert_allclose(adjust_pvalues(p, method), multipletests(p, method=method)[1], rtol=1e-12)
    other = dunn_test(GROUPS, p_adjust="holm-sidak")  # delegated to scikit-posthocs / statsmodels
    assert all(o.pvalue >= o.pvalue_raw for o in other)


def test_formatting():
    assert format_p(0.0004) == "p < 0.001"
    assert format_p(0.0123) == "p = 0.012"
    assert format_p(None) == "n/a"
    assert [significance_stars(p) for p in (0.0001, 0.005, 0.03, 0.2)] == ["***", "**", "*", "ns"]
