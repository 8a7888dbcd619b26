"""Presets: the published settings of each seed system (../shared/docs/SEEDS.md), as typed, validated JSON.

One JSON file per system lives in ``resources/presets/<name>.json``; :func:`load_preset` also reads a
user's own file (same schema). Unknown fields are errors (``extra="forbid"``), so a typo never passes
silently. Width overrides for a small CPU model go through ``generator.kwargs`` / ``discriminator.kwargs``
(e.g. ``{"base_channels": 8}``); the files record the papers' widths.

Loss-weight keys
----------------
paired systems (S1, S2, S5): ``pixel`` (MSE or L1, see ``pixel_loss``), ``ssim`` (weight of 1 - SSIM),
``perceptual`` (VGG19 feature loss), ``adv`` (generator's adversarial term).
unpaired systems (S3, S4): ``adv`` (sum over both generators), ``cycle`` (L1, both directions),
``identity`` (L1 of G(b) vs b, scale 1 only), ``perceptual`` (VGG19 features of the cycle reconstruction
vs the input), ``saliency`` (c2GAN structure consistency, both directions).
Missing keys mean weight 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decongan.engine.errors import DeconganError

__all__ = [
    "PAIRED_LOSS_KEYS",
    "UNPAIRED_LOSS_KEYS",
    "ModelSpec",
    "Preset",
    "PresetError",
    "list_presets",
    "load_preset",
]

SystemName = Literal["s1", "s2", "s3", "s4", "s5"]
PAIRED_SYSTEMS = ("s1", "s2", "s5")
PAIRED_LOSS_KEYS = frozenset({"pixel", "ssim", "perceptual", "adv"})
UNPAIRED_LOSS_KEYS = frozenset({"adv", "cycle", "identity", "perceptual", "saliency"})


class PresetError(DeconganError, ValueError):
    """A preset cannot be found or is invalid; the message names the file and the problem."""


class ModelSpec(BaseModel):
    """A registered model name (see :func:`engine.learn.models.list_models`) and its constructor arguments."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class Preset(BaseModel):
    """Settings of one seed system.

    Attributes
    ----------
    name : {"s1", "s2", "s3", "s4", "s5"}
        The system (decides the training step: paired GAN for S1/S2/S5, cycleGAN for S3/S4).
    title, reference, notes : str
        Human description, the paper, and where each value comes from.
    paired : bool
        Aligned LQ/HQ pairs (S1, S2, S5) or two unpaired domains (S3, S4).
    scale : int
        HQ pixels per LQ pixel along each axis (1 = same grid).
    generator, discriminator : ModelSpec
        Networks; the generator's ``scale`` is filled in from :attr:`scale` by the system builder.
    loss_weights : dict of str to float
        See the module docstring for the keys.
    gan_type : {"relativistic", "relativistic_average", "vanilla", "lsgan"}
        Adversarial loss (see :mod:`engine.learn.losses`).
    d_loss_average : bool
        Average (S2) instead of sum (S1) the two relativistic discriminator terms.
    pixel_loss : {"mse", "l1"}
        Pixel term of paired systems.
    ssim_data_range : float
        Data range of the normalised images for the SSIM term.
    perceptual_layers : dict of str to float
        VGG19 layer -> weight (used when ``loss_weights["perceptual"] > 0``).
    perceptual_criterion : {"l1", "mse"}
    saliency_temperature : float
        Softness of c2GAN's foreground mask, as a fraction of the image's 1-99 % range.
    saliency_threshold : float or None
        Fixed mask threshold in normalised units; None = per-image Otsu.
    pool_size : int
        cycleGAN's history of generated images shown to the discriminators (0 = off).
    ema_decay : float
        Exponential moving average of the generator weights (0 = off; 0.999 in Real-ESRGAN).
    lr_g, lr_d : float
        Adam learning rates.
    betas : (float, float)
        Adam betas.
    weight_decay : float
    scheduler : {"none", "cosine", "linear_decay"}
        Cosine annealing to ``eta_min`` over ``iterations``; or cycleGAN's constant-then-linear decay
        to 0 starting at ``decay_start * iterations``.
    eta_min : float
    decay_start : float
    patch_size : int
        LQ patch side in pixels (the HQ patch is ``patch_size * scale``).
    batch_size : int
    iterations : int
        The paper's training budget (also the scheduler's horizon).
    validation_every : int
        Iterations between validations.
    pretrained_hint : str
        Which published checkpoint a user may start from, if any.
    """

    model_config = ConfigDict(extra="forbid")

    name: SystemName
    title: str
    reference: str
    notes: str = ""
    paired: bool
    scale: int = Field(1, ge=1, le=8)
    generator: ModelSpec
    discriminator: ModelSpec
    loss_weights: dict[str, float]
    gan_type: Literal["relativistic", "relativistic_average", "vanilla", "lsgan"]
    d_loss_average: bool = False
    pixel_loss: Literal["mse", "l1"] = "mse"
    ssim_data_range: float = Field(1.0, gt=0)
    perceptual_layers: dict[str, float] = Field(default_factory=dict)
    perceptual_criterion: Literal["l1", "mse"] = "l1"
    saliency_temperature: float = Field(0.05, gt=0)
    saliency_threshold: float | None = None
    pool_size: int = Field(0, ge=0)
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0)
    lr_g: float = Field(gt=0)
    lr_d: float = Field(gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    scheduler: Literal["none", "cosine", "linear_decay"] = "none"
    eta_min: float = Field(0.0, ge=0)
    decay_start: float = Field(0.5, ge=0.0, lt=1.0)
    patch_size: int = Field(ge=8)
    batch_size: int = Field(ge=1)
    iterations: int = Field(ge=1)
    validation_every: int = Field(ge=1)
    pretrained_hint: str = ""

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"Adam betas must lie in [0, 1), got {value}")
        return value

    @field_validator("loss_weights")
    @classmethod
    def _weights_non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = {k: v for k, v in value.items() if v < 0}
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {negative}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Preset:
        expected_paired = self.name in PAIRED_SYSTEMS
        if self.paired != expected_paired:
            kind = "paired" if expected_paired else "unpaired"
            raise ValueError(f"system {self.name} is {kind}: set paired={expected_paired}")
        allowed = PAIRED_LOSS_KEYS if self.paired else UNPAIRED_LOSS_KEYS
        unknown = sorted(set(self.loss_weights) - allowed)
        if unknown:
            raise ValueError(
                f"unknown loss weight(s) {unknown} for {'paired' if self.paired else 'unpaired'} system "
                f"{self.name}; allowed: {sorted(allowed)}"
            )
        if self.weight("perceptual") > 0 and not self.perceptual_layers:
            raise ValueError("loss_weights.perceptual > 0 needs perceptual_layers (VGG19 layer -> weight)")
        if self.weight("identity") > 0 and self.scale != 1:
            raise ValueError("the identity loss needs scale 1 (G(b) must be on b's grid); set its weight to 0")
        if self.scale & (self.scale - 1):
            raise ValueError(f"scale must be a power of two (1, 2, 4, 8), got {self.scale}")
        return self

    def weight(self, key: str) -> float:
        """Loss weight of ``key`` (0 when absent)."""
        return float(self.loss_weights.get(key, 0.0))

    def with_overrides(self, **fields: Any) -> Preset:
        """A validated copy with top-level fields replaced; ``generator``/``discriminator`` dicts are
        merged into the existing specs (their ``kwargs`` too), e.g.
        ``preset.with_overrides(lr_g=1e-3, generator={"kwargs": {"base_channels": 8}})``.
        """
        data = self.model_dump()
        for key, value in fields.items():
            if key in ("generator", "discriminator") and isinstance(value, dict):
                spec = dict(data[key])
                if "name" in value:
                    spec["name"] = value["name"]
                spec["kwargs"] = {**spec.get("kwargs", {}), **value.get("kwargs", {})}
                extra = set(value) - {"name", "kwargs"}
                if extra:
                    raise PresetError(f"unknown {key} field(s) {sorted(extra)}; use name and kwargs")
                data[key] = spec
            else:
                data[key] = value
        try:
            return Preset.model_validate(data)
        except ValidationError as exc:
            raise PresetError(f"invalid override of preset {self.name}: {exc}") from exc


