"""bioimage.io packages through the window: the Predict panel runs an exported package like ``decongan predict
PACKAGE IMG``, checks the image against the package's declared pixel size, refuses an unsupported package with the
engine's message before running, and the Batch panel restores a folder with a package."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from tests.app.gui.conftest import PAIR, wait_idle

pytest.importorskip("bioimageio.core", reason="the optional extra 'bioimageio' is not installed")
from ruyaml import YAML  # noqa: E402 (bioimageio.spec's YAML library, present with the extra)


@pytest.fixture(scope="module")
def tiny_package(tiny_run, tmp_path_factory):
    """The session's tiny S1 run exported as a bioimage.io package (TorchScript weights, tested on export)."""
    from decongan.engine.learn.bioimageio_export import export_bioimageio

    out = tmp_path_factory.mktemp("package") / "tiny.zip"
    export_bioimageio(tiny_run, out, authors=["DeconGAN tests"], torchscript_only=True)
    return out


def _unpacked(package, folder, edit):
    """The package unpacked into ``folder`` with its rdf.yaml changed by ``edit(rdf)``; returns the yaml's path."""
    with zipfile.ZipFile(package) as z:
        z.extractall(folder)
    rdf_path = next(p for p in folder.iterdir() if p.name in ("rdf.yaml", "bioimageio.yaml"))
    yaml = YAML(typ="safe")
    rdf = yaml.load(rdf_path.read_text())
    edit(rdf)
    yaml.dump(rdf, rdf_path)
    return rdf_path


def _open_pair(qtbot, window, tagan):
    window.open_paths([tagan / "lq" / PAIR])
    qtbot.waitUntil(lambda: window.session.lq is not None, timeout=20_000)
    wait_idle(qtbot, window)


@pytest.mark.slow  # the tiny package is exported once (bioimageio.core's test included): ~30 s
def test_predict_panel_runs_a_package_like_the_cli(qtbot, window, tagan, tiny_package, tmp_path, capsys):
    from decongan.app.cli import main
    from decongan.engine.io import read_image

    _open_pair(qtbot, window, tagan)
    panel = window.predict_panel
    panel.set_run_dir(tiny_package)
    info = panel.model_info.text()
    assert "bioimage.io package <b>DeconGAN S1 run</b>" in info and "tiny.zip" in info
    assert "no pixel size declared" in info  # the tiny run records none, so the package declares none
    assert not panel.which_combo.isEnabled() and not panel.overlap_spin.isEnabled()
    panel.tile_spin.setValue(128)
    panel.device_combo.setCurrentText("cpu")
    assert "--overlap" not in panel.cli_args() and panel.cli_args()[:2] == ["predict", str(tiny_package)]
    panel.run()
    qtbot.waitUntil(lambda: len(window.session.restored) == 1, timeout=120_000)
    layer = window.session.restored[0]
    assert layer.name == "DeconGAN S1 run (tiny.zip)"
    assert layer.provenance.backend == "bioimageio/torchscript" and layer.provenance.parameters["tile"] >= 128
    assert "declares no pixel size" in panel.domain_info.text()

    out = tmp_path / "cli"
    assert main(["predict", str(tiny_package), str(tagan / "lq" / PAIR), "--out", str(out), "--tile", "128",
                 "--device", "cpu"]) == 0
    expected = read_image(out / f"{PAIR[:-4]}_bioimageio.tif").data
    assert layer.image.data.shape == expected.shape
    span = float(expected.max() - expected.min())
    assert span > 0 and float(np.abs(layer.image.data - expected).max()) <= 1e-4 * span
    capsys.readouterr()


@pytest.mark.slow  # the tiny package is exported once (bioimageio.core's test included): ~30 s
def test_the_image_is_checked_against_the_packages_declared_pixel_size(qtbot, window, tagan, tiny_package, tmp_path,
                                                                       monkeypatch):
    def declare_half_a_micrometre(rdf):
        for tensor in (*rdf["inputs"], *rdf["outputs"]):
            for axis in tensor["axes"]:
                if axis.get("id") in ("y", "x"):
                    axis["scale"], axis["unit"] = 0.5, "micrometer"

    rdf_path = _unpacked(tiny_package, tmp_path / "unpacked", declare_half_a_micrometre)
    _open_pair(qtbot, window, tagan)
    panel = window.predict_panel
    panel.set_run_dir(rdf_path)
    assert "pixel size 0.5 µm/px (its input axes' scale)" in panel.model_info.text()
    window.data_panel.pixel_spin.setValue(0.03)
    asked: list[list[str]] = []
    monkeypatch.setattr(panel, "ask_predict_anyway", lambda warnings: asked.append(warnings) or False)
    panel.run()
    assert panel.job is None and not window.session.restored  # asked, cancelled: nothing predicted
    assert asked == [["pixel size 0.03 um is 0.06x the package's declared pixel size 0.5 um (outside 0.8-1.25x): "
                      "the objects' size in pixels differs from what the model was made for"]]
    assert "Unlike the package's declared pixel size" in panel.domain_info.text()
    window.data_panel.pixel_spin.setValue(0.52)
    check = panel.check_domain(rdf_path, window.session.lq.image)
    assert check.warnings == [] and check.measurements["pixel_size_ratio"] == pytest.approx(1.04)
    assert "differs from the package's 0.5 um by 4 %" in panel.domain_info.text()


