"""``--rl-acceleration biggs`` of ``decongan deconvolve`` and ``decongan batch``: the engine's accelerated RL,
recorded in the output's provenance; refused for DeconvolutionLab2 before anything runs (issue 14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import tifffile

from decongan.app.cli import main
from decongan.engine.io import read_image
from decongan.engine.optics.deconvolution import richardson_lucy
from decongan.engine.optics.psf import read_psf
from tests.app.tagan_folders import write_tagan_folders

PSF_NAME = "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif"
INPUT_NAME = "input_filaments_256_blurred_poisson.tif"


def _description(path: Path) -> dict:
    with tifffile.TiffFile(path) as tif:
        return json.loads(tif.imagej_metadata["Info"])


def test_deconvolve_rl_acceleration_biggs_is_the_engines_and_is_recorded(tmp_path, golden_dir, capsys):
    source = tmp_path / "input.tif"
    shutil.copy(golden_dir / INPUT_NAME, source)
    out = tmp_path / "fast.tif"
    assert main(["deconvolve", str(source), "--psf", str(golden_dir / PSF_NAME), "--iterations", "6",
                 "--edges", "zero", "--device", "cpu", "--rl-acceleration", "biggs", "--out", str(out)]) == 0
    assert "RL 6 it (zero edges, Biggs-Andrews accelerated)" in capsys.readouterr().out
    expected = richardson_lucy(read_image(source).data, read_psf(golden_dir / PSF_NAME).data, iterations=6,
                               edges="zero", device="cpu", acceleration="biggs")
    assert np.array_equal(read_image(out).data, expected)
    description = _description(out)
    assert description["parameters"]["acceleration"] == "biggs"
    assert description["method"] == "RL 6 it (zero edges, Biggs-Andrews accelerated)"


def test_rl_acceleration_is_refused_for_deconvolutionlab2_before_anything_runs(tmp_path, golden_dir, capsys):
    out = tmp_path / "never.tif"
    assert main(["deconvolve", str(golden_dir / INPUT_NAME), "--psf", str(golden_dir / PSF_NAME), "--backend", "fiji",
                 "--rl-acceleration", "biggs", "--out", str(out)]) == 1
    assert "--rl-acceleration biggs needs --backend engine (DeconvolutionLab2 runs plain RL)" in capsys.readouterr().err
    assert main(["deconvolve", str(golden_dir / INPUT_NAME), "--psf", str(golden_dir / PSF_NAME), "--method", "rltv",
                 "--tv-variant", "dl2", "--edges", "circular", "--rl-acceleration", "biggs", "--out", str(out)]) == 1
    assert "--tv-variant dl2 reproduces DeconvolutionLab2's own iterations" in capsys.readouterr().err
    assert not out.exists()
    # tile by tile, each tile would get its own extrapolation factor: refused, not silently plain RL
    zarr_out = tmp_path / "never.ome.zarr"
    assert main(["deconvolve", str(tmp_path / "in.ome.zarr"), "--psf", str(golden_dir / PSF_NAME),
                 "--rl-acceleration", "biggs", "--out", str(zarr_out)]) == 1
    assert "--rl-acceleration is not available for OME-Zarr to OME-Zarr" in capsys.readouterr().err
    assert not zarr_out.exists()


def test_batch_rl_acceleration_names_the_column_and_records_it(shared_data, tmp_path, capsys):
    data = write_tagan_folders(shared_data, tmp_path, crop=48, psf_sigma_px=2.0, psf_size=15)
    out = tmp_path / "out"
    assert main(["batch", str(data / "in"), "--out", str(out), "--psf", str(data / "psf.tif"), "--iterations", "4",
                 "--device", "cpu", "--rl-acceleration", "biggs", "--no-compare"]) == 0
    restored = sorted((out / "restored" / "RL_4_it_engine_Biggs-Andrews").glob("*.tif"))
    assert len(restored) == 3, sorted(out.rglob("*"))
    for path in restored:
        description = _description(path)
        assert description["parameters"]["acceleration"] == "biggs", path
        assert description["method"] == "RL 4 it (padded edges, Biggs-Andrews accelerated)"
    entries = json.loads((out / "manifest.json").read_text())["entries"].values()
    assert {e["method"] for e in entries} == {"RL 4 it (engine, Biggs-Andrews)"}
    assert all(e["parameters"]["acceleration"] == "biggs" for e in entries)
    assert main(["batch", str(data / "in"), "--out", str(tmp_path / "fiji"), "--psf", str(data / "psf.tif"),
                 "--decon", "fiji", "--rl-acceleration", "biggs"]) == 1
    assert "--rl-acceleration biggs needs --decon engine" in capsys.readouterr().err
