"""The viewer refits when panels are added, keeps a zoom, and opens a stack at the plane the comparison
shows, counted as the figure counts it (issue 13 item 7); the bundled sample opens as a pair (item 4)."""

from __future__ import annotations

import numpy as np

from tests.app.gui.conftest import PAIR, wait_idle


def _fills_panel(viewer) -> bool:
    """The whole image is shown and touches both sides of the panel in one direction (no grey margins there)."""
    h, w = viewer.layers[0].image.yx_shape
    (x0, x1), (y0, y1) = viewer.panels[0].view.viewRange()
    whole = x0 <= 0.5 and x1 >= w - 0.5 and y0 <= 0.5 and y1 >= h - 0.5
    tight = (abs(x0) < 1 and abs(x1 - w) < 1) or (abs(y0) < 1 and abs(y1 - h) < 1)
    return whole and tight


def _add(window, name):
    from decongan.app.gui.session import Layer

    lq = window.session.lq.image
    window.session.set_layer(Layer(name, lq.with_data(np.asarray(lq.data, dtype=np.float32) * 0.5), "restored"))


def test_panels_added_are_fitted_and_a_zoom_is_kept(qtbot, window, tagan):
    window.open_dataset(tagan / "lq", tagan / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    viewer = window.viewer
    qtbot.waitUntil(lambda: _fills_panel(viewer), timeout=5_000)
    for name in ("RL", "GAN"):  # 3 then 4 panels: the grid changes from 1x3 to 2x2
        _add(window, name)
        qtbot.waitUntil(lambda: len(viewer.panels) == len(window.session.layers), timeout=5_000)
        qtbot.wait(50)  # the layout settles in the event loop
        assert _fills_panel(viewer), viewer.panels[0].view.viewRange()
    assert viewer._grid == (2, 2)

    # a zoom the user chose survives a new panel
    viewer.panels[0].view.setRange(xRange=(50, 100), yRange=(50, 100), padding=0)
    zoom = viewer.panels[0].view.viewRange()
    _add(window, "CARE")
    qtbot.wait(50)
    assert not viewer.shows_whole_image()
    np.testing.assert_allclose(np.mean(viewer.panels[0].view.viewRange(), axis=1), np.mean(zoom, axis=1), atol=1)


def test_the_sample_opens_as_a_pair_at_the_figures_plane(qtbot, window):
    from decongan.engine.evaluate.compare import focus_plane

    assert window.workflow_tabs.widget(window.workflow_tabs.currentIndex()).widget() is window.deconvolve_panel
    window.open_sample_action.trigger()
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)
    session = window.session
    assert session.lq.image.path.name == "nucleus_widefield.tif"
    assert session.gt.image.path.name == "nucleus_confocal.tif"
    assert window.data_panel.summary.text() == "1 field (LQ + GT)"
    # registered and cropped as `decongan demo` does (a translation of about 3.4 px in x), and said so
    assert session.gt.provenance.method == "registered (translation, engine)"
    assert abs(session.gt.provenance.parameters["matrix"][0][2]) > 2
    assert session.lq.image.yx_shape == session.gt.image.yx_shape and session.lq.image.yx_shape[1] < 133
    assert "the confocal (GT) was registered onto the widefield grid" in window.data_panel.notice.text()
    # the next steps need no more choices: the model trained on this sample, a new export folder
    assert window.predict_panel.run_edit.path().name == "s1_neubias_nucleus"
    assert window.export_panel.out_edit.text().endswith("nucleus") and "DeconGAN exports" in \
        window.export_panel.out_edit.text()

    viewer = window.viewer
    gt = np.asarray(session.gt.image.data, dtype=np.float64)
    expected = int(np.argmax(gt.mean(axis=(1, 2))))  # the confocal's brightest plane: 19 of 45
    assert expected == focus_plane(gt) == 19
    assert viewer.position["z"] == expected and viewer.nav_spins["z"].value() == expected
    np.testing.assert_array_equal(viewer.panel("GT").plane, session.gt.image.data[expected])
    assert viewer.nav_labels["z"].text() == "Z (0-44)"  # counted from 0, as the figure's "z=19"

    # the comparison the export draws shows the same plane
    window.compute_evaluation()
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)
    assert window.evaluation.evaluation.cset.focus_plane() == viewer.position["z"]


def test_a_folder_without_name_pairs_says_what_to_do(qtbot, window, tmp_path, tagan):
    import shutil

    (tmp_path / "lq").mkdir()
    (tmp_path / "hq").mkdir()
    shutil.copy(tagan / "lq" / PAIR, tmp_path / "lq" / "widefield.tif")
    shutil.copy(tagan / "hq" / PAIR, tmp_path / "hq" / "confocal.tif")
    window.open_paths([tmp_path])
    message = window.errors.history[-1].message
    assert "has an HQ image of the same name" in message
    assert "File > Open ground truth for this field" in message and "File > Open sample" in message


def test_opening_the_sample_folder_pairs_its_two_files(qtbot, window):
    from decongan.app.gui.window_files import sample_field

    window.open_paths([sample_field().lq.parent.parent])
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)
    assert not window.errors.history
    assert [lay.name for lay in window.session.layers] == ["LQ", "GT"]
