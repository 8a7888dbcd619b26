"""Loss functions of the five seed systems (../shared/docs/SEEDS.md).

All functions take (B, C, H, W) tensors and return a scalar tensor (mean over the batch) unless
stated otherwise. Adversarial losses take *logits* (no sigmoid applied by the networks).

Relativistic losses (S1, S2, S5) follow the papers' per-sample form (Jolicoeur-Martineau's RSGAN)::

    D:  BCE(D(G(x)) - D(y), 0) + BCE(D(y) - D(G(x)), 1)      (S1 sums the two terms, S2 averages them)
    G:  BCE(D(G(x)) - D(y), 1)

Note that for this form both D terms equal softplus(D(G(x)) - D(y)); the sum/mean only scales the loss.
``relativistic_average_*`` implements ESRGAN's RaGAN (the other sample's *batch mean* is subtracted).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PerceptualLoss",
    "cycle_loss",
    "gaussian_window",
    "identity_loss",
    "lsgan_d_loss",
    "lsgan_g_loss",
    "otsu_threshold",
    "relativistic_average_d_loss",
    "relativistic_average_g_loss",
    "relativistic_d_loss",
    "relativistic_g_loss",
    "saliency_mask",
    "ssim",
    "ssim_loss",
    "structure_loss",
    "vanilla_d_loss",
    "vanilla_g_loss",
]


# --------------------------------------------------------------------------------------------- SSIM
def gaussian_window(size: int = 11, sigma: float = 1.5, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 2-D Gaussian window, shape (1, 1, size, size).

    With size 11 and sigma 1.5 this is scipy's ``gaussian_filter(sigma=1.5, truncate=3.5)`` kernel,
    the one scikit-image's ``structural_similarity(gaussian_weights=True)`` uses.

    Parameters
    ----------
    size : int
        Side of the window in px; a positive odd number.
    sigma : float
        Standard deviation of the Gaussian in px.
    dtype : torch.dtype
        Dtype of the returned window (the weights are computed in float64 first).
    device : torch.device or str, optional
        Device of the returned window; default the CPU.

    Returns
    -------
    torch.Tensor
        (1, 1, size, size), non-negative, summing to 1.

    Raises
    ------
    ValueError
        When ``size`` is not a positive odd number.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd number, got {size}")
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).to(dtype=dtype, device=device)[None, None]


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> torch.Tensor:
    """Differentiable SSIM (Wang et al. 2004) with a Gaussian window.

    Matches ``skimage.metrics.structural_similarity(x, y, data_range=data_range, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)``: the local statistics are computed with a 'valid'
    convolution, which is exactly skimage's filtered map with its ``(win_size - 1) // 2`` border cropped
    before averaging. Computed in float32 (float64 stays float64) even under autocast.

    Parameters
    ----------
    x, y : torch.Tensor
        (B, C, H, W), H and W >= ``window_size``.
    data_range : float
        Dynamic range of the data (e.g. 1.0 for [0, 1] images); never guessed.
    reduction : {"mean", "none"}
        ``"mean"`` -> scalar; ``"none"`` -> (B,) per-image SSIM (mean over channels and pixels).
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window_size:
        raise ValueError(f"ssim needs images of at least {window_size} x {window_size}, got {tuple(x.shape[-2:])}")
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        x = x.to(dtype)
        y = y.to(dtype)
        channels = x.shape[1]
        window = gaussian_window(window_size, sigma, dtype=dtype, device=x.device).expand(channels, 1, -1, -1)

        def filt(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(t, window, groups=channels)

        mu_x, mu_y = filt(x), filt(y)
        var_x = filt(x * x) - mu_x * mu_x
        var_y = filt(y * y) - mu_y * mu_y
        cov = filt(x * y) - mu_x * mu_y
        c1 = (k1 * data_range) ** 2
        c2 = (k2 * data_range) ** 2
        s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        per_image = s.mean(dim=(1, 2, 3))
    if reduction == "none":
        return per_image
    if reduction == "mean":
        return per_image.mean()
    raise ValueError(f"unknown reduction {reduction!r}; choose mean or none")


def ssim_loss(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, **kwargs) -> torch.Tensor:
    """``1 - ssim(x, y)`` (scalar).

    Parameters
    ----------
    x, y : torch.Tensor
        (B, C, H, W), same shape, H and W >= the SSIM window size (11 px by default).
    data_range : float
        Dynamic range of the data (1.0 for [0, 1] images).
    **kwargs
        Passed on to :func:`ssim` (``window_size``, ``sigma``, ``k1``, ``k2``, ``reduction``).

    Returns
    -------
    torch.Tensor
        Scalar (or (B,) with ``reduction="none"``), 0 for identical images.
    """
    return 1.0 - ssim(x, y, data_range=data_range, **kwargs)


# -------------------------------------------------------------------------------------- adversarial
def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def relativistic_d_loss(real: torch.Tensor, fake: torch.Tensor, *, average: bool = False) -> torch.Tensor:
    """Relativistic discriminator loss ``BCE(fake - real, 0) + BCE(real - fake, 1)``.

    Parameters
    ----------
    real, fake : torch.Tensor
        D logits of the ground truth and of the (detached) generator output, same shape.
    average : bool
        Return the mean of the two terms (S2) instead of their sum (S1).
    """
    total = _bce(fake - real, 0.0) + _bce(real - fake, 1.0)
    return total / 2 if average else total


def relativistic_g_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic generator loss ``BCE(D(G(x)) - D(y), 1)``.

    Parameters
    ----------
    real, fake : torch.Tensor
        D logits of the ground truth and of the generator output, same shape (e.g. (B, 1, h, w)).

    Returns
    -------
    torch.Tensor
        Scalar, mean over all logits.
    """
    return _bce(fake - real, 1.0)


def relativistic_average_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """ESRGAN's RaGAN discriminator loss: ``(BCE(real - mean(fake), 1) + BCE(fake - mean(real), 0)) / 2``.

    Parameters
    ----------
    real, fake : torch.Tensor
        D logits of the ground truth and of the (detached) generator output; each is compared with
        the other's mean over the whole batch.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return (_bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0)) / 2


def relativistic_average_g_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """ESRGAN's RaGAN generator loss: ``(BCE(real - mean(fake), 0) + BCE(fake - mean(real), 1)) / 2``.

    Parameters
    ----------
    real, fake : torch.Tensor
        D logits of the ground truth and of the generator output; each is compared with the other's
        mean over the whole batch.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0)) / 2


def vanilla_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Standard GAN (BCE-with-logits) discriminator loss ``BCE(real, 1) + BCE(fake, 0)``.

    Parameters
    ----------
    real, fake : torch.Tensor
        D logits of the ground truth and of the (detached) generator output; shapes may differ.

    Returns
    -------
    torch.Tensor
        Scalar, the sum of the two mean BCE terms.
    """
    return _bce(real, 1.0) + _bce(fake, 0.0)


def vanilla_g_loss(real: torch.Tensor | None, fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``BCE(fake, 1)`` (``real`` unused; kept for a uniform signature).

    Parameters
    ----------
    real : torch.Tensor or None
        Ignored.
    fake : torch.Tensor
        D logits of the generator output.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return _bce(fake, 1.0)


def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """LSGAN discriminator loss as in cycleGAN: ``0.5 * (MSE(real, 1) + MSE(fake, 0))``.

    Parameters
    ----------
    real, fake : torch.Tensor
        D outputs (no sigmoid) for the ground truth and the (detached) generator output.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return 0.5 * (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake)))


def lsgan_g_loss(real: torch.Tensor | None, fake: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss ``MSE(fake, 1)`` (``real`` unused; kept for a uniform signature).

    Parameters
    ----------
    real : torch.Tensor or None
        Ignored.
    fake : torch.Tensor
        D outputs (no sigmoid) for the generator output.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    return F.mse_loss(fake, torch.ones_like(fake))


# ----------------------------------------------------------------------------------- reconstruction
def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle-consistency loss: L1 between F(G(a)) and a.

    Parameters
    ----------
    reconstructed : torch.Tensor
        F(G(a)), (B, C, H, W).
    original : torch.Tensor
        a, same shape.

    Returns
    -------
    torch.Tensor
        Scalar, mean absolute difference in data units.
    """
    return F.l1_loss(reconstructed, original)


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Identity loss: L1 between G(b) and b (only defined when G keeps the grid).

    Parameters
    ----------
    mapped : torch.Tensor
        G(b), (B, C, H, W).
    original : torch.Tensor
        b, same shape.

    Returns
    -------
    torch.Tensor
        Scalar, mean absolute difference in data units.
    """
    return F.l1_loss(mapped, original)


class PerceptualLoss(nn.Module):
    """Weighted feature distance on a frozen feature extractor (VGG19 for S3 and S5).

    ``sum_l w_l * criterion(phi_l(x), phi_l(y))`` with BasicSR's convention (features before ReLU,
    L1, input in [0, 1] then ImageNet-normalised).

    Parameters
    ----------
    extractor : nn.Module
        Returns a dict layer name -> features (e.g. :class:`engine.learn.models.vgg.VGG19FeatureExtractor`).
    layer_weights : mapping of str to float
        Weight per layer; the extractor must provide every layer named here.
    criterion : {"l1", "mse"}
    """

    def __init__(self, extractor: nn.Module, layer_weights: Mapping[str, float], *, criterion: str = "l1"):
        super().__init__()
        if criterion not in ("l1", "mse"):
            raise ValueError(f"unknown perceptual criterion {criterion!r}; choose l1 or mse")
        self.extractor = extractor
        self.layer_weights = dict(layer_weights)
        self.distance = F.l1_loss if criterion == "l1" else F.mse_loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.extractor(x)
        with torch.no_grad():
            fy = self.extractor(y.detach())
        return sum(w * self.distance(fx[name], fy[name]) for name, w in self.layer_weights.items())


# ------------------------------------------------------------------------ saliency / structure (S4)
def otsu_threshold(x: torch.Tensor, *, bins: int = 256) -> torch.Tensor:
    """Per-image Otsu threshold, (B, C, H, W) -> (B, 1, 1, 1), computed without gradient.

    Histogram of each image over its own [min, max] range, then the threshold maximising the
    between-class variance (as ``skimage.filters.threshold_otsu``, to within a bin width).

    Parameters
    ----------
    x : torch.Tensor
        (B, C, H, W) images; all channels of an image share one histogram.
    bins : int
        Number of histogram bins over each image's [min, max].

    Returns
    -------
    torch.Tensor
        (B, 1, 1, 1) thresholds in data units (the centre of the last background bin), dtype of ``x``.
    """
    with torch.no_grad():
        flat = x.detach().float().flatten(1)
        lo = flat.min(dim=1, keepdim=True).values
        hi = flat.max(dim=1, keepdim=True).values
        width = (hi - lo).clamp_min(1e-12) / bins
        idx = ((flat - lo) / width).long().clamp_(0, bins - 1)
        hist = torch.zeros(flat.shape[0], bins, device=x.device).scatter_add_(1, idx, torch.ones_like(flat))
        centres = lo + width * (torch.arange(bins, device=x.device, dtype=flat.dtype) + 0.5)
        w0 = hist.cumsum(1)
        w1 = hist.sum(1, keepdim=True) - w0
        m0 = (hist * centres).cumsum(1)
        m1 = (hist * centres).sum(1, keepdim=True) - m0
        mean0 = m0 / w0.clamp_min(1)
        mean1 = m1 / w1.clamp_min(1)
        between = w0 * w1 * (mean0 - mean1) ** 2
        best = between[:, :-1].argmax(dim=1, keepdim=True)
        threshold = centres.gather(1, best)  # centre of the last background bin, as skimage
    return threshold.view(-1, 1, 1, 1).to(x.dtype)


def saliency_mask(x: torch.Tensor, *, temperature: float = 0.05, threshold: float | None = None) -> torch.Tensor:
    """Soft foreground mask ``sigmoid((x - t) / T)`` for c2GAN's structure constraint.

    Parameters
    ----------
    x : torch.Tensor
        (B, C, H, W) images.
    temperature : float
        Softness ``T`` as a fraction of each image's 1st-99th percentile range (detached), so the
        mask does not depend on the image's intensity scale.
    threshold : float, optional
        Fixed threshold ``t`` in data units; default: each image's Otsu threshold (detached).

    Returns
    -------
    torch.Tensor
        Same shape as ``x``, values in (0, 1), differentiable with respect to ``x``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        with torch.no_grad():
            flat = x.detach().flatten(1)
            q = torch.quantile(flat, torch.tensor([0.01, 0.99], device=x.device), dim=1)
            spread = (q[1] - q[0]).clamp_min(1e-6).view(-1, 1, 1, 1)
            t = otsu_threshold(x) if threshold is None else torch.full_like(spread, threshold)
        return torch.sigmoid((x - t) / (temperature * spread))


def structure_loss(
    source: torch.Tensor, translated: torch.Tensor, *, temperature: float = 0.05, threshold: float | None = None
) -> torch.Tensor:
    """c2GAN saliency (structure) consistency: ``L1(mask(source), mask(translated))``.

    Li et al. (2020, "Unsupervised content-preserving transformation for optical microscopy"; full
    version UTOM, Light Sci Appl 2021) require the soft-thresholded foreground of a generator's input and
    output to coincide, so objects stay where they are. Each mask uses its own image's Otsu threshold
    (our choice where the paper sets the thresholds by hand per domain), which makes the constraint
    insensitive to the intensity mapping the generator learns. When ``translated`` is on a finer grid
    (super-resolution), its mask is average-pooled to the source grid first.

    Parameters
    ----------
    source : torch.Tensor
        Generator input, (B, C, H, W).
    translated : torch.Tensor
        Generator output, (B, C, H, W) or (B, C, s*H, s*W) for an integer scale ``s`` (other sizes:
        the source mask is bilinearly resized to the output grid instead).
    temperature : float
        Mask softness as a fraction of each image's 1st-99th percentile range; see :func:`saliency_mask`.
    threshold : float, optional
        Fixed threshold in data units for both masks; default each image's Otsu threshold.

    Returns
    -------
    torch.Tensor
        Scalar, mean absolute difference of the two masks (in [0, 1]).
    """
    mask_source = saliency_mask(source, temperature=temperature, threshold=threshold)
    mask_translated = saliency_mask(translated, temperature=temperature, threshold=threshold)
    if mask_translated.shape[-2:] != mask_source.shape[-2:]:
        factor = mask_translated.shape[-1] / mask_source.shape[-1]
        if factor >= 1 and float(factor).is_integer():
            mask_translated = F.avg_pool2d(mask_translated, int(factor))
        else:
            mask_source = F.interpolate(mask_source, size=mask_translated.shape[-2:], mode="bilinear",
                                        align_corners=False)
    return F.l1_loss(mask_translated, mask_source)

