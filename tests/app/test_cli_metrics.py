"""``decongan metrics``: JSON and table output on real files, and its error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from decongan.app.cli import main
from decongan.engine.io import read_image, write_tiff
from decongan.engine.metrics import no_reference_metrics, reference_metrics

FMD = "fmd_confocal_bpae_nuclei_lowsnr_vs_highsnr"


@pytest.fixture(scope="module")
def pair(shared_data):
    return shared_data / FMD / "lq" / "fov01.png", shared_data / FMD / "hq" / "fov01.png"


def _json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_reference_json_matches_the_engine(capsys, pair):
    lq, hq = pair
    payload = _json(capsys, ["metrics", str(lq), "--reference", str(hq), "--pixel-nm", "100", "--json"])
    expected = reference_metrics(prediction=read_image(lq).data, reference=read_image(hq).data)
    for key in ("mse", "nrmse", "psnr", "ssim"):
        assert payload[key] == pytest.approx(expected[key], rel=1e-12)
    for key in ("bgstd", "cuf", "snr", "decorrelation_px", "decorrelation_nm"):
        assert isinstance(payload[key], float)
    assert payload["decorrelation_nm"] == pytest.approx(100 * payload["decorrelation_px"])
    assert payload["normalization"]["data_range"] == 1.0
    assert payload["image"] == str(lq) and payload["reference"] == str(hq) and payload["pixel_nm"] == 100.0
    assert all(key == key.lower() for key in payload)


def test_no_reference_json_and_frc(capsys, shared_data):
    frames = shared_data / FMD / "raw_frames" / "fov01"
    a, b = frames / "frame_01.png", frames / "frame_02.png"
    payload = _json(capsys, ["metrics", str(a), "--frc", str(b), "--json"])
    assert "mse" not in payload and "decorrelation_nm" not in payload
    expected = no_reference_metrics(read_image(a).data)
    assert payload["cuf"] == pytest.approx(expected["cuf"]) and payload["snr"] == pytest.approx(expected["snr"])
    assert 2.0 < payload["frc_px"] < 10.0


def test_table_output_is_aligned(capsys, pair):
    lq, hq = pair
    assert main(["metrics", str(lq), "--reference", str(hq)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.split() and line.split()[0] in ("mse", "psnr", "ssim", "cuf")]
    assert len(rows) == 4
    assert len({line.index(line.split()[1]) + len(line.split()[1]) for line in rows}) == 1  # right-aligned values
    assert any(line.startswith("psnr") and line.rstrip().endswith("dB") for line in rows)


def test_shape_mismatch_names_both_files(capsys, shared_data, pair):
    lq, _ = pair
    other = shared_data / "other_fluorescence" / "bian_BPAE_actin.tif"
    assert main(["metrics", str(lq), "--reference", str(other), "--json"]) == 1
    err = capsys.readouterr().err
    assert "shape mismatch" in err and str(lq) in err and str(other) in err
    assert "(512, 512)" in err and "(680, 1100)" in err


def test_multichannel_needs_a_channel_or_all(capsys, shared_data):
    path = shared_data / "other_fluorescence" / "neubias_xyc_16bit__cell_dna_mts_actin.tif"
    assert main(["metrics", str(path), "--json"]) == 1
    assert "3 channels" in capsys.readouterr().err
    payload = _json(capsys, ["metrics", str(path), "--channel", "all", "--json"])
    assert [c["channel"] for c in payload["channels"]] == [0, 1, 2]
    assert payload["pixel_nm"] == pytest.approx(132.49, abs=0.01)  # from the file's metadata
    single = _json(capsys, ["metrics", str(path), "--channel", "2", "--json"])
    assert single["channel"] == 2 and single["cuf"] == pytest.approx(payload["channels"][2]["cuf"])
    assert main(["metrics", str(path), "--channel", "5"]) == 1
    assert "out of range" in capsys.readouterr().err


def test_bead_stack_with_beads_option(capsys, shared_data):
    path = shared_data / "psf_beads_and_otfs" / "confocal_beads_mpicbg_Bead_Image1_crop.tif"
    payload = _json(capsys, ["metrics", str(path), "--beads", "--json"])
    assert payload["n_beads"] == 4 and 150 < payload["fwhm_nm"] < 300
    assert 0 <= payload["z_plane"] < 41


def test_stack_reference_and_plane_selection(capsys, tmp_path):
    rng = np.random.default_rng(0)
    truth = np.zeros((3, 64, 64), np.float32)
    truth[:, 20:40, 20:40] = 100
    pred = truth + rng.normal(0, 5, truth.shape).astype(np.float32)
    write_tiff(tmp_path / "gt.tif", truth, axes="ZYX")
    write_tiff(tmp_path / "pred.tif", pred, axes="ZYX")
    whole = _json(capsys, ["metrics", str(tmp_path / "pred.tif"), "-r", str(tmp_path / "gt.tif"), "--json"])
    assert whole["mse"] == pytest.approx(reference_metrics(prediction=pred, reference=truth)["mse"])
    plane = _json(capsys, ["metrics", str(tmp_path / "pred.tif"), "-r", str(tmp_path / "gt.tif"), "--z", "1", "--json"])
    assert plane["ssim"] == pytest.approx(reference_metrics(prediction=pred[1], reference=truth[1])["ssim"])
    assert main(["metrics", str(tmp_path / "pred.tif"), "--z", "7"]) == 1
    assert "--z 7 is out of range" in capsys.readouterr().err
