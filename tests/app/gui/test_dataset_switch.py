"""Nothing of one dataset reaches the next through the window's doors: report, batch, metrics, a GAN
layer's calibration (issue 13 item 1; the Deconvolve panel, readout and Data panel are in test_session_state)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.app.gui.conftest import open_field, wait_idle


@pytest.mark.slow
def test_after_the_nucleus_the_fmd_dataset_starts_clean_everywhere(qtbot, window, shared_data):
    from decongan.app.gui.session import Layer

    window.open_sample()
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)
    window.data_panel.pixel_spin.setValue(0.5119)  # entered by the user for the nucleus
    window.compute_evaluation()
    qtbot.waitUntil(lambda: window.evaluation is not None and not window._evaluation_stale(), timeout=120_000)
    wait_idle(qtbot, window, background=True)
    assert window.metrics.rows["Dataset"] and window.batch_panel.pixel_nm() is None
    window.batch_panel.fill_from_dataset()
    assert window.batch_panel.pixel_nm() == 511.9

    open_field(qtbot, window, shared_data / "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr" / "lq")
    session = window.session
    assert session.pixel_size_um is None and session.pixel_size_override is None
    assert window.metrics.rows["Dataset"] == [] and window.metrics.rows["Current field"] == []
    assert window.evaluations_by_field.keys() <= {"fov01"}
    # the report states what the PSF used: both say unknown, never the nucleus' 511.88 nm
    context = window.export_panel.report_context()
    assert "pixel size unknown: no scale bars, resolution in pixels" in context.assumptions
    assert context.parameters["psf (consistency maps, Deconvolve panel)"]["pixel_nm"] is None
    assert context.parameters["optics (value and source)"]["pixel_nm"] == "unknown"
    window.batch_panel.fill_from_dataset()
    assert window.batch_panel.pixel_nm() is None and "--pixel-nm" not in window.batch_panel.cli_args()

    # a GAN output that comes with its model's 0.5119 µm/px is not calibrated, and the window says so
    lq = session.lq.image
    gan = replace(lq, data=lq.data.astype(np.float32), pixel_size_um=0.5118778700352326)
    session.set_layer(Layer("S1 GAN (nucleus model)", gan, "restored"))
    assert session.layer("S1 GAN (nucleus model)").image.pixel_size_um is None
    notice = window.data_panel.notice.text()
    assert notice.startswith("S1 GAN (nucleus model): its 0.5119 µm/px (from the model or file that made it) is "
                             "not taken over: the pixel size of this dataset is unknown")
    assert window.statusBar().currentMessage() == notice
    window.data_panel.pixel_spin.setValue(0.1)  # entered: the notice is answered
    assert window.data_panel.notice.text() == ""
    assert session.layer("S1 GAN (nucleus model)").image.pixel_size_um == 0.1
