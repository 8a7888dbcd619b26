"""Task-based score: Otsu + watershed segmentation, Dice/Jaccard and object F1 at IoU 0.5,
against hand-computed values on synthetic images and the real FMD nuclei."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.metrics.segmentation import (
    SegmentationParameters,
    looks_like_nuclei,
    segment_nuclei,
    segmentation_agreement,
    segmentation_scores,
)

SHARP = SegmentationParameters(smoothing_px=0.0, min_size_px=5, min_distance_px=5)


def disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def two_blobs(missing_second=False):
    image = np.full((96, 96), 10.0)
    image[disk(image.shape, (30, 30), 10)] = 200.0
    if not missing_second:
        image[disk(image.shape, (66, 64), 12)] = 180.0
    return image


def test_identical_images_agree_perfectly():
    image = two_blobs() + np.random.default_rng(0).normal(0, 3, (96, 96))
    scores = segmentation_agreement(prediction=image, reference=image)
    assert scores["seg_dice"] == 1.0 and scores["seg_jaccard"] == 1.0 and scores["seg_f1"] == 1.0
    assert scores["seg_n_objects"] == scores["seg_n_reference"] == 2


def test_a_gain_and_offset_change_nothing():
    image = two_blobs() + np.random.default_rng(1).normal(0, 3, (96, 96))
    assert segmentation_agreement(prediction=0.01 * image - 5, reference=image)["seg_dice"] == 1.0


def test_a_shifted_square_gives_the_hand_computed_dice_and_jaccard():
    """20 x 20 square shifted by 4 px: overlap 20 x 16 = 320 px -> Dice 640 / 800 = 0.8, Jaccard 320 / 480."""
    ref = np.zeros((64, 64))
    ref[20:40, 20:40] = 100.0
    pred = np.roll(ref, 4, axis=1)
    scores = segmentation_agreement(prediction=pred, reference=ref, parameters=SHARP)
    assert scores["seg_dice"] == pytest.approx(0.8, abs=1e-12)
    assert scores["seg_jaccard"] == pytest.approx(320 / 480, abs=1e-12)
    assert scores["seg_f1"] == 1.0  # IoU 2/3 >= 0.5: still the same object


def test_an_eroded_object_and_an_iou_below_one_half():
    """Square 20 x 20 vs its 9 x 9 centre: Dice 2*81/(400+81), IoU 81/400 < 0.5, so no object matches."""
    ref = np.zeros((64, 64))
    ref[20:40, 20:40] = 100.0
    pred = np.zeros((64, 64))
    pred[25:34, 25:34] = 100.0
    scores = segmentation_agreement(prediction=pred, reference=ref, parameters=SHARP)
    assert scores["seg_dice"] == pytest.approx(162 / 481, abs=1e-12)
    assert scores["seg_f1"] == 0.0 and scores["seg_precision"] == 0.0 and scores["seg_recall"] == 0.0


def test_object_f1_with_one_of_two_blobs_missing_is_two_thirds():
    scores = segmentation_agreement(prediction=two_blobs(missing_second=True), reference=two_blobs())
    assert scores["seg_n_reference"] == 2 and scores["seg_n_objects"] == 1
    assert scores["seg_f1"] == pytest.approx(2 / 3, abs=1e-12)
    assert scores["seg_precision"] == 1.0 and scores["seg_recall"] == 0.5
    area_1, area_2 = disk((96, 96), (30, 30), 10).sum(), disk((96, 96), (66, 64), 12).sum()
    assert scores["seg_dice"] == pytest.approx(2 * area_1 / (2 * area_1 + area_2), abs=0.01)


def test_the_watershed_splits_two_touching_nuclei():
    image = np.zeros((80, 120))
    image[disk(image.shape, (40, 40), 18) | disk(image.shape, (40, 72), 18)] = 100.0
    labels = segment_nuclei(image, SHARP)
    assert labels.max() == 2
    left, right = np.unique(labels[40, 25]), np.unique(labels[40, 90])
    assert left[0] != right[0] and 0 not in (left[0], right[0])


def test_a_binary_mask_is_split_into_its_connected_objects():
    mask = (two_blobs() > 100).astype(np.uint8) * 255
    scores = segmentation_agreement(prediction=two_blobs(missing_second=True), reference_mask=mask)
    assert scores["seg_n_reference"] == 2 and scores["seg_f1"] == pytest.approx(2 / 3)


def test_labels_without_objects_give_undefined_scores_not_perfect_ones():
    empty = np.zeros((32, 32), int)
    scores = segmentation_scores(prediction_labels=empty, reference_labels=empty)
    assert np.isnan(scores["seg_dice"]) and np.isnan(scores["seg_f1"])


def test_fmd_nuclei_look_like_nuclei_and_tagan_rings_do_not(shared_data):
    from decongan.engine.io import read_image

    fmd = read_image(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "hq" / "fov02.png").data
    ok, why = looks_like_nuclei(segment_nuclei(fmd))
    assert ok, why
    rings = read_image(shared_data / "tagan_confocal_vs_sted" / "hq" / "axonal_rings_test0.tif").data
    ok, why = looks_like_nuclei(segment_nuclei(rings))
    assert not ok and "do not look like nuclei" in why
    # the single noisy frame segments like the 50-frame average on this field: same 7 nuclei
    lq = read_image(shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq" / "fov02.png").data
    scores = segmentation_agreement(prediction=lq, reference=fmd)
    assert scores["seg_n_reference"] == 7 and scores["seg_f1"] == 1.0 and 0.95 < scores["seg_dice"] < 0.99


def test_compare_reports_the_task_score_beside_ssim_for_nuclei_and_says_why_not_for_rings(shared_data):
    """evaluate_set: FMD nuclei get seg_* columns equal to the direct score; TA-GAN rings get a note instead."""
    from scipy import ndimage

    from decongan.engine.evaluate.compare import build_comparison_set, evaluate_set
    from decongan.engine.io import read_image

    fmd = shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"
    lq, gt = read_image(fmd / "lq" / "fov02.png"), read_image(fmd / "hq" / "fov02.png")
    smooth = ndimage.gaussian_filter(lq.data.astype(np.float32), 2.0)
    ev = evaluate_set(build_comparison_set("fov02", lq, gt=gt, restored={"Gaussian 2 px": smooth}),
                      consistency=False, no_reference=False)
    rows = {r["method"]: r for r in ev.rows}
    for name, data in (("LQ (input)", lq.data), ("Gaussian 2 px", smooth)):
        direct = segmentation_agreement(prediction=data, reference=gt.data)
        assert rows[name]["seg_dice"] == pytest.approx(direct["seg_dice"], abs=1e-12)
        assert rows[name]["seg_f1"] == pytest.approx(direct["seg_f1"], abs=1e-12)
        assert rows[name]["ssim"] is not None
    assert rows["GT"].get("seg_dice") is None  # the reference is not scored against itself
    assert any("segmentation score computed: ground-truth objects look like nuclei" in n for n in ev.notes)

    tagan = shared_data / "tagan_confocal_vs_sted"
    lq, gt = read_image(tagan / "lq" / "axonal_rings_test0.tif"), read_image(tagan / "hq" / "axonal_rings_test0.tif")
    ev = evaluate_set(build_comparison_set("rings", lq, gt=gt), consistency=False, no_reference=False)
    assert all(r.get("seg_dice") is None for r in ev.rows)
    assert any("segmentation score not computed: ground-truth objects do not look like nuclei" in n for n in ev.notes)
