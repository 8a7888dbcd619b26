"""Building blocks shared by the generator and discriminator families.

Activation and normalisation are passed in as names (``make_activation`` / ``make_norm``) so a block
can be reused by networks with different conventions (LeakyReLU 0.1 in S1/S2, GELU in DFCAN, ReLU +
instance norm in cycleGAN).

Padding policy for arbitrary image sizes: networks that down-sample by ``m`` need H and W to be
multiples of ``m``. :func:`pad_to_multiple` pads the bottom/right edges with *reflect* padding (mirror
without repeating the edge pixel), which avoids the dark borders zero padding would create; if an image
is too small for reflect padding (pad >= size) it falls back to *replicate* padding. The network crops
its output back to the input size times its scale with :func:`crop_to`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvAct",
    "ResidualDownBlock",
    "UpBlock",
    "crop_to",
    "init_kaiming",
    "make_activation",
    "make_norm",
    "pad_to_multiple",
]


def make_activation(name: str, *, negative_slope: float = 0.1) -> nn.Module:
    """Activation module from its name.

    Parameters
    ----------
    name : {"leaky_relu", "relu", "gelu", "sigmoid", "tanh", "none"}
    negative_slope : float
        Slope of the negative part for ``"leaky_relu"``.
    """
    name = name.lower()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; choose leaky_relu, relu, gelu, sigmoid, tanh or none")


def make_norm(name: str, channels: int) -> nn.Module:
    """Normalisation layer from its name: ``"instance"`` (no affine, as cycleGAN), ``"batch"`` or ``"none"``.

    Parameters
    ----------
    name : {"instance", "batch", "none"}
        Case-insensitive.
    channels : int
        Number of feature channels the layer normalises.

    Returns
    -------
    nn.Module
        ``InstanceNorm2d``, ``BatchNorm2d`` or ``Identity``.

    Raises
    ------
    ValueError
        For any other name.
    """
    name = name.lower()
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {name!r}; choose instance, batch or none")


def init_kaiming(module: nn.Module, *, negative_slope: float = 0.1) -> None:
    """He (Kaiming) normal initialisation of every conv / linear layer for (Leaky)ReLU nets, zero biases.

    PyTorch's default init shrinks the activation variance by about 3x per layer, which makes deep
    plain stacks (S1's 41-conv discriminator) output a constant at initialisation.

    Parameters
    ----------
    module : nn.Module
        Initialised in place, with all its sub-modules (``Conv2d``, ``ConvTranspose2d``, ``Linear``).
    negative_slope : float
        The LeakyReLU slope the gain is computed for (0 for ReLU).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=negative_slope, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` (B, C, H, W) at the bottom/right so H and W are multiples of ``multiple``.

    The padding reflects the image (replicates its edge when the padding is not smaller than the side).

    Parameters
    ----------
    x : torch.Tensor
        (B, C, H, W).
    multiple : int
        The network's stride in px (e.g. 2 ** number of downsamplings).

    Returns
    -------
    padded : torch.Tensor
        (B, C, H', W') with H' = ceil(H / multiple) * multiple (same for W).
    size : tuple of int
        The original (H, W), for :func:`crop_to`.
    """
    h = x.shape[-2]
    w = x.shape[-1]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    if pad_w > 0:
        x = F.pad(x, [0, pad_w, 0, 0], mode="reflect" if pad_w < w else "replicate")
    if pad_h > 0:
        x = F.pad(x, [0, 0, 0, pad_h], mode="reflect" if pad_h < h else "replicate")
    return x, (h, w)


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Top-left crop of ``x`` (B, C, H, W) to (height, width), undoing :func:`pad_to_multiple`.

    Parameters
    ----------
    x : torch.Tensor
        (..., H, W).
    height, width : int
        Size to keep in px, at most H and W.

    Returns
    -------
    torch.Tensor
        (..., height, width), a view of ``x``.
    """
    return x[..., :height, :width]


class ConvAct(nn.Sequential):
    """``kernel x kernel`` convolution ('same' padding) -> optional norm -> activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        activation: str = "leaky_relu",
        negative_slope: float = 0.1,
        norm: str = "none",
        padding_mode: str = "zeros",
        bias: bool = True,
    ):
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                padding_mode=padding_mode,
                bias=bias,
            ),
            make_norm(norm, out_channels),
            make_activation(activation, negative_slope=negative_slope),
        )


class ResidualDownBlock(nn.Module):
    """S1/S2 encoder block: ``n`` x (conv + activation), the block input added back, then 2x2 average pooling.

    The input has fewer channels than the output, so it is zero-padded in channels before the
    addition (as in Panek et al.). ``forward`` returns ``(features, pooled)``: the full-resolution
    features are the skip connection of the matching decoder block.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_convs: int = 3,
        activation: str = "leaky_relu",
        negative_slope: float = 0.1,
    ):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"out_channels ({out_channels}) must be >= in_channels ({in_channels})")
        layers = [
            ConvAct(
                in_channels if i == 0 else out_channels,
                out_channels,
                activation=activation,
                negative_slope=negative_slope,
            )
            for i in range(num_convs)
        ]
        self.convs = nn.Sequential(*layers)
        self.extra_channels = out_channels - in_channels
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shortcut = F.pad(x, [0, 0, 0, 0, 0, self.extra_channels]) if self.extra_channels > 0 else x
        features = self.convs(x) + shortcut
        return features, self.pool(features)


class UpBlock(nn.Module):
    """U-Net decoder block: 2x up-sample, concatenate the skip, then ``n`` x (conv + activation).

    Parameters
    ----------
    upsample : {"nearest", "transposed"}
        Nearest-neighbour interpolation (TCAN; no checkerboard artefacts) or a learned 2x2
        transposed convolution.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        *,
        num_convs: int = 3,
        activation: str = "leaky_relu",
        negative_slope: float = 0.1,
        upsample: str = "nearest",
    ):
        super().__init__()
        if upsample == "nearest":
            self.up: nn.Module = nn.Upsample(scale_factor=2, mode="nearest")
        elif upsample == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, in_channels, 2, stride=2)
        else:
            raise ValueError(f"unknown upsample mode {upsample!r}; choose nearest or transposed")
        self.convs = nn.Sequential(
            *[
                ConvAct(
                    in_channels + skip_channels if i == 0 else out_channels,
                    out_channels,
                    activation=activation,
                    negative_slope=negative_slope,
                )
                for i in range(num_convs)
            ]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([skip, self.up(x)], dim=1))
