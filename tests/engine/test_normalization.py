"""Percentile normalisation: known percentiles, exact inversion, 16-bit range kept, channel rules."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.io import read_image
from decongan.engine.learn.normalization import (
    ChannelNorm,
    NormalizationConfig,
    fit_normalization,
    percentile_norm,
)


def test_percentiles_of_a_known_ramp():
    norm = percentile_norm(np.arange(1001, dtype=np.uint16), p_low=1.0, p_high=99.8)
    assert norm.low == pytest.approx(10.0)
    assert norm.high == pytest.approx(998.0)
    np.testing.assert_allclose(norm.normalize(np.array([10.0, 998.0, 504.0])), [0.0, 1.0, 0.5], atol=1e-6)


def test_sixteen_bit_round_trip_keeps_the_range_and_does_not_clip():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 65536, size=(128, 128), dtype=np.uint16)
    data[0, 0], data[0, 1] = 0, 65535  # beyond the percentiles: must survive
    norm = percentile_norm(data)
    back = norm.denormalize(norm.normalize(data))
    assert back.dtype == np.float32
    assert float(back.max()) == pytest.approx(65535.0, abs=0.02)
    assert float(back.min()) == pytest.approx(0.0, abs=0.02)
    np.testing.assert_allclose(back, data, atol=0.02)
    assert np.unique(np.round(back)).size > 256  # no 8-bit bottleneck


def test_pooled_dataset_percentiles_per_channel_from_real_images(shared_data):
    folder = shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"
    lq = [read_image(folder / "lq" / f"fov0{i}.png").data for i in (1, 2)]
    hq = [read_image(folder / "hq" / f"fov0{i}.png").data for i in (1, 2)]
    config = fit_normalization([lq], [hq], mode="dataset")
    pooled_lq = np.concatenate([a.ravel() for a in lq]).astype(np.float64)
    assert config.lq[0].low == pytest.approx(np.percentile(pooled_lq, 1.0))
    assert config.lq[0].high == pytest.approx(np.percentile(pooled_lq, 99.8))
    # dataset mode: LQ parameters in, HQ parameters out, whatever the plane
    assert config.input_norm(lq[0]) == config.lq[0]
    assert config.output_norm(config.input_norm(lq[0])) == config.hq[0]


def test_per_image_mode_uses_the_planes_own_percentiles_and_inverts_with_them():
    config = NormalizationConfig(mode="per_image", lq=[ChannelNorm(low=0, high=1)], hq=[ChannelNorm(low=5, high=9)])
    plane = np.linspace(100, 1100, 1001, dtype=np.float32).reshape(7, 143)
    params = config.input_norm(plane)
    assert params.low == pytest.approx(110.0) and params.high == pytest.approx(1098.0)
    assert config.output_norm(params) == params


def test_channel_parameters_are_picked_per_channel_and_mismatch_is_explained():
    two = NormalizationConfig(lq=[ChannelNorm(low=0, high=10), ChannelNorm(low=100, high=300)],
                              hq=[ChannelNorm(low=0, high=1), ChannelNorm(low=0, high=2)])
    assert two.input_norm(np.zeros((4, 4)), channel=1).low == 100
    with pytest.raises(ValueError, match="trained on 2 channels but channel 2") as err:
        two.input_norm(np.zeros((4, 4)), channel=2)
    assert str(err.value).endswith("or retrain with per-image normalization")  # in words, no command-line option
    one = NormalizationConfig(lq=[ChannelNorm(low=3, high=4)], hq=[ChannelNorm(low=0, high=1)])
    assert one.input_norm(np.zeros((4, 4)), channel=5).low == 3  # one channel's parameters serve all


def test_constant_image_stays_invertible():
    norm = percentile_norm(np.full((8, 8), 42.0))
    assert norm.span == 1.0
    np.testing.assert_allclose(norm.denormalize(norm.normalize(np.full((2, 2), 42.0))), 42.0)


def test_bad_percentiles_are_rejected():
    with pytest.raises(ValueError, match="p_low < p_high"):
        percentile_norm(np.arange(10), p_low=50, p_high=10)
    with pytest.raises(ValueError):
        NormalizationConfig(p_low=99.0, p_high=1.0)


def test_config_round_trips_through_json():
    config = fit_normalization([[np.arange(100.0)]], [[np.arange(200.0)]], mode="per_image", p_low=2, p_high=98)
    again = NormalizationConfig.model_validate_json(config.model_dump_json())
    assert again == config and again.mode == "per_image" and again.hq[0].high == pytest.approx(195.02)
