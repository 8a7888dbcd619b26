"""Registration through the window: the panel runs the engine's registration, previews, accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from decongan.engine.io import read_image, write_tiff
from tests.app.gui.conftest import wait_idle


def test_register_accept_and_save_transform(qtbot, window, tagan, tmp_path):
    from decongan.engine.optics.registration import register

    lq_path = tagan / "lq" / "dendritic_factin_train804.tif"
    lq = read_image(lq_path)
    # a known displacement of the real confocal image: moving(p) = fixed(p - (dx, dy))
    dx, dy = 6.5, -4.25
    shifted = ndimage.shift(np.asarray(lq.data, dtype=np.float32), (dy, dx), order=3, mode="nearest")
    moving_path = write_tiff(tmp_path / "confocal_shifted.tif", shifted)
    window.open_paths([lq_path])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    window.open_ground_truth(moving_path)
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)

    panel = window.register_panel
    assert panel.moving_combo.currentText() == "GT" and panel.fixed_combo.currentText() == "LQ"
    panel.transform_combo.setCurrentText("translation")
    panel.run()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    result = panel.result
    expected = register(moving=shifted, fixed=window.session.lq.image.data, transform="translation", max_iterations=40)
    np.testing.assert_allclose(result.transform.matrix, expected.transform.matrix, atol=1e-9)
    sx, sy = result.transform.shift_px
    assert sx == pytest.approx(dx, abs=0.1) and sy == pytest.approx(dy, abs=0.1)
    assert "NCC" in panel.summary.text()
    assert panel.preview_item.image.shape == (224, 224, 3)  # green/magenta overlay

    saved = panel.save_transform(tmp_path / "t.json")
    assert json.loads(saved.read_text())["kind"] == "translation"
    assert "decongan register" in panel.command_edit.text() and "--transform translation" in panel.command_edit.text()

    qtbot.mouseClick(panel.accept_button, _left())
    gt = window.session.gt
    np.testing.assert_array_equal(gt.image.data, result.aligned)
    assert gt.provenance.method == "registered (translation, engine)"  # as `decongan register` records it
    assert np.shares_memory(window.viewer.panel("GT").plane, gt.image.data)  # the viewer shows the new layer


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
