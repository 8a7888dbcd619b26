"""Losses: SSIM against scikit-image on real microscopy, adversarial identities, saliency, perceptual."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.filters import threshold_otsu
from skimage.metrics import structural_similarity

from decongan.engine.io import read_image
from decongan.engine.learn import losses as L

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py



def _skimage_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    return structural_similarity(
        x, y, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )


@pytest.fixture(scope="module")
def fmd_pair(shared_data):
    """A real low-SNR / high-SNR confocal pair (FMD, 512 x 512 uint8), scaled to [0, 1]."""
    folder = shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"
    lq = read_image(folder / "lq" / "fov01.png").data.astype(np.float64) / 255.0
    hq = read_image(folder / "hq" / "fov01.png").data.astype(np.float64) / 255.0
    return np.squeeze(lq), np.squeeze(hq)


def test_ssim_matches_skimage_on_real_microscopy(fmd_pair):
    lq, hq = fmd_pair
    expected = _skimage_ssim(lq, hq, 1.0)
    assert 0.05 < expected < 0.95  # a real, imperfect pair
    x64 = torch.from_numpy(lq)[None, None]
    y64 = torch.from_numpy(hq)[None, None]
    assert abs(float(L.ssim(x64, y64, data_range=1.0)) - expected) < 1e-10
    got32 = float(L.ssim(x64.float(), y64.float(), data_range=1.0))
    assert abs(got32 - expected) < 1e-4


def test_ssim_matches_skimage_per_image_and_with_other_ranges():
    rng = np.random.default_rng(0)
    base = rng.random((2, 40, 33)) * 1000.0
    noisy = base + rng.normal(0, 120.0, base.shape)
    x = torch.from_numpy(base)[:, None]
    y = torch.from_numpy(noisy)[:, None]
    per_image = L.ssim(x, y, data_range=1000.0, reduction="none")
    for i in range(2):
        assert abs(float(per_image[i]) - _skimage_ssim(base[i], noisy[i], 1000.0)) < 1e-10
    assert abs(float(L.ssim(x, y, data_range=1000.0)) - float(per_image.mean())) < 1e-12


def test_ssim_identity_gradient_and_errors():
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    y = torch.rand(1, 1, 16, 16)
    assert float(L.ssim(x.detach(), x.detach(), data_range=1.0)) == pytest.approx(1.0, abs=1e-6)
    loss = L.ssim_loss(x, y, data_range=1.0)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 11 x 11"):
        L.ssim(torch.rand(1, 1, 8, 30), torch.rand(1, 1, 8, 30), data_range=1.0)
    with pytest.raises(ValueError, match="data_range must be > 0"):
        L.ssim(x, y, data_range=0.0)


def test_gaussian_window_is_scipys_kernel():
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros((11, 11))
    impulse[5, 5] = 1.0
    scipy_kernel = gaussian_filter(impulse, sigma=1.5, truncate=3.5, mode="constant")
    np.testing.assert_allclose(L.gaussian_window(11, 1.5, dtype=torch.float64)[0, 0].numpy(), scipy_kernel, atol=1e-15)


def test_relativistic_losses_follow_the_paper_formulas():
    real = torch.tensor([[0.3], [-1.2], [2.0]])
    fake = torch.tensor([[-0.5], [0.4], [1.0]])

    def bce(z, target):  # -[t log s(z) + (1 - t) log(1 - s(z))], mean over the batch
        s = torch.sigmoid(z)
        return float(-(target * torch.log(s) + (1 - target) * torch.log(1 - s)).mean())

    expected_d = bce(fake - real, 0.0) + bce(real - fake, 1.0)
    assert float(L.relativistic_d_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    assert float(L.relativistic_d_loss(real, fake, average=True)) == pytest.approx(expected_d / 2, rel=1e-6)
    # both D terms are softplus(fake - real): the sum is twice that
    assert expected_d == pytest.approx(2 * float(F.softplus(fake - real).mean()), rel=1e-6)
    assert float(L.relativistic_g_loss(real, fake)) == pytest.approx(bce(fake - real, 1.0), rel=1e-6)
    # RaGAN uses the other batch's mean
    expected_ra = (bce(real - fake.mean(), 1.0) + bce(fake - real.mean(), 0.0)) / 2
    assert float(L.relativistic_average_d_loss(real, fake)) == pytest.approx(expected_ra, rel=1e-6)


def test_lsgan_and_vanilla_losses():
    real = torch.full((2, 1, 3, 3), 0.8)
    fake = torch.full((2, 1, 3, 3), 0.1)
    assert float(L.lsgan_d_loss(real, fake)) == pytest.approx(0.5 * (0.2**2 + 0.1**2))
    assert float(L.lsgan_g_loss(None, fake)) == pytest.approx(0.9**2)
    zeros = torch.zeros(4, 1)
    assert float(L.vanilla_d_loss(zeros, zeros)) == pytest.approx(2 * math.log(2))
    assert float(L.vanilla_g_loss(None, zeros)) == pytest.approx(math.log(2))


def test_cycle_and_identity_are_l1():
    a = torch.zeros(1, 1, 4, 4)
    b = torch.full((1, 1, 4, 4), 0.25)
    assert float(L.cycle_loss(b, a)) == pytest.approx(0.25)
    assert float(L.identity_loss(a, b)) == pytest.approx(0.25)


def test_otsu_threshold_matches_skimage(fmd_pair):
    lq, hq = fmd_pair
    images = np.stack([lq, hq])
    got = L.otsu_threshold(torch.from_numpy(images)[:, None].float()).flatten().numpy()
    for value, image in zip(got, images, strict=True):
        bin_width = (image.max() - image.min()) / 256
        assert abs(value - threshold_otsu(image, nbins=256)) <= bin_width + 1e-6


def _blob(shift: int = 0) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    return torch.exp(-((yy - 16) ** 2 + (xx - 12 - shift) ** 2) / 18.0)[None, None] + 0.02


def test_saliency_mask_is_soft_scale_invariant_and_differentiable():
    x = _blob().requires_grad_(True)
    mask = L.saliency_mask(x)
    values = mask.detach()
    assert mask.shape == x.shape and float(values.min()) >= 0 and float(values.max()) <= 1
    assert float(values[0, 0, 16, 12]) > 0.99 and float(values[0, 0, 2, 30]) < 0.01
    assert int(((values > 0.05) & (values < 0.95)).sum()) > 10  # a soft edge, not a hard threshold
    torch.testing.assert_close(L.saliency_mask(3.0 * x.detach() + 5.0), values, atol=1e-5, rtol=0)
    mask.sum().backward()
    assert x.grad.abs().sum() > 0
    fixed = L.saliency_mask(x.detach(), threshold=0.5, temperature=0.01)
    assert float(fixed[0, 0, 16, 12]) > 0.99


def test_structure_loss_punishes_moved_objects_not_intensity_changes():
    source = _blob()
    assert float(L.structure_loss(source, 0.5 * source + 0.1)) < 1e-4
    moved = float(L.structure_loss(source, _blob(shift=6)))
    assert moved > 0.05
    # a super-resolved output on a 2x grid is compared after pooling its mask
    upsampled = F.interpolate(source, scale_factor=2, mode="nearest")
    assert float(L.structure_loss(source, upsampled)) < 1e-4


def test_perceptual_loss_grads_flow_to_input_only():
    torch.manual_seed(0)

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
            self.requires_grad_(False)

        def forward(self, x):
            first = self.conv(x)
            return {"a": first, "b": F.avg_pool2d(first, 2)}

    loss_fn = L.PerceptualLoss(Features(), {"a": 1.0, "b": 0.5})
    x = torch.rand(1, 1, 8, 8, requires_grad=True)
    y = torch.rand(1, 1, 8, 8)
    assert float(loss_fn(y, y)) == 0.0
    value = loss_fn(x, y)
    feats_x, feats_y = loss_fn.extractor(x.detach()), loss_fn.extractor(y)
    expected = F.l1_loss(feats_x["a"], feats_y["a"]) + 0.5 * F.l1_loss(feats_x["b"], feats_y["b"])
    assert float(value.detach()) == pytest.approx(float(expected), rel=1e-6)
    value.backward()
    assert x.grad.abs().sum() > 0
    assert loss_fn.extractor.conv.weight.grad is None
