"""Inference: tiled == whole with real generators, intensity units kept, every plane and channel,
pixel-size matching, out-of-memory tile halving, and the 3072 x 3072 memory bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from decongan.engine.io import MicroscopyImage, read_image
from decongan.engine.learn.checkpoint import RunConfig
from decongan.engine.learn.inference import (
    LoadedModel,
    next_smaller_tile,
    predict_array,
    predict_image,
    receptive_field_radius,
)
from decongan.engine.learn.models import create_model
from decongan.engine.learn.normalization import ChannelNorm, NormalizationConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


class Upsample(nn.Module):
    """A pointwise 'generator' (nearest up-sampling): its tiled and whole outputs must agree exactly."""

    def __init__(self, scale: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.multiple = 1
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest") if self.scale > 1 else x.clone()


def _config(norm: NormalizationConfig, *, scale: int = 1, pixel_size_um: float | None = None) -> RunConfig:
    return RunConfig(preset_name="s1", preset={"generator": {"name": "s1_resunet", "kwargs": {}}}, paired=True,
                     scale=scale, normalization=norm, pixel_size_um=pixel_size_um)


@pytest.fixture(scope="module")
def fmd_plane(shared_data):
    return read_image(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq" / "fov05.png").data[:256, :320]


@pytest.fixture(scope="module")
def fmd_large(shared_data):
    return read_image(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq" / "fov05.png").data[:384, :448]


@pytest.mark.parametrize(("name", "kwargs", "overlap"), [
    # a small S1 (3 levels): receptive-field radius 46 px -> overlap "auto" = 128 px, exact by construction
    ("s1_resunet", {"base_channels": 8, "depth": 3}, "auto"),
    # RRDB x2: its influence decays within ~13 px, so the default 64 px overlap (24 px guard) is enough
    ("s5_rrdbnet", {"scale": 2, "num_feat": 8, "num_block": 1, "num_grow_ch": 8}, 64),
])
def test_tiled_output_equals_whole_image_output_for_real_generators(fmd_large, name, kwargs, overlap):
    torch.manual_seed(0)
    generator = create_model(name, **kwargs).eval()
    scale = getattr(generator, "scale", 1)
    whole = predict_array(generator, fmd_large, tile=0, device="cpu")
    tiled, provenance = predict_image(generator, MicroscopyImage(fmd_large, "YX"), tile=128 if overlap == 64 else 256,
                                      overlap=overlap, device="cpu")
    assert tiled.data.shape == whole.shape == (384 * scale, 448 * scale)
    tile_used = provenance.parameters["tile"]
    assert tile_used < 384  # really tiled
    value_range = float(whole.max() - whole.min())
    assert value_range > 0
    assert np.abs(tiled.data - whole).max() <= 1e-3 * value_range


def test_receptive_field_radius_of_a_small_unet_and_of_global_generators():
    torch.manual_seed(0)
    assert receptive_field_radius(create_model("s1_resunet", base_channels=4, depth=3)) == 46
    assert receptive_field_radius(create_model("s3_resnet_generator", base_channels=4, num_blocks=1)) is None  # instance norm


def test_sixteen_bit_input_gives_float32_in_the_same_range_per_image_mode():
    data = np.random.default_rng(0).integers(100, 60000, size=(48, 40), dtype=np.uint16)
    model = LoadedModel(Upsample(), _config(NormalizationConfig(mode="per_image")))
    restored, provenance = predict_image(model, MicroscopyImage(data, "YX", pixel_size_um=0.1), tile=0, device="cpu")
    assert restored.data.dtype == np.float32
    np.testing.assert_allclose(restored.data, data, atol=0.02)  # identity generator: exact inverse normalisation
    assert provenance.method == "S1 GAN" and provenance.backend == "engine/cpu"


def test_dataset_mode_maps_lq_units_to_hq_units():
    norm = NormalizationConfig(mode="dataset", lq=[ChannelNorm(low=100, high=1100)], hq=[ChannelNorm(low=10, high=30)])
    data = np.array([[100.0, 600.0], [1100.0, 2100.0]], np.float32)
    out = predict_array(LoadedModel(Upsample(), _config(norm)), data, tile=0, device="cpu")
    np.testing.assert_allclose(out, [[10.0, 20.0], [30.0, 50.0]], rtol=1e-6)


def test_every_frame_plane_and_channel_is_restored_with_its_own_parameters():
    norm = NormalizationConfig(mode="dataset", lq=[ChannelNorm(low=0, high=1), ChannelNorm(low=0, high=10)],
                               hq=[ChannelNorm(low=0, high=2), ChannelNorm(low=0, high=100)])
    data = np.random.default_rng(1).random((2, 3, 2, 20, 24)).astype(np.float32)
    image = MicroscopyImage(data, "TZCYX", pixel_size_um=0.2, z_step_um=0.5, time_interval_s=3.0)
    restored, _ = predict_image(LoadedModel(Upsample(2), _config(norm, scale=2)), image, tile=0, device="cpu")
    assert restored.axes == "TZCYX" and restored.data.shape == (2, 3, 2, 40, 48)
    assert restored.pixel_size_um == pytest.approx(0.1)
    assert (restored.z_step_um, restored.time_interval_s) == (0.5, 3.0)
    up = data.repeat(2, axis=-1).repeat(2, axis=-2)
    np.testing.assert_allclose(restored.data[:, :, 0], up[:, :, 0] * 2, rtol=1e-6)
    np.testing.assert_allclose(restored.data[:, :, 1], up[:, :, 1] * 10, rtol=1e-6)


def test_input_is_resampled_to_the_training_pixel_size_and_back():
    generator = Upsample()
    model = LoadedModel(generator, _config(NormalizationConfig(mode="per_image"), pixel_size_um=0.05))
    yy, xx = np.mgrid[0:60, 0:50]
    smooth = (1000 + 500 * np.sin(xx / 7.0) * np.cos(yy / 9.0)).astype(np.float32)
    restored, provenance = predict_image(model, MicroscopyImage(smooth, "YX", pixel_size_um=0.1), tile=0, device="cpu")
    assert generator.seen[-1][-2:] == (120, 100)  # the network saw the plane at 2x (the training pixel size)
    assert restored.data.shape == smooth.shape and restored.pixel_size_um == pytest.approx(0.1)
    np.testing.assert_allclose(restored.data, smooth, rtol=0.01)
    assert provenance.parameters["resampled_to_shape"] == [120, 100]
    assert any("resampled to the training pixel size" in note for note in provenance.notes)


class OutOfMemoryAbove(nn.Module):
    """Raises CUDA's out-of-memory error for tiles larger than ``limit`` pixels a side (injected OOM)."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit = inner, limit
        self.multiple = getattr(inner, "multiple", 16)

    def forward(self, x):
        if max(x.shape[-2:]) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return self.inner(x)


