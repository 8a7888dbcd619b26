"""Percentile normalisation stored with a model and inverted on its output.

GANs train on values of order one, but microscopy images come as 8-bit, 16-bit or float data whose
useful range varies by orders of magnitude between instruments. DeconGAN maps every image plane
to network units with an affine percentile normalisation and maps the network output back to
intensity units with the inverse map, so nothing passes through an 8-bit bottleneck: a 16-bit input
gives a float32 output in the same 16-bit intensity range.

The exact policy
----------------
For one 2-D plane ``x`` (any dtype, converted to float32) and one channel's parameters
``(p_low, p_high, low, high)``::

    normalise(x)   = (x - low) / (high - low)          # low -> 0, high -> 1, nothing clipped
    denormalise(y) = y * (high - low) + low

``low``/``high`` are the ``p_low``/``p_high`` percentiles (defaults 1 and 99.8, the CSBDeep defaults)
of the pixel values. Values outside ``[low, high]`` are *not* clipped, so saturated or very dark
pixels survive the round trip exactly. When ``high - low`` is below ``1e-6 * max(1, |high|)``
(a constant image), the span is taken as 1 so the map stays invertible.

Where ``low``/``high`` come from depends on the mode chosen at training time (stored in the run's
``config.json`` and used unchanged at inference and validation):

``"dataset"`` (default)
    One ``(low, high)`` per domain (LQ, HQ) and channel, computed once from the training images
    (the percentiles of all their pixels of that channel, pooled). Inputs are normalised with the LQ
    parameters and outputs inverted with the HQ parameters, so the output is in the HQ domain's
    intensity units, exactly as the network learned them. Best when all images come from one
    instrument with fixed settings (e.g. FMD, the S1 widefield/confocal set).
``"per_image"``
    Every plane is normalised with its own percentiles (LQ and HQ each with their own); at inference
    the output is inverted with the *input's* own ``(low, high)`` (CARE/CSBDeep habit), so it is in the
    input's intensity units. Best for heterogeneous sets whose brightness varies between fields
    (e.g. the TA-GAN confocal/STED sample, whose groups span 0..11 to 0..475 counts). The dataset
    parameters are still computed and stored (they describe the training data).

Multichannel data is handled per channel: each channel has its own parameters; a model trained on
one channel applies channel 0's parameters to every channel of a multichannel input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

NormalizationMode = Literal["dataset", "per_image"]

DEFAULT_P_LOW = 1.0
DEFAULT_P_HIGH = 99.8
#: at most this many pixels per image enter the pooled dataset percentiles (strided subsample)
_MAX_SAMPLES_PER_IMAGE = 1 << 20


class ChannelNorm(BaseModel):
    """Affine percentile map of one channel: ``low`` (the ``p_low`` percentile) -> 0, ``high`` -> 1."""

    model_config = ConfigDict(extra="forbid")

    p_low: float = Field(DEFAULT_P_LOW, ge=0.0, le=100.0, description="lower percentile (%)")
    p_high: float = Field(DEFAULT_P_HIGH, ge=0.0, le=100.0, description="upper percentile (%)")
    low: float = Field(0.0, description="intensity at p_low, in the images' own units")
    high: float = Field(1.0, description="intensity at p_high, in the images' own units")

    @property
    def span(self) -> float:
        """``high - low``, or 1 for a (near-)constant image."""
        span = self.high - self.low
        if not np.isfinite(span) or span <= 1e-6 * max(1.0, abs(self.high)):
            return 1.0
        return float(span)

    def normalize(self, data: np.ndarray) -> np.ndarray:
        """Intensities -> network units (float32, not clipped)."""
        return ((np.asarray(data, dtype=np.float32) - np.float32(self.low)) / np.float32(self.span)).astype(np.float32)

    def denormalize(self, data: np.ndarray) -> np.ndarray:
        """Network units -> intensities (float32, not clipped)."""
        return (np.asarray(data, dtype=np.float32) * np.float32(self.span) + np.float32(self.low)).astype(np.float32)


def percentile_norm(
    data: np.ndarray | Iterable[np.ndarray],
    *,
    p_low: float = DEFAULT_P_LOW,
    p_high: float = DEFAULT_P_HIGH,
) -> ChannelNorm:
    """Percentile parameters of one array, or of several pooled together.

    Parameters
    ----------
    data : ndarray or iterable of ndarray
        Pixel values (any shape). Several arrays are pooled; arrays with more than 2**20 pixels are
        subsampled with a regular stride (deterministic) before pooling.
    p_low, p_high : float
        Percentiles in percent, ``0 <= p_low < p_high <= 100``.
    """
    if not 0.0 <= p_low < p_high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= p_low < p_high <= 100 (got {p_low}, {p_high})")
    arrays = [data] if isinstance(data, np.ndarray) else list(data)
    if not arrays:
        raise ValueError("no pixels to compute normalisation percentiles from")
    samples = []
    for arr in arrays:
        flat = np.asarray(arr).reshape(-1)
        if flat.size > _MAX_SAMPLES_PER_IMAGE:
            flat = flat[:: int(np.ceil(flat.size / _MAX_SAMPLES_PER_IMAGE))]
        samples.append(flat.astype(np.float64, copy=False))
    pooled = np.concatenate(samples)
    finite = pooled[np.isfinite(pooled)]
    if finite.size == 0:
        raise ValueError("no finite pixels to compute normalisation percentiles from")
    low, high = np.percentile(finite, [p_low, p_high])
    return ChannelNorm(p_low=p_low, p_high=p_high, low=float(low), high=float(high))


class NormalizationConfig(BaseModel):
    """Normalisation of a trained model: mode, percentiles and per-domain, per-channel parameters.

    Attributes
    ----------
    mode : {"dataset", "per_image"}
        See the module documentation.
    p_low, p_high : float
        Percentiles (%) used for every plane and channel.
    lq, hq : list of ChannelNorm
        Dataset parameters of the LQ (input) and HQ (target) domains, one per channel, computed from
        the training images. Used by ``"dataset"`` mode; informative in ``"per_image"`` mode.
    """

    model_config = ConfigDict(extra="forbid")

    mode: NormalizationMode = "dataset"
    p_low: float = DEFAULT_P_LOW
    p_high: float = DEFAULT_P_HIGH
    lq: list[ChannelNorm] = Field(default_factory=list)
    hq: list[ChannelNorm] = Field(default_factory=list)

    @field_validator("p_high")
    @classmethod
    def _ordered(cls, value: float, info) -> float:  # noqa: ANN001
        p_low = info.data.get("p_low", DEFAULT_P_LOW)
        if not 0.0 <= p_low < value <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= p_low < p_high <= 100 (got {p_low}, {value})")
        return value

    @property
    def n_channels(self) -> int:
        return max(len(self.lq), len(self.hq))

    def _pick(self, params: Sequence[ChannelNorm], channel: int, domain: str) -> ChannelNorm:
        if not params:
            raise ValueError(f"no {domain} normalisation parameters are stored with this model")
        if len(params) == 1:
            return params[0]
        if 0 <= channel < len(params):
            return params[channel]
        raise ValueError(
            f"the model was trained on {len(params)} channels but channel {channel} was asked for; "
            "give images with the same channels as the training data, or retrain with per-image normalization"
        )

    def input_norm(self, plane: np.ndarray, *, channel: int = 0) -> ChannelNorm:
        """Parameters that normalise an LQ (input) plane of ``channel``."""
        if self.mode == "per_image":
            return percentile_norm(plane, p_low=self.p_low, p_high=self.p_high)
        return self._pick(self.lq, channel, "LQ")

    def target_norm(self, plane: np.ndarray, *, channel: int = 0) -> ChannelNorm:
        """Parameters that normalise an HQ (target / ground-truth) plane of ``channel``."""
        if self.mode == "per_image":
            return percentile_norm(plane, p_low=self.p_low, p_high=self.p_high)
        return self._pick(self.hq, channel, "HQ")

    def output_norm(self, input_norm: ChannelNorm, *, channel: int = 0) -> ChannelNorm:
        """Parameters whose ``denormalize`` maps a network output back to intensities.

        ``"dataset"``: the HQ domain's parameters of ``channel``. ``"per_image"``: the input plane's
        own parameters (``input_norm``), so the output is in the input's units.
        """
        if self.mode == "per_image":
            return input_norm
        return self._pick(self.hq, channel, "HQ")


def fit_normalization(
    lq_planes: Sequence[Sequence[np.ndarray]],
    hq_planes: Sequence[Sequence[np.ndarray]],
    *,
    mode: NormalizationMode = "dataset",
    p_low: float = DEFAULT_P_LOW,
    p_high: float = DEFAULT_P_HIGH,
) -> NormalizationConfig:
    """Dataset parameters from the training planes.

    Parameters
    ----------
    lq_planes, hq_planes : sequence (one entry per channel) of sequences of 2-D arrays
        ``lq_planes[c]`` holds every training plane of channel ``c`` of the LQ domain.
    mode, p_low, p_high
        Stored unchanged (see the module documentation).
    """
    return NormalizationConfig(
        mode=mode,
        p_low=p_low,
        p_high=p_high,
        lq=[percentile_norm(planes, p_low=p_low, p_high=p_high) for planes in lq_planes],
        hq=[percentile_norm(planes, p_low=p_low, p_high=p_high) for planes in hq_planes],
    )


__all__ = [
    "ChannelNorm",
    "NormalizationConfig",
    "NormalizationMode",
    "fit_normalization",
    "percentile_norm",
]
