"""The training loop on real data: exact resume after a cancel, validation and best model, run-folder rules."""

from __future__ import annotations

import json

import pytest
import torch

from decongan.engine.learn.checkpoint import load_generator, load_run_config, read_progress
from decongan.engine.learn.degrade import DegradationSpec
from decongan.engine.learn.training import TrainConfig, TrainingError, iter_train, train
from decongan.engine.progress import Cancelled, CancelToken, drain
from tests.fmd_pairs import write_fmd_pairs

TINY_S1 = {"model_args": {"base_channels": 4, "depth": 2}, "disc_args": {"base_channels": 4, "num_blocks": 2}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def fmd_small(shared_data, tmp_path_factory):
    """Three real FMD pairs cropped to 96 x 96 (uint8, as the originals)."""
    root = tmp_path_factory.mktemp("fmd")
    return write_fmd_pairs(shared_data, root, start=200, size=96, pixel_size_um=None)


def _config(fmd_small, out, **extra) -> TrainConfig:
    fields = {"preset": "s1", "lq_dir": fmd_small[0], "hq_dir": fmd_small[1], "out": out, "iterations": 6,
              "patch_size": 32, "batch_size": 2, "val_every": 3, "log_every": 1, "val_names": ["fov03"],
              "device": "cpu", "seed": 11, **TINY_S1}
    fields.update(extra)
    return TrainConfig(**fields)


def _losses(run_dir):
    return {r["iteration"]: (r["loss_g"], r["loss_d"]) for r in read_progress(run_dir) if r.get("event") == "train"}


def test_cancel_then_resume_gives_exactly_the_losses_of_an_uninterrupted_run(fmd_small, tmp_path):
    straight = train(_config(fmd_small, tmp_path / "straight"))
    assert straight.iterations == 6 and not straight.cancelled

    events = iter_train(_config(fmd_small, tmp_path / "split"))
    for event in events:  # stop (like closing the GUI or Ctrl-C) once iteration 3 is done and validated
        if event.message.startswith("validation at iteration 3"):
            events.close()
            break
    state = json.loads((tmp_path / "split" / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] == 3
    resumed = train(_config(fmd_small, tmp_path / "split", resume=True))
    assert resumed.resumed_from == 3 and resumed.iterations == 6

    expected, got = _losses(tmp_path / "straight"), _losses(tmp_path / "split")
    assert sorted(got) == list(range(1, 7))
    assert got == expected  # bit-identical on CPU
    assert resumed.best_metric == straight.best_metric and resumed.best_iteration == straight.best_iteration


def test_validation_reports_lq_and_gan_scores_and_keeps_the_best_model(fmd_small, tmp_path):
    out = tmp_path / "run"
    summary = train(_config(fmd_small, out, iterations=4, val_every=2))
    records = read_progress(out)
    baseline = next(r for r in records if r["event"] == "baseline")
    validations = [r for r in records if r["event"] == "validation"]
    assert [r["iteration"] for r in validations] == [2, 4]
    assert 0 < baseline["lq_ssim"] < 1 and baseline["lq_psnr"] > 0
    best = max(validations, key=lambda r: r["val_ssim"])
    assert summary.best_metric == pytest.approx(best["val_ssim"]) and summary.best_iteration == best["iteration"]
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["iteration"] == best["iteration"] and metrics["criterion"] == "ssim"
    config = load_run_config(out)
    assert config.data.val_names == ["fov03"] and config.data.train_names == ["fov01", "fov02"]
    assert config.preset["generator"]["kwargs"]["base_channels"] == 4 and config.preset["iterations"] == 4
    assert config.versions["torch"] == torch.__version__
    generator, _ = load_generator(out, which="best")
    assert sum(p.numel() for p in generator.parameters()) > 0
    assert sorted(p.name for p in (out / "validation").iterdir()) == ["iter_0000002", "iter_0000004"]


def test_an_existing_run_folder_is_never_overwritten(fmd_small, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(TrainingError, match="exists and is not empty"):
        drain(iter_train(_config(fmd_small, out)))
    with pytest.raises(TrainingError, match="nothing to resume"):
        drain(iter_train(_config(fmd_small, out, resume=True)))
    assert (out / "keep.txt").read_text() == "mine"


def test_a_cancel_token_stops_after_a_checkpoint(fmd_small, tmp_path):
    token = CancelToken()
    out = tmp_path / "cancel"

    def progress(event):
        if event.values.get("iteration") == 2.0 and "loss_g" in event.values:
            token.cancel()

    with pytest.raises(Cancelled):
        train(_config(fmd_small, out, val_every=100), progress=progress, cancel=token)
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())
    assert state["iteration"] == 2
    assert read_progress(out)[-1]["event"] == "cancelled"


def test_unpaired_cyclegan_run_monitors_bgstd_and_cuf(fmd_small, tmp_path):
    out = tmp_path / "s3"
    summary = train(TrainConfig(preset="s3", lq_dir=fmd_small[0], hq_dir=fmd_small[1], out=out, iterations=2,
                                patch_size=32, batch_size=1, val_every=2, val_names=["fov03"], device="cpu",
                                model_args={"base_channels": 4, "num_blocks": 1}, disc_args={"base_channels": 4},
                                preset_overrides={"loss_weights": {"perceptual": 0.0}}))  # no VGG19 file here
    assert summary.criterion is None and summary.best_iteration == 2
    assert {"bgstd", "cuf", "lq_bgstd", "lq_cuf"} <= set(summary.last_validation)
    assert "latest validation" in json.loads((out / "best" / "metrics.json").read_text())["criterion"]
    preset = load_run_config(out).preset
    assert preset["loss_weights"]["perceptual"] == 0.0 and preset["loss_weights"]["cycle"] > 0  # merged, not replaced


def test_synthetic_realesrgan_pairs_train_an_x2_model(fmd_small, tmp_path):
    out = tmp_path / "s5"
    summary = train(TrainConfig(preset="s5", hq_dir=fmd_small[1], out=out, iterations=2, patch_size=16, batch_size=2,
                                val_every=2, val_names=["fov03"], device="cpu",
                                synthetic_lq=DegradationSpec(method="realesrgan"),
                                model_args={"num_feat": 4, "num_block": 1, "num_grow_ch": 4}, disc_args={"num_feat": 4},
                                preset_overrides={"loss_weights": {"perceptual": 0.0}}))
    assert summary.iterations == 2 and "ssim" in summary.last_validation
    config = load_run_config(out)
    assert config.scale == 2 and config.data.synthetic_lq.method == "realesrgan"
