"""``decongan fiji doctor|crosscheck`` and the app-layer Fiji adapters, with the real JVM (Debian's ImageJ 1.x)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from decongan.app.cli import main
from decongan.app.fiji import client as fiji_client
from decongan.app.fiji import crosscheck
from decongan.app.fiji import deconvolve as fiji_deconvolve
from decongan.app.fiji import psf as fiji_psf
from decongan.app.fiji import register as fiji_register
from decongan.imagej_bridge import operations
from decongan.imagej_bridge.client import RegistrationOutput
from decongan.imagej_bridge.discovery import discover


@pytest.fixture(scope="module")
def ij1_available():
    backend = next(b for b in discover(probe_network=False).candidates if b.kind == "imagej1")
    if not backend.usable:
        pytest.skip(f"ImageJ 1.x not usable: {backend.reason} (CI installs Debian's libij-java and a JDK)")
    yield backend
    fiji_client.close_clients()


@pytest.fixture(autouse=True)
def no_fiji_folder(monkeypatch):
    for name in ("DECONGAN_FIJI", "DECONGAN_SETTINGS", "DECONGAN_FIJI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DECONGAN_FIJI_ENDPOINT", "none")  # never probe or download in tests


def test_doctor_reports_backends_java_imagej_and_plugins(ij1_available, capsys):
    assert main(["fiji", "doctor"]) == 0
    out = capsys.readouterr().out
    assert "Java: Java " in out
    assert "1. fiji     not used" in out and "no Fiji folder given" in out
    assert "2. endpoint not used" in out and "disabled" in out
    assert "3. imagej1  ACTIVE" in out
    assert "ImageJ: 1." in out and "display:" in out
    for name in ("PSF Generator", "DeconvolutionLab2", "TurboReg", "StackReg", "Linear Stack Alignment with SIFT"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert "missing:" in line  # with the way to install it
    assert "BIG-EPFL" in out and "engine (Fiji unavailable)" in out


def test_doctor_json_for_a_folder_that_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "no-such-Fiji.app"
    assert main(["fiji", "doctor", "--fiji", str(missing), "--no-start", "--offline", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    fiji = report["backends"][0]
    assert fiji["kind"] == "fiji" and not fiji["usable"] and "does not exist" in fiji["reason"]
    assert fiji["source"] == "--fiji"
    assert [b["kind"] for b in report["backends"]] == ["fiji", "endpoint", "imagej1"]


def test_crosscheck_without_goldens_is_a_clear_error(tmp_path, capsys):
    assert main(["fiji", "crosscheck", "--golden", str(tmp_path)]) == 1
    assert "no Fiji goldens" in capsys.readouterr().err


def test_crosscheck_fiji_lines_say_which_plugin_is_missing(ij1_available, golden_dir, capsys):
    assert main(["fiji", "crosscheck", "--fiji-only", "--golden", str(golden_dir)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("PSF", "DL2", "TurboReg"))]
    assert len(lines) == 8  # 3 PSFs, 2 RL, 3 registrations
    for line in lines:
        assert " fiji " in line and " missing " in line
    assert sum("PSF Generator is not installed" in line for line in lines) == 3
    assert sum("DeconvolutionLab2 is not installed" in line for line in lines) == 2
    assert sum("TurboReg is not installed" in line for line in lines) == 3


@pytest.mark.slow
def test_crosscheck_engine_matches_the_goldens(golden_dir, capsys):
    assert main(["fiji", "crosscheck", "--engine-only", "--golden", str(golden_dir)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if " engine " in line]
    assert len(rows) == 8 and all((" ok " in row or " info " in row) for row in rows), out


# -- adapters ------------------------------------------------------------------------------------------

def test_psf_falls_back_to_the_engine_with_a_label(ij1_available, golden_dir):
    params = {"na": 1.4, "ni": 1.515, "wavelength_nm": 520.0, "pixel_nm": 159.0, "size": 65}
    restored = fiji_psf.psf_with_fallback(**params)
    assert restored.provenance.backend == fiji_client.FALLBACK_LABEL
    assert any("PSF Generator" in note for note in restored.provenance.notes)
    golden = tifffile.imread(golden_dir / "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif")
    assert np.abs(restored.image - golden).max() < 1e-5


def test_fiji_adapters_raise_fiji_unavailable_with_the_install_hint(ij1_available):
    image = np.ones((32, 32), np.float32)
    with pytest.raises(fiji_client.FijiUnavailable, match="DeconvolutionLab2.*update site"):
        fiji_deconvolve.fiji_richardson_lucy(image, np.ones((3, 3), np.float32), iterations=2)
    generator = fiji_register.iter_fiji_register(moving=image, fixed=image, transform="rigid")
    with pytest.raises(fiji_client.FijiUnavailable, match="TurboReg"):
        list(generator)


def test_rl_fallback_is_the_engine_with_dl2_conventions(ij1_available):
    rng = np.random.default_rng(1)
    image = rng.poisson(50, (48, 48)).astype(np.float32)
    psf = np.outer(np.hanning(7), np.hanning(7)).astype(np.float32)
    restored = fiji_deconvolve.richardson_lucy_with_fallback(image, psf, iterations=3)
    direct = fiji_deconvolve.engine_richardson_lucy(image, psf, iterations=3)
    assert restored.provenance.backend == fiji_client.FALLBACK_LABEL
    assert restored.provenance.parameters["edges"] == "circular"
    np.testing.assert_array_equal(restored.image, direct.image)


def test_registration_result_from_golden_turboreg_output(golden_dir):
    """The conversion the GUI uses, fed with TurboReg's real output (golden) instead of a live run."""
    moving = tifffile.imread(golden_dir / "reg_moving_rot3deg_shift7.5_-4.25_256.tif")
    fixed = tifffile.imread(golden_dir / "reg_target_256.tif")
    stack = tifffile.imread(golden_dir / "turboreg_rigidBody_aligned.tif")
    matrix = crosscheck.read_turboreg_transform(golden_dir / "turboreg_rigidBody_transform.txt")
    output = RegistrationOutput(stack[0], stack[1] > 0, matrix, "rigid", {"backend": "fiji", "plugin": "TurboReg"})
    result = fiji_register.registration_result(moving, fixed, output)
    np.testing.assert_allclose(result.transform.matrix, operations.turboreg_to_homogeneous(matrix))
    np.testing.assert_allclose(result.transform.to_turboreg_matrix(), matrix)
    assert result.transform.angle_deg == pytest.approx(2.999807, abs=1e-5)  # the golden file's angle
    assert result.ncc_after > 0.99 and result.ncc_after > result.ncc_before + 0.1
    assert crosscheck.max_displacement(matrix, crosscheck.REG_TRUTH, fixed.shape) < 1e-3  # README: 7.7e-4 px


