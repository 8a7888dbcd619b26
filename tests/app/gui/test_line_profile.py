"""The line tool: one segment in every panel, moved by dragging a handle, profiles = the engine's."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from tests.app.gui.conftest import PAIR, wait_idle


def test_moving_the_line_updates_every_panel_and_matches_the_engine(qtbot, window, tagan, tmp_path):
    from decongan.engine.evaluate.figures import default_line, line_profile

    window.open_dataset(tagan / "lq", tagan / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    row = next(i for i, f in enumerate(window.session.dataset.fields) if f.lq.name == PAIR)
    window.data_panel.fields.setCurrentRow(row)
    qtbot.waitUntil(lambda: window.session.field.lq.name == PAIR, timeout=20_000)
    wait_idle(qtbot, window)
    window.data_panel.pixel_spin.setValue(0.015)
    viewer = window.viewer
    viewer.line_button.click()
    # the initial line is the engine's default (through the brightest structure of the GT)
    start, end = viewer.line()
    expected_default = default_line(np.asarray(window.session.gt.image.data, dtype=np.float32))
    np.testing.assert_allclose([start, end], expected_default)
    assert all(p.line is not None for p in viewer.panels)

    # drag the end handle of the GT panel's line, as a mouse drag does
    gt_panel = viewer.panel("GT")
    handle = gt_panel.line.getHandles()[1]
    gt_panel.line.movePoint(handle, QPointF(400.5, 300.5), finish=True)  # view coords: pixel (row 300, col 400)
    start, end = viewer.line()
    assert end == pytest.approx((300.0, 400.0))
    for panel in viewer.panels:  # every panel shows the same segment
        p0, p1 = viewer._roi_points(panel.line)
        assert p0 == pytest.approx(start) and p1 == pytest.approx(end)

    profiles = window.profile.profiles
    assert set(profiles) == {"LQ", "GT"}
    for name, layer in (("LQ", window.session.lq), ("GT", window.session.gt)):
        np.testing.assert_array_equal(profiles[name], line_profile(layer.image.data, (start, end)))
    # distance axis in µm from the pixel size
    length_um = np.hypot(end[0] - start[0], end[1] - start[1]) * 0.015
    assert window.profile.unit == "µm" and window.profile.distance[-1] == pytest.approx(length_um)

    out = window.profile.export_csv(tmp_path / "profile.csv")
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["distance_µm", "LQ", "GT"] and len(rows) == len(profiles["LQ"]) + 1
    # hiding a panel removes its profile; turning the tool off clears the plot
    viewer.set_visible("GT", False)
    assert set(window.profile.profiles) == {"LQ"}
    viewer.line_button.click()
    assert window.profile.profiles == {}
