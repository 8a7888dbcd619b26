"""`decongan compare`, `decongan batch` and `decongan demo` end to end on real data."""

from __future__ import annotations

import csv
import json

import pytest

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from tests.app.tagan_folders import NAMES, write_tagan_folders


@pytest.fixture()
def dataset(shared_data, tmp_path):
    """Three real confocal/STED pairs (96x96 crops, 20 nm pixels) and a Gaussian PSF file."""
    return write_tagan_folders(shared_data, tmp_path, crop=96, psf_sigma_px=3.0, psf_size=25)


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_batch_then_resume_then_dataset_compare(dataset, capsys):
    out = dataset / "out"
    common = ["--gt", str(dataset / "gt"), "--psf", str(dataset / "psf.tif"), "--iterations", "5",
              "--device", "cpu", "--formats", "png", "--dpi", "100"]
    assert main(["batch", str(dataset / "in"), "--out", str(out), *common, "--json-progress"]) == 0
    text = capsys.readouterr().out
    assert "3 restored, 0 already done" in text and "median ssim" in text
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    phases = [r["phase"] for r in records]
    assert phases == sorted(phases, key=["restore", "compare", "report"].index)  # the phases come in order
    assert [(r["step"], r["total"]) for r in records if r["phase"] == "restore"] == [(1, 3), (2, 3), (3, 3)]
    assert [(r["step"], r["total"]) for r in records if r["phase"] == "compare"] == [(1, 3), (2, 3), (3, 3)]
    assert "report" in phases
    rows = _rows(out / "metrics.csv")
    assert {r["method"] for r in rows} == {"LQ (input)", "RL 5 it (engine)", "GT"} and len(rows) == 9
    assert all(r["backend"] == "engine/cpu" for r in rows if r["method"].startswith("RL"))
    assert (out / "report.html").is_file() and (out / "figures" / "comparison.png").is_file()
    restored = sorted((out / "restored").glob("RL_5_it_engine/*.tif"))
    assert [p.stem for p in restored] == sorted(NAMES)

    # same command again: nothing is recomputed
    stamps = [p.stat().st_mtime_ns for p in restored]
    assert main(["batch", str(dataset / "in"), "--out", str(out), *common, "--no-compare"]) == 0
    assert "0 restored, 3 already done (skipped)" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in restored] == stamps

    # the dataset form of compare over the batch's outputs gives the same numbers
    out2 = dataset / "cmp"
    assert main(["compare", "--lq-dir", str(dataset / "in"), "--gt-dir", str(dataset / "gt"),
                 "--method", f"RL={out / 'restored' / 'RL_5_it_engine'}", "--psf", str(dataset / "psf.tif"),
                 "--out", str(out2), "--formats", "png", "--dpi", "100"]) == 0
    again = {(r["image"], r["method"]): r for r in _rows(out2 / "metrics.csv")}
    for r in rows:
        method = "RL" if r["method"].startswith("RL") else r["method"]
        assert float(again[(r["image"], method)]["snr"]) == pytest.approx(float(r["snr"]), rel=1e-9)
        if r["ssim"]:
            assert float(again[(r["image"], method)]["ssim"]) == pytest.approx(float(r["ssim"]), rel=1e-9)
    payload = json.loads((out2 / "metrics.json").read_text())
    prov = next(m for m in payload["sets"][0]["methods"] if m["name"] == "RL")["provenance"]
    assert prov["backend"] == "engine/cpu" and prov["parameters"]["iterations"] == 5  # read back from the TIFF


