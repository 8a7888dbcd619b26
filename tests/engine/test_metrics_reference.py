"""Reference metrics: the normalisation policy and agreement with scikit-image, on real FMD data."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import (
    mean_squared_error,
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

from decongan.engine.io import read_image
from decongan.engine.metrics import (
    SSIM_PARAMETERS,
    normalize_pair,
    reference_metrics,
    reference_metrics_with_info,
)

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"


@pytest.fixture(scope="module")
def fmd(shared_data):
    folder = shared_data / FMD
    hq = read_image(folder / "hq" / "fov01.png").data.astype(np.float64)
    frames = [read_image(folder / "raw_frames" / "fov01" / f"frame_{i:02d}.png").data.astype(np.float64)
              for i in range(1, 16)]
    return hq, frames


def test_raw_metrics_equal_scikit_image_on_identical_input(fmd):
    hq, frames = fmd
    pred = frames[0]
    for data_range in (None, 255.0):
        ours = reference_metrics(prediction=pred, reference=hq, normalize=False, data_range=data_range)
        dr = float(hq.max() - hq.min()) if data_range is None else data_range
        assert ours["mse"] == pytest.approx(mean_squared_error(hq, pred), rel=1e-12)
        assert ours["nrmse"] == pytest.approx(normalized_root_mse(hq, pred), rel=1e-12)
        assert ours["psnr"] == pytest.approx(peak_signal_noise_ratio(hq, pred, data_range=dr), rel=1e-12)
        assert ours["ssim"] == pytest.approx(
            structural_similarity(hq, pred, data_range=dr, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False), rel=1e-12)


def test_normalised_metrics_equal_scikit_image_on_the_normalised_pair(fmd):
    hq, frames = fmd
    pred_n, ref_n, info = normalize_pair(prediction=frames[0], reference=hq)
    assert info.data_range == 1.0
    ours = reference_metrics(prediction=frames[0], reference=hq)
    assert ours["psnr"] == pytest.approx(peak_signal_noise_ratio(ref_n, pred_n, data_range=1.0), rel=1e-12)
    assert ours["ssim"] == pytest.approx(structural_similarity(ref_n, pred_n, data_range=1.0, **SSIM_PARAMETERS),
                                         rel=1e-12)
    assert ours["mse"] == pytest.approx(float(np.mean((pred_n - ref_n) ** 2)), rel=1e-12)


def test_normalize_pair_maps_percentiles_and_solves_least_squares(fmd):
    hq, frames = fmd
    pred_n, ref_n, info = normalize_pair(prediction=frames[3], reference=hq, low_percentile=1, high_percentile=99)
    lo, hi = np.percentile(ref_n, [1, 99])
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(1.0, abs=1e-12)
    assert (info.reference_low, info.reference_high) == tuple(np.percentile(hq, [1, 99]))
    residual = pred_n - ref_n
    # normal equations of the affine least-squares fit: residual has zero mean and is orthogonal to the input
    assert abs(residual.mean()) < 1e-12
    assert abs(np.dot(residual.ravel(), frames[3].ravel())) / residual.size < 1e-9
    assert info.scale > 0
    np.testing.assert_allclose(pred_n, info.scale * frames[3] + info.offset)


@pytest.mark.parametrize(("gain", "offset"), [(3.7, 0.0), (0.01, -5.0), (250.0, 1000.0)])
def test_policy_is_invariant_to_a_global_affine_change_of_the_prediction(fmd, gain, offset):
    hq, frames = fmd
    base = reference_metrics(prediction=frames[0], reference=hq)
    changed = reference_metrics(prediction=gain * frames[0] + offset, reference=hq)
    for key in ("mse", "nrmse", "psnr", "ssim"):
        assert changed[key] == pytest.approx(base[key], rel=1e-9), key


def test_policy_is_invariant_to_a_positive_affine_change_of_the_reference(fmd):
    hq, frames = fmd
    base = reference_metrics(prediction=frames[0], reference=hq)
    changed = reference_metrics(prediction=frames[0], reference=12.5 * hq + 300.0)
    for key in base:
        assert changed[key] == pytest.approx(base[key], rel=1e-9), key


def test_inverted_prediction_is_not_rewarded(fmd):
    hq, frames = fmd
    good, _ = reference_metrics_with_info(prediction=frames[0], reference=hq)
    inverted, info = reference_metrics_with_info(prediction=-frames[0], reference=hq)
    assert info.scale == 0.0  # clamped: a flat image at the reference mean
    assert inverted["mse"] > 5 * good["mse"] and inverted["ssim"] < good["ssim"]


def test_metrics_rank_real_frame_averages_against_the_50_frame_ground_truth(fmd):
    """Averaging more real noisy frames must bring the image closer to the 50-frame average."""
    hq, frames = fmd
    results = [reference_metrics(prediction=np.mean(frames[:n], axis=0), reference=hq) for n in (1, 2, 4, 8, 15)]
    mse = [r["mse"] for r in results]
    psnr = [r["psnr"] for r in results]
    ssim = [r["ssim"] for r in results]
    assert mse == sorted(mse, reverse=True) and len(set(mse)) == len(mse)
    assert psnr == sorted(psnr) and ssim == sorted(ssim)
    assert psnr[-1] - psnr[0] > 6.0  # 15 frames cut the noise ~4x: several dB


def test_identical_images_are_perfect(fmd):
    hq, _ = fmd
    m = reference_metrics(prediction=hq, reference=hq)
    assert m["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert m["mse"] < 1e-20 and m["psnr"] > 150


def test_stack_uses_volume_mse_and_per_plane_ssim(fmd):
    hq, frames = fmd
    ref = np.stack([hq[:128, :128], hq[128:256, :128], hq[256:384, :128]])
    pred = np.stack([frames[0][:128, :128], frames[1][128:256, :128], frames[2][256:384, :128]])
    pred_n, ref_n, _ = normalize_pair(prediction=pred, reference=ref)
    ours = reference_metrics(prediction=pred, reference=ref)
    per_plane = [structural_similarity(r, p, data_range=1.0, **SSIM_PARAMETERS) for r, p in zip(ref_n, pred_n, strict=True)]
    assert ours["ssim"] == pytest.approx(np.mean(per_plane), rel=1e-12)
    assert ours["mse"] == pytest.approx(np.mean((pred_n - ref_n) ** 2), rel=1e-12)


def test_bad_inputs_give_clear_errors():
    a = np.zeros((32, 32))
    with pytest.raises(ValueError, match=r"prediction shape \(32, 33\) differs from reference shape \(32, 32\)"):
        reference_metrics(prediction=np.zeros((32, 33)), reference=a)
    nan = np.ones((32, 32))
    nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="prediction contains NaN"):
        reference_metrics(prediction=nan, reference=np.random.default_rng(0).random((32, 32)))
    with pytest.raises(ValueError, match="4-D"):
        reference_metrics(prediction=np.zeros((2, 2, 16, 16)), reference=np.zeros((2, 2, 16, 16)))
    with pytest.raises(ValueError, match="too small for SSIM"):
        rng = np.random.default_rng(1)
        reference_metrics(prediction=rng.random((8, 8)), reference=rng.random((8, 8)))
    with pytest.raises(ValueError, match="flat"):
        reference_metrics(prediction=np.random.default_rng(2).random((32, 32)), reference=np.ones((32, 32)))
