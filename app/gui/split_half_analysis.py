"""Split-half maps of the window's restored layers (engine calls, run in a worker thread; no Qt here).

A split-half map needs the method that made a layer, run again on two photon halves of the input
(:func:`engine.evaluate.trust_maps.split_half_image`, the function the comparison's column
``sh_flagged_fraction`` comes from). The window can rerun:

- the Richardson-Lucy of the Deconvolve panel (engine backend): the panel attaches the exact call it made
  (same PSF and options) to the layer as ``Layer.rerun``;
- the GAN of the Predict panel: the run folder, checkpoint, tile and overlap recorded in the layer's
  provenance (:func:`engine.learn.inference.predict_image`'s parameters).

Any other layer (an image loaded from a file, a Fiji result) gets no map, and :func:`rerun_of_layer`
says why, so the viewer can say it instead of hiding the layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decongan.engine.io import MicroscopyImage

#: seed of the binomial thinning used by the window (the comparison's default)
WINDOW_SEED = 0


def rerun_of_layer(layer: Any) -> tuple[Callable[[MicroscopyImage], Any] | None, str]:
    """(the method that made ``layer``, as ``image -> restoration``, or None; why it cannot be rerun).

    Parameters
    ----------
    layer : app.gui.session.Layer
        A restored layer of the window.

    Returns
    -------
    (callable or None, str)
        The rerun and ``""``, or None and the reason in words.
    """
    rerun = getattr(layer, "rerun", None)
    if rerun is not None:
        return rerun, ""
    provenance = layer.provenance
    backend = str(getattr(provenance, "backend", "") or "")
    params = dict(getattr(provenance, "parameters", None) or {})
    if params.get("run_dir") and params.get("which") and backend.startswith("engine"):
        run_dir, which = params["run_dir"], params["which"]
        tile, overlap = int(params.get("tile_requested") or params.get("tile") or 0), int(params.get("overlap") or 0)
        device = backend.split("/", 1)[1] if "/" in backend else "cpu"

        def predict(image: MicroscopyImage) -> Any:
            from decongan.engine.learn.inference import predict_image

            return predict_image(run_dir, image, which=which, tile=tile, overlap=overlap, device=device)

        return predict, ""
    if backend == "file":
        return None, "loaded from a file, its method cannot be rerun on photon halves"
    if backend.startswith(("fiji", "imagej")) or "Fiji" in layer.name:
        return None, "a Fiji result; split-half maps rerun the engine's methods only"
    return None, "made by a method this window cannot rerun"


@dataclass
class SplitHalfMaps:
    """The split-half maps of one field: layer name -> channel -> DisagreementResult, and the layers left out."""

    results: dict[str, dict[int, Any]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    seed: int = WINDOW_SEED

    def planes(self, *, c: int = 0, z: int = 0) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, float, float]]]:
        """(layer -> z-map plane, layer -> (flagged mask of the plane, its fraction, the whole map's fraction))."""
        maps: dict[str, np.ndarray] = {}
        flagged: dict[str, tuple[np.ndarray, float, float]] = {}
        for name, per_channel in self.results.items():
            result = per_channel.get(c)
            if result is None:
                continue
            zmap, mask = result.zmap, result.flagged
            if zmap.ndim == 3:
                k = min(z, zmap.shape[0] - 1)
                zmap, mask = zmap[k], mask[k]
            maps[name] = np.asarray(zmap, dtype=np.float32)
            flagged[name] = (mask, float(mask.mean()), float(result.flagged_fraction))
        return maps, flagged


def split_half_maps(lq: MicroscopyImage, layers: Mapping[str, Any], *, t: int = 0, seed: int = WINDOW_SEED,
                    cancel: Any = None) -> SplitHalfMaps:
    """Split-half maps of every restored layer the window can rerun, on time point ``t`` of the input.

    Parameters
    ----------
    lq : MicroscopyImage
        The field's input, in its recorded intensity units.
    layers : mapping of str to app.gui.session.Layer
        The restored layers by name.
    t : int
        Time point of a time series (split-half maps are made per time point).
    seed : int
        Seed of the binomial thinning.
    cancel : engine.progress.CancelToken, optional
        Checked between layers.

    Returns
    -------
    SplitHalfMaps
        Maps of the rerunnable layers; the others with the reason.
    """
    from decongan.engine.errors import DeconganError
    from decongan.engine.evaluate.trust_maps import split_half_image

    image = lq.select(t=t) if "T" in lq.axes else lq
    out = SplitHalfMaps(seed=seed)
    for name, layer in layers.items():
        if cancel is not None:
            cancel.raise_if_cancelled()
        rerun, why = rerun_of_layer(layer)
        if rerun is None:
            out.missing[name] = why
            continue
        try:
            out.results[name] = split_half_image(image, rerun, name=name, seed=seed)
        except DeconganError as err:  # e.g. no photon gain to estimate: said in the panel, not a crash
            out.missing[name] = str(err)
    return out


__all__ = ["SplitHalfMaps", "WINDOW_SEED", "rerun_of_layer", "split_half_maps"]
