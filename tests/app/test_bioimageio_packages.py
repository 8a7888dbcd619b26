"""bioimage.io packages out and in: tiny S1 and S2 runs on FMD are exported, pass bioimageio.core's own test,
and run back through ``decongan predict`` with the run folder's output."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
import tifffile

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.fmd_pairs import FMD, TINY_S1_CLI, write_fmd_pairs

pytest.importorskip("bioimageio.core", reason="the optional extra 'bioimageio' is not installed")
from ruyaml import YAML  # noqa: E402 (bioimageio.spec's YAML library, present with the extra)

TINY_S2_CLI = ["--width", "4", "--model-arg", "unet_depth=2", "--model-arg", "num_groups=1",
               "--model-arg", "blocks_per_group=1", "--model-arg", "dfcan_features=8", "--disc-arg", "num_blocks=2",
               "--patch-size", "32", "--batch-size", "2", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("bioimageio")
    lq, hq = write_fmd_pairs(shared_data, root, start=160, size=128)
    out = {}
    for preset, options in (("s1", TINY_S1_CLI), ("s2", TINY_S2_CLI)):
        run = root / f"run_{preset}"
        assert main(["train", "--preset", preset, "--lq", str(lq), "--hq", str(hq), "--out", str(run), "--iterations",
                     "2", "--val-every", "2", "--log-every", "1", "--val-names", "fov03", *options]) == 0
        out[preset] = run
    return root, out


@pytest.fixture(scope="module")
def packages(runs):
    root, run_dirs = runs
    zips = {}
    for preset, run in run_dirs.items():
        zips[preset] = root / f"{preset}.zip"
        assert main(["export-model", str(run), "--format", "bioimageio", "--out", str(zips[preset]),
                     "--author", "DeconGAN tests"]) == 0
    return zips


def _yaml_load(text):
    return YAML(typ="safe").load(text)


def _yaml_dump(obj, path):
    YAML(typ="safe").dump(obj, path)


def _rdf(path):
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n in ("rdf.yaml", "bioimageio.yaml"))
        return _yaml_load(z.read(name)), set(z.namelist())


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["s1", "s2"])
def test_exported_package_passes_bioimageio_test_and_describes_the_run(packages, runs, preset):
    from decongan.engine.learn.bioimageio_export import check_package

    path = packages[preset]
    assert path.stat().st_size < 30e6
    summary = check_package(path)  # bioimageio.core's own test, independent of the export's
    assert summary.startswith("status: passed"), summary
    for weights in ("pytorch_state_dict", "torchscript"):
        assert f"Reproduce test outputs from test inputs ({weights})" in summary
        for batch in (1, 2):
            assert f"Run {weights} inference for inputs with batch_size: {batch} and size parameter n: 2" in summary

    rdf, files = _rdf(path)
    config = json.loads((runs[1][preset] / "config.json").read_text())
    lq, hq = config["normalization"]["lq"][0], config["normalization"]["hq"][0]
    (inp,), (out,) = rdf["inputs"], rdf["outputs"]
    assert [a.get("id", a["type"]) for a in inp["axes"]] == ["batch", "channel", "y", "x"]
    y_in, y_out = inp["axes"][2], out["axes"][2]
    assert y_in["unit"] == "micrometer" and abs(y_in["scale"] - 0.2) < 1e-9 and y_out["scale"] == y_in["scale"]
    assert y_in["concatenable"] is True
    assert y_in["size"]["min"] % y_in["size"]["step"] == 0 and y_in["size"]["min"] > 2 * y_out["halo"]
    # DeconGAN's normalisation, exactly: LQ percentiles -> 0..1 in, HQ percentiles back out
    pre = [p for p in inp["preprocessing"] if p["id"] == "scale_linear"][0]["kwargs"]
    post = [p for p in out["postprocessing"] if p["id"] == "scale_linear"][0]["kwargs"]
    assert pre["gain"] == pytest.approx(1 / (lq["high"] - lq["low"]), rel=1e-12)
    assert pre["offset"] == pytest.approx(-lq["low"] / (lq["high"] - lq["low"]), rel=1e-12)
    assert post == pytest.approx({"gain": hq["high"] - hq["low"], "offset": hq["low"]}, rel=1e-12)
    assert rdf["weights"]["torchscript"]["parent"] == "pytorch_state_dict"
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]["model_name"] == config["preset"]["generator"]["name"]
    if preset == "s1":  # finite receptive field: the halo is the measured radius rounded up to the stride
        from decongan.engine.learn.inference import load_model, receptive_field_radius

        radius = receptive_field_radius(load_model(runs[1][preset]).generator)
        step = y_in["size"]["step"]
        assert radius <= y_out["halo"] < radius + step and y_out["halo"] % step == 0
    else:
        assert rdf["cite"][0]["doi"] == "10.1186/s43074-022-00077-x"
    assert {"cover.png", "README.md", "test_input.npy", "test_output.npy", "sample_input.tif"} <= files
    with zipfile.ZipFile(path) as z:
        readme = z.read("README.md").decode()
    best = json.loads((runs[1][preset] / "best" / "metrics.json").read_text())["metrics"]
    assert "## Validation" in readme and f"{best['ssim']:.4g}" in readme and "Caveats" in readme


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "tiles"), [("s1", ["0", "64"]), ("s2", ["0"])])
def test_predict_with_the_package_equals_predict_with_the_run(packages, runs, shared_data, tmp_path, capsys, preset,
                                                              tiles):
    image = tmp_path / "field.tif"  # not a multiple of the stride, 16-bit, calibrated as the training data
    write_tiff(image, read_image(shared_data / FMD / "lq" / "fov05.png").data[:150, :130].astype(np.uint16),
               dtype="uint16", pixel_size_um=0.2)
    for tile in tiles:
        run_out, zip_out = tmp_path / f"run{tile}", tmp_path / f"zip{tile}"
        overlap = ["--overlap", "auto"] if tile != "0" else []
        assert main(["predict", str(runs[1][preset]), str(image), "--out", str(run_out), "--tile", tile, *overlap,
                     "--device", "cpu"]) == 0
        assert main(["predict", str(packages[preset]), str(image), "--out", str(zip_out), "--tile", tile,
                     "--device", "cpu"]) == 0
        expected = tifffile.imread(run_out / f"field_{preset}.tif")
        got = read_image(zip_out / "field_bioimageio.tif")
        assert got.data.shape == expected.shape == (150, 130) and got.pixel_size_um == pytest.approx(0.2)
        span = float(expected.max() - expected.min())
        assert float(np.abs(got.data - expected).max()) <= 1e-4 * span
    with tifffile.TiffFile(zip_out / "field_bioimageio.tif") as tif:
        description = json.loads(tif.imagej_metadata["Info"])
    assert description["backend"] == "bioimageio/torchscript" and description["parameters"]["halo"] > 0
    capsys.readouterr()


@pytest.mark.slow
def test_a_foreign_state_dict_architecture_is_refused_before_running(packages, tmp_path, capsys):
    from decongan.engine.learn.bioimageio_run import BioimageioModelError, load_bioimageio_model

    folder = tmp_path / "foreign"
    with zipfile.ZipFile(packages["s1"]) as z:
        z.extractall(folder)
    rdf_path = next(p for p in folder.iterdir() if p.name in ("rdf.yaml", "bioimageio.yaml"))
    rdf = _yaml_load(rdf_path.read_text())
    del rdf["weights"]["torchscript"]
    (folder / "their_unet.py").write_text("def build_generator(model_name, **kwargs):\n    raise SystemExit(3)\n")
    architecture = rdf["weights"]["pytorch_state_dict"]["architecture"]
    architecture["source"] = "their_unet.py"
    architecture.pop("sha256")
    _yaml_dump(rdf, rdf_path)
    with pytest.raises(BioimageioModelError, match=r"architecture \(their_unet.py: build_generator\) is not one of DeconGAN"):
        load_bioimageio_model(rdf_path)
    assert main(["predict", str(rdf_path), str(folder / "sample_input.tif"), "--out", str(tmp_path / "o")]) == 1
    assert "Ask for TorchScript weights" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_export_without_the_validation_images_names_the_folder_and_the_option(runs, tmp_path, capsys):
    run = tmp_path / "moved_run"
    shutil.copytree(runs[1]["s1"], run)
    config = json.loads((run / "config.json").read_text())
    config["data"]["lq_dir"] = str(tmp_path / "gone")
    (run / "config.json").write_text(json.dumps(config))
    out = tmp_path / "m.zip"
    assert main(["export-model", str(run), "--format", "bioimageio", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'gone'} is gone" in err and "--sample-image" in err and not out.exists()
    assert main(["export-model", str(run), "--format", "bioimageio", "--out", str(tmp_path / "m.tar")]) == 1
    assert "a bioimage.io package is a .zip file" in capsys.readouterr().err


def test_pixel_size_is_stored_so_that_bioimageio_size_arithmetic_is_exact():
    from decongan.engine.learn.bioimageio_geometry import PackageGeometry, exact_pixel_size

    assert int(43 * 0.2 / 0.2) == 42  # why: the spec's int(size * in_scale / out_scale) with a decimal pixel size
    for scale in (1, 2, 4):
        geometry = PackageGeometry(step=16, min=64, halo=24, receptive_field=20, scale=scale)
        for pixel in (0.2, 0.159, 0.065, 0.108):
            stored = exact_pixel_size(pixel, geometry)
            assert abs(stored - pixel) < 1e-9
            out = stored / scale
            assert all(int(n * stored / out) == n * scale for n in range(1, 20000))
            assert (geometry.halo * scale) * out / stored == geometry.halo


def test_is_bioimageio_source(tmp_path):
    from decongan.engine.learn.bioimageio_run import is_bioimageio_source

    for name, expected in (("model.zip", True), ("rdf.yaml", True), ("x.bioimageio.yaml", True), ("model.pt", False)):
        (tmp_path / name).write_bytes(b"")
        assert is_bioimageio_source(tmp_path / name) is expected
    assert not is_bioimageio_source(tmp_path) and not is_bioimageio_source(tmp_path / "missing.zip")


@pytest.mark.slow
def test_compare_runs_a_package_on_the_lq_like_predict(packages, runs, tmp_path, capsys):
    root = runs[0]
    out, predicted = tmp_path / "cmp", tmp_path / "pred"
    lq, gt = root / "lq" / "fov03.tif", root / "hq" / "fov03.tif"
    assert main(["compare", "--lq", str(lq), "--gt", str(gt), "--method", f"S1zip={packages['s1']}", "--out", str(out),
                 "--no-noref", "--formats", "png"]) == 0
    assert main(["predict", str(packages["s1"]), str(lq), "--out", str(predicted), "--device", "cpu"]) == 0
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    row = next(r for r in rows if r["method"] == "S1zip")
    assert row["backend"] == "bioimageio/torchscript" and 0 < row["ssim"] < 1
    restored = tifffile.imread(out / "restored" / "fov03__S1zip.tif")
    np.testing.assert_allclose(restored, tifffile.imread(predicted / "fov03_bioimageio.tif"), rtol=0, atol=1e-5)
    capsys.readouterr()


@pytest.mark.slow
def test_bioimageio_core_blocks_equal_the_whole_image_output_away_from_the_border(packages, runs, shared_data):
    """The declared halo (a multiple of the stride) is what a consumer needs: bioimageio.core's own tiled
    prediction equals DeconGAN's whole-image output except within the halo of the image border."""
    from bioimageio.core import load_description, predict

    from decongan.engine.learn.inference import predict_image

    image = read_image(shared_data / FMD / "lq" / "fov05.png")
    image = image.with_data(image.data[:200, :176])
    expected = predict_image(runs[1]["s1"], image, tile=0, device="cpu")[0].data
    model = load_description(str(packages["s1"]))
    halo = model.outputs[0].axes[2].halo
    blocks = predict(model=model, inputs=image.data.astype(np.float32)[None, None], blocksize_parameter=1)
    got = blocks.members["output"].data.squeeze().values
    inner = (slice(halo, -halo), slice(halo, -halo))
    span = float(expected.max() - expected.min())
    assert float(np.abs(got[inner] - expected[inner]).max()) <= 1e-4 * span


