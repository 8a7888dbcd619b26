"""The viewer's "Split-half map" toggle: the Predict panel's GAN is rerun on two photon halves in a worker, and the
map's flagged fraction is the engine's (split_half_image, same seed); a layer loaded from a file keeps its panel
and says why it has no map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decongan.app.gui.split_half_analysis import WINDOW_SEED
from decongan.engine.evaluate.trust_maps import split_half_image
from decongan.engine.io import read_image, write_tiff
from decongan.resources import resource_path
from tests.app.gui.conftest import wait_idle

MODEL = Path(resource_path("models", "s1_neubias_nucleus"))


@pytest.mark.slow  # the GAN three times on a 130 x 133 plane + the window's comparison (~15 s on 2 busy cores)
def test_split_half_toggle_shows_the_engines_map_and_names_what_it_cannot_rerun(qtbot, window, tmp_path):
    from decongan.engine.learn.inference import predict_image

    stack = read_image(Path(resource_path("samples")) / "neubias_nucleus" / "lq" / "nucleus_widefield.tif")
    plane = tmp_path / "z18.tif"
    write_tiff(plane, stack.select(z=18).data, dtype="uint16", pixel_size_um=stack.pixel_size_um)
    window.open_paths([plane])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    panel = window.predict_panel
    panel.set_run_dir(MODEL)
    panel.tile_spin.setValue(0)
    panel.device_combo.setCurrentText("cpu")
    panel.run()
    qtbot.waitUntil(lambda: len(window.session.restored) == 1, timeout=120_000)
    gan = window.session.restored[0].name
    loaded = tmp_path / "other_tool.tif"
    write_tiff(loaded, window.session.restored[0].image.data, pixel_size_um=stack.pixel_size_um)
    window.open_method(loaded, "Other tool")
    qtbot.waitUntil(lambda: len(window.session.restored) == 2, timeout=20_000)
    wait_idle(qtbot, window, background=True)

    window.viewer.split_half_button.setChecked(True)
    assert window.viewer.map_mode == "split_half"
    qtbot.waitUntil(lambda: window.split_half is not None
                    and window._split_half_key == window._split_half_inputs_key(), timeout=180_000)
    wait_idle(qtbot, window, background=True)

    def engine_gan(image):
        return predict_image(MODEL, image, tile=0, overlap=panel.overlap_spin.value(), device="cpu")

    expected = split_half_image(read_image(plane), engine_gan, name=gan, seed=WINDOW_SEED)[0]
    result = window.split_half.results[gan][0]
    assert result.flagged_fraction == pytest.approx(expected.flagged_fraction, abs=1e-12)
    np.testing.assert_allclose(result.zmap, expected.zmap, atol=1e-5)
    titles = {p.layer.name: p.title.toPlainText() for p in window.viewer.panels}
    whole = window.viewer.split_half_flagged[gan][2]
    assert whole == expected.flagged_fraction
    assert f"[split-half map]\nflagged {100 * whole:.2f} %" in titles[gan]
    np.testing.assert_array_equal(window.viewer.maps["split_half"][gan], expected.zmap)
    assert "Other tool" not in window.viewer.maps["split_half"]
    assert titles["Other tool"].endswith("[no map: loaded from a file, its method cannot be rerun on photon halves]")
    assert "Other tool: no map (loaded from a file" in window.statusBar().currentMessage()
    # the number also goes into the metrics table (the comparison's column), for the GAN only; the table is
    # refreshed by the window's evaluation after the map, so wait for its row (CI saw it a moment late)
    def table_rows():
        return {r["method"]: r for r in window.metrics.rows.get("Current field", [])}

    qtbot.waitUntil(lambda: table_rows().get(gan, {}).get("sh_flagged_fraction") is not None, timeout=60_000)
    rows = table_rows()
    assert rows[gan]["sh_flagged_fraction"] == expected.flagged_fraction
    assert rows["Other tool"].get("sh_flagged_fraction") is None

    window.viewer.consistency_button.setChecked(True)  # the toggles exclude each other, as error/consistency do
    assert window.viewer.map_mode == "consistency" and not window.viewer.split_half_button.isChecked()


@pytest.mark.slow  # RL three times on a 130 x 133 plane + the window's comparison (~10 s on 2 busy cores)
def test_split_half_reruns_the_deconvolve_panels_rl_exactly(qtbot, window, tmp_path):
    from decongan.engine.optics.deconvolution import deconvolve_image
    from decongan.engine.optics.request import Optics, psf_for_grid

    stack = read_image(Path(resource_path("samples")) / "neubias_nucleus" / "lq" / "nucleus_widefield.tif")
    plane = tmp_path / "z22.tif"
    write_tiff(plane, stack.select(z=22).data, dtype="uint16", pixel_size_um=stack.pixel_size_um)
    window.open_paths([plane])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    panel = window.deconvolve_panel
    panel.na_spin.setValue(1.4)
    panel.wavelength_spin.setValue(520.0)
    panel.iterations_spin.setValue(6)
    panel.edges_combo.setCurrentText("padded")
    panel.device_combo.setCurrentText("cpu")
    panel.run()
    qtbot.waitUntil(lambda: window.session.layer("RL 6 it (engine)") is not None, timeout=60_000)
    wait_idle(qtbot, window, background=True)
    window.viewer.split_half_button.setChecked(True)
    qtbot.waitUntil(lambda: window.split_half is not None
                    and window._split_half_key == window._split_half_inputs_key(), timeout=120_000)

    optics = Optics(na=1.4, ni=panel.ni_spin.value(), wavelength_nm=520.0, pixel_nm=1000 * stack.pixel_size_um)
    psf = psf_for_grid(optics, yx_shape=window.session.lq.image.yx_shape)
    expected = split_half_image(read_image(plane), lambda im: deconvolve_image(im, psf, iterations=6, edges="padded",
                                                                               device="cpu"), seed=WINDOW_SEED)[0]
    result = window.split_half.results["RL 6 it (engine)"][0]
    assert result.flagged_fraction == pytest.approx(expected.flagged_fraction, abs=1e-12)
    np.testing.assert_allclose(result.zmap, expected.zmap, atol=1e-5)
    assert window.split_half.missing == {}
