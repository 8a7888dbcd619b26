"""Metrics table headers: names with units and tooltips from the engine glossary, and for stacks where each
metric is measured (whole stack vs the focus plane), with the viewer's plane named when it is another."""

from __future__ import annotations

from decongan.app.gui.metrics_table import MetricsTable

ROW = {"image": "nucleus", "method": "RL 10 it (engine)", "role": "restored", "backend": "engine/cpu", "channel": 0,
       "ssim": 0.81, "psnr": 26.1, "cuf": 0.031, "snr": 67.9, "dc_flagged_fraction": 0.0, "dc_rsp": 0.9999,
       "dc_chi_rms": 0.129}


def test_headers_are_named_with_units_and_tooltips_for_a_2d_field(qtbot):
    table = MetricsTable()
    qtbot.addWidget(table)
    table.set_rows([ROW], "Current field")
    headers = table.headers()
    assert headers[:2] == ["image", "method"]
    assert "PSNR (dB)" in headers and "CUF (cycles/px)" in headers and "RSP (consistency)" in headers
    assert not {"cuf", "dc_rsp", "dc_chi_rms", "psnr"} & set(headers)  # no raw keys
    assert not any("stack" in h or "plane" in h for h in headers)  # a 2-D field has one scope
    assert table.tooltip("dc_rsp").startswith("resolution-scaled Pearson (RSP): ")
    assert "Lower is better." in table.tooltip("dc_chi_rms")
    assert table.displayed_rows()[0][headers.index("SSIM")] == "0.81"


def test_a_stack_says_whole_stack_or_the_focus_plane_and_names_the_viewer_plane(qtbot):
    table = MetricsTable()
    qtbot.addWidget(table)
    table.set_rows([{**ROW, "z_plane": 19}], "Current field", note="nucleus")
    headers = table.headers()
    assert "SSIM · whole stack" in headers and "RSP (consistency) · whole stack" in headers
    assert "CUF (cycles/px) · plane z19" in headers and "SNR · plane z19" in headers
    assert "focus plane z" in headers
    assert "Measured on plane z19 only" in table.tooltip("cuf")
    assert "plane z19" in table.note.text() and "viewer" not in table.note.text()
    table.set_viewer_plane(22)
    assert "The viewer shows plane z22." in table.note.text()
    table.set_viewer_plane(19)
    assert "viewer" not in table.note.text()
    table.sort_by("ssim")  # sorting still goes by the column's key
