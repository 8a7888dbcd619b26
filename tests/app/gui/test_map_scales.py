"""Consistency maps on screen: the exported figure's LUT and scale, a colour bar, and flagged outlines whose
fraction is the number shown (a planted, unsupported structure is outlined and counted)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tests.app.gui.conftest import wait_idle
from tests.app.gui.test_viewer import PAIR


def test_planted_structure_is_outlined_and_its_flagged_fraction_is_the_one_shown(qtbot, window, tagan):
    import matplotlib

    from decongan.app.gui.session import Layer
    from decongan.app.gui.viewer.maps import outline_rgba

    window.open_paths([tagan / "lq" / PAIR])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    lq = window.session.lq.image
    data = np.asarray(lq.data, dtype=np.float32)
    spots = np.zeros_like(data)
    for y, x in ((120, 140), (300, 380), (420, 90)):  # bright blobs where the input shows nothing of the kind
        spots[y, x] = 1.0
    spots = ndimage.gaussian_filter(spots, 3.0)
    planted = data + spots / spots.max() * float(np.percentile(data, 99.9)) * 3
    window.session.set_layer(Layer("planted", lq.with_data(planted.astype(np.float32)), "restored"))
    window.data_panel.pixel_spin.setValue(0.015)
    decon = window.deconvolve_panel
    decon.wavelength_spin.setValue(640.0)
    decon.size_spin.setValue(33)
    decon.update_psf()
    viewer = window.viewer
    assert not viewer.colour_bar.isVisible()  # images: no map scale
    viewer.consistency_button.click()
    qtbot.waitUntil(lambda: "planted" in viewer.maps["consistency"] and "planted" in viewer.flagged, timeout=90_000)
    wait_idle(qtbot, window, background=True)

    result = window.evaluation.evaluation.consistency[("planted", 0)]
    fraction = result.scores["flagged_fraction"]
    assert fraction > 0 and all(result.flagged[y, x] for y, x in ((120, 140), (300, 380), (420, 90)))
    panel = viewer.panel("planted")
    assert f"flagged {100 * fraction:.2f} %" in panel.title_text and "overall" not in panel.title_text  # 2-D: one
    assert f"planted: {100 * fraction:.2f}% flagged" in window.statusBar().currentMessage()
    assert panel.overlay.isVisible()
    np.testing.assert_array_equal(panel.overlay.image, outline_rgba(result.flagged))  # outlines = the flagged map
    drawn = panel.overlay.image[..., 3] > 0
    assert drawn.any() and not (drawn & ~result.flagged).any()

    # the screen's LUT and scale are the exported consistency figure's (PuOr_r, -5..+5) and a colour bar says so
    figure_lut = (matplotlib.colormaps["PuOr_r"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(panel.item.lut, figure_lut)
    assert panel.levels == (-5.0, 5.0)
    assert viewer.colour_bar.isVisible() and viewer.colour_bar.levels == (-5.0, 5.0)
    assert viewer.colour_bar.title == "normalised residual z"
    assert viewer.colour_bar.toolTip().startswith("normalised residual z (input − re-imaged restoration)")

    viewer.consistency_button.click()  # back to the images: no outlines, no map scale
    assert not panel.overlay.isVisible() and not viewer.colour_bar.isVisible()
