"""GAN systems: the networks, optimisers, schedulers and losses of each seed system behind one API.

``build_system(preset)`` returns a :class:`GANSystem`:

* S1, S2, S5 (paired) -> :class:`PairedGANSystem`: generator ``"g"`` (and its EMA ``"g_ema"`` when
  ``preset.ema_decay > 0``) and discriminator ``"d"``; per iteration one generator step then one
  discriminator step (BasicSR's order).
* S3, S4 (unpaired) -> :class:`CycleGANSystem`: ``"g_ab"`` (LQ -> HQ), ``"g_ba"`` (HQ -> LQ), ``"d_a"``
  (judges LQ-domain images), ``"d_b"`` (judges HQ-domain images); one Adam for both generators and one
  for both discriminators, as cycleGAN.

Conventions
-----------
* Batches are ``{"lq": (B, C, h, w), "hq": (B, C, h*scale, w*scale)}`` float32 in normalised units;
  aligned for paired systems, independent draws for unpaired ones.
* ``train_step`` (:mod:`engine.learn.training.step`, which holds the step itself) performs one complete iteration: both optimiser steps, the EMA update **and one step
  of every LR scheduler**. Callers must not step :meth:`GANSystem.schedulers` themselves (they are
  exposed for checkpointing).
* AMP (``torch.autocast`` float16 + ``GradScaler``) and channels-last are used only on CUDA. On CPU
  ``amp`` is ignored and everything is exact float32. SSIM, FFT attention and the saliency masks always
  run in float32.
* Deterministic given ``torch.manual_seed`` before :func:`build_system` (weights) and before the steps
  (cycleGAN's image history draws from torch's global generator).
* :meth:`GANSystem.training_state` / :meth:`GANSystem.load_training_state` hold everything besides the
  network weights that an exact resume needs (optimisers, schedulers, GradScaler, image histories,
  iteration counter); tensors and plain values only, safe for ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Adam, Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler

from decongan.engine.device import resolve_device
from decongan.engine.learn import losses as L
from decongan.engine.learn.checkpoint.published import ImportReport, import_checkpoint
from decongan.engine.learn.models import create_model, is_registered, model_factory
from decongan.engine.learn.presets import Preset, load_preset

__all__ = ["CycleGANSystem", "GANSystem", "ImagePool", "PairedGANSystem", "build_system"]

_D_LOSSES = {
    "relativistic": L.relativistic_d_loss,
    "relativistic_average": L.relativistic_average_d_loss,
    "vanilla": L.vanilla_d_loss,
    "lsgan": L.lsgan_d_loss,
}
_G_LOSSES = {
    "relativistic": L.relativistic_g_loss,
    "relativistic_average": L.relativistic_average_g_loss,
    "vanilla": L.vanilla_g_loss,
    "lsgan": L.lsgan_g_loss,
}


class ImagePool:
    """cycleGAN's history of generated images (Shrivastava et al. 2017).

    Once full, each incoming image is, with probability 1/2, swapped for a random stored one (which is
    returned instead). Random draws use torch's global generator, so runs are reproducible.
    """

    def __init__(self, size: int):
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape mixing ``images`` (detached) with stored ones."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images.split(1):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(())) > 0.5:
                index = int(torch.randint(0, self.size, ()))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state(self) -> torch.Tensor:
        """The stored images as one tensor (N, C, H, W) (empty when none)."""
        return torch.cat(self.images) if self.images else torch.empty(0)

    def load_state(self, stored: torch.Tensor, device: torch.device) -> None:
        self.images = [t.to(device) for t in stored.split(1)] if stored.numel() else []


class GANSystem:
    """Networks, optimisers, schedulers and the training step of one seed system.

    Attributes
    ----------
    preset : Preset
        The settings the system was built from (after overrides).
    paired : bool
    scale : int
        HQ pixels per LQ pixel.
    device : torch.device
    iteration : int
        Completed ``train_step`` calls (restored by :meth:`load_training_state`).
    import_reports : dict of str to ImportReport
        What was loaded from ``pretrained`` checkpoints (empty when none).
    """

    def __init__(self, preset: Preset, nets: dict[str, nn.Module], device: torch.device):
        self.preset = preset
        self.paired = preset.paired
        self.scale = preset.scale
        self.device = device
        self.iteration = 0
        self.import_reports: dict[str, ImportReport] = {}
        self._nets = nets
        self._optimizers: dict[str, Optimizer] = {}
        self._schedulers: dict[str, LRScheduler] = {}
        self.perceptual: L.PerceptualLoss | None = None
        self.scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
        #: discriminator and generator adversarial losses, ``(real_logits, fake_logits) -> scalar``
        self.d_loss = _D_LOSSES[preset.gan_type]
        self.g_loss = _G_LOSSES[preset.gan_type]
        if preset.gan_type == "relativistic" and preset.d_loss_average:
            self.d_loss = lambda real, fake: L.relativistic_d_loss(real, fake, average=True)

    # ------------------------------------------------------------------ public API
    @property
    def generator(self) -> nn.Module:
        """The LQ -> HQ network used for validation and inference."""
        raise NotImplementedError

    def networks(self) -> dict[str, nn.Module]:
        """Every trainable (and EMA) network by a stable name."""
        return dict(self._nets)

    def optimizers(self) -> dict[str, Optimizer]:
        return dict(self._optimizers)

    def schedulers(self) -> dict[str, LRScheduler]:
        """LR schedulers (stepped by :meth:`train_step`; exposed for checkpointing). May be empty."""
        return dict(self._schedulers)

    def train(self) -> GANSystem:
        for name, net in self._nets.items():
            net.train(name != "g_ema")
        return self

    def eval(self) -> GANSystem:
        for net in self._nets.values():
            net.eval()
        return self

    def to(self, device: str | torch.device) -> GANSystem:
        """Move networks, loss modules and optimiser state to ``device``."""
        device = torch.device(device) if not isinstance(device, torch.device) else device
        memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        for net in self._nets.values():
            net.to(device=device, memory_format=memory_format)
        if self.perceptual is not None:
            self.perceptual.to(device)
        for optimizer in self._optimizers.values():
            for state in optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and key != "step":
                        state[key] = value.to(device)
        if device.type != self.device.type:
            self.scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
        self.device = device
        self._move_extra(device)
        return self

    def train_step(self, batch: Mapping[str, torch.Tensor], *, amp: bool = False) -> dict[str, float]:
        """One optimisation step of all networks; returns named scalar losses (Python floats).

        The step itself is :func:`engine.learn.training.step.train_step` (paired or cycle step).
        """
        from decongan.engine.learn.training.step import train_step

        return train_step(self, batch, amp=amp)

    def training_state(self) -> dict[str, Any]:
        """Optimiser/scheduler/GradScaler state, image histories and the iteration counter."""
        return {
            "iteration": self.iteration,
            "optimizers": {k: v.state_dict() for k, v in self._optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self._schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "extra": self._extra_state(),
        }

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`training_state` returned (networks are loaded separately)."""
        self.iteration = int(state["iteration"])
        for key, value in state["optimizers"].items():
            self._optimizers[key].load_state_dict(value)
        for key, value in state["schedulers"].items():
            self._schedulers[key].load_state_dict(value)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self._load_extra_state(state.get("extra", {}))

    # ------------------------------------------------------------------ helpers
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: Mapping[str, Any]) -> None:
        pass

    def _move_extra(self, device: torch.device) -> None:
        pass


