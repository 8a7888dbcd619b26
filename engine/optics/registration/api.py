"""Register a moving image onto a fixed one: translation, rigid, similarity or affine.

Method (coarse to fine)
-----------------------
1. Checks: 2-D, finite, not constant, at least 16 px a side.
2. Gaussian pyramids of both images (factor 2; the fixed image's coarsest level >= 48 px on its
   smaller side, the moving image's >= 24 px).
3. Initial estimate on a coarse level (<= 128 px): the scale starts from the pixel-size ratio
   when both pixel sizes are given, otherwise 1 and, for similarity/affine when the shapes differ,
   also the shape ratio (same field of view); rotation/scale corrections from Fourier-Mellin
   (log-polar magnitude spectra, both 180-degree branches); translation by sub-pixel phase
   correlation; the candidate with the best NCC wins.
4. Refinement level by level, coarse to fine, by least squares with gain/offset (equivalent to
   maximising NCC; :mod:`engine.optics.registration.optimise`). Affine first refines a similarity, then
   the affine on every level.
5. The moving image is resampled onto the fixed grid (cubic B-spline, TurboReg's mask rule) and
   the NCC over the valid overlap is reported before (moving naively resized onto the fixed grid,
   same field of view, no registration) and after.

Stacks: :func:`register` takes 2-D images. For a z-stack or time series, register a 2-D proxy
(e.g. the max projection ``stack.max(axis=0)`` of each, or one plane) and apply the transform to
every plane with :func:`engine.optics.registration.apply_transform`, which accepts ``(..., Y, X)``
arrays; or register plane by plane passing the previous result as ``initial=``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decongan.engine.optics.registration.errors import RegistrationError
from decongan.engine.optics.registration.initial import best_initial_estimate
from decongan.engine.optics.registration.optimise import refine_on_level
from decongan.engine.optics.registration.pyramid import build_pyramid, number_of_levels
from decongan.engine.optics.registration.quality import (
    alignment_problem,
    crop_to_common_valid_area,
    normalised_cross_correlation,
)
from decongan.engine.optics.registration.transform import TRANSFORM_KINDS, Transform2D, apply_transform
from decongan.engine.progress import Progress, drain

MIN_SIDE = 16
#: Levels used for the initial search: the finest one whose larger fixed side is <= this (px).
INITIAL_SEARCH_SIZE = 128


@dataclass
class RegistrationResult:
    """What :func:`register` returns.

    Attributes
    ----------
    transform : Transform2D
        Fixed -> moving map (see :mod:`engine.optics.registration.transform` for the convention).
    aligned : ndarray, float32, shape = fixed.shape
        The moving image resampled onto the fixed grid (cubic B-spline); 0 outside ``mask``.
    mask : ndarray of bool, shape = fixed.shape
        True where ``aligned`` was sampled from inside the moving image.
    ncc_before : float
        NCC of fixed vs the moving image naively resized onto the fixed grid (same field of view,
        identity when the shapes are equal), over its valid overlap.
    ncc_after : float
        NCC of fixed vs ``aligned`` over ``mask``.
    converged : bool
        The optimiser stopped on its tolerances on the finest level (not on the iteration cap).
    elapsed_s : float
        Wall time of the registration.
    details : dict
        The initial candidate chosen, per-level NCCs and iteration counts.
    """

    transform: Transform2D
    aligned: np.ndarray
    mask: np.ndarray
    ncc_before: float
    ncc_after: float
    converged: bool = True
    elapsed_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ncc_gain(self) -> float:
        return self.ncc_after - self.ncc_before

    def crop(self, fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """``crop_to_common_valid_area(fixed, self.aligned, self.mask)``."""
        return crop_to_common_valid_area(fixed, self.aligned, self.mask)

    def summary(self) -> str:
        """One line: angle, shift, scale and NCC before -> after."""
        t = self.transform
        sx, sy = t.shift_px
        return (f"{t.kind}: angle {t.angle_deg:+.4f} deg, shift ({sx:+.3f}, {sy:+.3f}) px, scale {t.scale:.5f}, "
                f"NCC {self.ncc_before:.4f} -> {self.ncc_after:.4f}")

    def to_dict(self) -> dict[str, Any]:
        """The transform's JSON dict plus a ``quality`` section (ignored by ``Transform2D.from_dict``)."""
        data = self.transform.to_dict()
        data["quality"] = {
            "ncc_before": self.ncc_before,
            "ncc_after": self.ncc_after,
            "valid_fraction": float(self.mask.mean()),
            "converged": self.converged,
            "elapsed_s": round(self.elapsed_s, 3),
            "details": self.details,
        }
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------------------------
def _check_image(image: Any, which: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise RegistrationError(
            f"{which} image must be 2-D (Y, X), got shape {arr.shape}; for a stack register a 2-D proxy "
            "(max projection or one plane) and apply the transform to every plane", which=which)
    if arr.dtype.kind not in "biuf":
        raise RegistrationError(f"{which} image has unsupported data type {arr.dtype}", which=which)
    if min(arr.shape) < MIN_SIDE:
        raise RegistrationError(f"{which} image is too small to register ({arr.shape}; at least "
                                f"{MIN_SIDE}x{MIN_SIDE} px)", which=which)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise RegistrationError(f"{which} image contains NaN or Inf values", which=which)
    if float(arr.max()) == float(arr.min()):
        raise RegistrationError(f"{which} image is constant: nothing to register", which=which)
    return arr


def _scale_candidates(kind: str, fixed_shape: tuple[int, int], moving_shape: tuple[int, int],
                      moving_px: float | None, fixed_px: float | None, notes: list[str]) -> list[float]:
    if (moving_px is None) != (fixed_px is None):
        known = "moving" if moving_px is not None else "fixed"
        notes.append(f"only the {known} pixel size is known: pixel sizes ignored (scale starts from 1"
                     + (" or the shape ratio)" if kind in ("similarity", "affine") else ")"))
        moving_px = fixed_px = None
    if moving_px is not None and fixed_px is not None:
        if not (moving_px > 0 and fixed_px > 0 and math.isfinite(moving_px) and math.isfinite(fixed_px)):
            raise RegistrationError(f"pixel sizes must be positive, got moving {moving_px} um, fixed {fixed_px} um")
        return [moving_px / fixed_px]
    candidates = [1.0]
    if kind in ("similarity", "affine") and fixed_shape != moving_shape:
        ry, rx = fixed_shape[0] / moving_shape[0], fixed_shape[1] / moving_shape[1]
        if abs(math.log(ry / rx)) < 0.05:  # same aspect ratio: maybe the same field of view
            candidates.append(math.sqrt(ry * rx))
    return candidates


def iter_register(
    *,
    moving: np.ndarray,
    fixed: np.ndarray,
    transform: str = "rigid",
    moving_pixel_size_um: float | None = None,
    fixed_pixel_size_um: float | None = None,
    initial: Transform2D | None = None,
    max_iterations: int = 40,
    max_points: int = 2**17,
    min_ncc: float = 0.1,
) -> Generator[Progress, None, RegistrationResult]:
    """Generator form of :func:`register`: yields a :class:`Progress` per stage and pyramid level.

    Close the generator to cancel; the ``return`` value is the :class:`RegistrationResult`.

    Parameters
    ----------
    moving, fixed : ndarray, shape (H, W)
        Images (any real dtype); they may differ in shape and pixel size.
    transform : {"translation", "rigid", "similarity", "affine"}
        Transform model (see :func:`register`).
    moving_pixel_size_um, fixed_pixel_size_um : float, optional
        Pixel sizes in um; used only when both are known.
    initial : Transform2D, optional
        Start here instead of searching; must be for these image shapes.
    max_iterations : int
        Cap on least-squares function evaluations per pass on the finest level.
    max_points : int
        Pixels used per pyramid level at most.
    min_ncc : float
        Below this final NCC the registration is reported as failed.

    Yields
    ------
    Progress
        One event for the pyramids, one for the initial estimate, one per stage and level, one at the end.

    Returns
    -------
    RegistrationResult
        Via ``StopIteration.value`` (use :func:`engine.progress.drain`).

    Raises
    ------
    RegistrationError
        Bad input or a failed alignment, as :func:`register`.
    """
    start_time = time.perf_counter()
    if transform not in TRANSFORM_KINDS:
        raise RegistrationError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORM_KINDS)}")
    if max_iterations < 1:
        raise RegistrationError(f"max_iterations must be >= 1, got {max_iterations}")
    mov = _check_image(moving, "moving")
    fix = _check_image(fixed, "fixed")
    if initial is not None and (initial.fixed_shape != fix.shape or initial.moving_shape != mov.shape):
        raise RegistrationError(f"the initial transform is for fixed {initial.fixed_shape} / moving "
                                f"{initial.moving_shape}, not fixed {fix.shape} / moving {mov.shape}")
    notes: list[str] = []
    candidates = _scale_candidates(transform, fix.shape, mov.shape, moving_pixel_size_um, fixed_pixel_size_um, notes)

    n_levels = number_of_levels(fix.shape)
    stages = ["similarity", "affine"] if transform == "affine" else [transform]
    total = 1 + n_levels * len(stages) + 1
    step = 0
    yield Progress(step, total, f"{transform}: building {n_levels}-level pyramids")
    levels = build_pyramid(fixed=fix, moving=mov)

    details: dict[str, Any] = {"levels": n_levels, "scale_candidates": candidates, "notes": notes, "fits": []}
    if initial is None:
        search_level = next((lv for lv in levels if max(lv.fixed.shape) <= INITIAL_SEARCH_SIZE), levels[-1])
        cand = best_initial_estimate(search_level, transform, candidates)
        matrix = cand.matrix_full
        details["initial"] = {"label": cand.label, "ncc": cand.ncc, "level": search_level.index}
    else:
        matrix = initial.matrix.copy()
        details["initial"] = {"label": "given", "ncc": None, "level": None}
    step += 1
    yield Progress(step, total, f"{transform}: initial estimate ({details['initial']['label']})",
                   {"ncc": float(details["initial"]["ncc"] or float("nan"))})

    last_fit = None
    for stage in stages:
        for level in reversed(levels):
            cap = max_iterations if level.index == 0 else max(10, max_iterations // 2)
            last_fit = refine_on_level(level, matrix, stage, max_iterations=cap, max_points=max_points)
            matrix = last_fit.matrix_full
            details["fits"].append({"stage": stage, "level": level.index, "ncc": last_fit.ncc,
                                    "points": last_fit.n_points, "evaluations": last_fit.iterations,
                                    "passes": last_fit.passes})
            step += 1
            yield Progress(step, total, f"{stage} level {level.index} (NCC {last_fit.ncc:.4f})",
                           {"ncc": last_fit.ncc, "level": float(level.index)})

    result_transform = Transform2D(matrix, transform, fix.shape, mov.shape)  # type: ignore[arg-type]
    aligned, mask = apply_transform(mov, result_transform)
    naive, naive_mask = apply_transform(mov, Transform2D.same_field_of_view(fix.shape, mov.shape))
    ncc_before = normalised_cross_correlation(fix, naive, naive_mask)
    ncc_after = normalised_cross_correlation(fix, aligned, mask)
    converged = last_fit is not None and last_fit.iterations < max_iterations
    result = RegistrationResult(result_transform, aligned, mask, ncc_before, ncc_after, converged,
                                time.perf_counter() - start_time, details)
    step += 1
    yield Progress(step, total, f"{transform}: NCC {ncc_before:.4f} -> {ncc_after:.4f}",
                   {"ncc_before": ncc_before, "ncc_after": ncc_after})
    check_outcome(result, min_ncc)
    return result


def check_outcome(result: RegistrationResult, min_ncc: float) -> None:
    """Refuse a failed alignment, whichever backend found it (the engine, or TurboReg/SIFT via Fiji).

    Parameters
    ----------
    result : RegistrationResult
        The alignment, with its NCC before and after registration.
    min_ncc : float
        Lowest acceptable final NCC (dimensionless, -1 to 1).

    Raises
    ------
    RegistrationError
        :func:`~decongan.engine.optics.registration.quality.alignment_problem` found a problem;
        ``err.result`` is the poor result.
    """
    problem = alignment_problem(result.ncc_before, result.ncc_after, min_ncc)
    if problem:
        raise RegistrationError(
            f"registration failed: {problem}; transform found: {result.summary()}. Check that the images show "
            "the same field of view, try another transform model, or give the pixel sizes.", result=result)


def register(
    *,
    moving: np.ndarray,
    fixed: np.ndarray,
    transform: str = "rigid",
    moving_pixel_size_um: float | None = None,
    fixed_pixel_size_um: float | None = None,
    initial: Transform2D | None = None,
    max_iterations: int = 40,
    max_points: int = 2**17,
    min_ncc: float = 0.1,
) -> RegistrationResult:
    """Align ``moving`` onto ``fixed`` (2-D images; see the module docstring for the method).

    Parameters
    ----------
    moving, fixed : ndarray, shape (H, W)
        Images (any real dtype); they may differ in shape and pixel size.
    transform : {"translation", "rigid", "similarity", "affine"}
        Model: shift only; + rotation; + isotropic scale; general 2x2 + shift.
    moving_pixel_size_um, fixed_pixel_size_um : float, optional
        Pixel sizes (um). When both are known, their ratio fixes the scale for translation/rigid
        and starts it for similarity/affine; when only one is, both are ignored (noted in
        ``result.details["notes"]``).
    initial : Transform2D, optional
        Start here instead of searching (e.g. the previous plane's result).
    max_iterations : int
        Cap on least-squares function evaluations per pass on the finest level (half of it, at
        least 10, on coarser levels). Well-posed pairs converge in < 10; a model that cannot fit
        (e.g. translation for a rotated pair) converges slowly and stops at the cap.
    max_points : int
        Pixels used per level at most (a regular sub-grid above this; bounds memory and time).
    min_ncc : float
        Below this final NCC the registration is reported as failed.

    Returns
    -------
    RegistrationResult

    Raises
    ------
    RegistrationError
        Bad input (not 2-D, too small, NaN/Inf, constant: "image X is constant: nothing to
        register"), or a failed alignment (final NCC below ``min_ncc`` or below the unregistered
        NCC); the message gives the scores and ``err.result`` the poor result.
    """
    return drain(iter_register(moving=moving, fixed=fixed, transform=transform, moving_pixel_size_um=moving_pixel_size_um,
                               fixed_pixel_size_um=fixed_pixel_size_um, initial=initial,
                               max_iterations=max_iterations, max_points=max_points, min_ncc=min_ncc))
