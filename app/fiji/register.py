"""Registration with TurboReg (else SIFT) through the Fiji bridge, as an engine ``RegistrationResult``.

The pixel sizes are honoured (TurboReg knows none): when they differ, the moving image is first
resampled onto the fixed pixel size and the scale is folded into the returned transform; the
result then passes the engine's own quality check (minimum NCC, no worse than no registration),
so a failed Fiji registration raises ``RegistrationError`` exactly like the engine's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from typing import Any

import numpy as np

from decongan.app.fiji.client import call_bridge, plugin_label, resolve_client
from decongan.imagej_bridge.client import FijiClient, RegistrationOutput


def resample_to_fixed_pixel_size(moving: np.ndarray, moving_pixel_size_um: float | None,
                                 fixed_pixel_size_um: float | None,
                                 notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The moving image resampled onto the fixed image's pixel size, for plugins that know no pixel size.

    Parameters
    ----------
    moving : ndarray, shape (H_m, W_m)
    moving_pixel_size_um, fixed_pixel_size_um : float or None
        Pixel sizes in micrometres. Both known and different: the image is resampled by
        ``r = moving / fixed`` (cubic B-spline, Gaussian anti-aliasing of sigma ``(1/r - 1) / 2`` px
        first when ``r < 1``). Only one known: both are ignored, as the engine does (a note is added).
    notes : list of str
        Receives what was done, in words.

    Returns
    -------
    resampled : ndarray, float32, shape (round(H_m r), round(W_m r))
        ``moving`` itself (float32) when no resampling is needed.
    to_moving : ndarray, shape (3, 3)
        Maps resampled pixel coordinates (x, y, 1) to ``moving``'s (module convention of
        :mod:`decongan.engine.optics.registration.transform`): ``x_m = (x_r + 0.5) / r - 0.5``
        (top-left pixel edges coincide, exact scale ``1 / r``); identity when not resampled.

    Raises
    ------
    RegistrationError
        A pixel size that is not a positive finite number.
    """
    from decongan.engine.optics.registration import RegistrationError, apply_transform

    data = np.asarray(moving, dtype=np.float32)
    if (moving_pixel_size_um is None) != (fixed_pixel_size_um is None):
        known = "moving" if moving_pixel_size_um is not None else "fixed"
        notes.append(f"only the {known} pixel size is known: pixel sizes ignored (scale 1 assumed)")
        return data, np.eye(3)
    if moving_pixel_size_um is None or fixed_pixel_size_um is None:
        return data, np.eye(3)
    if not (math.isfinite(moving_pixel_size_um) and math.isfinite(fixed_pixel_size_um)
            and moving_pixel_size_um > 0 and fixed_pixel_size_um > 0):
        raise RegistrationError(f"pixel sizes must be positive, got moving {moving_pixel_size_um} um, "
                                f"fixed {fixed_pixel_size_um} um")
    r = moving_pixel_size_um / fixed_pixel_size_um
    if abs(r - 1.0) < 1e-9:
        return data, np.eye(3)
    if r < 1.0:
        from scipy.ndimage import gaussian_filter

        data = gaussian_filter(data, sigma=(1.0 / r - 1.0) / 2.0).astype(np.float32)
    shape = (max(1, round(data.shape[0] * r)), max(1, round(data.shape[1] * r)))
    to_moving = np.array([[1.0 / r, 0.0, 0.5 / r - 0.5], [0.0, 1.0 / r, 0.5 / r - 0.5], [0.0, 0.0, 1.0]])
    resampled, _ = apply_transform(data, to_moving, shape)
    notes.append(f"moving image resampled by x{r:.6g} onto the fixed pixel size ({moving_pixel_size_um:g} um -> "
                 f"{fixed_pixel_size_um:g} um, {data.shape[1]}x{data.shape[0]} -> {shape[1]}x{shape[0]} px) before "
                 "the plugin ran; the scale is folded into the transform")
    return resampled, to_moving


