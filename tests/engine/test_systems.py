"""Presets and GAN systems: validation, one step per system, learning, determinism, exact resume, VGG, import."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from decongan.engine.learn.models import create_model
from decongan.engine.learn.models.vgg import VGGWeightsError, build_vgg19_features
from decongan.engine.learn.presets import Preset, PresetError, list_presets, load_preset
from decongan.engine.learn.systems import CycleGANSystem, PairedGANSystem, build_system

# Small widths so every system trains in well under a second per step on CPU.
TINY = {
    "s1": {
        "generator": {"kwargs": {"base_channels": 4, "depth": 2}},
        "discriminator": {"kwargs": {"base_channels": 4, "num_blocks": 3, "max_channels": 8, "fc_features": 8}},
    },
    "s2": {
        "generator": {"kwargs": {"features": 4, "unet_base": 4, "unet_depth": 2, "dfcan_features": 8, "num_groups": 1}},
        "discriminator": {"kwargs": {"base_channels": 4, "num_blocks": 3, "fc_features": [8, 4]}},
    },
    "s3": {
        "generator": {"kwargs": {"base_channels": 4, "num_blocks": 1}},
        "discriminator": {"kwargs": {"base_channels": 4, "num_layers": 2}},
        "loss_weights": {"adv": 1.0, "cycle": 10.0, "identity": 5.0},
        "pool_size": 3,
    },
    "s4": {
        "generator": {"kwargs": {"base_channels": 4, "num_blocks": 1}},
        "discriminator": {"kwargs": {"base_channels": 4, "num_layers": 2}},
        "pool_size": 3,
    },
    "s5": {
        "generator": {"kwargs": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}},
        "discriminator": {"kwargs": {"num_feat": 4}},
        "loss_weights": {"pixel": 1.0, "adv": 0.1},
    },
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def tiny_preset(name: str, **extra) -> Preset:
    return load_preset(name).with_overrides(**{**TINY[name], **extra})


def batch_for(preset: Preset, *, size: int = 24, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "lq": torch.rand(batch, 1, size, size, generator=gen),
        "hq": torch.rand(batch, 1, size * preset.scale, size * preset.scale, generator=gen),
    }


# -------------------------------------------------------------------------------------------- presets
def test_bundled_presets_load_with_the_papers_values():
    assert list_presets() == ["s1", "s2", "s3", "s4", "s5"]
    s1, s2, s3, s4, s5 = (load_preset(n) for n in list_presets())
    assert (s1.lr_g, s1.lr_d, s1.gan_type, s1.paired, s1.iterations) == (1e-5, 1e-5, "relativistic", True, 500_000)
    assert (s2.lr_g, s2.lr_d, s2.batch_size, s2.patch_size, s2.d_loss_average) == (1e-4, 5e-5, 2, 256, True)
    assert s2.generator.kwargs["gamma"] == 0.1 and s2.generator.kwargs["num_groups"] == 5
    assert not s3.paired and s3.weight("perceptual") > 0 and s3.weight("cycle") == 10.0
    assert s4.weight("saliency") > 0 and s4.gan_type == "lsgan"
    assert (s5.lr_g, s5.scheduler, s5.iterations, s5.scale) == (5e-4, "cosine", 10_000, 2)
    assert (s5.weight("adv"), s5.weight("pixel"), s5.weight("perceptual")) == (0.1, 1.0, 1.0)
    assert s5.generator.kwargs == {"num_feat": 64, "num_block": 23, "num_grow_ch": 32}
    for preset in (s1, s2, s3, s4, s5):
        assert preset.notes and preset.reference


def test_broken_preset_gives_a_clear_pydantic_error(tmp_path):
    data = json.loads(load_preset("s2").model_dump_json())
    data["learning_rate"] = 1e-3
    data["batch_size"] = 0
    path = tmp_path / "my_s2.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PresetError) as info:
        load_preset(path)
    message = str(info.value)
    assert "my_s2.json" in message
    assert "learning_rate" in message and "Extra inputs are not permitted" in message
    assert "batch_size" in message and "greater than or equal to 1" in message


def test_preset_consistency_rules(tmp_path):
    with pytest.raises(PresetError, match=r"unknown loss weight\(s\) \['cycle'\] for paired system s1"):
        load_preset("s1").with_overrides(loss_weights={"pixel": 1.0, "cycle": 1.0})
    with pytest.raises(PresetError, match="identity loss needs scale 1"):
        load_preset("s3").with_overrides(scale=2, loss_weights={"cycle": 10.0, "identity": 5.0})
    with pytest.raises(PresetError, match="system s3 is unpaired"):
        load_preset("s3").with_overrides(paired=True)
    with pytest.raises(PresetError, match="unknown preset 's9'.*s1, s2, s3, s4, s5"):
        load_preset("s9")
    with pytest.raises(PresetError, match="does not exist"):
        load_preset(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PresetError, match="bad.json.*not valid JSON"):
        load_preset(tmp_path / "bad.json")


def test_user_preset_file_and_overrides_round_trip(tmp_path):
    preset = tiny_preset("s1")
    assert preset.generator.kwargs == {"base_channels": 4, "depth": 2, "num_convs": 3, "negative_slope": 0.1}
    path = tmp_path / "custom.json"
    path.write_text(preset.model_dump_json())
    assert load_preset(path) == preset


# -------------------------------------------------------------------------------------------- systems
@pytest.mark.parametrize("name", ["s1", "s2", "s3", "s4", "s5"])
def test_one_train_step_updates_every_network(name):
    torch.manual_seed(0)
    preset = tiny_preset(name)
    system = build_system(preset)
    assert isinstance(system, PairedGANSystem if preset.paired else CycleGANSystem)
    nets = system.networks()
    expected = {"g", "d", "g_ema"} if name == "s5" else ({"g", "d"} if preset.paired else {"g_ab", "g_ba", "d_a", "d_b"})
    assert set(nets) == expected
    before = {k: {n: p.detach().clone() for n, p in net.named_parameters()} for k, net in nets.items()}
    losses = system.train_step(batch_for(preset))
    assert all(isinstance(v, float) and math.isfinite(v) for v in losses.values()), losses
    assert {"loss_g", "loss_d"} <= set(losses)
    for key, net in nets.items():
        changed = [n for n, p in net.named_parameters() if not torch.equal(p, before[key][n])]
        assert changed, f"{name}: no parameter of {key} changed"
    if name == "s4":
        assert losses["saliency"] > 0
    if name == "s3":
        assert losses["identity"] > 0
    assert system.iteration == 1
    with torch.no_grad():
        out = system.generator.eval()(torch.rand(1, 1, 45, 61))
    assert out.shape == (1, 1, 45 * preset.scale, 61 * preset.scale)


def test_s5_ema_tracks_the_generator():
    torch.manual_seed(0)
    preset = tiny_preset("s5", ema_decay=0.5)
    system = build_system(preset)
    g, g_ema = system.networks()["g"], system.networks()["g_ema"]
    start = g.conv_last.weight.detach().clone()
    torch.testing.assert_close(g_ema.conv_last.weight, start)
    system.train_step(batch_for(preset))
    assert system.generator is g_ema and not g_ema.training
    torch.testing.assert_close(g_ema.conv_last.weight, 0.5 * start + 0.5 * g.conv_last.weight.detach())


def test_unpaired_super_resolution_builds_matching_generators():
    torch.manual_seed(0)
    preset = tiny_preset("s3", scale=2, loss_weights={"adv": 1.0, "cycle": 10.0})
    system = build_system(preset)
    nets = system.networks()
    with torch.no_grad():
        assert nets["g_ab"](torch.rand(1, 1, 20, 20)).shape == (1, 1, 40, 40)
        assert nets["g_ba"](torch.rand(1, 1, 40, 40)).shape == (1, 1, 20, 20)
    losses = system.train_step(batch_for(preset, size=20))
    assert math.isfinite(losses["cycle"])


def test_paired_batch_shape_is_checked():
    system = build_system(tiny_preset("s5"))
    with pytest.raises(ValueError, match=r"hq \(24, 24\) must be lq \(24, 24\) times scale 2"):
        system.train_step({"lq": torch.rand(1, 1, 24, 24), "hq": torch.rand(1, 1, 24, 24)})
    with pytest.raises(KeyError, match="missing \\['hq'\\]"):
        system.train_step({"lq": torch.rand(1, 1, 24, 24)})


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma + 0.5)
    k = torch.exp(-((torch.arange(2 * r + 1.0) - r) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    return F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), (k[:, None] * k[None])[None, None])


def _synthetic_pairs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """HQ: smooth random texture scaled to [0, 1]; LQ: blurred, dimmed and offset (a known degradation)."""
    hq = _blur(torch.rand(n, 1, 32, 32, generator=gen), 1.5)
    lo, hi = hq.amin(dim=(2, 3), keepdim=True), hq.amax(dim=(2, 3), keepdim=True)
    hq = (hq - lo) / (hi - lo)
    return 0.6 * _blur(hq, 1.5) + 0.1, hq


def test_s1_learns_a_synthetic_paired_problem():
    gen = torch.Generator().manual_seed(0)
    train_lq, train_hq = _synthetic_pairs(16, gen)
    val_lq, val_hq = _synthetic_pairs(4, gen)
    torch.manual_seed(0)
    # the paper's losses and architecture at a tiny width; lr 1e-4 instead of 1e-5 so 60 steps suffice
    preset = load_preset("s1").with_overrides(
        lr_g=1e-4,
        lr_d=1e-4,
        generator={"kwargs": {"base_channels": 8, "depth": 2}},
        discriminator={"kwargs": {"base_channels": 4, "num_blocks": 4, "max_channels": 16, "fc_features": 16}},
    )
    system = build_system(preset)

    def val_mse() -> float:
        g = system.generator.eval()
        with torch.no_grad():
            value = float(F.mse_loss(g(val_lq), val_hq))
        g.train()
        return value

    start = val_mse()
    order = torch.Generator().manual_seed(1)
    for _ in range(60):
        idx = torch.randint(0, 16, (4,), generator=order)
        losses = system.train_step({"lq": train_lq[idx], "hq": train_hq[idx]})
    end = val_mse()
    assert math.isfinite(losses["loss_g"])
    assert end < 0.5 * start, (start, end)


@pytest.mark.parametrize("name", ["s1", "s4"])
def test_same_seed_gives_same_losses(name):
    preset = tiny_preset(name)

    def run() -> list[dict[str, float]]:
        torch.manual_seed(123)
        system = build_system(preset)
        return [system.train_step(batch_for(preset, seed=i)) for i in range(3)]

    first, second = run(), run()
    assert first == second
    torch.manual_seed(124)
    other = build_system(preset).train_step(batch_for(preset, seed=0))
    assert other != first[0]


def test_training_state_resumes_exactly():
    """Weights + training_state() (optimisers, scheduler, image pools) + RNG reproduce an uninterrupted run."""
    preset = tiny_preset("s4", scheduler="cosine", iterations=10)
    batches = [batch_for(preset, seed=i) for i in range(4)]
    torch.manual_seed(7)
    straight = build_system(preset)
    expected = [straight.train_step(b) for b in batches]

    torch.manual_seed(7)
    first = build_system(preset)
    for b in batches[:2]:
        first.train_step(b)
    weights = {k: {n: t.clone() for n, t in net.state_dict().items()} for k, net in first.networks().items()}
    state = first.training_state()
    rng = torch.get_rng_state()

    torch.manual_seed(999)  # a fresh process would start from different weights
    resumed = build_system(preset)
    for key, net in resumed.networks().items():
        net.load_state_dict(weights[key])
    resumed.load_training_state(state)
    torch.set_rng_state(rng)
    assert resumed.iteration == 2 and len(resumed.pool_a.images) == 3
    got = [resumed.train_step(b) for b in batches[2:]]
    assert got == expected[2:]
    assert resumed.optimizers()["g"].param_groups[0]["lr"] == straight.optimizers()["g"].param_groups[0]["lr"]


def test_schedulers_follow_the_preset():
    preset = tiny_preset("s5", iterations=4, eta_min=0.0)
    system = build_system(preset)
    lrs = [system.train_step(batch_for(preset, size=16))["lr_g"] for _ in range(4)]
    expected = [5e-4 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)]
    assert lrs == pytest.approx(expected, rel=1e-6)
    assert set(system.schedulers()) == {"g", "d"}
    linear = build_system(tiny_preset("s3", iterations=4, decay_start=0.5))
    lrs = [linear.train_step(batch_for(linear.preset, size=16))["lr_g"] for _ in range(4)]
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4], rel=1e-6)
    assert build_system(tiny_preset("s1")).schedulers() == {}


def test_perceptual_loss_needs_the_vgg_file_and_uses_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DECONGAN_VGG19", raising=False)
    preset = tiny_preset("s5", loss_weights={"pixel": 1.0, "perceptual": 1.0, "adv": 0.1})
    with pytest.raises(VGGWeightsError, match="vgg19-dcbb9e9d.pth"):
        build_system(preset)
    torch.manual_seed(0)
    vgg = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({f"features.{k}": v.half() for k, v in build_vgg19_features().state_dict().items()}, vgg)
    system = build_system(preset, vgg19_weights=vgg)
    losses = system.train_step(batch_for(preset, size=16))
    assert losses["perceptual"] > 0 and math.isfinite(losses["loss_g"])
    assert "vgg" not in " ".join(system.networks())  # the frozen extractor is not a trained network


def test_build_system_imports_an_official_checkpoint(tmp_path):
    torch.manual_seed(0)
    kwargs = TINY["s5"]["generator"]["kwargs"]
    rgb = create_model("s5_rrdbnet", in_channels=3, out_channels=3, scale=2, **kwargs).eval()
    path = tmp_path / "RealESRGAN_x2plus.pth"
    torch.save({"params_ema": rgb.state_dict()}, path)
    system = build_system(tiny_preset("s5"), pretrained=path)
    assert system.import_reports["g"].source_key == "params_ema"
    g = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        expected = rgb(g.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        torch.testing.assert_close(system.generator(g), expected, rtol=1e-5, atol=1e-5)  # EMA starts equal


def test_scale_cannot_be_set_twice_or_on_a_fixed_grid_generator():
    with pytest.raises(ValueError, match="set the scale with the preset's 'scale' field"):
        build_system(tiny_preset("s5", generator={"kwargs": {"scale": 4}}))
    with pytest.raises(ValueError, match="'s1_resunet' cannot change the grid"):
        build_system(tiny_preset("s1", scale=2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (AMP and channels-last run only there)")
def test_amp_step_on_cuda():
    torch.manual_seed(0)
    preset = tiny_preset("s2")
    system = build_system(preset, device="cuda")
    losses = system.train_step(batch_for(preset), amp=True)
    assert all(math.isfinite(v) for v in losses.values())
    assert system.scaler.is_enabled()
