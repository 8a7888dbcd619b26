"""Input-domain record and check of learned models: statistics against hand-computed values, the
bundled nucleus model against FMD (warned) and its own stack (not warned), limits at their edges."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from decongan.engine.io import read_image
from decongan.engine.learn.checkpoint.layout import load_run_config, save_run_config
from decongan.engine.learn.domain import (
    DOMAIN_NAME,
    DomainError,
    check_domain,
    derive_domain,
    load_domain,
    measure_domain,
    record_training_domain,
    save_domain,
)
from decongan.engine.learn.normalization import ChannelNorm, NormalizationConfig
from decongan.engine.learn.training.data import prepare_training_data
from decongan.resources import __file__ as resources_init
from tests.fmd_pairs import FMD, write_fmd_pairs

BUNDLED = Path(resources_init).parent / "models" / "s1_neubias_nucleus"
SAMPLE = Path(resources_init).parent / "samples" / "neubias_nucleus" / "lq" / "nucleus_widefield.tif"


def test_measured_statistics_equal_hand_computed_percentiles_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    planes = [rng.uniform(100, 1100, size=(64, 64)) for _ in range(3)]
    norm = ChannelNorm(p_low=1.0, p_high=99.8, low=100.0, high=1100.0)
    config = NormalizationConfig(mode="dataset", lq=[norm], hq=[norm])
    domain = measure_domain([(0, p, norm) for p in planes], normalization=config, pixel_size_um=0.1)
    pooled = np.concatenate([p.ravel() for p in planes]).astype(np.float64)
    channel = domain.channels[0]
    assert channel.n_planes == 3 and domain.pixel_size_um == 0.1 and not domain.derived
    assert channel.raw.percentiles["50"] == pytest.approx(np.percentile(pooled, 50))
    assert channel.raw.percentiles["99.9"] == pytest.approx(np.percentile(pooled, 99.9))
    assert channel.raw.mean == pytest.approx(pooled.mean()) and channel.raw.std == pytest.approx(pooled.std())
    assert channel.network.percentiles["1"] == pytest.approx((np.percentile(pooled, 1) - 100) / 1000, abs=1e-6)
    assert sum(channel.log_histogram) == pytest.approx(1.0)
    assert channel.reference_outside == pytest.approx(0.002, abs=0.001)  # outside [p0.1, p99.9] of itself
    (tmp_path / "config.json").write_text("{}")
    save_domain(tmp_path, domain)
    assert load_domain(tmp_path) == domain
    (tmp_path / DOMAIN_NAME).write_text("{not json")
    with pytest.raises(DomainError, match="invalid domain record"):
        load_domain(tmp_path)


def test_bundled_model_warns_on_fmd_and_not_on_its_own_stack(shared_data):
    fmd = read_image(shared_data / FMD / "lq" / "fov01.png")
    check = check_domain(BUNDLED, fmd)
    assert any("100 % of the image's pixels (100 % below" in w for w in check.warnings), check.warnings
    assert any("dynamic range (1-99.8 percentile) is 0.03 " in w for w in check.warnings), check.warnings
    assert any("states no pixel size" in w for w in check.warnings)
    assert any("derived from config.json" in n for n in check.notes)
    stack = read_image(SAMPLE)
    for z in range(stack.n_z):  # training planes and the held-out middle planes alike
        plane = check_domain(BUNDLED, stack.select(z=z))
        assert plane.warnings == [], (z, plane.warnings)
        assert plane.measurements["channel 0 outside fraction"] < 0.07


def test_pixel_size_limits_are_0_8_and_1_25():
    stack = read_image(SAMPLE).select(z=20)
    trained = load_run_config(BUNDLED).pixel_size_um
    assert check_domain(BUNDLED, stack, pixel_size_um=0.81 * trained).warnings == []
    assert check_domain(BUNDLED, stack, pixel_size_um=1.24 * trained).warnings == []
    assert "0.79x the training pixel size" in check_domain(BUNDLED, stack, pixel_size_um=0.79 * trained).warnings[0]
    assert "1.26x" in check_domain(BUNDLED, stack, pixel_size_um=1.26 * trained).warnings[0]


def test_derived_per_image_run_checks_pixel_size_only(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(BUNDLED, run, ignore=shutil.ignore_patterns("best"))
    config = load_run_config(run)
    save_run_config(run, config.model_copy(update={"normalization": config.normalization.model_copy(
        update={"mode": "per_image"})}))
    domain = derive_domain(load_run_config(run))
    assert domain.derived and domain.channels == [] and "pixel size only" in domain.source
    check = check_domain(run, np.full((32, 32), 5.0))
    assert any("intensity not checked" in n for n in check.notes)
    assert [w for w in check.warnings if "pixel size" not in w] == []


def test_training_records_the_domain_it_measured(shared_data, tmp_path):
    lq_dir, hq_dir = write_fmd_pairs(shared_data, tmp_path / "data", start=100, size=96)
    data = prepare_training_data(lq_dir=lq_dir, hq_dir=hq_dir, paired=True, patch_size=32, seed=0,
                                 val_names=["fov03"])
    run = tmp_path / "run"
    run.mkdir()
    path = record_training_domain(run, data)
    record = json.loads(path.read_text())
    assert record["source"] == "measured on the 2 training input plane(s)" and record["pixel_size_um"] == 0.2
    pooled = np.concatenate([read_image(lq_dir / f"{n}.tif").data.ravel() for n in ("fov01", "fov02")])
    assert record["channels"][0]["raw"]["percentiles"]["99"] == pytest.approx(np.percentile(pooled, 99), rel=1e-6)
    assert record["channels"][0]["raw"]["mean"] == pytest.approx(pooled.mean(), rel=1e-6)
    # the held-out field from the same microscope is inside the domain; the bundled widefield stack is not
    shutil.copy(BUNDLED / "config.json", run / "config.json")  # any config: the record decides
    config = load_run_config(run)
    save_run_config(run, config.model_copy(update={"normalization": data.normalization, "pixel_size_um": 0.2}))
    held_out = read_image(lq_dir / "fov03.tif")
    assert check_domain(run, held_out).warnings == []
    widefield = read_image(SAMPLE).select(z=20)
    warnings = check_domain(run, widefield, pixel_size_um=0.2).warnings
    assert len(warnings) == 2 and "above" in warnings[0] and "dynamic range" in warnings[1], warnings


@pytest.mark.slow  # 14 s: one S1 iteration and a validation on 2 cores
@pytest.mark.usefixtures("one_torch_thread")
def test_a_training_run_writes_its_domain_and_predict_checks_against_it(shared_data, tmp_path):
    from decongan.engine.learn.inference import load_model
    from decongan.engine.learn.training import TrainConfig, train

    lq_dir, hq_dir = write_fmd_pairs(shared_data, tmp_path / "data", start=200, size=96)
    out = tmp_path / "run"
    options = {"preset": "s1", "lq_dir": lq_dir, "hq_dir": hq_dir, "out": out, "patch_size": 32, "batch_size": 2,
               "val_every": 1, "val_names": ["fov03"], "device": "cpu", "seed": 0,
               "model_args": {"base_channels": 4, "depth": 2}, "disc_args": {"base_channels": 4, "num_blocks": 2}}
    train(TrainConfig(**options, iterations=1))
    domain = load_domain(out)
    assert domain.source == "measured on the 2 training input plane(s)" and domain.pixel_size_um == 0.2
    # a run made before domain records gets one when it is resumed
    (out / DOMAIN_NAME).unlink()
    assert load_domain(out).derived
    train(TrainConfig(**options, iterations=2, resume=True))
    assert load_domain(out) == domain
    model = load_model(out)
    assert check_domain(model, read_image(lq_dir / "fov03.tif")).warnings == []
    warnings = check_domain(model, read_image(SAMPLE).select(z=20)).warnings
    assert any("2.56x the training pixel size" in w for w in warnings), warnings
    assert any("outside the training inputs' 0.1-99.9 percentile range" in w for w in warnings), warnings


def test_each_channel_is_checked_against_its_own_training_channel(tmp_path):
    from decongan.engine.io import MicroscopyImage

    rng = np.random.default_rng(1)
    norms = [ChannelNorm(low=100.0, high=1100.0), ChannelNorm(low=10.0, high=60.0)]
    config = NormalizationConfig(mode="dataset", lq=norms, hq=norms)
    planes = [(c, rng.uniform(*((100, 1100) if c == 0 else (10, 60)), size=(64, 64)), norms[c])
              for c in (0, 1) for _ in range(2)]
    run = tmp_path / "run"
    shutil.copytree(BUNDLED, run, ignore=shutil.ignore_patterns("best"))
    save_run_config(run, load_run_config(run).model_copy(update={"normalization": config, "pixel_size_um": 0.1}))
    save_domain(run, measure_domain(planes, normalization=config, pixel_size_um=0.1))
    inside = np.stack([rng.uniform(100, 1100, (64, 64)), rng.uniform(10, 60, (64, 64))])
    assert check_domain(run, MicroscopyImage(inside, "CYX", pixel_size_um=0.1)).warnings == []
    swapped = MicroscopyImage(inside[::-1].copy(), "CYX", pixel_size_um=0.1)  # channels in the other order
    warnings = check_domain(run, swapped).warnings
    assert any(w.startswith("channel 0: 100 % of the image's pixels (100 % below") for w in warnings), warnings
    assert any(w.startswith("channel 1: 100 % of the image's pixels (0 % below, 100 % above") for w in warnings)
