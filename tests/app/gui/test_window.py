"""The main window on real data: open a pair, pixel size, recent files, drag and drop, broken files."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from decongan.engine.io import read_image
from tests.app.gui.conftest import PAIR, open_field, wait_idle


def test_open_paired_dataset_shows_lq_and_gt(qtbot, window, tagan):
    open_field(qtbot, window, tagan / "lq", tagan / "hq")
    ds = window.session.dataset
    assert ds.paired and len(ds.fields) == 10 and all(f.hq is not None for f in ds.fields)
    assert [lay.name for lay in window.session.layers] == ["LQ", "GT"]
    assert [p.layer.name for p in window.viewer.panels] == ["LQ", "GT"]
    first = ds.fields[0]
    np.testing.assert_array_equal(window.viewer.panels[0].plane, read_image(first.lq).data)
    np.testing.assert_array_equal(window.viewer.panels[1].plane, read_image(first.hq).data)
    assert window.data_panel.fields.count() == 10


def test_choosing_a_field_loads_its_files(qtbot, window, tagan):
    open_field(qtbot, window, tagan / "lq", tagan / "hq")
    row = next(i for i, f in enumerate(window.session.dataset.fields) if f.lq.name == PAIR)
    window.data_panel.fields.setCurrentRow(row)
    qtbot.waitUntil(lambda: window.session.field is not None and window.session.field.lq.name == PAIR, timeout=20_000)
    assert window.session.lq.image.data.shape == (512, 512)
    assert "synprot" in window.windowTitle()


def test_pixel_size_is_editable_and_shown_in_um(qtbot, window, tagan):
    open_field(qtbot, window, tagan / "lq", tagan / "hq")
    assert window.session.pixel_size_um is None  # these files carry no calibration
    window.data_panel.pixel_spin.setValue(0.015)
    assert window.session.lq.image.pixel_size_um == pytest.approx(0.015)
    assert window.session.gt.image.pixel_size_um == pytest.approx(0.015)  # same grid
    assert window.deconvolve_panel.pixel_spin.value() == pytest.approx(15.0)
    info = window.viewer.show_readout(10.5, 20.5)
    assert info["x"] == 20 and info["y"] == 10
    assert info["x_um"] == pytest.approx(20.5 * 0.015) and info["y_um"] == pytest.approx(10.5 * 0.015)
    lq = window.session.lq.image.data
    assert info["values"]["LQ"] == float(lq[10, 20])
    assert "µm" in window.viewer.readout.text()


def test_recent_files_are_persisted_in_the_settings(qtbot, window, tagan, temporary_settings):
    open_field(qtbot, window, tagan / "lq", tagan / "hq")
    from decongan.app.gui.settings import Settings

    recent = Settings(temporary_settings).recent_files()
    assert recent[0] == str(tagan.resolve())  # lq/ + hq/ of one folder: the folder, which reopens paired
    assert any("Recent" in a.text() for a in window.menuBar().actions()[0].menu().actions())
    assert window.recent_menu.actions()[0].text() == recent[0]
    window.open_paths([tagan / "lq" / PAIR])
    # a new dataset starts without a field (nothing of the previous one is shown meanwhile)
    qtbot.waitUntil(lambda: window.session.field is not None and window.session.field.name == PAIR[:-4],
                    timeout=20_000)
    assert Settings(temporary_settings).recent_files()[:2] == [str((tagan / "lq" / PAIR).resolve()), str(tagan.resolve())]
    window.session.set_dataset(None)
    window.recent_menu.actions()[1].trigger()  # reopen the dataset from the menu
    qtbot.waitUntil(lambda: window.session.dataset is not None and window.session.dataset.paired, timeout=20_000)
    assert window.session.dataset.hq_dir.resolve() == (tagan / "hq").resolve()  # ../shared may be a link


def test_dropping_a_dataset_folder_opens_it_paired(qtbot, window, tagan):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tagan))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.session.gt is not None, timeout=20_000)
    wait_idle(qtbot, window)
    assert window.session.dataset.lq_dir == tagan / "lq" and window.session.dataset.hq_dir == tagan / "hq"


def test_unpaired_folders_give_lq_only_fields(qtbot, window, shared_data):
    unpaired = shared_data / "unpaired_lq_hq"
    window.open_dataset(unpaired / "lq_confocal", unpaired / "hq_sted", False)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    assert not window.session.dataset.paired
    assert window.session.gt is None
    assert "unpaired" in window.data_panel.summary.text()


def test_broken_file_shows_one_error_dialog_and_the_window_keeps_going(qtbot, window, tmp_path, tagan):
    broken = tmp_path / "broken_field.tif"
    good = (tagan / "lq" / PAIR).read_bytes()
    broken.write_bytes(good[: len(good) // 3])  # truncated TIFF
    window.open_paths([broken])
    qtbot.waitUntil(lambda: len(window.errors.history) == 1, timeout=20_000)
    dialog = window.errors.last_dialog
    assert dialog is not None and dialog.isVisible()
    text = dialog.message_label.text()
    assert "broken_field.tif" in text and "truncated" in text
    assert "Traceback" in dialog.details_edit.toPlainText()
    dialog.close()
    # the window still works: open a good file afterwards
    window.open_paths([tagan / "lq" / PAIR])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    assert window.session.lq.image.path.name == PAIR


def test_pairing_by_name_lists_unmatched_files(qtbot, window, tagan, tmp_path):
    import shutil

    for sub, names in (("lq", ("axonal_rings_test0", "axonal_rings_train0")),
                       ("hq", ("axonal_rings_test0", "dendritic_factin_train804"))):
        (tmp_path / sub).mkdir()
        for name in names:
            shutil.copy(tagan / sub / f"{name}.tif", tmp_path / sub / f"{name}.tif")
    dataset = window.open_dataset(tmp_path / "lq", tmp_path / "hq", True)
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)
    assert [(f.name, f.hq is not None) for f in dataset.fields] == [("axonal_rings_test0", True),
                                                                     ("axonal_rings_train0", False)]
    assert sorted(p.name for p in dataset.unmatched) == ["axonal_rings_train0.tif", "dendritic_factin_train804.tif"]
    assert "2 without a partner" in window.data_panel.summary.text()
    assert window.data_panel.fields.item(1).text().endswith("(no HQ)")
    # no common name at all: the engine's pairing error is shown, nothing crashes
    (tmp_path / "other").mkdir()
    shutil.copy(tagan / "hq" / "dendritic_factin_train804.tif", tmp_path / "other" / "x.tif")
    assert window.open_dataset(tmp_path / "lq", tmp_path / "other", True) is None
    assert "matched by file name" in window.errors.history[-1].message
