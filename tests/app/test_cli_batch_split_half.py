"""`decongan batch --split-half`: the comparison restores the photon halves of every input with each batch
method; the column equals the engine's map of the same method; refused where no comparison runs."""

from __future__ import annotations

import csv

import pytest

from decongan.app.cli import main
from decongan.app.methods import PsfSource, engine_rl_method
from decongan.engine.evaluate.trust_maps import split_half_image
from decongan.engine.io import read_image
from tests.app.tagan_folders import NAMES, write_tagan_folders


@pytest.mark.slow  # batch + report (~15 s on 2 busy cores)
def test_batch_split_half_column_equals_the_engine_map(shared_data, tmp_path, capsys):
    data = write_tagan_folders(shared_data, tmp_path, crop=128, psf_sigma_px=2.0, psf_size=15)
    options = ["--psf", str(data / "psf.tif"), "--iterations", "3", "--device", "cpu", "--formats", "png",
               "--dpi", "72"]
    assert main(["batch", str(data / "in"), "--gt", str(data / "gt"), "--out", str(tmp_path / "out"), *options,
                 "--split-half"]) == 0
    with open(tmp_path / "out" / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["sh_flagged_fraction"]]
    spec = engine_rl_method(PsfSource(path=data / "psf.tif"), iterations=3, device="cpu")
    assert sorted(r["image"] for r in rows) == sorted(NAMES) and {r["method"] for r in rows} == {spec.name}
    for row in rows:
        expected = split_half_image(read_image(data / "in" / f"{row['image']}.tif"), spec.run, name=spec.name)[0]
        assert float(row["sh_flagged_fraction"]) == pytest.approx(expected.flagged_fraction, abs=1e-12)
    capsys.readouterr()
    assert main(["batch", str(data / "in"), "--out", str(tmp_path / "out2"), *options, "--split-half",
                 "--no-compare"]) == 1
    assert "--split-half goes with the comparison, not with --no-compare" in capsys.readouterr().err
