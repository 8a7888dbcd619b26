"""S5: Real-ESRGAN networks (Wang et al. 2021; fine-tuned on real microscopy pairs by Cooper et al.;
SEEDS.md S5): the RRDBNet generator and the U-Net discriminator with spectral normalisation.

Parameter names follow BasicSR exactly (``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``; discriminator ``conv0`` ... ``conv9`` with
``weight_orig``/``weight_u``/``weight_v`` from :func:`torch.nn.utils.spectral_norm`), so official
checkpoints load through :mod:`engine.learn.checkpoint.published` (3-channel RGB kernels are folded to grey
there).

RRDBNet (``"s5_rrdbnet"``)
    x4 works on the input grid; x2 and x1 first pixel-unshuffle the input by 2 or 4 (as Real-ESRGAN),
    so the trunk always runs at 1/4 of the output grid and the same weights layout serves all scales.
    Any H x W: reflect-padded to a multiple of the unshuffle factor, output cropped to (H*scale, W*scale).

UNetDiscriminatorSN (``"s5_unet_discriminator"``)
    per-pixel logits (B, 1, H, W). Three stride-2 convs, so the input is reflect-padded to a multiple of
    8 and the logit map cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from .blocks import crop_to, pad_to_multiple
from .registry import register_model

__all__ = ["RRDB", "RRDBNet", "ResidualDenseBlock", "UNetDiscriminatorSN"]

_UNSHUFFLE = {1: 4, 2: 2, 4: 1}


def _scaled_kaiming_(convs: list[nn.Conv2d], scale: float) -> None:
    """BasicSR's ``default_init_weights``: Kaiming-normal weights times ``scale``, zero biases."""
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight)
        conv.weight.data.mul_(scale)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output ``x + 0.2 * conv5(...)``."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)
        _scaled_kaiming_([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, output ``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


@register_model("s5_rrdbnet")
class RRDBNet(nn.Module):
    """ESRGAN / Real-ESRGAN generator.

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels (1 for grey; official checkpoints are 3-channel and are folded on import).
    scale : {1, 2, 4}
        Output pixels per input pixel.
    num_feat : int
        Trunk width (64).
    num_block : int
        Number of RRDBs (23 in Real-ESRGAN x4plus / x2plus).
    num_grow_ch : int
        Growth channels of the dense blocks (32).

    Shapes
    ------
    (B, in_channels, H, W) -> (B, out_channels, H * scale, W * scale).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ):
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, got {scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.unshuffle)
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2.0, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return crop_to(out, h * self.scale, w * self.scale)


@register_model("s5_unet_discriminator")
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral normalisation (per-pixel realness logits).

    Parameters
    ----------
    in_channels : int
        Image channels.
    num_feat : int
        Base width (64).
    skip_connection : bool
        Add encoder features to the decoder (True in Real-ESRGAN).

    Shapes
    ------
    (B, in_channels, H, W) -> (B, 1, H, W) logits; any H x W.
    """

    def __init__(self, in_channels: int = 1, *, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(in_channels, num_feat, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(num_feat * 4, num_feat * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(num_feat * 8, num_feat * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(num_feat * 4, num_feat * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 8)
        x0 = F.leaky_relu(self.conv0(x), 0.2)
        x1 = F.leaky_relu(self.conv1(x0), 0.2)
        x2 = F.leaky_relu(self.conv2(x1), 0.2)
        x3 = F.leaky_relu(self.conv3(x2), 0.2)
        x3 = F.interpolate(x3, scale_factor=2.0, mode="bilinear", align_corners=False)
        x4 = F.leaky_relu(self.conv4(x3), 0.2)
        if self.skip_connection:
            x4 = x4 + x2
        x4 = F.interpolate(x4, scale_factor=2.0, mode="bilinear", align_corners=False)
        x5 = F.leaky_relu(self.conv5(x4), 0.2)
        if self.skip_connection:
            x5 = x5 + x1
        x5 = F.interpolate(x5, scale_factor=2.0, mode="bilinear", align_corners=False)
        x6 = F.leaky_relu(self.conv6(x5), 0.2)
        if self.skip_connection:
            x6 = x6 + x0
        out = F.leaky_relu(self.conv7(x6), 0.2)
        out = F.leaky_relu(self.conv8(out), 0.2)
        return crop_to(self.conv9(out), h, w)
