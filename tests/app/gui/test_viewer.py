"""The synchronised viewer on real images: linked views, contrast, LUTs, subsets, navigation, maps."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.app.gui.viewer import Contrast, lookup_table
from decongan.engine.io import read_image
from tests.app.gui.conftest import PAIR, wait_idle


@pytest.fixture
def pair_window(qtbot, window, tagan):
    """The window showing the synprot pair (512 x 512, uint16) as LQ and GT plus a third method."""
    from decongan.app.gui.session import Layer

    window.open_dataset(tagan / "lq", tagan / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    row = next(i for i, f in enumerate(window.session.dataset.fields) if f.lq.name == PAIR)
    window.data_panel.fields.setCurrentRow(row)
    qtbot.waitUntil(lambda: window.session.field.lq.name == PAIR, timeout=20_000)
    lq = window.session.lq.image
    smooth = lq.with_data(np.asarray(lq.data, dtype=np.float32) * 0.5 + 3.0)  # a stand-in method on the LQ grid
    window.session.set_layer(Layer("half", smooth, "restored"))
    wait_idle(qtbot, window)
    return window


def test_panels_follow_the_layers_and_any_subset_can_be_shown(pair_window):
    viewer = pair_window.viewer
    assert [p.layer.name for p in viewer.panels] == ["LQ", "half", "GT"]
    viewer.panel_buttons["half"].click()
    assert [p.layer.name for p in viewer.panels] == ["LQ", "GT"]
    viewer.set_visible("half", True)
    assert [p.layer.name for p in viewer.panels] == ["LQ", "half", "GT"]
    assert viewer.panel_buttons["half"].isChecked()


def test_pan_and_zoom_are_linked(pair_window):
    viewer = pair_window.viewer
    viewer.panels[2].view.setRange(xRange=(100, 164), yRange=(200, 264), padding=0)
    ranges = [p.view.viewRange() for p in viewer.panels]
    for other in ranges[:2]:
        np.testing.assert_allclose(other[0], ranges[2][0], atol=1e-6)
        np.testing.assert_allclose(other[1], ranges[2][1], atol=1e-6)
    assert ranges[0][0][1] - ranges[0][0][0] < 100  # zoomed in, not the whole 512 px


def test_auto_contrast_uses_the_percentiles_of_each_panel(pair_window):
    viewer = pair_window.viewer
    viewer.set_shared_contrast(False)
    viewer.set_contrast(Contrast(mode="auto", low_pct=1.0, high_pct=99.0))
    for panel in viewer.panels:  # 512 x 512 planes are not sub-sampled: exact percentiles
        expected = np.percentile(np.asarray(panel.plane, dtype=np.float32), [1.0, 99.0])
        np.testing.assert_allclose(panel.levels, expected, rtol=1e-6)
    # shared: one pair of limits for every panel, from all their pixels together
    viewer.set_shared_contrast(True)
    every = np.concatenate([np.asarray(p.plane, dtype=np.float32).ravel() for p in viewer.panels])
    expected = np.percentile(every, [1.0, 99.0])
    for panel in viewer.panels:
        np.testing.assert_allclose(panel.levels, expected, rtol=1e-6)


def test_manual_min_max_for_one_panel_leaves_the_others_alone(pair_window):
    viewer = pair_window.viewer
    viewer.set_shared_contrast(False)
    before = viewer.levels()
    viewer.target_combo.setCurrentText("GT")
    viewer.min_spin.setValue(5.0)
    viewer.max_spin.setValue(50.0)
    after = viewer.levels()
    assert after["GT"] == (5.0, 50.0)
    assert after["LQ"] == before["LQ"] and after["half"] == before["half"]
    assert viewer.manual_radio.isChecked()


def test_contrast_and_lut_changes_never_copy_the_image(pair_window):
    viewer = pair_window.viewer
    panel = viewer.panel("LQ")
    data = pair_window.session.lq.image.data
    image_before = panel.item.image
    assert np.shares_memory(image_before, data)  # the item shows the layer's own pixels
    viewer.set_contrast(Contrast(mode="manual", vmin=0.0, vmax=20.0), "LQ")
    viewer.set_lut("magma")
    assert panel.item.image is image_before
    np.testing.assert_array_equal(panel.item.lut, lookup_table("magma"))
    assert pair_window.settings.get("viewer/lut") == "magma"  # persisted


def test_channel_navigation_on_a_multichannel_image(qtbot, window, shared_data):
    path = shared_data / "other_fluorescence" / "neubias_xyc_16bit__hela-cells.tif"
    window.open_paths([path])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    viewer = window.viewer
    spin = viewer.nav_spins["c"]
    assert not spin.isHidden() and spin.maximum() == 2
    assert viewer.nav_spins["z"].isHidden()
    image = read_image(path)
    spin.setValue(2)
    np.testing.assert_array_equal(viewer.panels[0].plane, image.plane(c=2))
    assert window.session.pixel_size_um == pytest.approx(image.pixel_size_um)


def test_error_map_is_the_engines_normalised_difference(qtbot, pair_window):
    from decongan.engine.metrics import normalize_pair

    viewer = pair_window.viewer
    viewer.error_button.click()
    qtbot.waitUntil(lambda: "LQ" in viewer.maps["error"], timeout=30_000)
    lq, gt = pair_window.session.lq.image.data, pair_window.session.gt.image.data
    pred_n, ref_n, _ = normalize_pair(prediction=lq, reference=gt)
    np.testing.assert_allclose(viewer.panel("LQ").displayed, np.abs(pred_n - ref_n), rtol=1e-5, atol=1e-6)
    assert "error map" in viewer.panel("LQ").title_text
    assert viewer.panel("LQ").levels == viewer.panel("half").levels  # one common scale
    viewer.error_button.click()
    assert viewer.panel("LQ").displayed is viewer.panel("LQ").plane


def test_consistency_map_uses_the_psf_of_the_deconvolve_panel(qtbot, pair_window):
    from decongan.engine.evaluate.consistency import data_consistency

    pair_window.data_panel.pixel_spin.setValue(0.015)
    panel = pair_window.deconvolve_panel
    panel.wavelength_spin.setValue(640.0)
    panel.size_spin.setValue(33)
    panel.update_psf()
    viewer = pair_window.viewer
    viewer.consistency_button.click()
    qtbot.waitUntil(lambda: "GT" in viewer.maps["consistency"], timeout=60_000)
    wait_idle(qtbot, pair_window)
    expected = data_consistency(restored=pair_window.session.gt.image.data, lq=pair_window.session.lq.image.data,
                                psf=panel.build_psf())
    # the map on screen is the exported figure's: the normalised residual z on the fixed -5..+5 scale
    np.testing.assert_allclose(viewer.panel("GT").displayed, expected.zmap, rtol=1e-5, atol=1e-5)
    assert viewer.panel("GT").levels == (-5.0, 5.0)
    title = viewer.panel("GT").title_text
    assert f"flagged {100 * expected.flagged.mean():.2f} %" in title  # the number matches the outlines
    assert viewer.panel("GT").overlay.isVisible() == bool(expected.flagged.any())
    assert viewer.colour_bar.isVisible() and viewer.colour_bar.title == "normalised residual z"
    assert "flagged" in pair_window.statusBar().currentMessage()


@pytest.mark.slow
def test_z_navigation_and_maps_of_a_real_stack(qtbot, window, shared_data):
    """Widefield vs confocal z-stacks (45 planes): z navigation, and the error map of the plane on screen."""
    from decongan.engine.metrics import normalize_pair

    folder = shared_data / "neubias_widefield_vs_confocal_3d"
    window.open_paths([folder / "lq" / "nucleus_widefield.tif"])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    window.open_ground_truth(folder / "hq" / "nucleus_confocal.tif")
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    viewer = window.viewer
    spin = viewer.nav_spins["z"]
    assert not spin.isHidden() and spin.maximum() == 44
    spin.setValue(20)
    lq, gt = window.session.lq.image, window.session.gt.image
    np.testing.assert_array_equal(viewer.panel("LQ").plane, lq.data[20])
    np.testing.assert_array_equal(viewer.panel("GT").plane, gt.data[20])
    info = viewer.show_readout(64.5, 70.5)
    assert info["values"]["GT"] == float(gt.data[20, 64, 70])
    assert info["x_um"] == pytest.approx(70.5 * lq.pixel_size_um)
    viewer.error_button.click()
    qtbot.waitUntil(lambda: "LQ" in viewer.maps["error"], timeout=120_000)
    pred_n, ref_n, _ = normalize_pair(prediction=lq.data.astype(np.float32), reference=gt.data.astype(np.float32))  # whole volume
    expected = np.abs(pred_n - ref_n)
    np.testing.assert_allclose(viewer.panel("LQ").displayed, expected[20], rtol=1e-6)
    spin.setValue(30)  # another plane: the same evaluation, sliced again (nothing recomputed)
    evaluation = window.evaluation
    np.testing.assert_allclose(viewer.panel("LQ").displayed, expected[30], rtol=1e-6)
    assert window.evaluation is evaluation