def test_provenance_keeps_the_exact_macro():
    bridge = {"backend": "imagej1:/x/ij.jar (ImageJ 1.53t, xvfb)", "plugin": "DeconvolutionLab2",
              "plugin_version": "2.1.2 (27.06.2018)", "macro": 'run("DeconvolutionLab2 Run", " -image file /a.tif");',
              "notes": ["periodic"]}
    provenance = fiji_client.provenance_from_bridge("RL 10 it (DeconvolutionLab2)", bridge, {"iterations": 10})
    assert provenance.backend.startswith("imagej1:")
    assert provenance.parameters["fiji_macro"] == bridge["macro"]
    assert provenance.versions["DeconvolutionLab2"] == "2.1.2 (27.06.2018)"
    assert provenance.notes == ["periodic"]


def test_deconvolve_image_falls_back_on_a_microscopy_image(ij1_available):
    from decongan.engine.io import MicroscopyImage
    from decongan.engine.optics.deconvolution import deconvolve_image

    rng = np.random.default_rng(2)
    image = MicroscopyImage(rng.poisson(30, (2, 40, 40)).astype(np.float32), "CYX", pixel_size_um=0.1)
    psf = np.outer(np.hanning(5), np.hanning(5)).astype(np.float32)
    with pytest.raises(fiji_client.FijiUnavailable, match="DeconvolutionLab2"):
        fiji_deconvolve.fiji_deconvolve_image(image, psf, iterations=2)
    result = fiji_client.with_engine_fallback(
        lambda: fiji_deconvolve.fiji_deconvolve_image(image, psf, iterations=2),
        lambda: deconvolve_image(image, psf, iterations=2, edges="circular"))
    assert result.provenance.backend == fiji_client.FALLBACK_LABEL
    assert result.image.axes == "CYX" and result.image.data.shape == (2, 40, 40)
    assert any("DeconvolutionLab2" in note for note in result.provenance.notes)
