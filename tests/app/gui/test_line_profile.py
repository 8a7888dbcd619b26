"""The line tool: one segment in every panel, moved by dragging a handle, profiles = the engine's."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from tests.app.gui.conftest import PAIR, wait_idle


def test_moving_the_line_updates_every_panel_and_matches_the_engine(qtbot, window, tagan, tmp_path):
    from decongan.engine.evaluate.figures import default_line, normalised_profiles

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
    expected = normalised_profiles({"LQ": window.session.lq.image.data, "GT": window.session.gt.image.data},
                                   (start, end), "GT")  # what the exported figure plots
    for name in ("LQ", "GT"):
        np.testing.assert_array_equal(profiles[name], expected[name])
    # distance axis in µm from the pixel size
    length_um = np.hypot(end[0] - start[0], end[1] - start[1]) * 0.015
    assert window.profile.unit == "µm" and window.profile.distance[-1] == pytest.approx(length_um)

    out = window.profile.export_csv(tmp_path / "profile.csv")
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["distance_µm", "LQ (GT scale)", "GT (GT scale)"] and len(rows) == len(profiles["LQ"]) + 1
    # hiding a panel removes its profile; turning the tool off clears the plot
    viewer.set_visible("GT", False)
    assert set(window.profile.profiles) == {"LQ"}
    viewer.line_button.click()
    assert window.profile.profiles == {}


def test_screen_profile_is_normalised_like_the_figure_exports_csv_and_keeps_the_legend_off_the_curves(
        qtbot, window, tagan, tmp_path, monkeypatch):
    """Issue 13 item 3: a GAN output in 0-960 next to a GT in 0-64000 is not a flat line on screen."""
    from PySide6.QtWidgets import QFileDialog

    from decongan.app.gui.line_profile import engine_profile
    from decongan.app.gui.session import Layer
    from decongan.engine.evaluate.figures import comparison_figure

    window.open_dataset(tagan / "lq", tagan / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    row = next(i for i, f in enumerate(window.session.dataset.fields) if f.lq.name == PAIR)
    window.data_panel.fields.setCurrentRow(row)
    qtbot.waitUntil(lambda: window.session.field.lq.name == PAIR, timeout=20_000)
    wait_idle(qtbot, window)
    gt = window.session.gt.image
    gan = gt.with_data(np.asarray(gt.data, dtype=np.float32) / 64.0)  # the GT's structure at 1/64 of its range
    window.session.set_layer(Layer("GAN", gan, "restored"))
    wait_idle(qtbot, window)
    from decongan.engine.evaluate.figures import default_line

    line = default_line(np.asarray(gt.data, dtype=np.float32))  # through the brightest structure
    window.viewer.line_button.click()
    window.viewer.set_line(*line)
    profiles = window.profile.profiles
    assert set(profiles) == {"LQ", "GAN", "GT"}
    raw_gt = np.asarray(gt.data, dtype=np.float64)
    assert raw_gt.max() > 300  # raw intensities would put the GAN's curve at 1/64 of the GT's (a flat line)
    np.testing.assert_allclose(profiles["GAN"], profiles["GT"], atol=1e-9)  # same scale after normalisation
    lo, hi = np.percentile(raw_gt, [0.1, 99.9])  # the GT's scale: 0.1th percentile -> 0, 99.9th -> 1
    raw_profile = engine_profile(raw_gt, *line)
    np.testing.assert_allclose(profiles["GT"], (raw_profile - lo) / (hi - lo), rtol=1e-9, atol=1e-12)
    assert profiles["GT"].max() > 1.0

    # the exported figure plots exactly these curves
    window.compute_evaluation()
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)
    fig = comparison_figure([window.evaluation.evaluation], line=line, contrast="per-panel")
    ax = next(a for a in fig.figure.axes if a.get_label() == "profile")
    curves = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    assert set(curves) == {"LQ (input)", "GAN", "GT"}  # the evaluation's name for the LQ column
    for name, values in curves.items():
        np.testing.assert_allclose(values, profiles["LQ" if name == "LQ (input)" else name], rtol=1e-9, atol=1e-12)
    # and its legend sits in headroom above the curves: no plotted point lies inside the legend's box
    fig.figure.canvas.draw()
    box = ax.get_legend().get_window_extent()
    for curve in ax.get_lines():
        points = ax.transData.transform(np.column_stack([curve.get_xdata(), curve.get_ydata()]))
        assert not any(box.contains(x, y) for x, y in points), curve.get_label()
    fig.figure.savefig(tmp_path / "figure.png", dpi=100)

    # the legend is outside the plot area: a label above it, with every curve's name
    legend = window.profile.legend_label
    assert all(name in legend.text() for name in ("LQ", "GAN", "GT"))
    assert legend.geometry().bottom() <= window.profile.plot.geometry().top()
    assert window.profile.plot.getPlotItem().legend is None

    # "Export CSV..." next to the plot writes what is plotted
    target = tmp_path / "profile.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "CSV (*.csv)"))
    assert window.profile.export_button.isEnabled()
    window.profile.export_button.click()
    with target.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][1:] == ["LQ (GT scale)", "GAN (GT scale)", "GT (GT scale)"]
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], profiles["GAN"], rtol=1e-5)
