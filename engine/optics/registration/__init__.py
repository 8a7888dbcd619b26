"""Image registration for LQ/HQ pairs: translation, rigid, similarity and affine, coarse to fine.

Public API::

    result = register(moving=moving, fixed=fixed, transform="similarity")  # RegistrationResult
    result.transform.matrix          # 3x3, fixed (x, y, 1) -> moving (x, y, 1)
    result.transform.to_turboreg_matrix(), result.transform.to_sift_matrix()
    aligned, mask = apply_transform(other_channel, result.transform)
    fixed_crop, aligned_crop, bbox = crop_to_common_valid_area(fixed, result.aligned, result.mask)

Conventions are in :mod:`engine.optics.registration.transform`; the method in :mod:`engine.optics.registration.api`.
"""

from decongan.engine.optics.registration.api import RegistrationResult, iter_register, register
from decongan.engine.optics.registration.errors import RegistrationError
from decongan.engine.optics.registration.quality import (
    crop_to_common_valid_area,
    largest_valid_rectangle,
    normalised_cross_correlation,
)
from decongan.engine.optics.registration.transform import TRANSFORM_KINDS, Transform2D, apply_transform

__all__ = [
    "TRANSFORM_KINDS",
    "RegistrationError",
    "RegistrationResult",
    "Transform2D",
    "apply_transform",
    "crop_to_common_valid_area",
    "iter_register",
    "largest_valid_rectangle",
    "normalised_cross_correlation",
    "register",
]
