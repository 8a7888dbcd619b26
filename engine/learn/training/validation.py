"""Validation during training: whole held-out planes through the generator, scored.

* **Paired** runs: the generator's output for each held-out LQ plane is compared with its HQ plane
  by :func:`engine.metrics.reference_metrics` (MSE, NRMSE, PSNR, SSIM), i.e. with the project's one
  metric normalisation policy (ground truth percentile-normalised, prediction least-squares fitted;
  see :mod:`engine.metrics.reference`). Because that policy is invariant to a gain and offset of the
  prediction, scoring in network units equals scoring after the inverse percentile normalisation.
  The same numbers for the LQ input itself (resampled with cubic splines onto the HQ grid when
  ``scale > 1``) are the baseline, reported as ``lq_*``. The best model is the one with the highest
  mean SSIM.
* **Unpaired** runs: no ground truth; the no-reference monitors of S3, BGSTD and CUF
  (:func:`engine.metrics.bgstd`, :func:`engine.metrics.cuf`) of the outputs, with those of the
  inputs as ``lq_*``. They monitor convergence but do not rank models, so the "best" model of an
  unpaired run is the latest validated one.

Metrics are averaged over the held-out planes (each plane weighs the same). Inference uses the
same tiling as ``decongan predict`` (:mod:`engine.learn.tiling`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.learn.training.data import Sample

PAIRED_CRITERION = "ssim"


def _infer(generator: Any, plane: np.ndarray, *, device: Any, scale: int, tile: int, overlap: int) -> np.ndarray:
    from decongan.engine.learn.inference import generator_multiple, make_tile_function
    from decongan.engine.learn.tiling import process_tiled

    fn = make_tile_function(generator, device)
    return process_tiled(plane, fn, tile=tile, overlap=overlap, multiple=generator_multiple(generator), scale=scale)


def _upsample(plane: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return plane
    from skimage.transform import resize

    shape = (plane.shape[0] * scale, plane.shape[1] * scale)
    return resize(plane, shape, order=3, mode="reflect", preserve_range=True).astype(np.float32)


def _mean(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys() if rows else []
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


class Validator:
    """Scores a generator on held-out planes (module doc). Baselines are computed once."""

    def __init__(self, samples: Sequence[Sample], *, paired: bool, scale: int, device: Any,
                 tile: int = 512, overlap: int = 64) -> None:
        self.samples = list(samples)
        self.paired = paired
        self.scale = int(scale)
        self.device = device
        self.tile = int(tile)
        self.overlap = int(overlap)
        self._baseline: dict[str, float] | None = None
        self.last_outputs: list[np.ndarray] = []

    @property
    def criterion(self) -> str | None:
        """Metric that ranks models (higher is better), or None for unpaired runs."""
        return PAIRED_CRITERION if self.paired else None

    def __bool__(self) -> bool:
        return bool(self.samples)

    def baseline(self) -> dict[str, float]:
        """Scores of the LQ inputs themselves, prefixed ``lq_``."""
        if self._baseline is None:
            from decongan.engine.metrics import bgstd, cuf, reference_metrics

            rows = []
            for s in self.samples:
                if self.paired:
                    rows.append(reference_metrics(prediction=_upsample(s.lq, self.scale), reference=s.hq))  # type: ignore[arg-type]
                else:
                    rows.append({"bgstd": bgstd(s.lq), "cuf": cuf(s.lq)})  # type: ignore[arg-type]
            self._baseline = {f"lq_{k}": v for k, v in _mean(rows).items()}
        return dict(self._baseline)

    def outputs(self, generator: Any) -> list[np.ndarray]:
        """The generator's output (network units) for every held-out plane."""
        was_training = generator.training
        generator.eval()
        try:
            return [_infer(generator, s.lq, device=self.device, scale=self.scale, tile=self.tile,  # type: ignore[arg-type]
                           overlap=self.overlap) for s in self.samples]
        finally:
            generator.train(was_training)

    def __call__(self, generator: Any) -> dict[str, float]:
        """Mean metrics of ``generator`` over the held-out planes (plus the ``lq_*`` baseline)."""
        from decongan.engine.metrics import bgstd, cuf, reference_metrics

        rows = []
        self.last_outputs = self.outputs(generator)
        for s, out in zip(self.samples, self.last_outputs, strict=True):
            if self.paired:
                rows.append(reference_metrics(prediction=out, reference=s.hq))  # type: ignore[arg-type]
            else:
                rows.append({"bgstd": bgstd(out), "cuf": cuf(out)})
        return {**_mean(rows), **self.baseline()}


def write_previews(folder: Path, validator: Validator, *, iteration: int, keep: int = 3, n_samples: int = 1) -> Path | None:
    """Write the last validation's first planes as float32 TIFFs (network units) for a live view.

    ``folder/iter_NNNNNNN/<k>_<plane>_{1_lq,2_gan,3_gt}.tif``; only the newest ``keep`` folders stay.

    The files of an existing ``iter_NNNNNNN`` folder are replaced, and older ``iter_*`` folders
    under ``folder`` are deleted: ``folder`` must be the run's own preview folder.

    Parameters
    ----------
    folder : Path
        The run's preview folder (created when missing).
    validator : Validator
        Holds the validation samples and the outputs of its last run.
    iteration : int
        Training iteration, used in the folder name.
    keep : int
        Number of newest ``iter_*`` folders to keep.
    n_samples : int
        Number of validation samples written, each as (Y, X) float32 planes in normalised network
        units (the GAN output is ``scale`` times larger than the LQ plane).

    Returns
    -------
    Path or None
        The folder written, or None when there is no validation output yet.
    """
    import shutil

    from decongan.engine.io import safe_stem, write_tiff

    if not validator.samples or not validator.last_outputs:
        return None
    dest = folder / f"iter_{iteration:07d}"
    dest.mkdir(parents=True, exist_ok=True)
    for k, (sample, out) in enumerate(zip(validator.samples[:n_samples], validator.last_outputs, strict=False)):
        stem = f"{k}_{safe_stem(sample.label)}"
        write_tiff(dest / f"{stem}_1_lq.tif", sample.lq, axes="YX")  # type: ignore[arg-type]
        write_tiff(dest / f"{stem}_2_gan.tif", out, axes="YX")
        if sample.hq is not None:
            write_tiff(dest / f"{stem}_3_gt.tif", sample.hq, axes="YX")
    for old in sorted(p for p in folder.glob("iter_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return dest


__all__ = ["PAIRED_CRITERION", "Validator", "write_previews"]
