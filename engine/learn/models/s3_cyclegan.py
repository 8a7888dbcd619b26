"""S3/S4: cycleGAN ResNet generator and PatchGAN discriminator (Zhu et al. 2017; used by Trujillo et al.
2024 for unpaired confocal SR (S3) and by Li et al.'s content-preserving c2GAN (S4); SEEDS.md S3/S4).

Generator (``"s3_resnet_generator"``)
    c7s1-64, ``num_down`` stride-2 convs (d128, d256), ``num_blocks`` residual blocks (R256), as many
    stride-2 transposed convs back up (u128, u64), c7s1-out; instance norm and ReLU, reflection padding.
    Super-resolution with unpaired data (S3: LR 10x vs HR 60x) needs generators that change the grid:
    ``scale = s`` (2, 4, ...) adds log2(s) transposed convs (at ``base_channels`` width, after u64) for the
    LR -> HR generator, ``downscale = s`` adds log2(s) stride-2 convs (at the bottleneck width) for the
    HR -> LR generator. The output has no squashing activation by default (``output_activation="none"``;
    cycleGAN's tanh assumes data in [-1, 1], our percentile-normalised data may exceed 1).
    Any H x W: reflect-padded to a multiple of the total down-sampling, output cropped to
    (ceil(H * scale / downscale), ceil(W * scale / downscale)).

Discriminator (``"s3_patchgan"``)
    70x70 PatchGAN for ``num_layers = 3``: C64 (no norm) - C128 - C256 - C512 (stride 1) - 1-channel map;
    4x4 convs, instance norm, LeakyReLU 0.2. Needs patches of at least ~32 px for 3 layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import crop_to, make_activation, make_norm, pad_to_multiple
from .registry import register_model

__all__ = ["PatchDiscriminator", "ResnetBlock", "ResnetGenerator", "init_normal"]


def _log2_exact(value: int, name: str) -> int:
    if value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two (1, 2, 4, ...), got {value}")
    return int(math.log2(value))


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """cycleGAN initialisation: conv weights ~ N(0, std), biases 0, affine norm weights ~ N(1, std).

    Parameters
    ----------
    module : nn.Module
        Initialised in place, with all its sub-modules.
    std : float
        Standard deviation of the normal weights (cycleGAN's 0.02).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class ResnetBlock(nn.Module):
    """``x + norm(conv(relu(norm(conv(x)))))`` with reflection padding."""

    def __init__(self, channels: int, *, norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        bias = norm != "batch"  # batch norm has its own shift
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_model("s3_resnet_generator")
class ResnetGenerator(nn.Module):
    """cycleGAN ResNet generator with optional grid change for unpaired super-resolution.

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels.
    base_channels : int
        Width of the first layer (64).
    num_blocks : int
        Residual blocks (9 for 256 x 256 training in cycleGAN).
    num_down : int
        Stride-2 down-sampling convs matched by transposed convs (2).
    scale : int
        Output pixels per input pixel (power of two): extra transposed convs.
    downscale : int
        Input pixels per output pixel (power of two): extra stride-2 convs.
    norm : {"instance", "batch", "none"}
    output_activation : str
        ``"none"`` (default) or ``"tanh"`` (original cycleGAN).
    dropout : float
        Dropout inside the residual blocks (0 in cycleGAN's default).

    Shapes
    ------
    (B, in_channels, H, W) -> (B, out_channels, ceil(H * scale / downscale), ceil(W * scale / downscale)).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        base_channels: int = 64,
        num_blocks: int = 9,
        num_down: int = 2,
        scale: int = 1,
        downscale: int = 1,
        norm: str = "instance",
        output_activation: str = "none",
        dropout: float = 0.0,
    ):
        super().__init__()
        extra_up = _log2_exact(scale, "scale")
        extra_down = _log2_exact(downscale, "downscale")
        if extra_up and extra_down:
            raise ValueError("a generator either up-samples (scale) or down-samples (downscale), not both")
        self.scale = scale
        self.downscale = downscale
        self.multiple = 2 ** (num_down + extra_down)
        bias = norm != "batch"  # batch norm has its own shift
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_channels, 7, bias=bias),
            make_norm(norm, base_channels),
            nn.ReLU(),
        ]
        width = base_channels
        for i in range(num_down + extra_down):
            new_width = base_channels * 2 ** min(i + 1, num_down)
            layers += [
                nn.Conv2d(width, new_width, 3, stride=2, padding=1, bias=bias),
                make_norm(norm, new_width),
                nn.ReLU(),
            ]
            width = new_width
        layers += [ResnetBlock(width, norm=norm, dropout=dropout) for _ in range(num_blocks)]
        for i in range(num_down + extra_up):
            new_width = base_channels * 2 ** max(num_down - i - 1, 0)
            layers += [
                nn.ConvTranspose2d(width, new_width, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(norm, new_width),
                nn.ReLU(),
            ]
            width = new_width
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(width, out_channels, 7),
            make_activation(output_activation),
        ]
        self.model = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.multiple)
        out = self.model(x)
        return crop_to(out, -(-h * self.scale // self.downscale), -(-w * self.scale // self.downscale))


@register_model("s3_patchgan")
class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (pix2pix/cycleGAN ``NLayerDiscriminator``).

    Parameters
    ----------
    in_channels : int
        Image channels.
    base_channels : int
        Width of the first layer (64).
    num_layers : int
        Stride-2 layers (3 gives the 70 x 70 receptive field).
    norm : {"instance", "batch", "none"}

    Shapes
    ------
    (B, in_channels, H, W) -> (B, 1, H', W') patch logits, H' ~ H / 2**num_layers - 2.
    """

    def __init__(self, in_channels: int = 1, *, base_channels: int = 64, num_layers: int = 3, norm: str = "instance"):
        super().__init__()
        bias = norm != "batch"  # batch norm has its own shift
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        width = base_channels
        for n in range(1, num_layers + 1):
            new_width = base_channels * min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [
                nn.Conv2d(width, new_width, 4, stride=stride, padding=1, bias=bias),
                make_norm(norm, new_width),
                nn.LeakyReLU(0.2),
            ]
            width = new_width
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
