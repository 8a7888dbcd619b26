"""Models: registry, shapes on odd sizes, paper-width sizes, VGG19 loader, Real-ESRGAN checkpoint import."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from decongan.engine.learn.checkpoint.published import (
    CheckpointImportError,
    import_checkpoint,
    read_checkpoint_state,
)
from decongan.engine.learn.models import create_model, list_models, register_model
from decongan.engine.learn.models.blocks import ResidualDownBlock, pad_to_multiple
from decongan.engine.learn.models.registry import UnknownModelError
from decongan.engine.learn.models.s2_tcan import FourierChannelAttention
from decongan.engine.learn.models.vgg import (
    VGG19_LAYER_INDEX,
    VGG19FeatureExtractor,
    VGGWeightsError,
    build_vgg19_features,
    resolve_vgg19_weights,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


# ---------------------------------------------------------------------------------------- registry
EXPECTED_MODELS = {
    "s1_resunet",
    "s1_discriminator",
    "s2_tcan",
    "s2_discriminator",
    "s3_resnet_generator",
    "s3_patchgan",
    "s5_rrdbnet",
    "s5_unet_discriminator",
}


def test_registry_lists_every_seed_model():
    assert set(list_models()) == EXPECTED_MODELS
    assert list_models() == sorted(list_models())


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="'s1_resunet' is already registered by .*ResidualUNet"):

        @register_model("s1_resunet")
        class Other(nn.Module):
            pass

    assert create_model("s1_resunet", base_channels=2, depth=1).__class__.__name__ == "ResidualUNet"


def test_unknown_model_lists_the_choices():
    with pytest.raises(UnknownModelError) as info:
        create_model("s9_magic")
    message = str(info.value)
    assert "unknown model 's9_magic'" in message
    for name in EXPECTED_MODELS:
        assert name in message


def test_bad_argument_names_the_model():
    with pytest.raises(TypeError, match="cannot build model 's5_rrdbnet'.*num_fet"):
        create_model("s5_rrdbnet", num_fet=3)


# ------------------------------------------------------------------------------------------ shapes
TINY_GENERATORS = [
    ("s1_resunet", {"base_channels": 4}, 1),
    ("s2_tcan", {"features": 4, "unet_base": 4, "dfcan_features": 8, "num_groups": 1}, 1),
    ("s2_tcan", {"features": 4, "unet_base": 4, "dfcan_features": 8, "num_groups": 1, "scale": 2}, 2),
    ("s3_resnet_generator", {"base_channels": 4, "num_blocks": 1}, 1),
    ("s3_resnet_generator", {"base_channels": 4, "num_blocks": 1, "scale": 4}, 4),
    ("s5_rrdbnet", {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 1}, 1),
    ("s5_rrdbnet", {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 2}, 2),
    ("s5_rrdbnet", {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4}, 4),
]


@pytest.mark.parametrize(("name", "kwargs", "scale"), TINY_GENERATORS, ids=lambda v: str(v))
def test_generators_accept_odd_sizes(name, kwargs, scale):
    torch.manual_seed(0)
    net = create_model(name, **kwargs).eval()
    x = torch.rand(2, 1, 45, 61)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, 45 * scale, 61 * scale)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("name", "kwargs", "scale"), TINY_GENERATORS[::2] + TINY_GENERATORS[-1:], ids=lambda v: str(v))
def test_generators_compile_to_torchscript(name, kwargs, scale):
    # export (TorchScript) must keep the any-size padding logic: script, not trace
    torch.manual_seed(0)
    net = create_model(name, **kwargs).eval()
    scripted = torch.jit.script(net)
    x = torch.rand(1, 1, 37, 50)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), rtol=1e-5, atol=1e-6)


def test_generator_output_does_not_depend_on_batch_neighbours():
    # padding and cropping are per image: the first image's output is the same alone or in a batch
    torch.manual_seed(0)
    net = create_model("s1_resunet", base_channels=4).eval()
    x = torch.rand(3, 1, 37, 29)
    with torch.no_grad():
        torch.testing.assert_close(net(x)[:1], net(x[:1]), rtol=1e-5, atol=1e-6)


def test_cyclegan_downscale_generator_inverts_the_grid():
    net = create_model("s3_resnet_generator", base_channels=4, num_blocks=1, downscale=2).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 1, 90, 122)).shape == (1, 1, 45, 61)
        assert net(torch.rand(1, 1, 91, 123)).shape == (1, 1, 46, 62)  # ceil for odd sizes
    with pytest.raises(ValueError, match="power of two"):
        create_model("s3_resnet_generator", scale=3)


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("s1_discriminator", {"base_channels": 4, "max_channels": 16, "fc_features": 8}, (2, 1)),
        ("s2_discriminator", {"base_channels": 4, "fc_features": (8, 4)}, (2, 1)),
        ("s3_patchgan", {"base_channels": 4}, (2, 1, 3, 5)),
        ("s5_unet_discriminator", {"num_feat": 4}, (2, 1, 45, 61)),
    ],
)
def test_discriminators_accept_odd_sizes(name, kwargs, expected):
    net = create_model(name, **kwargs)
    with torch.no_grad():
        assert net(torch.rand(2, 1, 45, 61)).shape == expected


def test_pad_to_multiple_reflects_and_falls_back_to_replicate():
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 3, 5)
    padded, size = pad_to_multiple(x, 8)
    assert size == (3, 5) and padded.shape == (1, 1, 8, 8)
    # width 5 -> 8 needs 3 columns: reflect gives 3, 2, 1 (the edge pixel is not repeated)
    assert padded[0, 0, 0, 5:].tolist() == [3.0, 2.0, 1.0]
    # height 3 -> 8 needs 5 rows >= 3, so reflect is impossible: replicate instead
    assert torch.equal(padded[0, 0, 7], padded[0, 0, 2])
    same, _ = pad_to_multiple(torch.rand(1, 1, 16, 32), 16)
    assert same.shape == (1, 1, 16, 32)


def test_residual_down_block_adds_the_zero_padded_input():
    block = ResidualDownBlock(2, 5)
    for module in block.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    x = torch.rand(1, 2, 6, 6)
    features, pooled = block(x)
    assert torch.equal(features[:, :2], x)
    assert torch.equal(features[:, 2:], torch.zeros(1, 3, 6, 6))
    torch.testing.assert_close(pooled, nn.functional.avg_pool2d(features, 2))


def test_fourier_attention_has_finite_gradient_at_zero_amplitude():
    attention = FourierChannelAttention(4, reduction=2)
    x = torch.zeros(1, 4, 8, 8, requires_grad=True)
    a = attention(x)
    assert a.shape == (1, 4, 1, 1)
    a.sum().backward()
    assert torch.isfinite(x.grad).all()


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_width_parameter_counts_match_the_reference_implementations():
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        rrdb_rgb = create_model("s5_rrdbnet", in_channels=3, out_channels=3, scale=4)
        rrdb_grey = create_model("s5_rrdbnet", scale=4)
        resnet = create_model("s3_resnet_generator", in_channels=3, out_channels=3)
        patchgan = create_model("s3_patchgan", in_channels=3)
    # Real-ESRGAN RRDBNet x4plus (3 -> 3 channels): 16,697,987 parameters; the grey net lacks 2 x 64 x 9
    # input and 2 x 64 x 9 output weights and 2 output biases.
    assert _count(rrdb_rgb) == 16_697_987
    assert _count(rrdb_grey) == 16_697_987 - 2 * 64 * 2 * 9 - 2
    # cycleGAN's resnet_9blocks (3 -> 3): "Total number of parameters of network G: 11.378 M";
    # its 70x70 PatchGAN (basic, n_layers 3): 2.765 M.
    assert round(_count(resnet) / 1e6, 3) == 11.378
    assert round(_count(patchgan) / 1e6, 3) == 2.765


# --------------------------------------------------------------------------------------------- VGG19
@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A torchvision-layout VGG19 state dict with random weights (features + a classifier entry)."""
    torch.manual_seed(1)
    features = build_vgg19_features()
    state = {f"features.{k}": v.half() for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path, features


def test_vgg19_keys_follow_torchvision():
    keys = list(build_vgg19_features().state_dict())
    assert keys[0] == "0.weight" and keys[-1] == "34.bias" and len(keys) == 32
    assert VGG19_LAYER_INDEX["conv5_4"] == 34 and VGG19_LAYER_INDEX["relu2_2"] == 8
    assert VGG19_LAYER_INDEX["pool5"] == 36


def test_vgg19_extractor_matches_the_loaded_network(vgg_file):
    path, features = vgg_file
    extractor = VGG19FeatureExtractor(["conv2_2", "relu3_1"], path)
    assert len(extractor.features) == VGG19_LAYER_INDEX["relu3_1"] + 1
    assert not any(p.requires_grad for p in extractor.parameters())
    grey = torch.rand(1, 1, 20, 24)
    out = extractor(grey)
    # reference: the original net (half-rounded weights) on the ImageNet-normalised RGB replica
    reference = build_vgg19_features()
    reference.load_state_dict({k: v.half().float() for k, v in features.state_dict().items()})
    rgb = (grey.expand(-1, 3, -1, -1) - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(out["conv2_2"], reference[:8](rgb))
    torch.testing.assert_close(out["relu3_1"], reference[:12](rgb))
    extractor.train()
    assert not extractor.training


def test_vgg19_loads_safetensors(vgg_file, tmp_path):
    from safetensors.torch import save_file

    path, features = vgg_file
    state = {f"features.{k}": v.contiguous() for k, v in features.state_dict().items()}
    st = tmp_path / "vgg19.safetensors"
    save_file(state, str(st))
    extractor = VGG19FeatureExtractor(["conv1_1"], st)
    torch.testing.assert_close(extractor.features[0].weight, features[0].weight)


def test_vgg19_missing_key_is_named(vgg_file, tmp_path):
    path, _ = vgg_file
    state = torch.load(path, weights_only=True)
    del state["features.28.weight"]
    broken = tmp_path / "vgg19-broken.pth"
    torch.save(state, broken)
    with pytest.raises(VGGWeightsError, match=r"missing 1 key\(s\): features\.28\.weight"):
        VGG19FeatureExtractor(["conv1_1"], broken)


def test_vgg19_missing_file_names_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DECONGAN_VGG19", raising=False)
    with pytest.raises(VGGWeightsError) as info:
        resolve_vgg19_weights(None)
    assert "vgg19-dcbb9e9d.pth" in str(info.value) and "DECONGAN_VGG19" in str(info.value)
    with pytest.raises(VGGWeightsError, match=r"nowhere\.pth.*does not exist.*vgg19-dcbb9e9d\.pth.*VGG19 weights file"):
        resolve_vgg19_weights(tmp_path / "nowhere.pth")
    monkeypatch.setenv("DECONGAN_VGG19", str(tmp_path / "env.pth"))
    with pytest.raises(VGGWeightsError, match=r"from \$DECONGAN_VGG19"):
        resolve_vgg19_weights(None)
    (tmp_path / "env.pth").write_bytes(b"")
    assert resolve_vgg19_weights(None) == tmp_path / "env.pth"


# ------------------------------------------------------------------------ Real-ESRGAN checkpoint import
TINY_RRDB = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4}


def _official_key_names(num_block: int) -> set[str]:
    """BasicSR's RRDBNet parameter names (basicsr/archs/rrdbnet_arch.py naming)."""
    names = {f"{conv}.{p}" for conv in ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")
             for p in ("weight", "bias")}
    for i in range(num_block):
        for r in (1, 2, 3):
            for c in range(1, 6):
                names |= {f"body.{i}.rdb{r}.conv{c}.weight", f"body.{i}.rdb{r}.conv{c}.bias"}
    return names


def _official_rgb_checkpoint(tmp_path, scale: int, *, seed: int = 3):
    """An RGB RRDBNet saved the way Real-ESRGAN releases it: {"params_ema": ..., "params": ...}."""
    torch.manual_seed(seed)
    rgb = create_model("s5_rrdbnet", in_channels=3, out_channels=3, scale=scale, **TINY_RRDB).eval()
    other = create_model("s5_rrdbnet", in_channels=3, out_channels=3, scale=scale, **TINY_RRDB)
    assert set(rgb.state_dict()) == _official_key_names(TINY_RRDB["num_block"])
    path = tmp_path / f"RealESRGAN_x{scale}plus.pth"
    torch.save({"params_ema": rgb.state_dict(), "params": other.state_dict()}, path)
    return path, rgb


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_realesrgan_import_matches_rgb_net_on_grey_input(tmp_path, scale):
    path, rgb = _official_rgb_checkpoint(tmp_path, scale)
    grey_net = create_model("s5_rrdbnet", scale=scale, **TINY_RRDB).eval()
    report = import_checkpoint(grey_net, path)
    assert report.source_key == "params_ema"
    assert set(report.adapted) == {"conv_first.weight", "conv_last.weight", "conv_last.bias"}
    assert not report.missing and not report.unexpected
    g = torch.rand(1, 1, 24, 20)
    with torch.no_grad():
        expected = rgb(g.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        torch.testing.assert_close(grey_net(g), expected, rtol=1e-5, atol=1e-5)


def test_import_prefers_params_ema_then_params_then_bare(tmp_path):
    torch.manual_seed(0)
    a = create_model("s5_rrdbnet", scale=4, **TINY_RRDB).state_dict()
    b = create_model("s5_rrdbnet", scale=4, **TINY_RRDB).state_dict()
    torch.save({"params": a}, tmp_path / "params.pth")
    torch.save(b, tmp_path / "bare.pth")
    state, key = read_checkpoint_state(tmp_path / "params.pth")
    assert key == "params" and torch.equal(state["conv_first.weight"], a["conv_first.weight"])
    state, key = read_checkpoint_state(tmp_path / "bare.pth")
    assert key == "(bare state dict)" and torch.equal(state["conv_last.bias"], b["conv_last.bias"])


def test_import_reads_safetensors_and_strips_module_prefix(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    src = create_model("s5_rrdbnet", scale=2, **TINY_RRDB)
    save_file({f"module.{k}": v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "g.safetensors"))
    dst = create_model("s5_rrdbnet", scale=2, **TINY_RRDB)
    report = import_checkpoint(dst, tmp_path / "g.safetensors")
    assert len(report.loaded) == len(src.state_dict()) and not report.adapted
    torch.testing.assert_close(dst.conv_hr.weight, src.conv_hr.weight)


def test_import_scale_mismatch_is_explained(tmp_path):
    path, _ = _official_rgb_checkpoint(tmp_path, 4)
    x2 = create_model("s5_rrdbnet", scale=2, **TINY_RRDB)
    with pytest.raises(CheckpointImportError, match=r"conv_first\.weight: checkpoint \(8, 3, 3, 3\) vs model "
                       r"\(8, 4, 3, 3\).*x4/x2/x1"):
        import_checkpoint(x2, path)


def test_import_reports_missing_and_unexpected_keys(tmp_path):
    torch.manual_seed(0)
    state = create_model("s5_rrdbnet", scale=4, **TINY_RRDB).state_dict()
    state.pop("conv_hr.weight")
    state["conv_extra.weight"] = torch.zeros(1)
    torch.save({"params_ema": state}, tmp_path / "partial.pth")
    net = create_model("s5_rrdbnet", scale=4, **TINY_RRDB)
    with pytest.raises(CheckpointImportError, match=r"1 model parameter\(s\) missing.*conv_hr\.weight.*conv_extra"):
        import_checkpoint(net, tmp_path / "partial.pth")
    report = import_checkpoint(net, tmp_path / "partial.pth", allow_missing=True)
    assert report.missing == ["conv_hr.weight"] and report.unexpected == ["conv_extra.weight"]
    assert "missing from checkpoint: conv_hr.weight" in report.summary()
    with pytest.raises(CheckpointImportError, match="does not exist"):
        import_checkpoint(net, tmp_path / "absent.pth")


def test_unet_discriminator_import_folds_rgb_input(tmp_path):
    torch.manual_seed(5)
    rgb = create_model("s5_unet_discriminator", in_channels=3, num_feat=4)
    with torch.no_grad():  # a few power iterations so u/v are not the random start
        for _ in range(3):
            rgb(torch.rand(1, 3, 16, 16))
    rgb.eval()
    assert {"conv1.weight_orig", "conv1.weight_u", "conv1.weight_v", "conv9.bias"} <= set(rgb.state_dict())
    torch.save({"params": rgb.state_dict()}, tmp_path / "RealESRGAN_x4plus_netD.pth")
    grey = create_model("s5_unet_discriminator", num_feat=4).eval()
    report = import_checkpoint(grey, tmp_path / "RealESRGAN_x4plus_netD.pth")
    assert list(report.adapted) == ["conv0.weight"]
    g = torch.rand(1, 1, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(grey(g), rgb(g.expand(-1, 3, -1, -1)), rtol=1e-5, atol=1e-5)
