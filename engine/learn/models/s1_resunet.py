"""S1: residual U-Net generator and 10-block CNN discriminator (Panek et al., cross-system
widefield -> confocal GAN; see ../shared/docs/SEEDS.md, S1).

Generator (``"s1_resunet"``)
    4 residual down blocks (3 x (conv 3x3 + LeakyReLU 0.1), block input zero-padded in channels and
    added back, 2x2 average pooling), 4 up blocks (2x up-sampling, concatenation with the skip,
    3 x (conv + LeakyReLU)), final conv + LeakyReLU. Widths ``base_channels * 2**i``. There is no
    separate bottleneck: the deepest pooled features are up-sampled straight into the first up block,
    as the paper describes 4 down and 4 up blocks. Any H x W: the input is reflect-padded to a
    multiple of 2**depth (16) and the output cropped back.

Discriminator (``"s1_discriminator"``)
    conv 3x3 + LeakyReLU, then 10 blocks of 4 x (conv 3x3 + LeakyReLU 0.1), then 4x4 average pooling,
    two fully connected layers and one logit. The paper does not say where the resolution drops; we
    use widths ``base * 2**(i // 2)`` (capped at ``max_channels``) and a 2x2 average pool after every
    second block *while the feature map is at least 2 * ``pooled_size`` on its short side*, then an
    adaptive average pool to ``pooled_size`` x ``pooled_size`` (4x4). A 256 x 256 patch thus reaches the
    4x4 pooling at 16 x 16; any patch side >= 4 works.

Both use He-normal initialisation (:func:`~engine.learn.models.blocks.init_kaiming`): with PyTorch's default
init the 41-conv plain discriminator outputs a constant at the start (the paper does not state its init).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    ConvAct,
    ResidualDownBlock,
    UpBlock,
    crop_to,
    init_kaiming,
    make_activation,
    pad_to_multiple,
)
from .registry import register_model

__all__ = ["ResidualUNet", "S1Discriminator"]


@register_model("s1_resunet")
class ResidualUNet(nn.Module):
    """Residual U-Net (S1 generator; also the U-Net branch of S2's TCAN).

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels (1 for grey microscopy).
    base_channels : int
        Width of the first level; level ``i`` has ``base_channels * 2**i`` channels.
    depth : int
        Number of down (and up) blocks; the input is padded to a multiple of ``2**depth``.
    num_convs : int
        Convolutions per block (3 in S1/S2).
    negative_slope : float
        LeakyReLU slope (0.1).
    upsample : {"nearest", "transposed"}
        Decoder up-sampling.
    final_activation : str
        Activation after the last conv: ``"leaky_relu"`` in S1, ``"none"`` for the TCAN branch.

    Shapes
    ------
    (B, in_channels, H, W) -> (B, out_channels, H, W), float32, any H and W.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        base_channels: int = 64,
        depth: int = 4,
        num_convs: int = 3,
        negative_slope: float = 0.1,
        upsample: str = "nearest",
        final_activation: str = "leaky_relu",
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        widths = [base_channels * 2**i for i in range(depth)]
        self.multiple = 2**depth
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(
                ResidualDownBlock(previous, width, num_convs=num_convs, negative_slope=negative_slope)
            )
            previous = width
        self.up = nn.ModuleList()
        for width in reversed(widths):
            self.up.append(
                UpBlock(previous, width, width, num_convs=num_convs, negative_slope=negative_slope, upsample=upsample)
            )
            previous = width
        self.final = nn.Sequential(
            nn.Conv2d(widths[0], out_channels, 3, padding=1),
            make_activation(final_activation, negative_slope=negative_slope),
        )
        init_kaiming(self, negative_slope=negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        skips = []
        for block in self.down:
            skip, x = block(x)
            skips.append(skip)
        last = len(skips) - 1
        for i, block in enumerate(self.up):
            x = block(x, skips[last - i])
        return crop_to(self.final(x), h, w)


@register_model("s1_discriminator")
class S1Discriminator(nn.Module):
    """S1 discriminator: conv, ``num_blocks`` x [``convs_per_block`` x (conv + LeakyReLU)], 4x4 pool, 2 FC, 1 logit.

    Parameters
    ----------
    in_channels : int
        Image channels.
    base_channels : int
        Width of the first blocks (64 at paper width).
    num_blocks, convs_per_block : int
        10 and 4 in the paper.
    max_channels : int
        Cap on the block width.
    pool_every : int
        A 2x2 average pool follows every ``pool_every``-th block while the map is large enough.
    pooled_size : int
        Side of the final adaptive average pooling (4).
    fc_features : int
        Width of the hidden fully connected layer.

    Shapes
    ------
    (B, in_channels, H, W) -> (B, 1) logits; any H, W >= 1.
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        base_channels: int = 64,
        num_blocks: int = 10,
        convs_per_block: int = 4,
        max_channels: int = 512,
        pool_every: int = 2,
        pooled_size: int = 4,
        fc_features: int = 1024,
        negative_slope: float = 0.1,
    ):
        super().__init__()
        self.stem = ConvAct(in_channels, base_channels, negative_slope=negative_slope)
        self.blocks = nn.ModuleList()
        previous = base_channels
        for i in range(num_blocks):
            width = min(base_channels * 2 ** (i // 2), max_channels)
            self.blocks.append(
                nn.Sequential(
                    *[
                        ConvAct(previous if j == 0 else width, width, negative_slope=negative_slope)
                        for j in range(convs_per_block)
                    ]
                )
            )
            previous = width
        self.pool_every = pool_every
        self.pooled_size = pooled_size
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pooled_size),
            nn.Flatten(),
            nn.Linear(previous * pooled_size * pooled_size, fc_features),
            nn.LeakyReLU(negative_slope),
            nn.Linear(fc_features, 1),
        )
        init_kaiming(self, negative_slope=negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i % self.pool_every == 0 and min(x.shape[-2:]) >= 2 * self.pooled_size:
                x = F.avg_pool2d(x, 2)
        return self.head(x)
