"""The verdict: paired Wilcoxon tests, Holm, median differences, rank-biserial and the sentences,
against values computed by hand or by enumerating every sign assignment."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from decongan.engine.evaluate.stats import median_ci, rank_biserial, signed_rank_pvalue
from decongan.engine.evaluate.verdict import (
    DESCRIBED,
    MIN_FIELDS,
    compare_paired,
    method_family,
    paired_verdict,
)


def enumerated_p(d):
    """Two-sided exact p of the signed-rank statistic by listing all 2^n sign patterns (direct formula)."""
    d = np.asarray(d, float)
    d = d[d != 0]
    order = np.argsort(np.abs(d))
    ranks = np.empty(d.size)
    ranks[order] = np.arange(1, d.size + 1)  # no ties in these examples
    observed = ranks[d > 0].sum()
    centre = ranks.sum() / 2
    t = [sum(r for r, s in zip(ranks, signs, strict=True) if s) for signs in itertools.product([0, 1], repeat=d.size)]
    return np.mean([abs(x - centre) >= abs(observed - centre) for x in t])


@pytest.mark.parametrize(("d", "p", "r"), [
    ([1, 2, 3, 4, 5, 6], 2 / 64, 1.0),                  # all positive: T- = 0, only 2 of 64 patterns as extreme
    ([-1, 2, 3, 4, 5, 6, 7], 4 / 128, 26 / 28),          # T- = 1: T- in {0, 1} on either side
    ([1, -2, 3, -4, 5, -6], 54 / 64, (9 - 12) / 21),     # T+ = 9, T- = 12: balanced, far from significant
    ([0.5, -0.1, 0.3, 0.2, 0.4, 0.6, -0.7, 0.8], None, (2 + 3 + 4 + 5 + 6 + 8 - 1 - 7) / 36),
])
def test_signed_rank_p_and_rank_biserial_match_hand_values(d, p, r):
    got, how = signed_rank_pvalue(d)
    assert how == "exact"
    assert got == pytest.approx(enumerated_p(d), abs=1e-12)
    if p is not None:
        assert got == pytest.approx(p, abs=1e-12)
    assert rank_biserial(d) == pytest.approx(r, abs=1e-12)


def test_tied_differences_use_the_exact_sign_flip_distribution():
    d = [1, 1, 2, 3, -3, 4]  # ranks 1.5, 1.5, 3, 4.5, 4.5, 6: T+ = 16.5 of 21, centre 10.5
    p, how = signed_rank_pvalue(d)
    assert how == "permutation"
    ranks = np.array([1.5, 1.5, 3, 4.5, 4.5, 6])
    t = [ranks[np.array(s, bool)].sum() for s in itertools.product([0, 1], repeat=6)]
    assert p == pytest.approx(np.mean(np.abs(np.array(t) - 10.5) >= 6.0), abs=1e-12)
    assert rank_biserial(d) == pytest.approx((16.5 - 4.5) / 21)


def test_zero_differences_are_dropped_and_all_zero_gives_p_one():
    assert signed_rank_pvalue([0, 0, 0])[0] == 1.0
    assert np.isnan(rank_biserial([0, 0]))
    assert signed_rank_pvalue([0, 1, 2, 3, 4, 5, 6])[0] == pytest.approx(2 / 64)


def test_bootstrap_interval_is_seeded_and_brackets_the_median():
    d = np.array([0.010, 0.014, 0.015, 0.017, 0.021, 0.012, 0.019, 0.016])
    low, high = median_ci(d)
    assert (low, high) == median_ci(d)  # same seed, same interval
    assert low <= np.median(d) <= high and d.min() <= low and high <= d.max()
    assert median_ci([0.3] * 7) == (0.3, 0.3)  # no spread, no interval width


def test_holm_corrected_verdict_on_a_table_of_13_fields():
    """GAN > Gaussian on every field by a known amount; RL lower than Gaussian everywhere; RL vs LQ mixed."""
    rng = np.random.default_rng(3)
    n = 13
    lq = rng.uniform(0.6, 0.7, n)
    gaussian = lq + 0.25 + rng.uniform(0, 0.01, n)
    gan = gaussian + 0.010 + 0.001 * np.arange(n)  # differences 0.010 .. 0.022, median 0.016
    rl = lq + np.array([0.05, -0.04, 0.03, -0.06, 0.02, -0.01, 0.07, -0.08, 0.015, -0.025, 0.035, -0.045, 0.001])
    rows = []
    for i in range(n):
        for name, v in (("LQ (input)", lq), ("RL 20 it (engine)", rl), ("Gaussian 1.5 px", gaussian), ("S1", gan)):
            rows.append({"image": f"f{i}", "method": name, "channel": 0, "ssim": float(v[i])})
    families = {"LQ (input)": "input", "RL 20 it (engine)": "classical", "Gaussian 1.5 px": "classical", "S1": "learned"}
    verdict = paired_verdict(rows, families)
    assert verdict.primary_metric == "ssim" and verdict.best_classical == "Gaussian 1.5 px"
    assert verdict.best_median == pytest.approx(np.median(gaussian))
    got = {(c.method, c.reference): c for c in verdict.comparisons}
    assert set(got) == {("RL 20 it (engine)", "Gaussian 1.5 px"), ("S1", "Gaussian 1.5 px"), ("RL 20 it (engine)", "LQ (input)"),
                        ("Gaussian 1.5 px", "LQ (input)"), ("S1", "LQ (input)")}
    # the Holm family is the product's question: S1 vs the best classical baseline, S1 vs the input, and that
    # baseline vs the input; RL against the others is described (median, interval), not tested
    family = [("S1", "Gaussian 1.5 px"), ("S1", "LQ (input)"), ("Gaussian 1.5 px", "LQ (input)")]
    raw = {k: enumerated_p(_diff(rows, *k)) for k in family}
    order = sorted(raw, key=raw.get)
    holm = {}
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, raw[k] * (3 - i)))
        holm[k] = running
    for k in family:
        c = got[k]
        assert c.pvalue_raw == pytest.approx(raw[k], abs=1e-12) and c.pvalue == pytest.approx(holm[k], abs=1e-12)
    s1 = got[("S1", "Gaussian 1.5 px")]
    assert s1.median_difference == pytest.approx(0.016) and s1.rank_biserial == 1.0 and s1.n == 13
    assert s1.pvalue == pytest.approx(min(1.0, 2 / 2 ** 13 * 3))
    assert verdict.comparisons[0] is s1  # the GAN against the best classical baseline comes first
    assert s1.sentence.startswith("S1 is higher (better) than Gaussian 1.5 px by 0.016 SSIM (median paired difference "
                                  "over 13 fields, 95 % CI 0.01")
    assert s1.sentence.endswith("; Wilcoxon p < 0.001, Holm).")  # 3 x 2 / 2^13 = 0.00073
    for k in [("RL 20 it (engine)", "Gaussian 1.5 px"), ("RL 20 it (engine)", "LQ (input)")]:
        c = got[k]
        assert c.pvalue is None and c.pvalue_raw is None and c.test == DESCRIBED
        assert c.median_difference == pytest.approx(float(np.median(_diff(rows, *k))))
        assert c.ci_low <= c.median_difference <= c.ci_high
        assert "described, not tested" in c.sentence and c.sentence not in verdict.headline
    rl_lq = got[("RL 20 it (engine)", "LQ (input)")]
    assert rl_lq.sentence == ("RL 20 it (engine) vs LQ (input) in SSIM: RL 20 it (engine) is higher on 7 of 13 fields "
                              "(median paired difference +0.0010 SSIM, 95 % CI -0.0400 to 0.0300); described, not tested "
                              "(the tests answer whether the learned methods beat the best classical baseline and the input).")
    assert verdict.notes == []  # 13 fields are enough for 3 comparisons
    assert f"Best classical baseline: Gaussian 1.5 px (best median SSIM, {np.median(gaussian):.3g})." in verdict.headline and s1.sentence in verdict.headline


def test_without_learned_methods_every_pair_is_tested():
    rng = np.random.default_rng(5)
    n = 8
    lq = rng.uniform(0.6, 0.7, n)
    rows = [{"image": f"f{i}", "method": name, "channel": 0, "ssim": float(v[i])}
            for i in range(n) for name, v in (("LQ (input)", lq), ("TV", lq + 0.2 + 0.01 * np.arange(n)),
                                               ("Gaussian", lq + 0.1 + 0.01 * rng.uniform(size=n)))]
    verdict = paired_verdict(rows, {"LQ (input)": "input", "TV": "classical", "Gaussian": "classical"})
    assert verdict.best_classical == "TV"
    assert {(c.method, c.reference) for c in verdict.comparisons} == {("Gaussian", "TV"), ("TV", "LQ (input)"),
                                                                    ("Gaussian", "LQ (input)")}
    # three tests, each one-signed over 8 fields: raw 2/2^8, Holm x3, x2, x1 -> all 3 x 2/256 after the running max
    assert all(c.pvalue == pytest.approx(3 * 2 / 2 ** 8) for c in verdict.comparisons)

def _diff(rows, method, reference):
    a = [r["ssim"] for r in rows if r["method"] == method]
    b = [r["ssim"] for r in rows if r["method"] == reference]
    return np.array(a) - np.array(b)


def test_too_few_fields_is_said_and_no_test_is_run():
    c = compare_paired([0.9, 0.91, 0.95], [0.88, 0.9, 0.9], metric="ssim", method="S1", reference="RL",
                       higher_is_better=True)
    assert c.pvalue is None and np.isnan(c.ci_low) and c.median_difference == pytest.approx(0.02)  # differences 0.02, 0.01, 0.05
    from decongan.engine.evaluate.verdict import sentence

    assert sentence(c) == (f"S1 vs RL in SSIM: too few fields (n=3 < {MIN_FIELDS}) for a test; the median paired "
                           "difference +0.020 is descriptive only.")


def test_lower_is_better_metric_and_a_missing_value_leave_the_pair_out():
    a = [0.10, 0.11, 0.12, 0.10, 0.09, 0.13, None]
    b = [0.20, 0.22, 0.25, 0.21, 0.19, 0.24, 0.30]
    c = compare_paired(a, b, metric="nrmse", method="S1", reference="RL", higher_is_better=False)
    assert c.n == 6 and c.pvalue_raw == pytest.approx(2 / 64) and c.rank_biserial == -1.0
    from decongan.engine.evaluate.verdict import sentence

    text = sentence(c)
    assert text.startswith("S1 is lower (better) than RL by 0.11 NRMSE (median paired difference over 6 fields, 95 % CI")
    assert text.endswith("Wilcoxon p = 0.031, Holm).")


def test_method_families():
    assert method_family("S1", "restored", "engine/cpu", {"run_dir": "/runs/s1", "generator": "unet"}) == "learned"
    assert method_family("RL 20 it (zero edges)", "restored", "engine/cpu", {"iterations": 20}) == "classical"
    assert method_family("RL (Fiji)", "restored", "fiji:/opt/Fiji.app", {}) == "classical"
    assert method_family("NLM h=0.8", "restored", "engine", {"kind": "denoise"}) == "classical"
    assert method_family("Gaussian 1.5 px", "restored", "file", {}) == "classical"
    assert method_family("tuned A", "restored", "engine/cpu", {"baseline": {"method": "nlm", "kind": "denoise"}}) == "classical"
    assert method_family("mystery.tif", "restored", "file", {"path": "x.tif"}) == "other"
    assert method_family("LQ (input)", "input") == "input" and method_family("GT", "reference") == "reference"


def test_without_ground_truth_the_verdict_says_no_method_can_be_called_better():
    rows = [{"image": f"f{i}", "method": m, "channel": 0, "ssim": None, "snr": 3.0} for i in range(8) for m in ("LQ (input)", "S1")]
    verdict = paired_verdict(rows, {"LQ (input)": "input", "S1": "learned"})
    assert verdict.comparisons == [] and verdict.best_classical is None
    assert verdict.headline.startswith("No ground truth: no reference metric")


def test_planes_of_one_stack_are_described_without_a_significance_claim():
    rows = [{"image": f"z{z:02d}", "method": m, "channel": 0, "ssim": v}
            for z in range(13) for m, v in (("RL 10 it", 0.60 + 0.001 * z), ("S1 GAN", 0.62 + (0.001 * z if z != 4 else -0.1)))]
    verdict = paired_verdict(rows, {"RL 10 it": "classical", "S1 GAN": "learned"}, unit="planes", independent=False)
    (c,) = verdict.comparisons
    assert c.pvalue is None and np.isnan(c.ci_low) and c.n == 13
    assert c.sentence == ("S1 GAN vs RL 10 it in SSIM: S1 GAN is higher on 12 of 13 planes (median paired difference "
                          "+0.020); the planes come from one stack and are not independent samples, so no significance "
                          "test is claimed.")


def test_too_few_fields_for_the_number_of_comparisons_is_said():
    """7 fields, all better, 5 comparisons: raw p = 2/128, Holm 5 x 2/128 = 0.078 -- not significant, and why."""
    rows = [{"image": f"f{i}", "method": m, "channel": 0, "ssim": v}
            for i in range(7) for m, v in (("LQ (input)", 0.7 + 0.01 * i), ("Gaussian", 0.90 + 0.011 * i),
                                          ("NLM", 0.91 + 0.012 * i), ("TV", 0.93 + 0.013 * i))]
    verdict = paired_verdict(rows, {"LQ (input)": "input", "Gaussian": "classical", "NLM": "classical", "TV": "classical"})
    assert verdict.best_classical == "TV" and len(verdict.comparisons) == 5
    tv = next(c for c in verdict.comparisons if (c.method, c.reference) == ("TV", "LQ (input)"))
    assert tv.pvalue_raw == pytest.approx(2 / 128) and tv.pvalue == pytest.approx(5 * 2 / 128)
    assert tv.sentence == ("No significant difference in SSIM between TV and LQ (input) on these 7 fields "
                           "(Wilcoxon p = 0.078, Holm; TV higher on 7 of 7; median paired difference +0.24 SSIM, "
                           f"95 % CI {tv.ci_low:.2f} to {tv.ci_high:.2f}).")
    # differences 0.230 + 0.003 i (i = 0..6): median 0.239; the bootstrap interval of the median lies within them
    assert tv.median_difference == pytest.approx(0.239)
    assert 0.230 - 1e-9 <= tv.ci_low < 0.239 < tv.ci_high <= 0.248 + 1e-9
    assert verdict.notes == ["With 7 fields and 5 comparisons per metric, no difference can reach p < 0.05 after Holm's "
                             "correction (smallest possible p = 0.078); at least 8 fields are needed."]


def test_equal_pairs_are_not_counted_as_lower():
    from decongan.engine.evaluate.verdict import sentence

    c = compare_paired([1.0, 1.0, 1.0, 0.9, 1.0, 1.0, 0.8], [1.0, 1.0, 0.9, 1.0, 1.0, 1.0, 1.0], metric="seg_f1",
                       method="TV", reference="LQ (input)", higher_is_better=True)
    assert (c.n_higher, c.n_lower, c.n) == (1, 2, 7)
    # non-zero d: +0.1, -0.1, -0.2 -> mid-ranks 1.5, 1.5, 3; T+ = 1.5; 6 of the 8 sign patterns are as extreme
    # differences 0, 0, +0.1, -0.1, 0, 0, -0.2: median 0; resampled medians lie between -0.1 and 0
    assert sentence(c).endswith("(Wilcoxon p = 0.75, Holm; TV higher on 1, lower on 2 of 7; median paired difference "
                                "0.000 segmentation object F1, 95 % CI -0.100 to 0.000).")
