"""One GAN training iteration: both optimiser steps, the EMA update and one step of every LR scheduler.

The networks, optimisers, schedulers, GradScaler, loss functions and image histories are the
:class:`~engine.learn.systems.GANSystem`'s (built by :func:`engine.learn.systems.build_system`); this
module is what one iteration does with them. :meth:`GANSystem.train_step` calls :func:`train_step`,
which dispatches on the system:

* paired systems (S1, S2, S5): :func:`paired_step`, one generator step then one discriminator step
  (BasicSR's order);
* unpaired systems (S3, S4): :func:`cycle_step`, one step of both generators then one of both
  discriminators (cycleGAN's order).

Conventions (see :mod:`engine.learn.systems`): batches are ``{"lq": (B, C, h, w), "hq": (B, C, h*scale,
w*scale)}`` float32 in normalised units; AMP (float16 autocast + GradScaler) and channels-last only on
CUDA, exact float32 on CPU; SSIM, FFT attention and the saliency masks always in float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from decongan.engine.learn import losses as L

if TYPE_CHECKING:
    from decongan.engine.learn.systems import CycleGANSystem, GANSystem, PairedGANSystem

__all__ = ["as_floats", "autocast", "cycle_step", "finish_step", "paired_step", "prepare_batch", "train_step"]


def train_step(system: GANSystem, batch: Mapping[str, torch.Tensor], *, amp: bool = False) -> dict[str, float]:
    """One complete training iteration of ``system`` (the step its kind of GAN takes).

    Parameters
    ----------
    system : GANSystem
        A :class:`~engine.learn.systems.PairedGANSystem` or :class:`~engine.learn.systems.CycleGANSystem`.
    batch : mapping of str to torch.Tensor
        ``"lq"`` (B, C, h, w) and ``"hq"`` (B, C, h*scale, w*scale), float32 in normalised units.
    amp : bool
        Mixed precision (float16 autocast); used only on CUDA.

    Returns
    -------
    dict of str to float
        The named losses of :func:`paired_step` or :func:`cycle_step`.
    """
    from decongan.engine.learn.systems import CycleGANSystem, PairedGANSystem

    if isinstance(system, PairedGANSystem):
        return paired_step(system, batch, amp=amp)
    if isinstance(system, CycleGANSystem):
        return cycle_step(system, batch, amp=amp)
    raise TypeError(f"no training step for {type(system).__name__}")


def paired_step(system: PairedGANSystem, batch: Mapping[str, torch.Tensor], *, amp: bool = False) -> dict[str, float]:
    """One generator step then one discriminator step of a paired system (S1, S2, S5).

    Generator loss: ``w_pixel * (MSE|L1)(G(x), y) + w_ssim * (1 - SSIM) + w_perceptual * VGG(G(x), y)
    + w_adv * adversarial``. The SSIM term uses an 11 x 11 Gaussian window (sigma 1.5), shrunk to the
    largest odd size that fits when patches are smaller than 11 pixels.

    Parameters
    ----------
    system : PairedGANSystem
        Networks ``"g"`` and ``"d"`` (and ``"g_ema"``), their optimisers and schedulers.
    batch : mapping of str to torch.Tensor
        Aligned ``"lq"`` (B, C, h, w) and ``"hq"`` (B, C, h*scale, w*scale), normalised float32.
    amp : bool
        Mixed precision; used only on CUDA.

    Returns
    -------
    dict of str to float
        ``loss_g``, ``loss_d``, the pixel term (``mse`` or ``l1``), ``ssim`` (the similarity, not
        the loss), ``perceptual`` (0 when off), ``adv_g``, ``d_real`` / ``d_fake`` (mean logits of
        the discriminator step) and ``lr_g`` (the learning rate used).
    """
    preset = system.preset
    nets, optimizers = system.networks(), system.optimizers()
    g, d = nets["g"], nets["d"]
    opt_g, opt_d = optimizers["g"], optimizers["d"]
    lq, hq = prepare_batch(system, batch)
    lr_g = opt_g.param_groups[0]["lr"]
    g.train()
    d.train()

    # --- generator step (D frozen); D(y) is computed once, with its graph kept for the D step
    d.requires_grad_(True)
    with autocast(system.device, amp):
        real_logits = d(hq)
    d.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    with autocast(system.device, amp):
        fake = g(lq)
        fake_logits = d(fake)
        adv = system.g_loss(real_logits.detach().float(), fake_logits.float())
    fake32 = fake.float()
    pixel = F.mse_loss(fake32, hq) if preset.pixel_loss == "mse" else F.l1_loss(fake32, hq)
    side = min(hq.shape[-2:])
    window = min(11, side if side % 2 else side - 1)
    if preset.weight("ssim") > 0:
        ssim_value = L.ssim(fake32, hq, data_range=preset.ssim_data_range, window_size=window)
    else:
        with torch.no_grad():
            ssim_value = L.ssim(fake32, hq, data_range=preset.ssim_data_range, window_size=window)
    loss_g = preset.weight("pixel") * pixel + preset.weight("ssim") * (1.0 - ssim_value) + preset.weight("adv") * adv
    perceptual = torch.zeros((), device=system.device)
    if system.perceptual is not None:
        with autocast(system.device, amp):
            perceptual = system.perceptual(fake, hq).float()
        loss_g = loss_g + preset.weight("perceptual") * perceptual
    system.scaler.scale(loss_g).backward()
    system.scaler.step(opt_g)
    system.update_ema()

    # --- discriminator step
    d.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    with autocast(system.device, amp):
        fake_logits_d = d(fake.detach())
        loss_d = system.d_loss(real_logits.float(), fake_logits_d.float())
    system.scaler.scale(loss_d).backward()
    system.scaler.step(opt_d)
    finish_step(system)
    return as_floats(system.device,
        {
            "loss_g": loss_g,
            "loss_d": loss_d,
            preset.pixel_loss: pixel,
            "ssim": ssim_value,
            "perceptual": perceptual,
            "adv_g": adv,
            "d_real": real_logits.float().mean(),
            "d_fake": fake_logits_d.float().mean(),
            "lr_g": lr_g,
        }
    )


def cycle_step(system: CycleGANSystem, batch: Mapping[str, torch.Tensor], *, amp: bool = False) -> dict[str, float]:
    """One step of both generators, then one of both discriminators, of an unpaired system (S3, S4).

    Generator loss: ``w_adv * (adv(G_ab) + adv(G_ba)) + w_cycle * (|F(G(a)) - a| + |G(F(b)) - b|)
    + w_identity * (|G(b) - b| + |F(a) - a|) + w_perceptual * (VGG(F(G(a)), a) + VGG(G(F(b)), b))
    + w_saliency * (S(a, G(a)) + S(b, F(b)))`` with S = :func:`engine.learn.losses.structure_loss`.
    Each discriminator loss is computed on real images and on generated ones drawn through the
    system's image histories (:class:`~engine.learn.systems.ImagePool`).

    Parameters
    ----------
    system : CycleGANSystem
        Networks ``"g_ab"``, ``"g_ba"``, ``"d_a"``, ``"d_b"``, their optimisers, schedulers and pools.
    batch : mapping of str to torch.Tensor
        Independent draws ``"lq"`` (B, C, h, w) and ``"hq"`` (B, C, H, W), H and W divisible by the scale.
    amp : bool
        Mixed precision; used only on CUDA.

    Returns
    -------
    dict of str to float
        ``loss_g``, ``loss_d``, ``adv_g``, ``cycle``, ``identity``, ``perceptual``, ``saliency``
        (0 for terms that are off), ``loss_d_a``, ``loss_d_b`` and ``lr_g``.
    """
    preset = system.preset
    nets, optimizers = system.networks(), system.optimizers()
    g_ab, g_ba = nets["g_ab"], nets["g_ba"]
    d_a, d_b = nets["d_a"], nets["d_b"]
    opt_g, opt_d = optimizers["g"], optimizers["d"]
    real_a, real_b = prepare_batch(system, batch)
    lr_g = opt_g.param_groups[0]["lr"]
    system.train()
    zero = torch.zeros((), device=system.device)

    d_a.requires_grad_(False)
    d_b.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    with autocast(system.device, amp):
        fake_b = g_ab(real_a)
        rec_a = g_ba(fake_b)
        fake_a = g_ba(real_b)
        rec_b = g_ab(fake_a)
        relativistic = preset.gan_type in ("relativistic", "relativistic_average")
        real_b_logits = d_b(real_b).float() if relativistic else None
        real_a_logits = d_a(real_a).float() if relativistic else None
        adv = system.g_loss(real_b_logits, d_b(fake_b).float()) + system.g_loss(real_a_logits, d_a(fake_a).float())
        cycle = L.cycle_loss(rec_a.float(), real_a) + L.cycle_loss(rec_b.float(), real_b)
        identity = zero
        if preset.weight("identity") > 0:
            identity = L.identity_loss(g_ab(real_b).float(), real_b) + L.identity_loss(g_ba(real_a).float(), real_a)
        perceptual = zero
        if system.perceptual is not None:
            perceptual = (system.perceptual(rec_a, real_a) + system.perceptual(rec_b, real_b)).float()
    saliency = zero
    if preset.weight("saliency") > 0:
        kwargs = {"temperature": preset.saliency_temperature, "threshold": preset.saliency_threshold}
        saliency = L.structure_loss(real_a, fake_b.float(), **kwargs) + L.structure_loss(
            real_b, fake_a.float(), **kwargs
        )
    loss_g = (
        preset.weight("adv") * adv
        + preset.weight("cycle") * cycle
        + preset.weight("identity") * identity
        + preset.weight("perceptual") * perceptual
        + preset.weight("saliency") * saliency
    )
    system.scaler.scale(loss_g).backward()
    system.scaler.step(opt_g)

    d_a.requires_grad_(True)
    d_b.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    with autocast(system.device, amp):
        loss_d_b = system.d_loss(d_b(real_b).float(), d_b(system.pool_b.query(fake_b)).float())
        loss_d_a = system.d_loss(d_a(real_a).float(), d_a(system.pool_a.query(fake_a)).float())
        loss_d = loss_d_a + loss_d_b
    system.scaler.scale(loss_d).backward()
    system.scaler.step(opt_d)
    finish_step(system)
    return as_floats(system.device,
        {
            "loss_g": loss_g,
            "loss_d": loss_d,
            "adv_g": adv,
            "cycle": cycle,
            "identity": identity,
            "perceptual": perceptual,
            "saliency": saliency,
            "loss_d_a": loss_d_a,
            "loss_d_b": loss_d_b,
            "lr_g": lr_g,
        }
    )


def prepare_batch(system: GANSystem, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a batch's shapes and move it to the system's device as float32 (channels-last on CUDA).

    Parameters
    ----------
    system : GANSystem
        Gives the device, the scale and whether the data are paired.
    batch : mapping of str to torch.Tensor
        ``"lq"`` (B, C, h, w) and ``"hq"`` (B, C, H, W).

    Returns
    -------
    lq, hq : torch.Tensor
        On ``system.device``, float32.

    Raises
    ------
    KeyError
        A tensor is missing.
    ValueError
        The tensors are not 4-D, or the HQ shape does not fit the LQ shape and the scale.
    """
    missing = [k for k in ("lq", "hq") if k not in batch]
    if missing:
        raise KeyError(f"train_step needs a batch with 'lq' and 'hq' tensors; missing {missing}")
    lq, hq = batch["lq"], batch["hq"]
    if lq.ndim != 4 or hq.ndim != 4:
        raise ValueError(f"lq and hq must be (B, C, H, W), got {tuple(lq.shape)} and {tuple(hq.shape)}")
    if system.paired and tuple(hq.shape[-2:]) != (lq.shape[-2] * system.scale, lq.shape[-1] * system.scale):
        raise ValueError(
            f"paired batch: hq {tuple(hq.shape[-2:])} must be lq {tuple(lq.shape[-2:])} times scale {system.scale}"
        )
    if not system.paired and (hq.shape[-2] % system.scale or hq.shape[-1] % system.scale):
        raise ValueError(f"hq patch {tuple(hq.shape[-2:])} must be divisible by scale {system.scale}")
    memory_format = torch.channels_last if system.device.type == "cuda" else torch.contiguous_format
    lq = lq.to(system.device, torch.float32, non_blocking=True).contiguous(memory_format=memory_format)
    hq = hq.to(system.device, torch.float32, non_blocking=True).contiguous(memory_format=memory_format)
    return lq, hq


