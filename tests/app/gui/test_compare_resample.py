"""The window refuses an LQ and a GT of different sizes unless asked to resample, as `decongan compare` (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.io import read_image, write_tiff
from tests.app.gui.conftest import PAIR, wait_idle


@pytest.fixture
def mismatched(tagan, tmp_path):
    """A real confocal crop (128 x 128) and a STED crop of another size (100 x 90) of the same field."""
    lq = read_image(tagan / "lq" / PAIR).data
    gt = read_image(tagan / "hq" / PAIR).data
    lq_path = write_tiff(tmp_path / "field_lq.tif", lq[..., :128, :128], dtype=str(lq.dtype))
    gt_path = write_tiff(tmp_path / "field_gt.tif", gt[..., :100, :90], dtype=str(gt.dtype))
    return lq_path, gt_path


def test_different_sizes_are_refused_unless_the_data_panel_asks_to_resample(qtbot, window, mismatched):
    from decongan.engine.evaluate.compare import LQ_NAME, build_comparison_set, evaluate_set

    lq_path, gt_path = mismatched
    window.open_paths([lq_path])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    window.open_ground_truth(gt_path)
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    assert not window.data_panel.resample_check.isChecked() and window.session.resample_lq is False
    qtbot.waitUntil(lambda: bool(window.errors.history), timeout=60_000)
    wait_idle(qtbot, window, background=True)
    message = window.errors.history[-1].message
    assert f"the LQ input {lq_path} is 128 x 128 px (Y x X) but the ground truth {gt_path} is 100 x 90 px" in message
    assert message.endswith("(in this window: tick 'Resample LQ onto the GT grid' in the Data panel)")
    assert window.evaluation is None and window.metrics.rows["Current field"] == []

    window.data_panel.resample_check.setChecked(True)  # asked for explicitly
    assert window.session.resample_lq is True
    qtbot.waitUntil(lambda: window.evaluation is not None, timeout=60_000)
    wait_idle(qtbot, window, background=True)
    assert any("resampled onto the ground-truth grid (100, 90) (resampling asked for)" in n
               for n in window.evaluation.notes)
    assert window.metrics.notes["Current field"].endswith("LQ resampled onto the GT grid (asked for)")
    expected = evaluate_set(build_comparison_set("field_lq", read_image(lq_path), gt=read_image(gt_path),
                                                 resample=True), consistency=False)
    lq_row = next(r for r in expected.rows if r["method"] == LQ_NAME)
    shown = next(r for r in window.metrics.rows["Current field"] if r["method"] == LQ_NAME)
    assert shown["ssim"] == pytest.approx(lq_row["ssim"], rel=1e-9) and np.isfinite(shown["ssim"])

    window.session.set_dataset(None)  # another dataset starts with the refusal again
    assert window.session.resample_lq is False
    window.data_panel._show_dataset()
    assert not window.data_panel.resample_check.isChecked()
