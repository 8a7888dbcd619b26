"""Born & Wolf PSFs: PSF Generator through the Fiji bridge, or the engine's one PSF builder.

Both return an engine ``Restored`` (peak = 1, PSF Generator's normalisation); the engine side is
:func:`decongan.engine.optics.psf.born_wolf_psf`, the only Born & Wolf builder in DeconGAN.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from decongan.app.fiji.client import (
    call_bridge,
    plugin_label,
    provenance_from_bridge,
    resolve_client,
    with_engine_fallback,
)
from decongan.imagej_bridge.client import BridgeResult, FijiClient


def fiji_psf(*, na: float, ni: float, wavelength_nm: float, pixel_nm: float, size: int | Sequence[int] = 65,
             nz: int | None = None, z_step_nm: float | None = None, accuracy: str = "good",
             fiji_dir: str | os.PathLike[str] | None = None, client: FijiClient | None = None) -> Any:
    """Born & Wolf PSF from PSF Generator (peak = 1) as an engine ``Restored``.

    Raises
    ------
    FijiUnavailable
        No backend, or PSF Generator missing on a plain ImageJ 1.x (with an ImageJ2 backend the
        Ops Gibson-Lanni kernel is returned instead, noted in the provenance).
    """
    from decongan.engine.provenance import Restored

    fiji = resolve_client(client, fiji_dir)
    result: BridgeResult = call_bridge(lambda: fiji.born_wolf_psf(na=na, ni=ni, wavelength_nm=wavelength_nm,
                                                            pixel_nm=pixel_nm, size=size, nz=nz, z_step_nm=z_step_nm,
                                                            accuracy=accuracy))
    parameters = {"na": na, "ni": ni, "wavelength_nm": wavelength_nm, "pixel_nm": pixel_nm, "size": size, "nz": nz,
                  "z_step_nm": z_step_nm, "accuracy": accuracy, "normalize": "peak"}
    model = result.provenance.get("model", "Born & Wolf")
    provenance = provenance_from_bridge(f"{model} PSF ({plugin_label(result)})", result.provenance, parameters, fiji)
    return Restored(result.image, provenance)


def engine_psf(*, na: float, ni: float, wavelength_nm: float, pixel_nm: float, size: int | Sequence[int] = 65,
               nz: int | None = None, z_step_nm: float | None = None, accuracy: str = "good") -> Any:
    """The engine's Born & Wolf PSF with PSF Generator's conventions (peak = 1) as a ``Restored``."""
    from decongan.engine.optics.psf import born_wolf_psf
    from decongan.engine.provenance import Provenance, Restored

    image = born_wolf_psf(na=na, ni=ni, wavelength_nm=wavelength_nm, pixel_nm=pixel_nm, size=size, nz=nz,
                          z_step_nm=z_step_nm, normalize="peak", accuracy=accuracy)
    parameters = {"na": na, "ni": ni, "wavelength_nm": wavelength_nm, "pixel_nm": pixel_nm, "size": size, "nz": nz,
                  "z_step_nm": z_step_nm, "accuracy": accuracy, "normalize": "peak"}
    return Restored(image, Provenance(method="Born & Wolf PSF (engine)", backend="engine", parameters=parameters))


def psf_with_fallback(*, fiji_dir: str | os.PathLike[str] | None = None, **parameters: Any) -> Any:
    """:func:`fiji_psf`, else :func:`engine_psf` labelled "engine (Fiji unavailable)"."""
    return with_engine_fallback(lambda: fiji_psf(fiji_dir=fiji_dir, **parameters), lambda: engine_psf(**parameters))


