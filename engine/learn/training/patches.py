"""Patch sampling for training: random, foreground-biased, augmented LQ/HQ patch batches.

Patches
-------
:class:`PatchSampler` draws a plane (with probability proportional to its number of patch
positions), a position on the LQ grid ``(y, x)`` and takes the LQ patch ``P x P`` there and the HQ
patch ``sP x sP`` at ``(s y, s x)``. Foreground bias: a patch whose target's 99th percentile (in
normalised units) is below ``foreground_threshold`` is rejected with probability
``foreground_reject_prob`` (up to 16 draws). Augmentation: one of the 8 flips/90-degree rotations,
applied identically to LQ and HQ. Planes smaller than a patch are skipped (reported). All random
choices come from one :class:`numpy.random.Generator` whose state is saved in checkpoints, so a
resumed run draws exactly the same patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decongan.engine.learn.degrade import degrade
from decongan.engine.learn.training.data import Sample, TrainingData

_MAX_FOREGROUND_DRAWS = 16


def augment(arrays: Sequence[np.ndarray], *, k: int, flip: bool) -> list[np.ndarray]:
    """Rotate by ``k`` quarter turns then (optionally) mirror left-right; same op on every array.

    Parameters
    ----------
    arrays : sequence of ndarray, each shape (Y, X)
        Planes to transform together (e.g. an LQ patch and its HQ partner, of different sizes).
    k : int
        Number of counter-clockwise quarter turns (``numpy.rot90``).
    flip : bool
        Mirror the columns (X) after rotating.

    Returns
    -------
    list of ndarray
        C-contiguous copies, in the order given; the shape is (X, Y) for odd ``k``.
    """
    out = []
    for arr in arrays:
        a = np.rot90(arr, k)
        if flip:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(a))
    return out


class PatchSampler:
    """Random, foreground-biased, augmented patches (module doc).

    Parameters
    ----------
    data : TrainingData
    patch_size : int
        LQ patch side (HQ side = ``scale * patch_size``).
    batch_size : int
    seed : int
        Seeds the sampler's own generator (its state is saved in checkpoints).
    foreground_threshold, foreground_reject_prob : float
        Foreground bias (module doc).
    augment : bool
        Random flips/rotations.
    """

    def __init__(self, data: TrainingData, *, patch_size: int, batch_size: int, seed: int = 0,
                 foreground_threshold: float = 0.2, foreground_reject_prob: float = 0.9,
                 augment: bool = True) -> None:
        self.data = data
        self.patch = int(patch_size)
        self.batch_size = int(batch_size)
        self.scale = int(data.scale)
        self.threshold = float(foreground_threshold)
        self.reject_prob = float(foreground_reject_prob)
        self.augment = augment
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
        self._weights = self._plane_weights(data.train)
        self._hq_weights = self._plane_weights(data.train_hq_domain) if data.train_hq_domain else None

    def _plane_weights(self, samples: list[Sample]) -> np.ndarray:
        counts = []
        for s in samples:
            h, w = s.lq.shape if (s.lq is not None) else (s.hq.shape[0] // self.scale, s.hq.shape[1] // self.scale)  # type: ignore[union-attr]
            counts.append((h - self.patch + 1) * (w - self.patch + 1))
        counts_arr = np.asarray(counts, dtype=np.float64)
        return counts_arr / counts_arr.sum()

    # -- state for exact resume ---------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    # -- drawing --------------------------------------------------------------------------------
    def _crop(self, sample: Sample, y: int, x: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        p, s = self.patch, self.scale
        lq = sample.lq[y: y + p, x: x + p] if sample.lq is not None else None
        hq = sample.hq[y * s: (y + p) * s, x * s: (x + p) * s] if sample.hq is not None else None
        return lq, hq

    def _draw(self, samples: list[Sample], weights: np.ndarray) -> tuple[Sample, np.ndarray | None, np.ndarray | None]:
        rng = self.rng
        for attempt in range(_MAX_FOREGROUND_DRAWS):
            sample = samples[int(rng.choice(len(samples), p=weights))]
            h = sample.lq.shape[0] if sample.lq is not None else sample.hq.shape[0] // self.scale  # type: ignore[union-attr]
            w = sample.lq.shape[1] if sample.lq is not None else sample.hq.shape[1] // self.scale  # type: ignore[union-attr]
            y = int(rng.integers(0, h - self.patch + 1))
            x = int(rng.integers(0, w - self.patch + 1))
            lq, hq = self._crop(sample, y, x)
            judged = hq if hq is not None else lq
            if attempt == _MAX_FOREGROUND_DRAWS - 1 or self.reject_prob <= 0:
                return sample, lq, hq
            if float(np.percentile(judged, 99)) >= self.threshold:
                return sample, lq, hq
            if rng.random() >= self.reject_prob:
                return sample, lq, hq
        raise AssertionError("unreachable")  # pragma: no cover

    def _augment(self, *arrays: np.ndarray | None) -> list[np.ndarray | None]:
        if not self.augment:
            return [None if a is None else np.ascontiguousarray(a) for a in arrays]
        k = int(self.rng.integers(0, 4))
        flip = bool(self.rng.random() < 0.5)
        present = [a for a in arrays if a is not None]
        done = iter(augment(present, k=k, flip=flip))
        return [None if a is None else next(done) for a in arrays]

    def sample(self) -> dict[str, np.ndarray]:
        """One batch: ``{"lq": (B, 1, P, P), "hq": (B, 1, sP, sP)}`` float32 arrays."""
        lqs, hqs = [], []
        for _ in range(self.batch_size):
            sample, lq, hq = self._draw(self.data.train, self._weights)
            if self._hq_weights is not None:  # unpaired: independent draw from the HQ domain
                _, _, hq = self._draw(self.data.train_hq_domain, self._hq_weights)
                lq, = self._augment(lq)
                hq, = self._augment(hq)
            else:
                if lq is None:  # on-the-fly synthetic LQ from the (normalised) HQ patch
                    lq = degrade(hq, self.data.synthetic, scale=self.scale, rng=self.rng)  # type: ignore[arg-type]
                lq, hq = self._augment(lq, hq)
            lqs.append(lq)
            hqs.append(hq)
        return {"lq": np.stack(lqs)[:, None].astype(np.float32), "hq": np.stack(hqs)[:, None].astype(np.float32)}


__all__ = ["PatchSampler", "augment"]
