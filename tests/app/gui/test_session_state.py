"""Per-dataset state lives in the session: nothing leaks from one dataset to the next (issue 13 item 1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.app.gui.conftest import PAIR, open_field, wait_idle

#: the bundled NEUBIAS nucleus (widefield lq/, confocal hq/): 0.5118778700352326 µm pixels in its metadata
NUCLEUS_PIXEL_NM = 511.8778700352326


@pytest.fixture
def nucleus() -> Path:
    import decongan.resources

    return Path(decongan.resources.__file__).parent / "samples" / "neubias_nucleus"


def open_nucleus(qtbot, window, nucleus: Path) -> None:
    """The widefield nucleus as LQ, the confocal one as its GT (the files' names differ: no name pairing)."""
    open_field(qtbot, window, nucleus / "lq")
    window.open_ground_truth(nucleus / "hq" / "nucleus_confocal.tif")
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)


@pytest.fixture
def fmd(shared_data) -> Path:
    """FMD confocal nuclei (PNG: no calibration at all)."""
    return shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"


def test_pixel_size_of_the_previous_dataset_never_reaches_the_next_one(qtbot, window, nucleus, fmd):
    from decongan.app.gui.session import Layer

    open_nucleus(qtbot, window, nucleus)
    panel = window.deconvolve_panel
    assert panel.pixel_spin.value() == pytest.approx(NUCLEUS_PIXEL_NM, abs=0.01)
    assert window.session.pixel_size_um == pytest.approx(NUCLEUS_PIXEL_NM / 1000)

    open_field(qtbot, window, fmd / "lq")
    assert window.session.lq.image.path.name == "fov01.png"
    assert window.session.pixel_size_um is None
    assert panel.pixel_spin.value() == panel.pixel_spin.minimum() and panel.pixel_spin.text() == "unknown"
    assert window.data_panel.pixel_spin.text() == "unknown"
    assert not window.session.optics.pixel_nm.known and window.session.optics.pixel_nm.source is None
    from decongan.engine.optics.request import OpticsError

    optics = window.session.optics_request()  # the engine's typed optics: unknown stays unknown
    assert not optics.pixel_nm.known and optics.na.value == 1.4 and optics.na.source == "assumption"
    with pytest.raises(OpticsError, match=r"fov01\.png: a Born & Wolf PSF needs the lateral pixel size"):
        optics.require("na", "ni", "wavelength_nm", "pixel_nm")
    assert window.session.psf_parameters()["pixel_nm"] is None
    assert window.evaluations_by_field.keys() <= {"fov01"}  # the nucleus' evaluations are gone

    panel.iterations_spin.setValue(1)
    panel.device_combo.setCurrentText("cpu")
    panel.run()  # refuses before computing, saying which file and where to enter the pixel size
    wait_idle(qtbot, window)
    assert [lay.name for lay in window.session.layers] == ["LQ"]
    assert window.errors.history[-1].message == (
        "the pixel size of fov01.png is unknown (its file has no calibration): enter it in Pixel size "
        "(Deconvolve or Data panel), or choose a PSF file")
    assert "--pixel-nm PIXEL_NM" in panel.command_edit.text()  # a placeholder, never the nucleus' 511.88

    # a GAN output on this grid does not bring its training pixel size along
    lq = window.session.lq.image
    window.session.set_layer(Layer("S1 GAN (run)", replace(lq, data=lq.data.astype(np.float32),
                                                          pixel_size_um=0.5118778700352326), "restored"))
    assert window.session.layer("S1 GAN (run)").image.pixel_size_um is None

    # entering the pixel size makes the panel's PSF (and the deconvolution) use it
    window.data_panel.pixel_spin.setValue(0.1)
    assert panel.pixel_spin.value() == pytest.approx(100.0)
    assert window.session.optics.pixel_nm.source == "user"
    assert panel.psf_parameters()["pixel_nm"] == pytest.approx(100.0)


