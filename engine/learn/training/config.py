"""Typed configuration of one training run (what ``decongan train`` builds from its options).

:class:`TrainConfig` holds what the user asked for; the run's resolved facts (preset after
overrides, normalisation parameters, pixel size, data split, versions) go into
:class:`engine.learn.checkpoint.RunConfig` in ``RUN_DIR/config.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from decongan.engine.learn.degrade import DegradationSpec
from decongan.engine.learn.normalization import DEFAULT_P_HIGH, DEFAULT_P_LOW, NormalizationMode


class TrainConfig(BaseModel):
    """Options of one training run.

    Attributes
    ----------
    preset : str
        Preset name ("s1" ... "s5") or path of a preset JSON file.
    lq_dir, hq_dir : Path or None
        Low-quality (input) and high-quality (target) folders. Paired presets match files by name;
        unpaired presets treat them as two domains. With ``synthetic_lq`` only ``hq_dir`` is needed.
    out : Path
        The run folder.
    iterations, patch_size, batch_size, val_every : int or None
        Override the preset's values (``patch_size`` is the LQ patch side in pixels).
    checkpoint_every : int or None
        Iterations between checkpoints (default: ``val_every``).
    log_every : int
        Iterations between progress events (losses are averaged over the interval).
    seed : int
        Seeds torch, numpy, Python and the patch sampler.
    device : str
        "auto", "cpu", "cuda" or "cuda:N".
    amp : bool or None
        Mixed precision; None = on CUDA only (never on CPU).
    deterministic : bool
        Ask torch for deterministic algorithms (always on CPU; on CUDA it costs speed).
    val_names : list of str or None
        File stems held out for validation (default: a deterministic ``val_fraction`` by name).
    val_fraction : float
        Fraction of whole images held out when ``val_names`` is not given (at least one image
        when there are two or more).
    max_val_planes : int
        At most this many held-out planes are validated (evenly chosen), to bound its cost.
    model_args, disc_args : dict
        Override the generator's / discriminator's constructor arguments (e.g. a small width on CPU).
    preset_overrides : dict
        Any other preset fields (deep-merged, e.g. ``{"lr_g": 1e-4}``).
    pixel_size_um : float or None
        LQ pixel size (micrometres) when the files do not state it; recorded for inference.
    synthetic_lq : DegradationSpec or None
        Make the LQ images from the HQ ones (see :mod:`engine.learn.degrade`).
    normalization, p_low, p_high
        Normalisation policy (see :mod:`engine.learn.normalization`).
    foreground_threshold, foreground_reject_prob : float
        A patch whose target's 99th percentile (normalised units) is below the threshold is
        rejected with this probability (at most 16 draws per patch).
    registration : str or None
        Register each LQ image onto its HQ pair before training ("translation", "rigid",
        "similarity" or "affine"; paired presets at scale 1 only).
    vgg19_weights, pretrained : Path or None
        ImageNet VGG19 weights for perceptual losses; an official checkpoint to start from (S5).
    val_tile, val_overlap : int
        Tiling of whole-image validation inference.
    resume : bool
        Continue the run in ``out`` from its last checkpoint.
    """

    model_config = ConfigDict(extra="forbid")

    preset: str = "s1"
    lq_dir: Path | None = None
    hq_dir: Path | None = None
    out: Path
    iterations: int | None = Field(None, ge=1)
    patch_size: int | None = Field(None, ge=8)
    batch_size: int | None = Field(None, ge=1)
    val_every: int | None = Field(None, ge=1)
    checkpoint_every: int | None = Field(None, ge=1)
    log_every: int = Field(10, ge=1)
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    deterministic: bool = True
    val_names: list[str] | None = None
    val_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    max_val_planes: int = Field(16, ge=1)
    model_args: dict[str, Any] = Field(default_factory=dict)
    disc_args: dict[str, Any] = Field(default_factory=dict)
    preset_overrides: dict[str, Any] = Field(default_factory=dict)
    pixel_size_um: float | None = Field(None, gt=0)
    synthetic_lq: DegradationSpec | None = None
    normalization: NormalizationMode = "dataset"
    p_low: float = DEFAULT_P_LOW
    p_high: float = DEFAULT_P_HIGH
    foreground_threshold: float = 0.2
    foreground_reject_prob: float = Field(0.9, ge=0.0, le=1.0)
    registration: Literal["translation", "rigid", "similarity", "affine"] | None = None
    vgg19_weights: Path | None = None
    pretrained: Path | None = None
    val_tile: int = Field(512, ge=0)
    val_overlap: int = Field(64, ge=0)
    resume: bool = False

    @model_validator(mode="after")
    def _folders(self) -> TrainConfig:
        if self.synthetic_lq is not None:
            if self.hq_dir is None:
                raise ValueError("synthetic LQ images are made from HQ images: give the HQ folder")
        elif self.lq_dir is None and not self.resume:
            raise ValueError("give the LQ folder, or synthetic LQ images (a degradation) with an HQ folder")
        return self


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``update``'s values win; nested dicts are merged, not replaced.

    Parameters
    ----------
    base : dict
        The defaults (not modified).
    update : dict
        The values that win (not modified).

    Returns
    -------
    dict
        A new dict; nested dicts that were merged are new too, other values are shared, not copied.
    """
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def preset_updates(config: TrainConfig) -> dict[str, Any]:
    """The preset fields this configuration overrides (for the stored preset content)."""
    updates: dict[str, Any] = {}
    for field in ("iterations", "patch_size", "batch_size"):
        value = getattr(config, field)
        if value is not None:
            updates[field] = value
    if config.val_every is not None:
        updates["validation_every"] = config.val_every
    if config.model_args:
        updates["generator"] = {"kwargs": dict(config.model_args)}
    if config.disc_args:
        updates["discriminator"] = {"kwargs": dict(config.disc_args)}
    return deep_merge(updates, config.preset_overrides)


def apply_overrides(preset: Any, updates: dict[str, Any]) -> Any:
    """``preset`` with ``updates`` deep-merged into its content and validated again.

    Nested fields merge (``{"loss_weights": {"perceptual": 0}}`` keeps the other weights;
    ``{"generator": {"kwargs": {"base_channels": 8}}}`` keeps the other constructor arguments).

    Parameters
    ----------
    preset : engine.learn.presets.Preset
        The preset to start from (not modified).
    updates : dict
        Field name -> new value, nested dicts for nested fields (e.g. from :func:`preset_updates`).

    Returns
    -------
    engine.learn.presets.Preset
        A new, validated preset; ``preset`` itself when ``updates`` is empty.

    Raises
    ------
    engine.learn.presets.PresetError
        The result is not a valid preset (the message carries pydantic's report).
    """
    from pydantic import ValidationError

    from decongan.engine.learn.presets import Preset, PresetError

    if not updates:
        return preset
    try:
        return Preset.model_validate(deep_merge(preset.model_dump(), updates))
    except ValidationError as err:
        raise PresetError(f"invalid override of preset {preset.name} ({sorted(updates)}): {err}") from err


__all__ = ["TrainConfig", "apply_overrides", "deep_merge", "preset_updates"]