@pytest.mark.slow
def test_a_format_0_4_description_runs_like_the_0_5_package(packages, shared_data, tmp_path):
    """A zoo model described in format 0.4 (axes as letters, shape min/step, halo list) runs through the same
    door: bioimageio.spec converts it, and its output equals the 0.5 package's with the same weights."""
    from decongan.engine.learn.bioimageio_run import load_bioimageio_model, predict_bioimageio

    folder = tmp_path / "v04"
    with zipfile.ZipFile(packages["s1"]) as z:
        z.extractall(folder)
    rdf, _ = _rdf(packages["s1"])
    (inp,), (out,) = rdf["inputs"], rdf["outputs"]
    gain_offset = {k: [p for p in inp["preprocessing"] if p["id"] == "scale_linear"][0]["kwargs"][k] for k in ("gain", "offset")}
    post = {k: [p for p in out["postprocessing"] if p["id"] == "scale_linear"][0]["kwargs"][k] for k in ("gain", "offset")}
    size, halo = inp["axes"][2]["size"], out["axes"][2]["halo"]
    _yaml_dump({
        "format_version": "0.4.10", "type": "model", "name": "S1 in format 04", "description": "0.4 description",
        "authors": [{"name": "tests"}], "cite": [{"text": "TCAN", "doi": "10.1186/s43074-022-00077-x"}],
        "license": "CC-BY-4.0", "documentation": "README.md", "tags": ["test"], "timestamp": "2026-01-01T00:00:00",
        "test_inputs": ["test_input.npy"], "test_outputs": ["test_output.npy"],
        "inputs": [{"name": "raw", "axes": "bcyx", "data_type": "float32", "data_range": [float("-inf"), float("inf")],
                    "shape": {"min": [1, 1, size["min"], size["min"]], "step": [0, 0, size["step"], size["step"]]},
                    "preprocessing": [{"name": "scale_linear", "kwargs": {**gain_offset, "axes": "cyx"}}]}],
        "outputs": [{"name": "restored", "axes": "bcyx", "data_type": "float32",
                     "data_range": [float("-inf"), float("inf")], "halo": [0, 0, halo, halo],
                     "shape": {"reference_tensor": "raw", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                     "postprocessing": [{"name": "scale_linear", "kwargs": {**post, "axes": "cyx"}}]}],
        "weights": {"torchscript": {"source": "weights_torchscript.pt", "pytorch_version": "2.0"}},
    }, folder / "rdf.yaml")
    old = load_bioimageio_model(folder / "rdf.yaml")
    assert (old.min, old.step, old.halo, old.scale, old.pixel_size_um) == (size["min"], size["step"], halo, 1, None)
    image = read_image(shared_data / FMD / "lq" / "fov05.png")
    image = image.with_data(image.data[:150, :130])
    expected, _ = predict_bioimageio(packages["s1"], image, tile=64)
    got, provenance = predict_bioimageio(old, image, tile=64)
    np.testing.assert_allclose(got.data, expected.data, rtol=0, atol=1e-6)
    assert provenance.parameters["name"] == "S1 in format 04" and provenance.parameters["overlap"] >= halo


@pytest.mark.slow
def test_a_per_image_run_exports_scale_range_and_labels_its_output_as_normalised(runs, shared_data, tmp_path, capsys):
    """Per-image normalisation maps the input with scale_range; its inverse (the input's own percentiles) is no
    spec operation, so the package's output is normalised: output * (p_high - p_low) + p_low of the input
    gives DeconGAN's intensities."""
    from decongan.engine.learn.normalization import percentile_norm

    root = runs[0]
    run, package = tmp_path / "run_pi", tmp_path / "pi.zip"
    assert main(["train", "--preset", "s1", "--lq", str(root / "lq"), "--hq", str(root / "hq"), "--out", str(run),
                 "--iterations", "2", "--val-every", "2", "--log-every", "1", "--val-names", "fov03",
                 "--normalization", "per-image", *TINY_S1_CLI]) == 0
    assert main(["export-model", str(run), "--format", "bioimageio", "--out", str(package)]) == 0
    assert "normalised units" in capsys.readouterr().err
    rdf, _ = _rdf(package)
    (inp,), (out,) = rdf["inputs"], rdf["outputs"]
    scale_range = [p for p in inp["preprocessing"] if p["id"] == "scale_range"][0]["kwargs"]
    assert (scale_range["min_percentile"], scale_range["max_percentile"]) == (1.0, 99.8)
    assert not [p for p in out.get("postprocessing", []) if p["id"] == "scale_linear"]
    assert "normalised units" in out["description"]
    lq = root / "lq" / "fov03.tif"
    assert main(["predict", str(run), str(lq), "--out", str(tmp_path / "a"), "--tile", "0", "--device", "cpu"]) == 0
    assert main(["predict", str(package), str(lq), "--out", str(tmp_path / "b"), "--tile", "0"]) == 0
    assert "normalised units" in capsys.readouterr().err
    expected = tifffile.imread(tmp_path / "a" / "fov03_s1.tif")
    norm = percentile_norm(read_image(lq).data)
    got = norm.denormalize(tifffile.imread(tmp_path / "b" / "fov03_bioimageio.tif"))
    assert float(np.abs(got - expected).max()) <= 1e-4 * float(expected.max() - expected.min())


@pytest.mark.slow
def test_torchscript_only_package_is_smaller_and_gives_the_same_output(packages, runs, tmp_path, capsys):
    small = tmp_path / "ts.zip"
    assert main(["export-model", str(runs[1]["s1"]), "--format", "bioimageio", "--torchscript-only",
                 "--out", str(small)]) == 0
    rdf, files = _rdf(small)
    assert list(rdf["weights"]) == ["torchscript"] and "parent" not in rdf["weights"]["torchscript"]
    assert "weights.pt" not in files and "decongan_architecture.py" not in files
    assert small.stat().st_size < packages["s1"].stat().st_size
    lq = runs[0] / "lq" / "fov01.tif"
    for name, package in (("a", packages["s1"]), ("b", small)):
        assert main(["predict", str(package), str(lq), "--out", str(tmp_path / name), "--tile", "0"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a" / "fov01_bioimageio.tif"),
                                  tifffile.imread(tmp_path / "b" / "fov01_bioimageio.tif"))
    capsys.readouterr()


@pytest.mark.slow
def test_a_x2_super_resolution_run_exports_and_predicts_on_the_finer_grid(runs, tmp_path, capsys):
    """S5 (x2, synthetic LQ from the HQ folder): output axes at half the input pixel size, and the package's
    output equals the run's (the run records no LQ folder, so the test tensors come from --sample-image)."""
    root = runs[0]
    run, package = tmp_path / "run_s5", tmp_path / "s5.zip"
    assert main(["train", "--preset", "s5", "--hq", str(root / "hq"), "--synthetic-lq", "gaussian", "--out", str(run),
                 "--iterations", "2", "--val-every", "2", "--log-every", "1", "--val-names", "fov03",
                 "--model-arg", "num_feat=8", "--model-arg", "num_block=1", "--model-arg", "num_grow_ch=4",
                 "--disc-arg", "num_feat=4", "--set", 'loss_weights={"pixel": 1.0, "perceptual": 0.0, "adv": 0.1}',
                 "--patch-size", "32", "--batch-size", "2", "--device", "cpu", "--threads", "1"]) == 0
    assert main(["export-model", str(run), "--format", "bioimageio", "--out", str(package)]) == 1
    assert "--sample-image" in capsys.readouterr().err
    assert main(["export-model", str(run), "--format", "bioimageio", "--out", str(package),
                 "--sample-image", str(root / "lq" / "fov03.tif")]) == 0
    rdf, _ = _rdf(package)
    y_in, y_out = rdf["inputs"][0]["axes"][2], rdf["outputs"][0]["axes"][2]
    assert y_out["scale"] * 2 == y_in["scale"] and abs(y_in["scale"] - 0.4) < 1e-9 and y_out["halo"] % 2 == 0
    lq = root / "lq" / "fov01.tif"
    for name, model in (("a", run), ("b", package)):
        assert main(["predict", str(model), str(lq), "--out", str(tmp_path / name), "--tile", "0",
                     "--pixel-nm", "400", "--device", "cpu"]) == 0
    expected = read_image(tmp_path / "a" / "fov01_s5.tif")
    got = read_image(tmp_path / "b" / "fov01_bioimageio.tif")
    assert got.data.shape == expected.data.shape == (256, 256) and got.pixel_size_um == pytest.approx(0.2)
    assert float(np.abs(got.data - expected.data).max()) <= 1e-4 * float(np.ptp(expected.data))