def test_an_evaluation_is_not_served_for_a_new_image_in_a_reused_array(qtbot, window, tagan):
    """The cache keys on layer versions: an array object reused for other pixels (as ``id()`` values are
    after garbage collection) gives a new evaluation, not the cached one."""
    from decongan.app.gui.session import LQ_ROLE, Layer

    open_field(qtbot, window, tagan / "lq", tagan / "hq")
    job = window.compute_evaluation()
    assert job is not None
    wait_idle(qtbot, window, background=True)
    before = window.evaluation
    lq_row = next(r for r in before.rows if r["method"] == "LQ (input)")

    lq = window.session.lq.image
    data = lq.data
    data[...] = window.session.gt.image.data.astype(data.dtype)  # same array object, the GT's pixels
    window.session.set_layer(Layer("LQ", replace(lq, data=data), LQ_ROLE))
    assert id(window.session.lq.image.data) == id(data)
    job = window.compute_evaluation()
    assert job is not None  # not served from the cache
    wait_idle(qtbot, window, background=True)
    after = window.evaluation
    assert after is not before
    new_row = next(r for r in after.rows if r["method"] == "LQ (input)")
    assert new_row["ssim"] == pytest.approx(1.0, abs=1e-6) and lq_row["ssim"] < 0.9
    assert window.compute_evaluation() is None  # the same inputs again: the cached evaluation


def test_cursor_readout_names_only_the_new_datasets_layers(qtbot, window, nucleus, fmd):
    open_nucleus(qtbot, window, nucleus)
    info = window.viewer.show_readout(10.5, 20.5)
    assert list(info["values"]) == ["LQ", "GT"]
    assert "GT:" in window.viewer.readout.text()

    open_field(qtbot, window, fmd / "lq")
    assert "GT" not in window.viewer.readout.text() and "LQ:" not in window.viewer.readout.text()
    info = window.viewer.show_readout(10.5, 20.5)
    assert list(info["values"]) == ["LQ"]
    assert info["x_um"] is None  # no calibration: positions in pixels only
    assert window.viewer.readout.text().startswith("x 20, y 10 px")


def test_data_panel_counts_a_ground_truth_opened_for_the_field(qtbot, window, tagan):
    window.open_paths([tagan / "lq" / PAIR])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    assert window.data_panel.summary.text() == "1 field (LQ only)"

    window.open_ground_truth(tagan / "hq" / PAIR)
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)
    assert window.data_panel.summary.text() == "1 field (LQ + GT)"
    assert window.session.field.hq == tagan / "hq" / PAIR
    assert window.data_panel.fields.currentItem().text() == window.session.field.name


def test_optics_sources_reset_with_the_dataset_and_a_3d_psf_without_z_step_is_explained(nucleus):
    from decongan.app.gui import analysis
    from decongan.app.gui.session import Dataset, Session, load_field
    from decongan.app.gui.session import FieldOfView as Fov
    from decongan.engine.progress import drain

    session = Session()
    fov = Fov("nucleus", nucleus / "lq" / "nucleus_widefield.tif")
    session.set_dataset(Dataset(None, None, False, [fov]))
    session.set_field(fov, load_field(fov))
    session.set_optic("na", 1.3)
    assert session.optics_sources() == {"na": "1.3 (user)", "ni": "1.515 (assumption)",
                                        "wavelength_nm": "520 (assumption)",
                                        "pixel_nm": f"{NUCLEUS_PIXEL_NM:g} (file metadata)",
                                        "z_step_nm": f"{499.4126016284111:g} (file metadata)"}
    session.set_dataset(Dataset(None, None, False, []))
    assert session.optics_sources()["pixel_nm"] == "unknown" and session.optics_sources()["na"] == "1.4 (assumption)"

    lq = load_field(fov)[0].image.select(z=20)  # a plane: the evaluation's grid is 2-D
    lq.pixel_size_um = 0.5
    session.set_psf_choice({"model": "gaussian", "size": 9, "nz": 5, "fwhm_nm": 300.0, "fwhm_z_nm": 900.0})
    params = session.psf_parameters()
    assert params["nz"] == 5 and params["z_step_nm"] is None
    result = drain(analysis.evaluate_field("nucleus", ("LQ", lq), gt=None, restored={
        "copy": (lq, None)}, psf_parameters=params))
    assert result.psf_note == ("z step unknown: set it (Deconvolve panel) to compute the data-consistency maps "
                               "with a 3-D PSF")
