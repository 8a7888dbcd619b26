"""Trust maps of the methods in a comparison: split-half maps per method, disagreement of models/seeds.

A comparison's restored *files* cannot be split after the fact, but a method the comparison runs
itself (a classical baseline, a GAN run, Richardson-Lucy: ``method(lq_image) -> restoration``) can be
run on the two photon halves of each input. :func:`split_half_image` does that for every channel of a
:class:`~decongan.engine.io.MicroscopyImage` (each channel calibrated and split on its own, both
halves restored by one call of the method each), and :func:`attach_split_half` adds the maps to a
:class:`~decongan.engine.evaluate.compare.SetEvaluation` and the flagged fraction to its metric rows
(column ``sh_flagged_fraction``).

:func:`attach_ensemble_disagreement` maps where several columns of one comparison (models, or one
model trained with several seeds) disagree beyond noise (:mod:`engine.evaluate.disagreement`), and
gives each member the fraction of pixels where it departs from the others (``ens_flagged_fraction``).

Checked in tests/engine/test_split_half.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from decongan.engine.evaluate.compare import (
    ENSEMBLE_KEYS,
    SPLIT_HALF_KEYS,
    SetEvaluation,
    _as_image_and_provenance,
    _channel,
)
from decongan.engine.evaluate.disagreement import (
    DEFAULT_DETECTION_SIGMA_PX,
    DEFAULT_THRESHOLD,
    DisagreementError,
    DisagreementResult,
    disagreement_map,
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
#: The column holding how much of each member of a models/seeds group departs from the others.
ENSEMBLE_KEY = ENSEMBLE_KEYS[0]


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


def attach_ensemble_disagreement(evaluation: SetEvaluation, methods: Sequence[str], *,
                                 threshold: float = DEFAULT_THRESHOLD,
                                 detection_sigma_px: float = DEFAULT_DETECTION_SIGMA_PX) -> dict[int, DisagreementResult]:
    """Disagreement of several models or seeds (columns of one comparison) beyond what noise explains.

    Parameters
    ----------
    evaluation : SetEvaluation
        Updated in place: ``disagreement[("a, b, c", channel)]`` holds the map (on the evaluation grid,
        spread binned by the LQ input's local intensity) and each member's row gets ``ens_flagged_fraction``,
        the fraction of pixels where that member departs from the mean of the others.
    methods : sequence of str
        Two or more column names of the comparison (e.g. one GAN trained with several seeds).
    threshold, detection_sigma_px : float
        As in :func:`decongan.engine.evaluate.disagreement.disagreement_map`.

    Returns
    -------
    dict of int to DisagreementResult
        One map per channel.

    Raises
    ------
    DisagreementError
        Fewer than two distinct members, or a name that is not a restored column of the comparison.
    """
    cset = evaluation.cset
    names = list(dict.fromkeys(methods))
    restored = [col.name for col in cset.restored]
    unknown = [n for n in names if n not in restored]
    if len(names) < 2 or unknown:
        raise DisagreementError(f"{cset.field}: a models/seeds group needs two or more restored columns; "
                                + (f"{unknown} not among {restored}" if unknown else f"got {names}"), value=names)
    label = ", ".join(names)
    results = {}
    for c in range(cset.n_channels):
        result = disagreement_map([cset.volume(n, c=c) for n in names], intensity=cset.volume(cset.lq, c=c),
                                  threshold=threshold, detection_sigma_px=detection_sigma_px)
        result.parameters["group"] = names
        evaluation.disagreement[(label, c)] = result
        results[c] = result
        for name, fraction in zip(names, result.member_fractions, strict=True):
            for row in evaluation.rows:
                if row["method"] == name and row["channel"] == c:
                    row[ENSEMBLE_KEY] = fraction
    return results


__all__ = ["ENSEMBLE_KEY", "SPLIT_HALF_KEY", "attach_ensemble_disagreement", "attach_split_half", "split_half_image"]