@pytest.mark.slow  # the tiny package is exported once (bioimageio.core's test included): ~30 s
def test_an_unsupported_package_is_refused_in_the_panel_before_running(qtbot, window, tagan, tiny_package, tmp_path):
    def onnx_only(rdf):
        weights = rdf["weights"].pop("torchscript")
        rdf["weights"]["onnx"] = {"source": weights["source"], "sha256": weights.get("sha256"), "opset_version": 15}
        if rdf["weights"]["onnx"]["sha256"] is None:
            del rdf["weights"]["onnx"]["sha256"]

    rdf_path = _unpacked(tiny_package, tmp_path / "onnx", onnx_only)
    refusal = f"{rdf_path}: has weights onnx; DeconGAN runs TorchScript weights"
    _open_pair(qtbot, window, tagan)
    panel = window.predict_panel
    panel.set_run_dir(rdf_path)
    assert refusal in panel.model_info.text()
    panel.run()
    assert panel.job is None and not window.session.restored
    assert refusal in window.errors.history[-1].message
    assert refusal in panel.domain_info.text()

    batch = window.batch_panel
    batch.in_edit.setText(str(tagan / "lq"))
    batch.out_edit.setText(str(tmp_path / "out"))
    batch.model_edit.setText(str(rdf_path))
    assert refusal in batch.model_info.text()
    assert batch.start_batch() is None and batch.process is None and not (tmp_path / "out").exists()


@pytest.mark.slow  # the tiny package is exported once (bioimageio.core's test included): ~30 s
def test_batch_panel_restores_a_folder_with_a_package(qtbot, window, tagan, tiny_package, tmp_path):
    from decongan.engine.io import read_image
    from decongan.engine.learn.bioimageio_run import predict_bioimageio

    names = ("axonal_rings_test0", "dendritic_factin_train804")
    (tmp_path / "lq").mkdir()
    for name in names:
        shutil.copy(tagan / "lq" / f"{name}.tif", tmp_path / "lq" / f"{name}.tif")
    panel = window.batch_panel
    panel.in_edit.setText(str(tmp_path / "lq"))
    out = tmp_path / "out"
    panel.out_edit.setText(str(out))
    panel.decon_combo.setCurrentText("none")
    panel.consistency_combo.setCurrentText("off")
    window.predict_panel.tile_spin.setValue(0)
    panel.model_edit.setText(str(tiny_package))
    assert "bioimage.io package DeconGAN S1 run (tiny.zip" in panel.model_info.text()
    args = panel.cli_args()
    assert args[args.index("--model") + 1] == str(tiny_package) and "--which" not in args and "--overlap" not in args
    with qtbot.waitSignal(panel.finished, timeout=300_000) as blocker:
        panel.start_batch()
    assert blocker.args == ["succeeded"], panel.status.text()
    manifest = json.loads((out / "manifest.json").read_text())
    entries = list(manifest["entries"].values())
    assert len(entries) == 2 and {e["status"] for e in entries} == {"done"}
    for entry in entries:
        source = read_image(entry["input"])
        expected, _ = predict_bioimageio(tiny_package, source, tile=0)
        got = read_image(out / entry["output"]).data  # the manifest names outputs relative to OUT
        span = float(expected.data.max() - expected.data.min())
        assert float(np.abs(got - expected.data).max()) <= 1e-4 * span


@pytest.mark.parametrize(("choice", "dialog"), [("folder", "getExistingDirectory"), ("package", "getOpenFileName")])
def test_browse_offers_a_run_folder_or_a_package_file(qtbot, window, monkeypatch, tmp_path, choice, dialog):
    from PySide6.QtWidgets import QFileDialog

    asked = []
    chosen = str(tmp_path / ("run" if choice == "folder" else "model.zip"))

    def fake_dialog(*args):
        asked.append(args)
        return chosen if dialog == "getExistingDirectory" else (chosen, "")

    monkeypatch.setattr(QFileDialog, dialog, fake_dialog)
    for edit in (window.predict_panel.run_edit, window.batch_panel.model_edit):
        monkeypatch.setattr(edit, "ask_kind", lambda: choice)  # the menu's answer
        edit.browse()
        assert edit.text() == chosen
    assert len(asked) == 2
    if dialog == "getOpenFileName":  # the file dialog lists packages: zips and unpacked descriptions
        assert all("*.zip" in a[3] and "rdf.yaml" in a[3] and "bioimageio.yaml" in a[3] for a in asked)