def registration_result(moving: np.ndarray, fixed: np.ndarray, output: RegistrationOutput, *,
                        to_moving: np.ndarray | None = None, elapsed_s: float = 0.0,
                        notes: list[str] | None = None) -> Any:
    """An engine ``RegistrationResult`` from a Fiji registration, scored exactly as the engine scores.

    Parameters
    ----------
    moving, fixed : ndarray, shape (H, W)
        The original images (``moving`` before any resampling).
    output : RegistrationOutput
        The plugin's result; its matrix maps ``fixed`` to the image the plugin received.
    to_moving : ndarray (3, 3), optional
        Maps the image the plugin received to ``moving`` (see :func:`resample_to_fixed_pixel_size`);
        identity when None. When it is not the identity the aligned image is resampled again from
        ``moving`` with the composed transform (so stacks and the 2-D result agree).
    elapsed_s : float
    notes : list of str, optional
        Added to ``details["notes"]`` after the plugin's own notes.

    Returns
    -------
    RegistrationResult
        ``ncc_before``: fixed vs ``moving`` naively resized onto the fixed grid (same field of view),
        as in :func:`decongan.engine.optics.registration.iter_register`; ``ncc_after``: fixed vs
        ``aligned`` over ``mask``.
    """
    from decongan.engine.optics.registration import (
        RegistrationResult,
        Transform2D,
        apply_transform,
        normalised_cross_correlation,
    )

    fixed = np.asarray(fixed, dtype=np.float32)
    moving = np.asarray(moving, dtype=np.float32)
    plugin = Transform2D.from_turboreg_matrix(output.matrix, kind=output.transform, fixed_shape=fixed.shape,
                                              moving_shape=moving.shape)  # only its matrix is used
    all_notes = list(output.provenance.get("notes", [])) + list(notes or [])
    if to_moving is None or np.allclose(to_moving, np.eye(3)):
        transform = Transform2D(plugin.matrix, output.transform, fixed.shape, moving.shape)  # type: ignore[arg-type]
        aligned, mask = output.aligned, output.mask
    else:
        transform = Transform2D(np.asarray(to_moving) @ plugin.matrix, output.transform,  # type: ignore[arg-type]
                                fixed.shape, moving.shape)
        aligned, mask = apply_transform(moving, transform)
        all_notes.append("aligned image resampled from the original moving image with the composed transform "
                         "(cubic B-spline, as TurboReg)")
    naive, naive_mask = apply_transform(moving, Transform2D.same_field_of_view(fixed.shape, moving.shape))
    before = normalised_cross_correlation(fixed, naive, naive_mask)
    after = normalised_cross_correlation(fixed, aligned, mask)
    details = {"backend": output.provenance.get("backend"), "plugin": output.provenance.get("plugin"),
               "macro": output.provenance.get("macro"), "notes": all_notes,
               "matrix_turboreg": output.matrix.tolist(),
               "convergence": "not reported by the plugin; the result passed the engine's NCC check"}
    return RegistrationResult(transform, aligned, mask, float(before), float(after), True, elapsed_s, details)


def iter_fiji_register(*, moving: np.ndarray, fixed: np.ndarray, transform: str = "rigid",
                       moving_pixel_size_um: float | None = None, fixed_pixel_size_um: float | None = None,
                       min_ncc: float = 0.1, max_iterations: int | None = None,
                       fiji_dir: str | os.PathLike[str] | None = None,
                       client: FijiClient | None = None) -> Generator[Any, None, Any]:
    """TurboReg (else SIFT) registration of 2-D ``moving`` onto ``fixed``, with the engine's rules.

    Generator (GUI jobs, CLI): yields ``Progress`` and returns an engine ``RegistrationResult``.

    Parameters
    ----------
    moving, fixed : ndarray, shape (H, W)
    transform : {"translation", "rigid", "similarity", "affine"}
    moving_pixel_size_um, fixed_pixel_size_um : float, optional
        Pixel sizes (um); when both are known and differ, the moving image is resampled onto the fixed
        pixel size first and the scale is folded into the transform (:func:`resample_to_fixed_pixel_size`).
    min_ncc : float
        The engine's quality threshold (:func:`decongan.engine.optics.registration.api.check_outcome`).
    max_iterations : int, optional
        Engine-only setting, recorded in ``details["engine_only_settings"]``; TurboReg/SIFT use their
        own stopping rule.
    fiji_dir, client
        Which Fiji (default: discovery) or an explicit client.

    Returns
    -------
    RegistrationResult
        ``transform`` maps the fixed grid to the original moving image; ``details["backend"]`` names
        the Fiji backend and ``details["notes"]`` what was done.

    Raises
    ------
    FijiUnavailable
        No backend, or neither TurboReg nor SIFT is installed.
    RegistrationError
        Bad pixel sizes, or the alignment fails the engine's quality check (``err.result`` holds it).
    """
    import time

    from decongan.engine.optics.registration.api import check_outcome
    from decongan.engine.progress import Progress

    notes: list[str] = []
    fixed_data = np.asarray(fixed, dtype=np.float32)
    moving_data = np.asarray(moving, dtype=np.float32)
    sent, to_moving = resample_to_fixed_pixel_size(moving_data, moving_pixel_size_um, fixed_pixel_size_um, notes)
    yield Progress(step=0, total=2, message="starting Fiji")
    fiji = resolve_client(client, fiji_dir)
    fiji.start()
    yield Progress(step=1, total=2, message="registering with Fiji")
    t0 = time.perf_counter()
    output: RegistrationOutput = call_bridge(lambda: fiji.register(moving=sent, fixed=fixed_data, transform=transform))
    result = registration_result(moving_data, fixed_data, output, to_moving=to_moving,
                                 elapsed_s=time.perf_counter() - t0, notes=notes)
    result.details["method"] = f"registered ({output.transform}, {plugin_label(output)})"
    result.details["sent_shape"] = list(sent.shape)
    if max_iterations is not None:  # TurboReg/SIFT use their own stopping rule
        result.details["engine_only_settings"] = {"max_iterations": max_iterations}
    yield Progress(step=2, total=2, message=f"NCC {result.ncc_before:.4f} -> {result.ncc_after:.4f}")
    check_outcome(result, min_ncc)
    return result
