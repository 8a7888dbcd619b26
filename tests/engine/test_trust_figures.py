"""Split-half and models/seeds figures (engine.evaluate.figures.trust), drawn from real maps of an FMD crop: each
panel prints the flagged fraction its metric column holds, and the caption states how the map was made."""

from __future__ import annotations

import pytest

from decongan.engine.evaluate.compare import build_comparison_set, evaluate_set
from decongan.engine.evaluate.figures import ensemble_figure, flagged_label, split_half_figure
from decongan.engine.evaluate.trust_maps import (
    ENSEMBLE_KEY,
    SPLIT_HALF_KEY,
    attach_ensemble_disagreement,
    attach_split_half,
    split_half_image,
)
from decongan.engine.io import read_image
from decongan.engine.optics.classical import BaselineSpec, restore_image
from tests.fmd_pairs import FMD


def _panel_labels(cf):
    return [ax.get_xlabel() for ax in cf.figure.axes if ax.get_label() == "panel" and ax.get_xlabel()]


@pytest.fixture
def fmd_crop(shared_data):
    lq = read_image(shared_data / FMD / "lq" / "fov05.png")
    return lq.with_data(lq.data[160:256, 160:256])


def test_split_half_figure_draws_the_columns_flagged_fraction(fmd_crop):
    spec = BaselineSpec("gaussian", {"sigma_px": 1.5})
    cset = build_comparison_set("fov05", fmd_crop, restored={"Gaussian": restore_image(spec, fmd_crop)})
    evaluation = evaluate_set(cset, consistency=False, no_reference=False)
    with pytest.raises(ValueError, match="no split half maps"):
        split_half_figure([evaluation])
    maps = split_half_image(fmd_crop, lambda im: restore_image(spec, im), name="Gaussian", seed=3)
    attach_split_half(evaluation, "Gaussian", maps)
    row = next(r for r in evaluation.rows if r["method"] == "Gaussian")
    cf = split_half_figure([evaluation])
    assert row[SPLIT_HALF_KEY] == maps[0].flagged_fraction
    assert _panel_labels(cf) == [flagged_label(row[SPLIT_HALF_KEY])]
    assert cf.info["flagged_fraction"] == {"fov05 / Gaussian": row[SPLIT_HALF_KEY]}
    cal = maps[0].parameters["calibration"]
    assert cf.info["calibration"] == {"fov05": cal}
    assert f"fov05: gain {cal['gain']:.4g}, offset {cal['offset']:.4g}" in cf.caption
    assert "Thinning seed 3." in cf.caption and "beyond threshold 5 " in cf.caption
    assert f"fov05 / Gaussian {maps[0].parameters['noise_floor']:.4g}" in cf.caption
    assert "not whether it is correct" in cf.caption


def test_ensemble_figure_draws_the_groups_flagged_fraction(fmd_crop):
    restored = {f"Gaussian {s}": restore_image(BaselineSpec("gaussian", {"sigma_px": s}), fmd_crop) for s in (1.0, 3.0)}
    cset = build_comparison_set("fov05", fmd_crop, restored=restored)
    evaluation = evaluate_set(cset, consistency=False, no_reference=False)
    result = attach_ensemble_disagreement(evaluation, list(restored))[0]
    assert result.flagged_fraction > 0.01  # sigma 1 vs 3 px: the edges of every nucleus differ beyond noise
    cf = ensemble_figure([evaluation])
    assert _panel_labels(cf) == [flagged_label(result.flagged_fraction)]
    assert cf.info["flagged_fraction"] == {"fov05 / Gaussian 1.0, Gaussian 3.0": result.flagged_fraction}
    members = {r["method"]: r[ENSEMBLE_KEY] for r in evaluation.rows if ENSEMBLE_KEY in r}
    assert members == dict(zip(restored, result.member_fractions, strict=True))
    assert "Agreement is not correctness" in cf.caption
