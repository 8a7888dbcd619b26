"""Training data: pairing by name, validation split, SR patch geometry, identical augmentation,
foreground bias, stacks as planes, synthetic LQ, and sampler state for exact resume."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from decongan.engine.io import read_image, write_tiff
from decongan.engine.learn.degrade import DegradationSpec
from decongan.engine.learn.training.data import (
    DataError,
    match_pairs,
    prepare_training_data,
    split_validation,
)
from decongan.engine.learn.training.patches import PatchSampler

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"


@pytest.fixture()
def fmd_dirs(shared_data, tmp_path):
    """Four real FMD pairs (cropped to 128 x 128) plus one unmatched file on each side."""
    lq, hq = tmp_path / "lq", tmp_path / "hq"
    for name in ("fov01", "fov02", "fov03", "fov05"):
        for side, folder in (("lq", lq), ("hq", hq)):
            data = read_image(shared_data / FMD / side / f"{name}.png").data[128:256, 128:256]
            write_tiff(folder / f"{name}.tif", data, dtype="uint8", pixel_size_um=0.2)
    shutil.copy(shared_data / FMD / "lq" / "fov06.png", lq / "only_lq.png")
    shutil.copy(shared_data / FMD / "hq" / "fov07.png", hq / "only_hq.png")
    return lq, hq


def test_pairs_are_matched_by_name_and_the_unmatched_are_reported(fmd_dirs, tmp_path):
    report = match_pairs(*fmd_dirs)
    assert [name for name, _, _ in report.matched] == ["fov01", "fov02", "fov03", "fov05"]
    assert report.lq_only == ["only_lq"] and report.hq_only == ["only_hq"]
    assert "LQ without HQ (left out): only_lq" in report.summary()
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(fmd_dirs[1] / "only_hq.png", other / "zzz.png")
    with pytest.raises(DataError, match="no LQ image .* has an HQ image of the same name"):
        match_pairs(fmd_dirs[0], other)


def test_validation_split_is_deterministic_by_name_and_whole_images():
    names = [f"img{i:02d}" for i in range(20)]
    train, val = split_validation(names, val_fraction=0.15)
    assert len(val) == 3 and not set(train) & set(val) and sorted(train + val) == names
    assert split_validation(list(reversed(names)), val_fraction=0.15) == (train, val)
    _, val_more = split_validation(names + ["img99"], val_fraction=0.15)
    assert len(set(val) & set(val_more)) >= 2  # adding an image does not reshuffle the others
    assert split_validation(names, val_names=["img05"])[1] == ["img05"]
    with pytest.raises(DataError, match="not found among the training images: nope"):
        split_validation(names, val_names=["nope"])
    with pytest.raises(DataError, match="every image was held out"):
        split_validation(["a"], val_names=["a"])


def test_super_resolution_patches_sit_at_the_same_place_with_the_same_augmentation(shared_data, tmp_path):
    hq_plane = read_image(shared_data / FMD / "hq" / "fov08.png").data[:192, :256].astype(np.float32)
    lq_plane = hq_plane.reshape(96, 2, 128, 2).mean(axis=(1, 3))  # exact 2x2 block mean: LQ = bin(HQ)
    write_tiff(tmp_path / "lq" / "a.tif", lq_plane)
    write_tiff(tmp_path / "hq" / "a.tif", hq_plane)
    write_tiff(tmp_path / "lq" / "b.tif", lq_plane[::-1].copy())
    write_tiff(tmp_path / "hq" / "b.tif", hq_plane[::-1].copy())
    data = prepare_training_data(lq_dir=tmp_path / "lq", hq_dir=tmp_path / "hq", paired=True, scale=2, patch_size=24,
                                 val_names=["b"], normalization_mode="per_image")
    sampler = PatchSampler(data, patch_size=24, batch_size=16, seed=3)
    batch = sampler.sample()
    assert batch["lq"].shape == (16, 1, 24, 24) and batch["hq"].shape == (16, 1, 48, 48)
    sample = data.train[0]
    for lq, hq in zip(batch["lq"][:, 0], batch["hq"][:, 0], strict=True):
        # back to intensities, then the HQ patch binned 2x2 must give the LQ patch exactly
        lq_raw = sample.lq_norm.denormalize(lq)
        hq_raw = sample.hq_norm.denormalize(hq)
        np.testing.assert_allclose(hq_raw.reshape(24, 2, 24, 2).mean(axis=(1, 3)), lq_raw, rtol=1e-4, atol=1e-3)


def test_foreground_bias_rejects_background_patches(fmd_dirs):
    data = prepare_training_data(lq_dir=fmd_dirs[0], hq_dir=fmd_dirs[1], paired=True, patch_size=16, val_fraction=0)
    fractions = []
    for prob in (0.0, 1.0):
        sampler = PatchSampler(data, patch_size=16, batch_size=400, seed=0, foreground_threshold=0.3,
                               foreground_reject_prob=prob)
        hq = sampler.sample()["hq"]
        fractions.append(np.mean([np.percentile(p, 99) < 0.3 for p in hq]))
    assert fractions[0] > 0.2 and fractions[1] < 0.5 * fractions[0]


def test_sampler_state_round_trip_gives_the_same_patches(fmd_dirs):
    data = prepare_training_data(lq_dir=fmd_dirs[0], hq_dir=fmd_dirs[1], paired=True, patch_size=16, val_fraction=0.25)
    sampler = PatchSampler(data, patch_size=16, batch_size=4, seed=5)
    sampler.sample()
    state = sampler.get_state()
    first = sampler.sample()
    sampler.set_state(state)
    again = sampler.sample()
    np.testing.assert_array_equal(first["lq"], again["lq"])
    np.testing.assert_array_equal(first["hq"], again["hq"])


def test_dataset_facts_are_recorded(fmd_dirs):
    data = prepare_training_data(lq_dir=fmd_dirs[0], hq_dir=fmd_dirs[1], paired=True, patch_size=16,
                                 val_names=["fov05"])
    assert data.train_names == ["fov01", "fov02", "fov03"] and data.val_names == ["fov05"]
    assert data.pairing.lq_only == ["only_lq"]
    assert data.pixel_size_um == pytest.approx(0.2) and data.n_channels == 1
    assert len(data.train) == 3 and len(data.val) == 1 and data.val[0].hq is not None
    assert data.normalization.lq[0].high > data.normalization.lq[0].low


def test_stacks_are_used_as_planes_with_their_calibration(shared_data, tmp_path):
    folder = shared_data / "neubias_widefield_vs_confocal_3d"
    for side, name in (("lq", "nucleus_widefield.tif"), ("hq", "nucleus_confocal.tif")):
        (tmp_path / side).mkdir()
        shutil.copy(folder / side / name, tmp_path / side / "nucleus.tif")  # pairs are matched by name
    data = prepare_training_data(lq_dir=tmp_path / "lq", hq_dir=tmp_path / "hq", paired=True, patch_size=64,
                                 val_fraction=0)
    assert len(data.train) == 45  # 45 z planes of one pair
    assert data.train[10].label == "nucleus[z=10]"
    assert data.pixel_size_um == pytest.approx(0.512, rel=1e-3)


def test_a_pair_of_different_sizes_is_refused_with_the_file_name(fmd_dirs):
    lq, hq = fmd_dirs
    write_tiff(hq / "fov05.tif", np.zeros((100, 128), np.uint8), dtype="uint8")
    with pytest.raises(DataError, match=r"pair 'fov05': LQ plane is 128x128 and HQ plane 100x128"):
        prepare_training_data(lq_dir=lq, hq_dir=hq, paired=True, patch_size=16)


def test_patch_larger_than_every_image_is_explained(fmd_dirs):
    with pytest.raises(DataError, match="use a smaller patch size"):
        prepare_training_data(lq_dir=fmd_dirs[0], hq_dir=fmd_dirs[1], paired=True, patch_size=256)


def test_synthetic_lq_from_hq_only(fmd_dirs):
    hq = fmd_dirs[1]
    gaussian = prepare_training_data(lq_dir=None, hq_dir=hq, paired=True, patch_size=16, scale=2, val_fraction=0.2,
                                     synthetic=DegradationSpec(method="gaussian"))
    assert gaussian.train[0].lq.shape == (64, 64) and gaussian.train[0].hq.shape == (128, 128)
    realesrgan = prepare_training_data(lq_dir=None, hq_dir=hq, paired=True, patch_size=16, scale=2, val_fraction=0.2,
                                       synthetic=DegradationSpec(method="realesrgan"))
    assert realesrgan.train[0].lq is None  # made per patch
    val = realesrgan.val[0]
    assert val.lq.shape == (val.hq.shape[0] // 2, val.hq.shape[1] // 2)  # one fixed, seeded realisation
    batch = PatchSampler(realesrgan, patch_size=16, batch_size=2, seed=0).sample()
    assert batch["lq"].shape == (2, 1, 16, 16) and batch["hq"].shape == (2, 1, 32, 32)


def test_unpaired_domains_are_sampled_independently(fmd_dirs):
    data = prepare_training_data(lq_dir=fmd_dirs[0], hq_dir=fmd_dirs[1], paired=False, patch_size=16,
                                 val_names=["fov01"])
    assert len(data.train) == 4 and len(data.train_hq_domain) == 5  # LQ minus validation; every HQ image
    assert data.val[0].hq is None
    batch = PatchSampler(data, patch_size=16, batch_size=3, seed=0).sample()
    assert batch["lq"].shape == batch["hq"].shape == (3, 1, 16, 16)


def test_optional_registration_aligns_each_pair_before_training(shared_data, tmp_path):
    from scipy.ndimage import shift

    lq = read_image(shared_data / FMD / "lq" / "fov01.png").data[:160, :160].astype(np.float32)
    hq = read_image(shared_data / FMD / "hq" / "fov01.png").data[:160, :160].astype(np.float32)
    write_tiff(tmp_path / "lq" / "a.tif", shift(lq, (3.0, -5.0), order=1, mode="nearest"))
    write_tiff(tmp_path / "hq" / "a.tif", hq)
    data = prepare_training_data(lq_dir=tmp_path / "lq", hq_dir=tmp_path / "hq", paired=True, patch_size=32,
                                 val_fraction=0, register="translation")
    assert len(data.registration) == 1 and data.registration[0].startswith("a: translation")
    sample = data.train[0]
    assert sample.lq.shape == sample.hq.shape and max(sample.lq.shape) < 160  # cropped to the common valid area
    before = np.corrcoef(shift(lq, (3.0, -5.0), order=1, mode="nearest").ravel(), hq.ravel())[0, 1]
    after = np.corrcoef(sample.lq.ravel(), sample.hq.ravel())[0, 1]
    assert after > before + 0.05
    with pytest.raises(DataError, match="scale 1 only"):
        prepare_training_data(lq_dir=tmp_path / "lq", hq_dir=tmp_path / "hq", paired=True, scale=2, patch_size=16,
                              register="translation")


def test_multichannel_images_are_trained_per_channel_with_their_own_parameters(shared_data, tmp_path):
    lq = read_image(shared_data / FMD / "lq" / "fov11.png").data[:64, :64].astype(np.float32)
    hq = read_image(shared_data / FMD / "hq" / "fov11.png").data[:64, :64].astype(np.float32)
    write_tiff(tmp_path / "lq" / "a.tif", np.stack([lq, 100 * lq]), axes="CYX")  # channel 1 is 100x brighter
    write_tiff(tmp_path / "hq" / "a.tif", np.stack([hq, 100 * hq]), axes="CYX")
    data = prepare_training_data(lq_dir=tmp_path / "lq", hq_dir=tmp_path / "hq", paired=True, patch_size=32,
                                 val_fraction=0)
    assert data.n_channels == 2 and [s.label for s in data.train] == ["a[c=0]", "a[c=1]"]
    low0, low1 = data.normalization.lq[0], data.normalization.lq[1]
    assert low1.high == pytest.approx(100 * low0.high, rel=1e-4)
    np.testing.assert_allclose(data.train[0].lq, data.train[1].lq, atol=1e-5)  # same content in network units
