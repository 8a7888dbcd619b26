"""Two images in different roles are passed by keyword, so a swap is impossible.

scikit-image puts the reference first (``peak_signal_noise_ratio(image_true, image_test)``,
``phase_cross_correlation(reference_image, moving_image)``); DeconGAN used to put the prediction or the
moving image first. Rather than a third convention, the engine's two-image functions take their images
keyword-only (``prediction=``/``reference=``, ``moving=``/``fixed=``, ``restored=``/``lq=``,
``model=``/``target=``): a positional call in either order fails loudly instead of silently swapping.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from decongan.engine.evaluate.consistency import data_consistency
from decongan.engine.metrics._common import fit_gain_offset
from decongan.engine.metrics.reference import (
    fit_affine,
    normalize_pair,
    reference_metrics,
    reference_metrics_with_info,
)
from decongan.engine.optics.registration import iter_register, register
from decongan.engine.optics.registration.initial import fourier_mellin
from decongan.engine.optics.registration.pyramid import build_pyramid

KEYWORD_ONLY_IMAGES = {
    reference_metrics: ("prediction", "reference"),
    reference_metrics_with_info: ("prediction", "reference"),
    normalize_pair: ("prediction", "reference"),
    fit_affine: ("prediction", "target"),
    fit_gain_offset: ("model", "target"),
    data_consistency: ("restored", "lq"),
    register: ("moving", "fixed"),
    iter_register: ("moving", "fixed"),
    fourier_mellin: ("fixed", "moving"),
    build_pyramid: ("fixed", "moving"),
}


@pytest.mark.parametrize("func", list(KEYWORD_ONLY_IMAGES), ids=lambda f: f.__name__)
def test_images_are_keyword_only(func):
    parameters = inspect.signature(func).parameters
    for name in KEYWORD_ONLY_IMAGES[func]:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, f"{func.__name__}({name}=...)"
    positional = [p.name for p in parameters.values()
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    assert positional == [], f"{func.__name__} still takes {positional} by position"


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    reference = rng.random((32, 32))
    prediction = 0.5 * reference + 0.1 * rng.random((32, 32))
    return prediction, reference


@pytest.mark.parametrize("func", [reference_metrics, reference_metrics_with_info, normalize_pair, fit_affine,
                                  fit_gain_offset, data_consistency, register], ids=lambda f: f.__name__)
def test_a_positional_call_in_the_old_order_fails_loudly(func, pair):
    prediction, reference = pair
    with pytest.raises(TypeError, match="positional argument"):
        func(prediction, reference)


def test_the_keywords_say_which_image_is_which(pair):
    """The roles matter (so a silent swap would have been wrong): the reference is percentile-normalised
    and the prediction gain-matched to it, and swapping the keywords gives different numbers."""
    prediction, reference = pair
    right = reference_metrics(prediction=prediction, reference=reference)
    swapped = reference_metrics(prediction=reference, reference=prediction)
    assert right["mse"] != pytest.approx(swapped["mse"], rel=1e-3)
    _, ref_n, info = normalize_pair(prediction=prediction, reference=reference)
    assert np.percentile(ref_n, [0.1, 99.9]) == pytest.approx([0.0, 1.0], abs=1e-12)
    assert info.reference_low == pytest.approx(np.percentile(reference, 0.1), rel=1e-12)
    gain, offset = fit_gain_offset(model=reference, target=3.0 * reference + 2.0)
    assert (gain, offset) == (pytest.approx(3.0, rel=1e-12), pytest.approx(2.0, rel=1e-12))
