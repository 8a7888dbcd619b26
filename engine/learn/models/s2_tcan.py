"""S2: TCAN generator and discriminator (Huang et al., PhotoniX 2023, confocal -> STED; SEEDS.md S2).

Generator (``"s2_tcan"``)
    input conv block (conv 3x3 + LeakyReLU 0.1) feeding two branches whose 1-channel outputs are
    summed, then an output conv block (conv 3x3 + activation):

    * U-Net branch: :class:`~engine.learn.models.s1_resunet.ResidualUNet` (4 residual down blocks,
      nearest-neighbour up-sampling), last conv ``unet_base`` (32) -> 1 channel, no activation.
    * DFCAN branch (Qiao et al., Nat Methods 2021): conv + GELU, ``num_groups`` residual groups
      RG(y) = y + FCAB(FCAB(y)) with FCAB(y) = y + y_o * A(y_o), y_o = GELU(conv(GELU(conv(y)))),
      A = Fourier channel attention (:class:`FourierChannelAttention`), then conv + GELU, nearest
      up-sampling by ``scale`` and a linear 3x3 conv to one channel (our choice: a linear projection,
      so the branch can add negative corrections to the U-Net output).

    With ``scale > 1`` both branch outputs are nearest-up-sampled to the target grid.
    Any H x W: the input is reflect-padded to a multiple of 16 and the output cropped to
    (H * scale, W * scale).

Discriminator (``"s2_discriminator"``)
    conv + LeakyReLU, 5 blocks of 2 x (conv + LeakyReLU) with 2x2 average pooling between them,
    an adaptive 4x4 average pool (our choice, so any patch size works; a 256 patch is 16x16 there),
    3 fully connected layers, one logit (BCE-with-logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvAct, crop_to, init_kaiming, make_activation, pad_to_multiple
from .registry import register_model
from .s1_resunet import ResidualUNet

__all__ = ["FCAB", "FourierChannelAttention", "ResidualGroup", "TCANDiscriminator", "TCANGenerator"]


class FourierChannelAttention(nn.Module):
    """DFCAN's Fourier channel attention: per-channel weights in (0, 1) from the amplitude spectrum.

    ``A(y) = sigmoid(conv1x1(ReLU(conv1x1(GAP(ReLU(conv3x3(fftshift(|FFT(y)|) ** gamma)))))))``.
    The FFT runs in float32 even under autocast (cuFFT half precision needs power-of-two sizes);
    ``|.|`` uses sqrt(re^2 + im^2 + eps) so the gradient stays finite where the amplitude is 0.

    Shapes: (B, C, H, W) -> (B, C, 1, 1).
    """

    def __init__(self, channels: int, *, reduction: int = 16, gamma: float = 0.1, eps: float = 1e-8):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gamma = gamma
        self.eps = eps
        self.spatial = nn.Conv2d(channels, channels, 3, padding=1)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return self._attention(x.float())
        return self._attention_without_autocast(x)

    @torch.jit.unused
    def _attention_without_autocast(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._attention(x.float())

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.fft2(x)
        amplitude = (spectrum.real.square() + spectrum.imag.square() + self.eps).sqrt().pow(self.gamma)
        amplitude = torch.fft.fftshift(amplitude, dim=(-2, -1))
        a = F.relu(self.spatial(amplitude)).mean(dim=(-2, -1), keepdim=True)
        a = F.relu(self.squeeze(a))
        return torch.sigmoid(self.excite(a))


class FCAB(nn.Module):
    """Fourier channel attention block: ``y + y_o * A(y_o)``, ``y_o = GELU(conv(GELU(conv(y))))``."""

    def __init__(self, channels: int, *, reduction: int = 16, gamma: float = 0.1):
        super().__init__()
        self.body = nn.Sequential(
            ConvAct(channels, channels, activation="gelu"),
            ConvAct(channels, channels, activation="gelu"),
        )
        self.attention = FourierChannelAttention(channels, reduction=reduction, gamma=gamma)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y_o = self.body(y)
        return y + y_o * self.attention(y_o)


class ResidualGroup(nn.Module):
    """DFCAN residual group ``RG(y) = y + FCAB_n(...FCAB_1(y))`` (n = 2)."""

    def __init__(self, channels: int, *, num_blocks: int = 2, reduction: int = 16, gamma: float = 0.1):
        super().__init__()
        self.blocks = nn.Sequential(
            *[FCAB(channels, reduction=reduction, gamma=gamma) for _ in range(num_blocks)]
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.blocks(y)


@register_model("s2_tcan")
class TCANGenerator(nn.Module):
    """TCAN generator (U-Net branch + DFCAN branch, summed).

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels.
    scale : int
        HQ pixels per LQ pixel (1 for confocal -> STED on the same grid; 2, 4 for SR).
    features : int
        Width of the input conv block.
    unet_base : int
        First-level width of the U-Net branch (its last conv maps this many channels to 1).
    unet_depth : int
        Down/up blocks of the U-Net branch (4).
    dfcan_features : int
        Width of the DFCAN branch (64 in DFCAN).
    num_groups, blocks_per_group : int
        Residual groups (5) and FCABs per group (2).
    gamma : float
        Exponent applied to the amplitude spectrum in the channel attention (0.1 in DFCAN).
    reduction : int
        Channel reduction of the attention's squeeze step.
    output_activation : str
        Activation of the output conv block.

    Shapes
    ------
    (B, in_channels, H, W) -> (B, out_channels, H * scale, W * scale).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        scale: int = 1,
        features: int = 32,
        unet_base: int = 32,
        unet_depth: int = 4,
        dfcan_features: int = 64,
        num_groups: int = 5,
        blocks_per_group: int = 2,
        gamma: float = 0.1,
        reduction: int = 16,
        negative_slope: float = 0.1,
        output_activation: str = "leaky_relu",
    ):
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = scale
        self.multiple = 2**unet_depth
        self.input_block = ConvAct(in_channels, features, negative_slope=negative_slope)
        self.unet = ResidualUNet(
            features,
            1,
            base_channels=unet_base,
            depth=unet_depth,
            negative_slope=negative_slope,
            upsample="nearest",
            final_activation="none",
        )
        self.dfcan_head = ConvAct(features, dfcan_features, activation="gelu")
        self.dfcan_groups = nn.Sequential(
            *[
                ResidualGroup(dfcan_features, num_blocks=blocks_per_group, reduction=reduction, gamma=gamma)
                for _ in range(num_groups)
            ]
        )
        self.dfcan_tail = ConvAct(dfcan_features, dfcan_features, activation="gelu")
        self.dfcan_out = nn.Conv2d(dfcan_features, 1, 3, padding=1)
        self.output_block = nn.Sequential(
            nn.Conv2d(1, out_channels, 3, padding=1),
            make_activation(output_activation, negative_slope=negative_slope),
        )
        init_kaiming(self, negative_slope=negative_slope)

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale > 1:
            return F.interpolate(x, scale_factor=float(self.scale), mode="nearest")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        features = self.input_block(x)
        unet_out = self._upsample(self.unet(features))
        dfcan = self.dfcan_tail(self.dfcan_groups(self.dfcan_head(features)))
        dfcan_out = self.dfcan_out(self._upsample(dfcan))
        out = self.output_block(unet_out + dfcan_out)
        return crop_to(out, h * self.scale, w * self.scale)