class PairedGANSystem(GANSystem):
    """S1, S2, S5: a generator trained on aligned pairs against one discriminator.

    Its step and generator loss: :func:`engine.learn.training.step.paired_step`.
    """

    def __init__(self, preset: Preset, g: nn.Module, d: nn.Module, device: torch.device):
        nets = {"g": g, "d": d}
        if preset.ema_decay > 0:
            g_ema = copy.deepcopy(g).eval()
            g_ema.requires_grad_(False)
            nets["g_ema"] = g_ema
        super().__init__(preset, nets, device)

    @property
    def generator(self) -> nn.Module:
        return self._nets.get("g_ema", self._nets["g"])

    def reset_ema(self) -> None:
        """Copy the generator's weights into its EMA (after loading pretrained weights)."""
        if "g_ema" in self._nets:
            self._nets["g_ema"].load_state_dict(self._nets["g"].state_dict())

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the EMA generator towards the generator by ``1 - preset.ema_decay`` (no-op without EMA)."""
        g_ema = self._nets.get("g_ema")
        if g_ema is None:
            return
        decay = self.preset.ema_decay
        for p_ema, p in zip(g_ema.parameters(), self._nets["g"].parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1.0 - decay)
        for b_ema, b in zip(g_ema.buffers(), self._nets["g"].buffers(), strict=True):
            b_ema.copy_(b)


class CycleGANSystem(GANSystem):
    """S3 (cycleGAN + perceptual) and S4 (c2GAN: cycleGAN + saliency constraint).

    Its step and generator loss: :func:`engine.learn.training.step.cycle_step`; the discriminators see
    generated images through an :class:`ImagePool` of ``preset.pool_size`` each.
    """

    def __init__(self, preset: Preset, nets: dict[str, nn.Module], device: torch.device):
        super().__init__(preset, nets, device)
        self.pool_a = ImagePool(preset.pool_size)
        self.pool_b = ImagePool(preset.pool_size)

    @property
    def generator(self) -> nn.Module:
        return self._nets["g_ab"]

    def _extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state().cpu(), "pool_b": self.pool_b.state().cpu()}

    def _load_extra_state(self, extra: Mapping[str, Any]) -> None:
        if "pool_a" in extra:
            self.pool_a.load_state(extra["pool_a"], self.device)
        if "pool_b" in extra:
            self.pool_b.load_state(extra["pool_b"], self.device)

    def _move_extra(self, device: torch.device) -> None:
        self.pool_a.images = [t.to(device) for t in self.pool_a.images]
        self.pool_b.images = [t.to(device) for t in self.pool_b.images]


# ---------------------------------------------------------------------------------------- builder
def _accepts(model_name: str, argument: str) -> bool:
    if not is_registered(model_name):
        return False
    try:
        return argument in inspect.signature(model_factory(model_name)).parameters
    except (TypeError, ValueError):
        return False


def _generator_kwargs(preset: Preset, *, direction: str = "up") -> dict[str, Any]:
    spec = preset.generator
    kwargs = dict(spec.kwargs)
    argument = "scale" if direction == "up" else "downscale"
    for reserved in ("scale", "downscale"):
        if reserved in kwargs:
            raise ValueError(
                f"preset {preset.name}: set the scale with the preset's 'scale' field, not generator.kwargs.{reserved}"
            )
    if _accepts(spec.name, argument):
        kwargs[argument] = preset.scale
    elif preset.scale != 1:
        raise ValueError(
            f"preset {preset.name}: generator {spec.name!r} cannot change the grid ({argument}={preset.scale}); "
            "use scale 1 or a generator that supports it"
        )
    return kwargs


def _scheduler(preset: Preset, optimizer: Optimizer) -> LRScheduler | None:
    if preset.scheduler == "cosine":
        return CosineAnnealingLR(optimizer, T_max=preset.iterations, eta_min=preset.eta_min)
    if preset.scheduler == "linear_decay":
        start = int(preset.decay_start * preset.iterations)
        span = max(preset.iterations - start, 1)
        return LambdaLR(optimizer, lambda it: 1.0 if it < start else max(0.0, 1.0 - (it - start) / span))
    return None


def build_system(
    preset: Preset | str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    vgg19_weights: Path | str | None = None,
    pretrained: Path | str | None = None,
    pretrained_d: Path | str | None = None,
    iterations: int | None = None,
) -> GANSystem:
    """Build the networks, losses, optimisers and schedulers of ``preset``.

    Parameters
    ----------
    preset : Preset, name or path
        A :class:`~engine.learn.presets.Preset` or anything :func:`~engine.learn.presets.load_preset` accepts.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    vgg19_weights : path, optional
        torchvision VGG19 ImageNet weights; needed only when the preset's perceptual weight is > 0
        (falls back to ``$DECONGAN_VGG19``; a clear error names the file otherwise).
    pretrained : path, optional
        Checkpoint for the (LQ -> HQ) generator: an official Real-ESRGAN/BasicSR file (``params_ema`` /
        ``params``; RGB folded to grey) or a plain state dict. Must fit exactly (missing or
        mis-shaped keys raise :class:`~engine.learn.checkpoint.published.CheckpointImportError`).
    pretrained_d : path, optional
        The same for the discriminator (e.g. ``RealESRGAN_x4plus_netD.pth``); paired systems only.
    iterations : int, optional
        Override ``preset.iterations`` (the scheduler's horizon).

    Returns
    -------
    GANSystem
        In training mode, on ``device``. Seed torch before calling for reproducible weights.
    """
    if not isinstance(preset, Preset):
        preset = load_preset(preset)
    if iterations is not None:
        preset = preset.with_overrides(iterations=iterations)
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device

    if preset.paired:
        g = create_model(preset.generator.name, **_generator_kwargs(preset))
        d = create_model(preset.discriminator.name, **preset.discriminator.kwargs)
        reports = {}
        if pretrained is not None:
            reports["g"] = import_checkpoint(g, pretrained)
        if pretrained_d is not None:
            reports["d"] = import_checkpoint(d, pretrained_d)
        system: GANSystem = PairedGANSystem(preset, g, d, device)
        system.import_reports = reports
        gen_params = list(g.parameters())
        disc_params = list(d.parameters())
    else:
        if pretrained_d is not None:
            raise ValueError("pretrained_d applies to paired systems (S1, S2, S5) only")
        g_ab = create_model(preset.generator.name, **_generator_kwargs(preset, direction="up"))
        g_ba = create_model(preset.generator.name, **_generator_kwargs(preset, direction="down"))
        d_a = create_model(preset.discriminator.name, **preset.discriminator.kwargs)
        d_b = create_model(preset.discriminator.name, **preset.discriminator.kwargs)
        reports = {}
        if pretrained is not None:
            reports["g_ab"] = import_checkpoint(g_ab, pretrained)
        system = CycleGANSystem(preset, {"g_ab": g_ab, "g_ba": g_ba, "d_a": d_a, "d_b": d_b}, device)
        system.import_reports = reports
        gen_params = list(itertools.chain(g_ab.parameters(), g_ba.parameters()))
        disc_params = list(itertools.chain(d_a.parameters(), d_b.parameters()))

    if preset.weight("perceptual") > 0:
        from decongan.engine.learn.models.vgg import VGG19FeatureExtractor, resolve_vgg19_weights

        extractor = VGG19FeatureExtractor(preset.perceptual_layers, resolve_vgg19_weights(vgg19_weights))
        system.perceptual = L.PerceptualLoss(extractor, preset.perceptual_layers, criterion=preset.perceptual_criterion)

    system._optimizers = {
        "g": Adam(gen_params, lr=preset.lr_g, betas=preset.betas, weight_decay=preset.weight_decay),
        "d": Adam(disc_params, lr=preset.lr_d, betas=preset.betas, weight_decay=preset.weight_decay),
    }
    for key, optimizer in system._optimizers.items():
        scheduler = _scheduler(preset, optimizer)
        if scheduler is not None:
            system._schedulers[key] = scheduler
    system.to(device)
    if isinstance(system, PairedGANSystem):
        system.reset_ema()
    return system.train()
