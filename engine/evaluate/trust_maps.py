"""Split-half trust maps of the methods in a comparison (:mod:`engine.evaluate.split_half` per column).

A comparison's restored *files* cannot be split after the fact, but a method the comparison runs
itself (a classical baseline, a GAN run, Richardson-Lucy: ``method(lq_image) -> restoration``) can be
run on the two photon halves of each input. :func:`split_half_image` does that for every channel of a
:class:`~decongan.engine.io.MicroscopyImage` (each channel calibrated and split on its own, both
halves restored by one call of the method each), and :func:`attach_split_half` adds the maps to a
:class:`~decongan.engine.evaluate.compare.SetEvaluation` and the flagged fraction to its metric rows
(column ``sh_flagged_fraction``).

Checked in tests/engine/test_split_half.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from decongan.engine.evaluate.compare import (
    SPLIT_HALF_KEYS,
    SetEvaluation,
    _as_image_and_provenance,
    _channel,
)
from decongan.engine.evaluate.disagreement import (
    DEFAULT_DETECTION_SIGMA_PX,
    DEFAULT_THRESHOLD,
    DisagreementResult,
)
from decongan.engine.evaluate.split_half import (
    SplitHalfError,
    estimate_photon_calibration,
    halves_disagreement,
    split_photons,
)
from decongan.engine.io import MicroscopyImage

#: The metric-table column holding each method's split-half flagged fraction.
SPLIT_HALF_KEY = SPLIT_HALF_KEYS[0]


def split_half_image(
    image: MicroscopyImage,
    method: Callable[[MicroscopyImage], Any],
    *,
    name: str = "method",
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    detection_sigma_px: float = DEFAULT_DETECTION_SIGMA_PX,
) -> dict[int, DisagreementResult]:
    """Split-half maps of ``method`` on every channel of ``image``.

    Parameters
    ----------
    image : MicroscopyImage
        The raw input, axes YX, ZYX, CYX or ZCYX, in its recorded intensity units.
    method : callable
        ``method(image) -> restoration`` (a :class:`MicroscopyImage`, an ``(image, Provenance)`` pair, an
        object with ``.image``, or an array with the input's axes), as a comparison's computed columns.
        Called twice, with the two half-dose images (same axes and calibration as ``image``).
    name : str
        The method's name, for messages.
    seed : int
        Seed of the binomial thinning (channel ``c`` uses ``seed + c``).
    threshold, detection_sigma_px : float
        As in :func:`decongan.engine.evaluate.disagreement.disagreement_map`.

    Returns
    -------
    dict of int to DisagreementResult
        One map per channel, on the restoration's grid.

    Raises
    ------
    SplitHalfError
        Time series, no gain to estimate in a channel, or restorations of differing shapes.
    """
    if "T" in image.axes:
        raise SplitHalfError(f"{image.path or 'image'}: split-half maps of time series are not supported; "
                             "choose one time point", path=image.path)
    data = np.asarray(image.data)
    first_data = np.empty(data.shape, dtype=np.float32)
    second_data = np.empty(data.shape, dtype=np.float32)
    splits = []
    for c in range(image.n_channels):
        channel = _channel(data, image.axes, c)
        calibration = estimate_photon_calibration(channel)
        first, second, record = split_photons(channel, calibration, seed=seed + c)
        index: tuple[Any, ...] = (slice(None),) * data.ndim
        if "C" in image.axes:
            index = tuple(c if i == image.axes.index("C") else slice(None) for i in range(data.ndim))
        first_data[index], second_data[index] = first, second
        splits.append((channel, calibration, record))
    restored = []
    for half in (first_data, second_data):
        out, _ = _as_image_and_provenance(name, method(image.with_data(half)), image)
        restored.append(out)
    results = {}
    for c, (channel, calibration, record) in enumerate(splits):
        a = _channel(restored[0].data, restored[0].axes, c)
        b = _channel(restored[1].data, restored[1].axes, c)
        results[c] = halves_disagreement(image=channel, first=a, second=b, calibration=calibration, record=record,
                                         threshold=threshold, detection_sigma_px=detection_sigma_px)
    return results


def attach_split_half(evaluation: SetEvaluation, method: str, results: Mapping[int, DisagreementResult]) -> None:
    """Add a method's split-half maps to an evaluation and their flagged fractions to its rows.

    Parameters
    ----------
    evaluation : SetEvaluation
        Updated in place: ``split_half[(method, channel)]`` and the ``sh_flagged_fraction`` of the
        method's row of each channel.
    method : str
        The column name.
    results : mapping of int to DisagreementResult
        :func:`split_half_image`'s maps, by channel.
    """
    for c, result in results.items():
        evaluation.split_half[(method, c)] = result
        for row in evaluation.rows:
            if row["method"] == method and row["channel"] == c:
                row[SPLIT_HALF_KEY] = result.flagged_fraction


__all__ = ["SPLIT_HALF_KEY", "attach_split_half", "split_half_image"]