@register_model("s2_discriminator")
class TCANDiscriminator(nn.Module):
    """TCAN discriminator: conv, 5 x [2 x (conv + LeakyReLU)] with 2x2 average pools between, 3 FC, 1 logit.

    Shapes: (B, in_channels, H, W) -> (B, 1) logits; any H, W >= 1 (pools are skipped once the map
    is smaller than 2 * ``pooled_size``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        base_channels: int = 32,
        num_blocks: int = 5,
        max_channels: int = 512,
        pooled_size: int = 4,
        fc_features: tuple[int, int] = (512, 128),
        negative_slope: float = 0.1,
    ):
        super().__init__()
        self.stem = ConvAct(in_channels, base_channels, negative_slope=negative_slope)
        self.blocks = nn.ModuleList()
        previous = base_channels
        for i in range(num_blocks):
            width = min(base_channels * 2**i, max_channels)
            self.blocks.append(
                nn.Sequential(
                    ConvAct(previous, width, negative_slope=negative_slope),
                    ConvAct(width, width, negative_slope=negative_slope),
                )
            )
            previous = width
        self.pooled_size = pooled_size
        hidden1, hidden2 = fc_features
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pooled_size),
            nn.Flatten(),
            nn.Linear(previous * pooled_size * pooled_size, hidden1),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden1, hidden2),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden2, 1),
        )
        init_kaiming(self, negative_slope=negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < last and min(x.shape[-2:]) >= 2 * self.pooled_size:
                x = F.avg_pool2d(x, 2)
        return self.head(x)
