"""A fake Fiji bridge client that records what the app-layer adapters send it.

Install it with :func:`install` (monkeypatches ``decongan.app.fiji.client.get_client``, the one
place adapters obtain a client); no JVM is started. ``richardson_lucy`` returns ``2 * image`` (so
a misplaced block shows in the output) and ``register`` applies a chosen TurboReg matrix to what it
receives, as TurboReg would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decongan.imagej_bridge.client import BridgeResult, RegistrationOutput

DL2_PROVENANCE = {"backend": "fake-fiji (test)", "plugin": "DeconvolutionLab2", "plugin_version": "2.1.2 (fake)",
                  "notes": ["periodic boundaries (DeconvolutionLab2)"]}
PSF_GENERATOR_PROVENANCE = {"backend": "fake-fiji (test)", "plugin": "PSF Generator", "plugin_version": "18.12 (fake)",
                            "model": "Born & Wolf"}
TURBOREG_PROVENANCE = {"backend": "fake-fiji (test)", "plugin": "TurboReg", "plugin_version": "2.0 (fake)"}


@dataclass
class FakeFijiClient:
    """Records every call; ``turboreg_matrix`` (2x3, target -> source) is what ``register`` "finds"."""

    turboreg_matrix: np.ndarray = field(default_factory=lambda: np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    rl_calls: list[dict[str, Any]] = field(default_factory=list)
    register_calls: list[dict[str, Any]] = field(default_factory=list)
    psf_calls: list[dict[str, Any]] = field(default_factory=list)
    started: int = 0
    info: dict[str, Any] = field(default_factory=lambda: {"imagej_version": "1.54f (fake)"})

    def start(self) -> None:
        self.started += 1

    def richardson_lucy(self, image: Any, psf: Any, iterations: int = 10, tv_lambda: float | None = None,
                        **_: Any) -> BridgeResult:
        image, psf = np.array(image, copy=True), np.array(psf, copy=True)
        algorithm = f"RL {iterations}" if tv_lambda is None else f"RLTV {iterations} {tv_lambda}"
        self.rl_calls.append({"image": image, "psf": psf, "iterations": iterations, "tv_lambda": tv_lambda})
        provenance = {**DL2_PROVENANCE, "algorithm": algorithm,
                      "macro": f'run("DeconvolutionLab2 Run", " -algorithm {algorithm} -out stack noshow");'}
        return BridgeResult((2.0 * image).astype(np.float32), provenance)

    def born_wolf_psf(self, **parameters: Any) -> BridgeResult:
        """Records the parameters; returns the engine's peak-normalised Born & Wolf PSF for them."""
        from decongan.engine.optics.psf import born_wolf_psf

        self.psf_calls.append(dict(parameters))
        image = born_wolf_psf(**{k: v for k, v in parameters.items() if k != "allow_ops_fallback"}, normalize="peak")
        config = "\n".join(f"{k}={v}" for k, v in sorted(parameters.items()))
        return BridgeResult(image.astype(np.float32), {**PSF_GENERATOR_PROVENANCE, "config": config})

    def register(self, *, moving: Any, fixed: Any, transform: str = "rigid", **_: Any) -> RegistrationOutput:
        from decongan.engine.optics.registration import Transform2D, apply_transform

        moving, fixed = np.array(moving, copy=True), np.array(fixed, copy=True)
        self.register_calls.append({"moving": moving, "fixed": fixed, "transform": transform})
        t = Transform2D.from_turboreg_matrix(self.turboreg_matrix, kind=transform, fixed_shape=fixed.shape,
                                             moving_shape=moving.shape)
        aligned, mask = apply_transform(moving, t)
        return RegistrationOutput(aligned, mask, np.array(self.turboreg_matrix, dtype=float), transform,
                                  {**TURBOREG_PROVENANCE, "macro": f'run("TurboReg ", "-align ... -{transform}");'})


def install(monkeypatch: Any, client: FakeFijiClient | None = None) -> FakeFijiClient:
    """Make every adapter that is not given a client use ``client`` (a new fake by default)."""
    from decongan.app.fiji import client as fiji_client

    fake = client if client is not None else FakeFijiClient()
    monkeypatch.setattr(fiji_client, "get_client", lambda fiji_dir=None, **_: fake)
    return fake