def list_presets() -> list[str]:
    """Names of the bundled presets (``resources/presets/*.json``), sorted."""
    from decongan.resources import resource_path

    return sorted(p.stem for p in resource_path("presets").glob("*.json"))


def load_preset(name_or_path: str | os.PathLike) -> Preset:
    """Load and validate a bundled preset by name (``"s1"`` ... ``"s5"``) or a user's JSON file.

    Raises
    ------
    PresetError
        Unknown name (the message lists the bundled ones), unreadable file, invalid JSON, or a
        schema violation (the message names the file and carries pydantic's field-by-field report).
    """
    from decongan.resources import resource_path

    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix.lower() == ".json" or candidate.is_file() or os.sep in text:
        path = candidate
        if not path.is_file():
            raise PresetError(f"preset file {text!r} does not exist")
    else:
        try:
            path = resource_path("presets", f"{text.lower()}.json")
        except FileNotFoundError:
            raise PresetError(
                f"unknown preset {text!r}; bundled presets: {', '.join(list_presets())} "
                "(or give the path of a preset JSON file)"
            ) from None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"cannot read preset file {str(path)!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise PresetError(f"preset file {str(path)!r} is not valid JSON: {exc}") from exc
    try:
        return Preset.model_validate(data)
    except ValidationError as exc:
        raise PresetError(f"invalid preset file {str(path)!r}:\n{exc}") from exc
