"""VGG19 convolutional features for perceptual losses, without torchvision.

The module tree reproduces torchvision's ``vgg19().features`` exactly (``features.0.weight`` ...
``features.34.bias``), so torchvision's ImageNet state dict (``vgg19-dcbb9e9d.pth`` from the PyTorch
model zoo) or a safetensors copy of it loads as is; the ``classifier.*`` entries of a full checkpoint
are ignored. Weights are never downloaded here: the user supplies the file (``--vgg19-weights PATH`` or
the ``DECONGAN_VGG19`` environment variable), or it is found in the user's cache after
``decongan weights fetch vgg19`` (:mod:`decongan.engine.learn.weights`).

Layer names follow the usual convention: ``conv{b}_{i}`` is the i-th conv of block b (before its ReLU),
``relu{b}_{i}`` its activation, ``pool{b}`` the max pool that ends block b.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from decongan.engine.errors import DeconganError

__all__ = [
    "VGG19_CONFIG",
    "VGG19_FILE_NAME",
    "VGG19_LAYER_INDEX",
    "VGG19FeatureExtractor",
    "VGGWeightsError",
    "build_vgg19_features",
    "load_vgg19_state_dict",
    "resolve_vgg19_weights",
]

#: torchvision's configuration "E" (VGG19): conv widths, "M" = 2x2 max pool.
VGG19_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
VGG19_FILE_NAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
ENV_VAR = "DECONGAN_VGG19"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> dict[str, int]:
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 1
    for item in VGG19_CONFIG:
        if item == "M":
            names[f"pool{block}"] = index
            index += 1
            block, conv = block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
            conv += 1
    return names


#: layer name -> index in ``features`` (e.g. ``"conv5_4": 34``, ``"relu5_4": 35``).
VGG19_LAYER_INDEX: dict[str, int] = _layer_names()


class VGGWeightsError(DeconganError, FileNotFoundError):
    """The VGG19 weights file is missing or does not hold a VGG19 ``features`` state dict."""


def build_vgg19_features() -> nn.Sequential:
    """Untrained VGG19 ``features`` with torchvision's layer indices (37 modules)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


def resolve_vgg19_weights(path: str | os.PathLike | None = None) -> Path:
    """Locate the VGG19 ImageNet weights: ``path`` if given, else ``$DECONGAN_VGG19``, else the copy
    fetched into the user's cache (:func:`decongan.engine.learn.weights.find_cached_weights`).

    Parameters
    ----------
    path : path, optional
        The weights file the user gave.

    Raises
    ------
    VGGWeightsError
        When none is found or the file does not exist; the message names the expected file and
        how to obtain it.
    """
    how = (
        f"download {VGG19_FILE_NAME} from the PyTorch model zoo ({VGG19_URL}) and give its path as the "
        f"VGG19 weights file, or set the {ENV_VAR} environment variable to it (a .safetensors copy of the "
        "same state dict also works), or fetch it once into the cache with 'decongan weights fetch vgg19'; "
        "or set the perceptual loss weight to 0"
    )
    if path is None:
        env = os.environ.get(ENV_VAR)
        if not env:
            from decongan.engine.learn.weights import find_cached_weights

            cached = find_cached_weights("vgg19")
            if cached is not None:
                return cached
            raise VGGWeightsError(f"the perceptual loss needs VGG19 ImageNet weights ({VGG19_FILE_NAME}): {how}")
        path, source = env, f"${ENV_VAR}"
    else:
        source = "the given path"
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise VGGWeightsError(
            f"VGG19 weights file {str(resolved)!r} (from {source}) does not exist; expected torchvision's "
            f"{VGG19_FILE_NAME}: {how}"
        )
    return resolved


def load_vgg19_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the ``features.*`` tensors of a torchvision-layout VGG19 file (.pth or .safetensors).

    ``.pth`` files are read with ``torch.load(weights_only=True)`` (no pickled code runs).

    Raises
    ------
    VGGWeightsError
        If the file is missing, unreadable, or lacks / mis-shapes a ``features`` key (the message
        lists the missing keys).
    """
    path = Path(path)
    if not path.is_file():
        raise VGGWeightsError(f"VGG19 weights file {str(path)!r} does not exist (expected {VGG19_FILE_NAME})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for corrupt files
        raise VGGWeightsError(f"cannot read VGG19 weights {str(path)!r}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise VGGWeightsError(f"{str(path)!r} does not hold a state dict (found {type(state).__name__})")
    reference = build_vgg19_features().state_dict()
    features = {}
    for key in state:
        name = key.removeprefix("module.")
        if name.startswith("features."):
            features[name.removeprefix("features.")] = state[key]
    missing = [f"features.{k}" for k in reference if k not in features]
    if missing:
        raise VGGWeightsError(
            f"{str(path)!r} is not a torchvision VGG19 state dict: missing {len(missing)} key(s): "
            f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"
        )
    for key, ref in reference.items():
        if tuple(features[key].shape) != tuple(ref.shape):
            raise VGGWeightsError(
                f"{str(path)!r}: features.{key} has shape {tuple(features[key].shape)}, "
                f"VGG19 needs {tuple(ref.shape)}"
            )
    return {k: features[k].float() for k in reference}


class VGG19FeatureExtractor(nn.Module):
    """Frozen VGG19 returning the feature maps of the requested layers.

    Grey input (B, 1, H, W) is replicated to RGB; with ``use_input_norm`` the input is assumed to be in
    [0, 1] and is normalised with the ImageNet mean/std. The network is truncated after the deepest
    requested layer, kept in eval mode and excluded from gradients (its parameters have
    ``requires_grad=False``; gradients still flow to the *input*).

    Parameters
    ----------
    layers : sequence of str
        Layer names, e.g. ``("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")``.
    weights : path
        torchvision ``vgg19-*.pth`` state dict or its safetensors copy.
    use_input_norm : bool
        Apply the ImageNet normalisation.
    """

    def __init__(self, layers, weights: str | os.PathLike, *, use_input_norm: bool = True):
        super().__init__()
        layers = tuple(layers)
        unknown = [name for name in layers if name not in VGG19_LAYER_INDEX]
        if unknown or not layers:
            raise ValueError(
                f"unknown VGG19 layer(s) {unknown or '(none given)'}; choose from {', '.join(VGG19_LAYER_INDEX)}"
            )
        self.layers = layers
        features = build_vgg19_features()
        features.load_state_dict(load_vgg19_state_dict(weights), strict=True)
        last = max(VGG19_LAYER_INDEX[name] for name in layers)
        self.features = features[: last + 1]
        self._index = {name: VGG19_LAYER_INDEX[name] for name in layers}
        self.use_input_norm = use_input_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19FeatureExtractor:
        """Stay in eval mode whatever the caller asks (the extractor is frozen)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"VGG19 needs 1 or 3 channels, got {x.shape[1]}")
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        wanted = {index: name for name, index in self._index.items()}
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
        return out
