"""Registration with TurboReg (else SIFT) through the Fiji bridge, as an engine ``RegistrationResult``.

The pixel sizes are honoured (TurboReg knows none): when they differ, the moving image is first
resampled onto the fixed pixel size and the scale is folded into the returned transform; the
result then passes the engine's own quality check (minimum NCC, no worse than no registration),
so a failed Fiji registration raises ``RegistrationError`` exactly like the engine's.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import numpy as np

from decongan.app.fiji.client import call_bridge, plugin_label, provenance_from_bridge, resolve_client
from decongan.imagej_bridge.client import FijiClient, RegistrationOutput


def fiji_register(moving: np.ndarray, fixed: np.ndarray, transform: str = "rigid", *,
                  fiji_dir: str | os.PathLike[str] | None = None,
                  client: FijiClient | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
    """TurboReg (else SIFT) registration of 2-D ``moving`` onto ``fixed``.

    Returns
    -------
    aligned : ndarray, float32, shape of ``fixed``
    matrix : ndarray (2, 3)
        TurboReg convention, target (fixed) -> source (moving), layout ``[[tx, a, b], [ty, c, d]]``;
        ``engine.optics.registration.Transform2D.from_turboreg_matrix`` converts it.
    provenance : engine Provenance
    """
    fiji = resolve_client(client, fiji_dir)
    output: RegistrationOutput = call_bridge(lambda: fiji.register(np.asarray(moving, dtype=np.float32),
                                                             np.asarray(fixed, dtype=np.float32), transform))
    parameters = {"transform": output.transform, "matrix_turboreg": output.matrix.tolist(),
                  **{k: v for k, v in output.values.items() if k in ("source_points", "target_points", "sift_matrix")}}
    provenance = provenance_from_bridge(f"registered ({output.transform}, {plugin_label(output)})",
                                        output.provenance, parameters, fiji)
    return output.aligned, output.matrix, provenance


def registration_result(moving: np.ndarray, fixed: np.ndarray, output: RegistrationOutput, *,
                        elapsed_s: float = 0.0) -> Any:
    """An ``engine.optics.registration.RegistrationResult`` from a Fiji registration (NCCs computed here)."""
    from decongan.engine.optics.registration import (
        RegistrationResult,
        Transform2D,
        normalised_cross_correlation,
    )

    fixed = np.asarray(fixed, dtype=np.float32)
    moving = np.asarray(moving, dtype=np.float32)
    transform = Transform2D.from_turboreg_matrix(output.matrix, kind=output.transform, fixed_shape=fixed.shape,
                                                 moving_shape=moving.shape)
    if moving.shape == fixed.shape:
        before = normalised_cross_correlation(fixed, moving)
    else:
        from skimage.transform import resize

        before = normalised_cross_correlation(fixed, resize(moving, fixed.shape, order=1).astype(np.float32))
    after = normalised_cross_correlation(fixed, output.aligned, output.mask)
    details = {"backend": output.provenance.get("backend"), "plugin": output.provenance.get("plugin"),
               "macro": output.provenance.get("macro"), "notes": output.provenance.get("notes", []),
               "matrix_turboreg": output.matrix.tolist()}
    return RegistrationResult(transform, output.aligned, output.mask, float(before), float(after), True, elapsed_s,
                              details)


def iter_fiji_register(moving: np.ndarray, fixed: np.ndarray, *, transform: str = "rigid",
                       fiji_dir: str | os.PathLike[str] | None = None,
                       client: FijiClient | None = None) -> Generator[Any, None, Any]:
    """Generator form (GUI jobs): yields ``Progress`` and returns an engine ``RegistrationResult``."""
    import time

    from decongan.engine.progress import Progress

    yield Progress(step=0, total=2, message="starting Fiji")
    fiji = resolve_client(client, fiji_dir)
    fiji.start()
    yield Progress(step=1, total=2, message="registering with Fiji")
    t0 = time.perf_counter()
    output: RegistrationOutput = call_bridge(lambda: fiji.register(np.asarray(moving, dtype=np.float32),
                                                             np.asarray(fixed, dtype=np.float32), transform))
    result = registration_result(moving, fixed, output, elapsed_s=time.perf_counter() - t0)
    yield Progress(step=2, total=2, message="done")
    return result


