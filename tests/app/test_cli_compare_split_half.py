"""`decongan compare --split-half`: the split-half trust map of each baseline compare runs itself, as a
metric column equal to the engine's own map; refused without a method compare runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from decongan.app.cli import main
from decongan.engine.evaluate.trust_maps import split_half_image
from decongan.engine.io import read_image
from decongan.engine.optics.classical import BaselineSpec, restore_image
from tests.fmd_pairs import write_fmd_pairs


@pytest.mark.slow  # tune + compare report (10-30 s on 2 busy cores)
def test_compare_split_half_column_equals_the_engine_map(shared_data, tmp_path, capsys):
    cal_lq, cal_gt = write_fmd_pairs(shared_data, tmp_path / "cal", start=160, size=128, names=("fov01", "fov02"))
    ev_lq, ev_gt = write_fmd_pairs(shared_data, tmp_path / "ev", start=160, size=128, names=("fov05", "fov06"))
    tuned = tmp_path / "tuned.json"
    assert main(["tune", "--lq-dir", str(cal_lq), "--gt-dir", str(cal_gt), "--baselines", "gaussian",
                 "--grid", "gaussian:sigma_px=1.5", "--out", str(tuned)]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", "--lq-dir", str(ev_lq), "--gt-dir", str(ev_gt), "--baselines", str(tuned),
                 "--split-half", "--no-noref", "--formats", "png", "--out", str(out)]) == 0
    with open(out / "metrics.csv", newline="") as handle:
        rows = {(r["image"], r["method"]): r for r in csv.DictReader(handle)}
    column = "Gaussian sigma_px=1.5"
    spec = BaselineSpec("gaussian", {"sigma_px": 1.5})
    for name in ("fov05", "fov06"):
        expected = split_half_image(read_image(ev_lq / f"{name}.tif"), lambda im: restore_image(spec, im),
                                    name=column)[0].flagged_fraction
        assert float(rows[(name, column)]["sh_flagged_fraction"]) == pytest.approx(expected, abs=1e-12)
        assert rows[(name, "LQ (input)")]["sh_flagged_fraction"] == ""
    capsys.readouterr()
    assert main(["compare", "--lq-dir", str(ev_lq), "--gt-dir", str(ev_gt), "--split-half", "--no-noref",
                 "--formats", "png", "--out", str(tmp_path / "cmp2")]) == 1
    assert "--split-half needs a method compare runs itself" in capsys.readouterr().err
    assert not (tmp_path / "cmp2").exists()


@pytest.mark.slow  # GAN twice per field + compare report (~15 s on 2 busy cores)
def test_compare_runs_a_gan_run_folder_and_maps_its_split_half(tmp_path):
    from decongan.app.methods import gan_method
    from decongan.engine.io import write_tiff
    from decongan.resources import resource_path

    bundled = Path(resource_path("models")) / "s1_neubias_nucleus"
    stack = read_image(Path(resource_path("samples")) / "neubias_nucleus" / "lq" / "nucleus_widefield.tif")
    for z in (18, 22):
        write_tiff(tmp_path / "lq" / f"z{z}.tif", stack.select(z=z).data, dtype="uint16",
                   pixel_size_um=stack.pixel_size_um)
    out = tmp_path / "cmp"
    assert main(["compare", "--lq-dir", str(tmp_path / "lq"), "--method", f"S1={bundled}", "--split-half",
                 "--no-noref", "--formats", "png", "--out", str(out)]) == 0
    with open(out / "metrics.csv", newline="") as handle:
        rows = {(r["image"], r["method"]): r for r in csv.DictReader(handle)}
    spec = gan_method(bundled, name="S1")
    for z in (18, 22):
        expected = split_half_image(read_image(tmp_path / "lq" / f"z{z}.tif"), spec.run, name="S1")[0]
        assert float(rows[(f"z{z}", "S1")]["sh_flagged_fraction"]) == pytest.approx(expected.flagged_fraction, abs=1e-12)
        assert expected.flagged_fraction <= 0.005  # a stable restoration of a plane of its own sample
