"""Small widgets on their own: error reports, settings, the metrics table."""

from __future__ import annotations

import csv
import json

import pytest

from decongan.app.gui.error_dialog import ErrorPresenter, describe_error
from decongan.app.gui.metrics_table import MetricsTable
from decongan.app.gui.settings import Settings
from decongan.engine.io import ImageReadError, read_image


def test_image_read_error_names_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "field_07.tif"
    bad.write_bytes(b"this is not a TIFF at all")
    with pytest.raises(ImageReadError) as info:
        read_image(bad)
    report = describe_error(info.value, context="Opening field_07")
    assert report.title == "Cannot read field_07.tif"
    assert report.message.startswith("field_07.tif: ") and "not a TIFF" in report.message
    assert str(bad) in report.details and "Traceback" in report.details


def test_bridge_style_errors_show_their_log_macro_and_java_trace():
    class RemoteError(Exception):  # same attributes as imagej_bridge.errors.RemoteError / MacroError
        def __init__(self):
            super().__init__("java.lang.OutOfMemoryError: Java heap space")
            self.details = "Traceback (worker)\n  ...\njava.lang.OutOfMemoryError: Java heap space\n\tat ij.ImagePlus"
            self.log = "DeconvolutionLab2 started"
            self.macro = 'run("DeconvolutionLab2 Run", "-image file /tmp/a.tif");'

    RemoteError.__module__ = "decongan.imagej_bridge.errors"
    report = describe_error(RemoteError(), context="Deconvolution (Fiji)")
    assert report.title == "Fiji reported an error"
    assert "\tat ij.ImagePlus" in report.details
    assert "DeconvolutionLab2 started" in report.details and "-image file /tmp/a.tif" in report.details


def test_presenter_opens_a_non_blocking_dialog_with_details(qtbot):
    presenter = ErrorPresenter()
    report = presenter.present(ValueError("iterations must be >= 1"), context="Deconvolve")
    dialog = presenter.last_dialog
    qtbot.addWidget(dialog)
    assert dialog.isVisible() and presenter.history == [report]
    assert dialog.message_label.text() == "Deconvolve: iterations must be >= 1"
    assert not dialog.details_edit.isVisible()
    dialog.details_button.click()
    assert dialog.details_edit.isVisible() and "ValueError" in dialog.details_edit.toPlainText()
    dialog.close()


def test_settings_round_trip_through_an_ini_file(tmp_path, monkeypatch):
    path = tmp_path / "s.ini"
    first = Settings(path)
    first.set("fiji/location", "/opt/Fiji.app")
    first.set("predict/tile", 256)
    first.set("viewer/contrast_shared", True)
    image = tmp_path / "a.tif"
    image.write_bytes(b"x")
    first.add_recent(image)
    first.sync()
    again = Settings(path)
    assert again.get("fiji/location") == "/opt/Fiji.app"
    assert again.get("predict/tile") == 256 and isinstance(again.get("predict/tile"), int)
    assert again.get("viewer/contrast_shared") is True
    assert again.recent_files() == [str(image.resolve())]
    image.unlink()
    assert again.recent_files() == []  # vanished files drop out
    # the Fiji bridge reads the same setting without Qt
    from decongan.imagej_bridge.discovery import settings_fiji_dir

    monkeypatch.setenv("DECONGAN_SETTINGS", str(path))
    assert settings_fiji_dir() == "/opt/Fiji.app"


ROWS = [
    {"image": "a", "method": "LQ", "ssim": 0.41, "psnr": 21.5},
    {"image": "a", "method": "RL", "ssim": 0.52, "psnr": 19.0},
    {"image": "a", "method": "GAN", "ssim": 0.6, "psnr": 23.25},
]


def test_metrics_table_sorts_numerically_and_exports(qtbot, tmp_path):
    table = MetricsTable()
    qtbot.addWidget(table)
    table.set_rows(ROWS)
    table.sort_by("psnr", descending=True)
    assert [r[1] for r in table.displayed_rows()] == ["GAN", "LQ", "RL"]
    table.sort_by("ssim")
    assert [r[1] for r in table.displayed_rows()] == ["LQ", "RL", "GAN"]
    out = table.export(tmp_path / "m.csv")
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["LQ", "RL", "GAN"] and float(rows[2]["psnr"]) == 23.25
    data = json.loads(table.export(tmp_path / "m.json").read_text())
    assert data == ROWS
    table.merge_rows([{"image": "b", "method": "LQ", "ssim": 0.3}], "Dataset")
    table.merge_rows([{"image": "b", "method": "LQ", "ssim": 0.35}], "Dataset")
    assert table.rows["Dataset"] == [{"image": "b", "method": "LQ", "ssim": 0.35}]


def test_panels_save_the_cli_command_and_parameters(qtbot, tmp_path, temporary_settings):
    from decongan.app.gui.main import create_application
    from decongan.app.gui.main_window import MainWindow

    create_application()
    window = MainWindow(Settings(temporary_settings))
    qtbot.addWidget(window)
    panel = window.deconvolve_panel
    panel.iterations_spin.setValue(12)
    panel.method_combo.setCurrentText("RL-TV")
    saved = json.loads(panel.save_config(tmp_path / "deconvolve.json").read_text())
    assert saved["command"] == "deconvolve"
    assert saved["argv"][:2] == ["decongan", "deconvolve"] and "--iterations" in saved["argv"]
    assert saved["argv"][saved["argv"].index("--iterations") + 1] == "12"
    assert saved["parameters"]["method"] == "rltv" and saved["parameters"]["psf"]["model"] == "born-wolf"
    # the command parses with the real CLI parser
    from decongan.app.cli import build_parser

    args = build_parser().parse_args(saved["argv"][1:])
    assert args.iterations == 12 and args.method == "rltv" and args.tv_lambda == panel.tv_spin.value()
    window.close()


def test_every_panel_command_is_accepted_by_the_cli_parser(qtbot, tmp_path, temporary_settings):
    from decongan.app.cli import build_parser
    from decongan.app.gui.main import create_application
    from decongan.app.gui.main_window import MainWindow

    create_application()
    window = MainWindow(Settings(temporary_settings))
    qtbot.addWidget(window)
    window.train_panel.width_spin.setValue(8)
    window.train_panel.val_every_spin.setValue(50)
    window.predict_panel.set_run_dir(tmp_path / "run")
    window.batch_panel.in_edit.setText(str(tmp_path / "in"))
    window.batch_panel.out_edit.setText(str(tmp_path / "out"))
    window.export_panel.out_edit.setText(str(tmp_path / "export"))
    parser = build_parser()
    for panel in (window.register_panel, window.deconvolve_panel, window.train_panel, window.predict_panel,
                  window.batch_panel, window.export_panel):
        args = parser.parse_args(panel.cli_args())
        assert args.command == panel.command
    batch = parser.parse_args(window.batch_panel.cli_args())
    assert batch.na == 1.4 and batch.decon == "engine" and batch.iterations == 10
    train = parser.parse_args(window.train_panel.cli_args())
    assert train.width == 8 and train.val_every == 50
    window.close()