def autocast(device: torch.device, amp: bool) -> AbstractContextManager:
    """float16 autocast on CUDA when ``amp``; otherwise a context that changes nothing.

    Parameters
    ----------
    device : torch.device
        Where the step runs.
    amp : bool
        Whether mixed precision was asked for.

    Returns
    -------
    context manager
    """
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return nullcontext()


def finish_step(system: GANSystem) -> None:
    """End an iteration: update the GradScaler, step every LR scheduler, count the iteration.

    Parameters
    ----------
    system : GANSystem
        The system whose optimiser steps were just taken.
    """
    system.scaler.update()
    for scheduler in system.schedulers().values():
        scheduler.step()
    system.iteration += 1


def as_floats(device: torch.device, values: dict[str, torch.Tensor | float]) -> dict[str, float]:
    """Scalar tensors and floats as Python floats, with a single device synchronisation.

    Parameters
    ----------
    device : torch.device
        Where the tensors live.
    values : dict of str to torch.Tensor or float
        Scalar losses and plain numbers.

    Returns
    -------
    dict of str to float
        Same keys, same order.
    """
    stacked = torch.stack(
        [
            v.detach().float().reshape(()) if isinstance(v, torch.Tensor)
            else torch.tensor(float(v), device=device)
            for v in values.values()
        ]
    )
    return dict(zip(values, stacked.cpu().tolist(), strict=True))
