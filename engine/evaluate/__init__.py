"""Evaluation: comparisons (LQ | classical | GAN | GT), data consistency, statistics, figures,
reports and batches. Restorations come in as callables, so this package never runs a backend itself.

Checked in tests/engine/test_compare.py, test_consistency.py, test_stats.py, test_figures.py,
test_report.py and test_batch.py. Public names resolve lazily.
"""

from decongan.engine._lazy import lazy_api

_API = {
    "ComparisonError": "compare", "ComparisonSet": "compare", "build_comparison_set": "compare",
    "evaluate_set": "compare", "focus_plane": "compare", "match_dataset": "dataset", "iter_evaluate_fields": "dataset",
    "ConsistencyResult": "consistency", "data_consistency": "consistency",
    "DisagreementResult": "disagreement", "DisagreementError": "disagreement", "disagreement_map": "disagreement",
    "split_half_map": "split_half", "estimate_photon_calibration": "split_half", "SplitHalfError": "split_half",
    "split_half_image": "trust_maps", "attach_split_half": "trust_maps",
    "compare_groups": "stats", "summarize": "stats",
    "Verdict": "verdict", "paired_verdict": "verdict", "families_of": "verdict",
    "comparison_figure": "figures", "save_figure": "figures",
    "write_comparison_outputs": "report",
    "BatchError": "batch", "MethodSpec": "batch", "iter_batch": "batch",
    "iter_tune": "tuning", "load_tuned": "tuning", "calibration_overlap": "tuning", "default_tuning": "tuning",
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_api(__name__, _API, globals())
