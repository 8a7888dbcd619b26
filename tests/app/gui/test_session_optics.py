"""The session holds the engine's typed Optics (issue 10 item 7): sources travel with the values."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def nucleus_field():
    import decongan.resources
    from decongan.app.gui.session import Dataset, FieldOfView, load_field

    path = Path(decongan.resources.__file__).parent / "samples" / "neubias_nucleus" / "lq" / "nucleus_widefield.tif"
    fov = FieldOfView("nucleus", path)
    return Dataset(None, None, False, [fov]), fov, load_field(fov)


def test_the_session_holds_the_engines_optics_with_their_sources(nucleus_field):
    from decongan.app.gui.session import Session
    from decongan.engine.optics.request import Optics, OpticsError

    dataset, fov, layers = nucleus_field
    session = Session()
    session.set_dataset(dataset)
    session.set_field(fov, layers)
    optics = session.optics
    assert isinstance(optics, Optics) and optics.origin == str(fov.lq)
    assert optics.pixel_nm.value == pytest.approx(511.8778700352326) and optics.pixel_nm.source == "metadata"
    assert optics.na.value == 1.4 and optics.na.source == "assumption" and optics.na.note == "DeconGAN GUI default"
    session.set_optic("na", 1.3)
    assert session.optics.na.source == "user"
    # the provenance the engine writes is the session's, sources included
    assert session.optics.provenance()["na"] == {"value": 1.3, "unit": "", "source": "user"}
    assert session.optics.provenance()["ni"]["source"] == "assumption"

    # an impossible objective is refused by the engine's Optics, naming the file; nothing changes
    with pytest.raises(OpticsError, match=r"nucleus_widefield\.tif: NA 1\.6 \(user\) must be smaller than the "
                                          r"immersion index ni 1\.515 \(assumption\)"):
        session.set_optic("na", 1.6)
    assert session.optics.na.value == 1.3

    # the user's NA survives the next field of the dataset; the assumption does not become the user's
    session.set_field(fov, layers)
    assert session.optics.na.value == 1.3 and session.optics.na.source == "user"
    assert session.optics.ni.source == "assumption"
    session.set_pixel_size(0.1)
    assert session.optics.pixel_nm.value == pytest.approx(100.0) and session.optics.pixel_nm.source == "user"
    session.set_pixel_size(None)
    assert not session.optics.pixel_nm.known


def test_the_panel_shows_a_refused_optic_and_keeps_the_sessions_value(qtbot, window):
    panel = window.deconvolve_panel
    panel.na_spin.setValue(1.2)
    panel.ni_spin.setValue(1.33)  # water
    assert window.session.optics.ni.value == pytest.approx(1.33) and window.session.optics.na.value == 1.2
    panel.na_spin.setValue(1.4)  # no water objective has NA 1.4: refused, the field shows the session's 1.2
    assert window.session.optics.na.value == pytest.approx(1.2)
    assert panel.na_spin.value() == pytest.approx(1.2)
    assert "NA 1.4 (user) must be smaller than the immersion index ni 1.33 (user)" in panel.psf_info.text()
