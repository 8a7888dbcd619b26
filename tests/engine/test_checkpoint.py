"""Run folders: safetensors + weights_only round trips, atomic replacement and recovery, load_generator."""

from __future__ import annotations

import json
import os

import pytest
import torch

from decongan.engine.learn.checkpoint import (
    RunConfig,
    RunError,
    append_progress,
    checkpoint_dir,
    load_checkpoint,
    load_generator,
    load_run_config,
    read_progress,
    save_best,
    save_checkpoint,
    save_run_config,
    truncate_progress,
)
from decongan.engine.learn.normalization import ChannelNorm, NormalizationConfig
from decongan.engine.learn.presets import load_preset
from decongan.engine.learn.systems import build_system

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


TINY = {
    "s1": ({"base_channels": 4, "depth": 2}, {"base_channels": 4, "num_blocks": 2}),
    "s5": ({"num_feat": 4, "num_block": 1, "num_grow_ch": 4}, {"num_feat": 4}),
}


def _tiny_system(preset_name: str = "s1"):
    torch.manual_seed(0)
    g_kwargs, d_kwargs = TINY[preset_name]
    preset = load_preset(preset_name).with_overrides(
        generator={"kwargs": g_kwargs}, discriminator={"kwargs": d_kwargs}, patch_size=16, batch_size=2,
        loss_weights={"pixel": 1.0, "adv": 0.1})
    return preset, build_system(preset, device="cpu")


def _run_config(preset) -> RunConfig:
    norm = NormalizationConfig(lq=[ChannelNorm(low=2, high=60)], hq=[ChannelNorm(low=3, high=40)])
    return RunConfig(preset_name=preset.name, preset=preset.model_dump(mode="json"), paired=True, scale=preset.scale,
                     normalization=norm, pixel_size_um=0.159)


def _step(system):
    batch = {"lq": torch.rand(2, 1, 16, 16), "hq": torch.rand(2, 1, 16, 16)}
    return system.train_step(batch)


def test_checkpoint_round_trip_restores_weights_optimisers_and_rng(tmp_path):
    preset, system = _tiny_system()
    _step(system)
    training_state = {"system": system.training_state(), "rng": {"torch": torch.get_rng_state()}}
    save_checkpoint(tmp_path, networks=system.networks(), training_state=training_state,
                    state={"iteration": 1, "generator_key": "g"})
    files = sorted(p.name for p in checkpoint_dir(tmp_path).iterdir())
    assert files == ["d.safetensors", "g.safetensors", "state.json", "training_state.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert checkpoint_dir(tmp_path).stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    assert {p.stat().st_mode & 0o777 for p in checkpoint_dir(tmp_path).iterdir()} == {0o666 & ~umask}
    after_one = _step(system)  # what the original does next

    _, fresh = _tiny_system()
    loaded_state, state = load_checkpoint(tmp_path, networks=fresh.networks())
    fresh.load_training_state(loaded_state["system"])
    torch.set_rng_state(loaded_state["rng"]["torch"])
    assert state["iteration"] == 1 and fresh.iteration == 1
    assert _step(fresh) == after_one  # identical losses: weights, Adam moments and RNG all restored


def test_training_state_loads_with_weights_only(tmp_path):
    _, system = _tiny_system()
    _step(system)
    save_checkpoint(tmp_path, networks=system.networks(), training_state={"system": system.training_state()},
                    state={"iteration": 1})
    data = torch.load(checkpoint_dir(tmp_path) / "training_state.pt", weights_only=True)  # no pickle of code objects
    assert set(data["system"]["optimizers"]) == {"g", "d"}


def test_checkpoint_folder_is_replaced_atomically_and_recovered_after_a_crash(tmp_path):
    _, system = _tiny_system()
    for iteration in (1, 2):
        save_checkpoint(tmp_path, networks=system.networks(), training_state={}, state={"iteration": iteration})
    leftovers = [p.name for p in (tmp_path / "checkpoints").iterdir()]
    assert leftovers == ["last"]  # no partial or old folders left behind
    # a crash between the two renames leaves only the renamed-away previous version: it is put back
    os.replace(checkpoint_dir(tmp_path), tmp_path / "checkpoints" / ".last.old-crash")
    _, state = load_checkpoint(tmp_path, networks=system.networks())
    assert state["iteration"] == 2


def test_load_generator_rebuilds_the_trained_generator_from_config_alone(tmp_path):
    preset, system = _tiny_system("s5")
    save_run_config(tmp_path, _run_config(preset))
    save_best(tmp_path, system.generator, {"iteration": 0, "metrics": {}})
    generator, config = load_generator(tmp_path, which="best")
    assert config.scale == 2 and config.pixel_size_um == pytest.approx(0.159)
    x = torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        assert torch.equal(generator(x), system.generator.eval()(x))
    assert not generator.training
    assert json.loads((tmp_path / "best" / "metrics.json").read_text())["iteration"] == 0


def test_missing_and_corrupt_models_give_clear_errors(tmp_path):
    preset, system = _tiny_system()
    with pytest.raises(RunError, match="no config.json"):
        load_run_config(tmp_path)
    save_run_config(tmp_path, _run_config(preset))
    save_checkpoint(tmp_path, networks=system.networks(), training_state={}, state={"iteration": 3, "generator_key": "g"})
    with pytest.raises(RunError, match=r"has a 'last' checkpoint: use it instead, which='last'\)"):
        load_generator(tmp_path, which="best")
    generator, _ = load_generator(tmp_path, which="last")
    assert generator is not None
    (checkpoint_dir(tmp_path) / "g.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RunError, match=r"g\.safetensors: cannot read the weights"):
        load_generator(tmp_path, which="last")


def test_weights_that_do_not_fit_the_stored_preset_are_refused(tmp_path):
    preset, _ = _tiny_system()
    save_run_config(tmp_path, _run_config(preset))
    other = build_system(preset.with_overrides(generator={"kwargs": {"base_channels": 8}}), device="cpu")
    save_best(tmp_path, other.generator, {})
    with pytest.raises(RunError, match="do not fit the model"):
        load_generator(tmp_path)


def test_progress_log_appends_reads_and_is_cut_back_on_resume(tmp_path):
    for i in range(1, 6):
        append_progress(tmp_path, {"event": "train", "iteration": i, "loss_g": 1.0 / i})
    with open(tmp_path / "progress.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"event": "train", "iter')  # a torn line from a crash
    assert [r["iteration"] for r in read_progress(tmp_path)] == [1, 2, 3, 4, 5]
    truncate_progress(tmp_path, 3)
    assert [r["iteration"] for r in read_progress(tmp_path)] == [1, 2, 3]
