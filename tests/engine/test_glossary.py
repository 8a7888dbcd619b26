"""The metric glossary covers every column the comparison writes, with units and scopes that match the engine."""

from __future__ import annotations

from decongan.engine.evaluate import glossary
from decongan.engine.evaluate.compare import (
    CONSISTENCY_KEYS,
    METRIC_LABELS,
    NO_REFERENCE_KEYS,
    REFERENCE_KEYS,
    SEGMENTATION_KEYS,
)


def test_every_metric_column_has_a_plain_name_a_meaning_and_the_scope_the_engine_measures_it_on():
    for key in (*REFERENCE_KEYS, *NO_REFERENCE_KEYS, *CONSISTENCY_KEYS, *SEGMENTATION_KEYS, "z_plane", "image"):
        term = glossary.TERMS[key]
        assert term.name and term.meaning.endswith(".") and term.name != key
    # evaluate_set: reference metrics and consistency over the whole stack, no-reference/segmentation on one plane
    assert {glossary.TERMS[k].scope for k in (*REFERENCE_KEYS, *CONSISTENCY_KEYS)} == {glossary.WHOLE}
    assert {glossary.TERMS[k].scope for k in (*NO_REFERENCE_KEYS, *SEGMENTATION_KEYS)} == {glossary.FOCUS_PLANE}
    assert set(METRIC_LABELS) <= set(glossary.TERMS)


def test_headers_and_tooltips_say_unit_direction_and_where_measured():
    assert glossary.header("psnr") == "PSNR (dB)"
    assert glossary.header("ssim", stack=True) == "SSIM · whole stack"
    assert glossary.header("cuf", stack=True) == "CUF (cycles/px) · plane z"
    tip = glossary.describe("dc_chi_rms", stack=True)
    assert tip.startswith("normalised residual RMS (chi): ") and "Lower is better." in tip and "whole stack" in tip
    assert "plane z19 only" in glossary.describe("snr", stack=True, plane=19)
    assert "Neither direction" in glossary.describe("cuf")
    assert glossary.describe("unknown_key") == "unknown_key"
