"""Generators and discriminators of the five seed systems (../shared/docs/SEEDS.md), behind an explicit registry.

Registered names
----------------
``s1_resunet``, ``s1_discriminator``            S1 (Panek et al.)
``s2_tcan``, ``s2_discriminator``               S2 TCAN (Huang et al.)
``s3_resnet_generator``, ``s3_patchgan``        S3 cycleGAN (Trujillo et al.) and S4 c2GAN (Li et al.)
``s5_rrdbnet``, ``s5_unet_discriminator``       S5 Real-ESRGAN (Wang et al.; Cooper et al.)

All networks are 2-D, take (B, C, H, W) float32 and accept any H x W (see each module for its padding).
The family modules are imported explicitly below (no directory scanning); importing them registers them.
"""

from __future__ import annotations

from . import s1_resunet, s2_tcan, s3_cyclegan, s5_rrdb  # noqa: F401  (registration side effects)
from .registry import (
    UnknownModelError,
    create_model,
    is_registered,
    list_models,
    model_factory,
    register_model,
)

__all__ = [
    "UnknownModelError",
    "create_model",
    "is_registered",
    "list_models",
    "model_factory",
    "register_model",
]
