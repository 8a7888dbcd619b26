"""Prediction through the window with a real (tiny) trained run: same pixels as the engine's predict_image."""

from __future__ import annotations

import numpy as np

from tests.app.gui.conftest import PAIR, wait_idle


def test_predict_panel_adds_the_engine_prediction(qtbot, window, tagan, tiny_run):
    from decongan.engine.learn.inference import predict_image

    window.open_paths([tagan / "lq" / PAIR])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    panel = window.predict_panel
    panel.set_run_dir(tiny_run)
    assert "preset s1" in panel.model_info.text()
    panel.tile_spin.setValue(128)
    panel.overlap_spin.setValue(16)
    panel.device_combo.setCurrentText("cpu")
    panel.run()
    qtbot.waitUntil(lambda: len(window.session.restored) == 1, timeout=60_000)
    layer = window.session.restored[0]
    assert layer.name == "S1 GAN (run)"
    expected, provenance = predict_image(tiny_run, window.session.lq.image, tile=128, overlap=16, device="cpu")
    np.testing.assert_array_equal(layer.image.data, expected.data)
    assert layer.provenance.parameters["tile"] == 128 == provenance.parameters["tile"]
    assert layer.image.data.dtype == np.float32 and layer.image.data.shape == (512, 512)
    assert [p.layer.name for p in window.viewer.panels] == ["LQ", "S1 GAN (run)"]
    assert f"decongan predict {tiny_run}" in panel.command_edit.text()
    # settings persist the inference options
    assert window.settings.get("predict/tile") == 128