def test_single_field_compare_and_clear_errors(dataset, capsys):
    lq, gt = dataset / "in" / f"{NAMES[0]}.tif", dataset / "gt" / f"{NAMES[0]}.tif"
    out = dataset / "one"
    assert main(["compare", "--lq", str(lq), "--gt", str(gt), "--method", f"copy={lq}", "--consistency", "identity",
                 "--out", str(out), "--formats", "png", "--dpi", "100", "--line", "10,10,10,80",
                 "--inset", "20,20,30"]) == 0
    rows = _rows(out / "metrics.csv")
    by_method = {r["method"]: r for r in rows}
    assert by_method["copy"]["ssim"] == by_method["LQ (input)"]["ssim"]  # a copy of the input scores as the input
    assert float(by_method["copy"]["dc_flagged_fraction"]) == 0.0  # and is perfectly consistent with it
    # one field: the verdict printed (and in the report) says a test needs more fields
    assert "verdict:  copy vs LQ (input) in SSIM: too few fields (n=1 < 6) for a test" in capsys.readouterr().out
    assert main(["compare", "--lq", str(dataset / "missing.tif"), "--method", f"x={lq}", "--out", str(out)]) == 1
    assert "missing.tif: file not found" in capsys.readouterr().err
    assert main(["compare", "--lq", str(lq), "--method", "nonsense", "--out", str(out)]) == 1
    assert "expected NAME=PATH" in capsys.readouterr().err
    assert main(["compare", "--lq", str(lq), "--method", f"x={lq}", "--line", "1,2", "--out", str(out)]) == 1
    assert "Y0,X0,Y1,X1" in capsys.readouterr().err
    assert main(["batch", str(dataset / "in"), "--out", str(dataset / "b"), "--na", "1.4"]) == 1
    assert "needs all three" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_writes_figures_tables_and_report_with_a_gan_column(tmp_path, monkeypatch, capsys):
    """The demo on the bundled sample; a (tiny, real) trained run stands in for the bundled model."""
    import decongan.app.commands.demo as demo

    data = tmp_path / "train"
    lq = read_image(demo.resource_path("samples", demo.SAMPLE, "lq", "nucleus_widefield.tif"))
    gt = read_image(demo.resource_path("samples", demo.SAMPLE, "hq", "nucleus_confocal.tif"))
    for z in (18, 20, 22):
        write_tiff(data / "lq" / f"z{z}.tif", lq.data[z], pixel_size_um=lq.pixel_size_um, dtype="uint16")
        write_tiff(data / "hq" / f"z{z}.tif", gt.data[z], pixel_size_um=gt.pixel_size_um, dtype="uint16")
    run = tmp_path / "run"
    assert main(["train", "--preset", "s1", "--lq", str(data / "lq"), "--hq", str(data / "hq"), "--out", str(run),
                 "--iterations", "2", "--val-every", "2", "--val-names", "z22", "--width", "4", "--model-arg", "depth=2",
                 "--disc-arg", "num_blocks=2", "--patch-size", "32", "--batch-size", "2", "--device", "cpu",
                 "--threads", "1"]) == 0
    monkeypatch.setattr(demo, "bundled_models", lambda: [run])
    capsys.readouterr()

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--formats", "png"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "report.html") in printed and "median ssim" in printed
    for name in ("comparison", "boxplots", "consistency", "error_maps", "orthogonal_xz"):
        assert (out / "figures" / f"{name}.png").is_file()
    rows = _rows(out / "metrics.csv")
    assert {r["method"] for r in rows} == {"LQ (input)", "RL 10 it (engine, 3-D)", "S1 GAN", "GT"}
    planes = sorted({r["image"] for r in rows})
    assert len(planes) >= 5 and all(p.startswith("z") for p in planes)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "NA 1.4" in page and "assumed" in page and "NEUBIAS" in page and "CC BY 4.0" in page
    assert "Model configuration" in page and "no trained GAN model is bundled" not in page
    # the camera offset went through the engine's one offset rule (as --offset auto), recorded, never clipped
    import json

    import tifffile

    with tifffile.TiffFile(sorted((out / "restored").glob("*RL_10_it*.tif"))[0]) as tif:
        provenance = json.loads(tif.imagej_metadata["Info"])
    assert provenance["parameters"]["offset"]["requested"] == "auto"
    assert provenance["parameters"]["offset"]["subtracted"] == provenance["parameters"]["camera_offset_subtracted"]
    # planes of one stack: the verdict describes, it does not claim significance
    assert "the planes come from one stack and are not independent samples, so no significance test" in page
