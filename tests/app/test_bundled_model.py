"""The S1 model shipped in resources/models for `decongan demo` (trained by scripts/train_demo_model.py)."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.resources import ROOT

MODEL_DIR = ROOT / "models" / "s1_neubias_nucleus"
MAX_BYTES = 20 * 1024 * 1024


def test_the_shipped_model_folder_holds_only_what_inference_needs():
    from decongan.app.commands.demo import bundled_models

    assert MODEL_DIR in bundled_models()
    files = sorted(p.relative_to(MODEL_DIR).as_posix() for p in MODEL_DIR.rglob("*") if p.is_file())
    assert files == ["MODEL_CARD.md", "best/generator.safetensors", "best/metrics.json", "config.json"]
    assert sum((MODEL_DIR / f).stat().st_size for f in files) <= MAX_BYTES
    card = (MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "NEUBIAS training resources" in card and "CC BY 4.0" in card and "not a general" in card


def test_config_validates_and_records_a_split_that_avoids_the_demo_planes():
    from decongan.app.commands.demo import SAMPLE, focus_planes, model_sample_planes
    from decongan.app.methods import model_summary
    from decongan.engine.io import read_image
    from decongan.engine.learn.checkpoint import load_run_config
    from decongan.engine.learn.presets import Preset
    from decongan.resources import resource_path

    config = load_run_config(MODEL_DIR)
    preset = Preset.model_validate(config.preset)
    assert preset.name == "s1" and config.paired and config.scale == 1
    assert config.pixel_size_um == pytest.approx(0.512, abs=0.001)
    train, val = model_sample_planes(model_summary(MODEL_DIR))
    assert train and val and not set(train) & set(val)
    gt = read_image(resource_path("samples", SAMPLE, "hq", "nucleus_confocal.tif"))
    demo_planes = focus_planes(gt.data.astype(np.float64))
    closest = min(abs(a - b) for a in train + val for b in demo_planes)
    assert closest >= 3, f"a training/validation plane lies {closest} plane(s) from the demo's planes"


def test_the_model_beats_the_widefield_input_on_the_held_out_planes(one_torch_thread):
    """On the demo's planes (never used in training) the model's output is closer to the confocal."""

    from decongan.app.commands.demo import SAMPLE, align_confocal, focus_planes
    from decongan.engine.io import read_image
    from decongan.engine.learn.inference import load_model, predict_image
    from decongan.engine.metrics.reference import reference_metrics
    from decongan.resources import resource_path

    lq = read_image(resource_path("samples", SAMPLE, "lq", "nucleus_widefield.tif"))
    gt = read_image(resource_path("samples", SAMPLE, "hq", "nucleus_confocal.tif"))
    lq, gt, _, _ = align_confocal(lq, gt)
    planes = focus_planes(gt.data.astype(np.float64))
    model = load_model(MODEL_DIR, device="cpu")
    restored, provenance = predict_image(model, lq.with_data(lq.data[planes]), tile=0, device="cpu")
    assert restored.data.shape == (len(planes), *lq.yx_shape)
    assert np.isfinite(restored.data).all()
    lq_ssim, gan_ssim = [], []
    for i, z in enumerate(planes):
        reference = gt.data[z].astype(np.float32)
        lq_ssim.append(reference_metrics(prediction=lq.data[z].astype(np.float32), reference=reference)["ssim"])
        gan_ssim.append(reference_metrics(prediction=restored.data[i], reference=reference)["ssim"])
    lq_ssim, gan_ssim = np.array(lq_ssim), np.array(gan_ssim)
    assert np.median(gan_ssim) > np.median(lq_ssim) + 0.01, (np.median(gan_ssim), np.median(lq_ssim))
    # where out-of-focus haze dominates the widefield plane (its lower-scoring half), the model removes it
    hazy = lq_ssim <= np.median(lq_ssim)
    assert np.mean(gan_ssim[hazy] - lq_ssim[hazy]) > 0.05, (gan_ssim[hazy], lq_ssim[hazy])