def test_out_of_memory_halves_the_tile_and_the_run_continues(fmd_plane):
    torch.manual_seed(0)
    generator = create_model("s1_resunet", base_channels=4, depth=2).eval()
    flaky = OutOfMemoryAbove(generator, limit=96)
    restored, provenance = predict_image(flaky, MicroscopyImage(fmd_plane, "YX"), tile=0, overlap=32, device="cpu")
    assert provenance.parameters["tile"] == 64  # whole (256x320) -> 256 -> 128 -> 64
    assert sum("out of memory with tile" in note for note in provenance.notes) == 3
    reference = predict_array(generator, fmd_plane, tile=64, overlap=32, device="cpu")
    np.testing.assert_allclose(restored.data, reference, rtol=1e-6)
    with pytest.raises(MemoryError, match="out of memory even with"):
        predict_image(OutOfMemoryAbove(generator, limit=8), MicroscopyImage(fmd_plane, "YX"), tile=64, overlap=16,
                      device="cpu")


def test_next_smaller_tile_rules():
    assert next_smaller_tile(512, (2000, 2000), multiple=16) == 256
    assert next_smaller_tile(0, (1000, 700), multiple=16) == 512
    assert next_smaller_tile(48, (2000, 2000), multiple=16) is None  # below the 32 px minimum


def test_rgb_input_is_refused():
    image = MicroscopyImage(np.zeros((8, 8, 3), np.uint8).transpose(2, 0, 1), "CYX", metadata={"rgb": True})
    with pytest.raises(ValueError, match="RGB"):
        predict_image(Upsample(), image, device="cpu")


@pytest.mark.slow
def test_a_3072_square_image_runs_on_cpu_within_4_gib(repo_root):
    script = textwrap.dedent("""
        import resource, numpy as np, torch
        torch.set_num_threads(1)
        from decongan.engine.learn.models import create_model
        from decongan.engine.learn.inference import predict_image
        from decongan.engine.io import MicroscopyImage
        torch.manual_seed(0)
        g = create_model("s1_resunet", base_channels=2, depth=2)
        img = MicroscopyImage(np.random.default_rng(0).integers(0, 4096, (3072, 3072), dtype=np.uint16), "YX")
        out, _ = predict_image(g, img, tile=512, overlap=64, device="cpu")
        assert out.data.shape == (3072, 3072) and out.data.dtype == np.float32
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=repo_root, timeout=300)
    assert result.returncode == 0, result.stderr
    peak_mib = int(result.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
    assert peak_mib < 4096, f"peak RSS {peak_mib:.0f} MiB"
