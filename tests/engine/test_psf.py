"""Born & Wolf PSF against PSF Generator's real outputs; Gaussian PSF; PSF file checks."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from decongan.engine.io import ImageReadError, write_tiff
from decongan.engine.optics.psf import (
    PsfWarning,
    airy_fwhm_nm,
    born_wolf_profile,
    born_wolf_psf,
    check_psf,
    gaussian_psf,
    psf_focal_plane,
    read_psf,
)

GOLDEN_NAMES = [
    "psf_bw_2d_na0.3_ni1.0_dxy650_lambda520_65x65.tif",
    "psf_bw_2d_na1.4_ni1.515_dxy159_lambda461_65x65.tif",
    "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif",
    "psf_bw_2d_na1.4_ni1.515_dxy159_lambda565_65x65.tif",
    "psf_bw_3d_na0.3_ni1.0_dxy650_dz1000_lambda520_65x65x33.tif",
    "psf_bw_3d_na1.4_ni1.515_dxy159_dz200_lambda461_65x65x33.tif",
    "psf_bw_3d_na1.4_ni1.515_dxy159_dz200_lambda520_65x65x33.tif",
    "psf_bw_3d_na1.4_ni1.515_dxy159_dz200_lambda520_65x65x33_accBest.tif",
    "psf_bw_3d_na1.4_ni1.515_dxy159_dz200_lambda565_65x65x33.tif",
]


def golden_parameters(name: str) -> dict:
    m = re.search(r"na([\d.]+)_ni([\d.]+)_dxy(\d+)(?:_dz(\d+))?_lambda(\d+)_65x65(x33)?", name)
    assert m, name
    params = {"na": float(m[1]), "ni": float(m[2]), "pixel_nm": float(m[3]), "wavelength_nm": float(m[5]), "size": 65,
              "accuracy": "best" if "accBest" in name else "good"}
    if m[6]:
        params.update(nz=33, z_step_nm=float(m[4]))
    return params


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_born_wolf_matches_every_psf_generator_golden(golden_dir, name):
    golden = tifffile.imread(golden_dir / name)
    ours = born_wolf_psf(**golden_parameters(name))
    assert ours.dtype == np.float32 and ours.shape == golden.shape
    # the issue asks for <= 1e-3 of the peak; we are at float32 rounding (<= 6e-8 measured)
    assert np.max(np.abs(ours - golden)) / golden.max() < 1e-6
    assert ours.max() == pytest.approx(1.0)


def test_golden_directory_holds_no_unchecked_born_wolf_psf(golden_dir):
    assert sorted(p.name for p in golden_dir.glob("psf_bw_*.tif")) == sorted(GOLDEN_NAMES)


def test_2d_psf_is_the_focal_plane_of_the_3d_psf_and_stack_is_symmetric():
    kw = {"na": 1.2, "ni": 1.33, "wavelength_nm": 600, "pixel_nm": 110, "size": 33}
    volume = born_wolf_psf(nz=9, z_step_nm=250, **kw)
    plane = born_wolf_psf(**kw)
    np.testing.assert_array_equal(volume[4], plane)
    np.testing.assert_array_equal(volume, volume[::-1])
    assert np.unravel_index(np.argmax(volume), volume.shape) == (4, 16, 16)
    np.testing.assert_array_equal(psf_focal_plane(volume), plane)


def test_even_size_is_centred_between_pixels_and_sum_normalisation():
    psf = born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100, size=(32, 40), normalize="sum")
    assert psf.shape == (32, 40)
    assert psf.sum(dtype=np.float64) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(psf, psf[::-1, ::-1], rtol=1e-6)
    top = np.sort(psf.ravel())[-4:]
    np.testing.assert_allclose(top, top[0], rtol=1e-6)  # the four central pixels share the peak
    assert psf[15:17, 19:21].min() == pytest.approx(psf.max())


def test_in_focus_fwhm_matches_the_analytic_airy_value():
    r = np.linspace(0, 400, 8001)
    profile = born_wolf_profile(r, na=1.4, ni=1.515, wavelength_nm=520)[0]
    half = r[np.argmax(profile < profile[0] / 2)]
    assert 2 * half == pytest.approx(airy_fwhm_nm(na=1.4, wavelength_nm=520), rel=2e-3)
    assert airy_fwhm_nm(na=1.4, wavelength_nm=520) == pytest.approx(0.51 * 520 / 1.4, rel=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"na": 1.6, "ni": 1.515}, "smaller than the immersion index"),
        ({"na": 1.4, "ni": 1.515, "wavelength_nm": -520}, "wavelength_nm must be a positive"),
        ({"na": 1.4, "ni": 1.515, "size": 2}, "size must be an integer >= 3"),
        ({"na": 1.4, "ni": 1.515, "nz": 5}, "z_step_nm is required"),
        ({"na": 1.4, "ni": 0.5}, "must be >= 1"),
        ({"na": 1.4, "ni": 1.515, "pixel_nm": float("nan")}, "pixel_nm must be a positive"),
        ({"na": 1.4, "ni": 1.515, "normalize": "max"}, "normalize must be"),
    ],
)
def test_born_wolf_parameter_errors(kwargs, message):
    params = {"wavelength_nm": 520, "pixel_nm": 100, "size": 15, **kwargs}
    with pytest.raises(ValueError, match=message):
        born_wolf_psf(**params)


def test_gaussian_psf_fwhm_and_normalisation():
    psf = gaussian_psf(fwhm_nm=300, pixel_nm=50, size=41)
    row = psf[20]
    assert psf.max() == pytest.approx(1.0)
    above = np.flatnonzero(row >= 0.5)
    assert (above[-1] - above[0] + 1) * 50 == pytest.approx(300, abs=50)  # half-max width within a pixel
    sigma = 300 / (2 * np.sqrt(2 * np.log(2))) / 50
    assert row[20 + 3] == pytest.approx(np.exp(-0.5 * (3 / sigma) ** 2), rel=1e-5)
    volume = gaussian_psf(sigma_px=1.5, size=15, nz=7, sigma_z_px=2.0, normalize="sum")
    assert volume.shape == (7, 15, 15) and volume.sum(dtype=np.float64) == pytest.approx(1.0, rel=1e-6)
    assert volume[3, 7, 7] == volume.max()
    with pytest.raises(ValueError, match="sigma_z_px, or fwhm_z_nm"):
        gaussian_psf(sigma_px=1.0, size=9, nz=5)
    with pytest.raises(ValueError, match="either sigma_px or fwhm_nm"):
        gaussian_psf(sigma_px=1.0, fwhm_nm=200, pixel_nm=50)


def test_check_psf_rejects_and_warns():
    psf = gaussian_psf(sigma_px=2, size=15)
    with pytest.raises(ImageReadError, match="must be 2-D"):
        check_psf(np.zeros((2, 2, 5, 5)) + 1)
    with pytest.raises(ImageReadError, match="no positive values"):
        check_psf(np.zeros((9, 9)))
    with pytest.raises(ImageReadError, match="NaN or Inf"):
        check_psf(np.where(psf > 0.5, np.nan, psf))
    with pytest.raises(ImageReadError, match="negative values"):
        check_psf(psf - 0.1)
    noisy = psf.copy()
    noisy[0, 0] = -1e-4
    with pytest.warns(PsfWarning, match="set to 0"):
        cleaned = check_psf(noisy)
    assert cleaned.min() == 0
    with pytest.warns(PsfWarning, match="from the array centre"):
        check_psf(np.roll(psf, 3, axis=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_psf(born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100, size=16))  # even: 0.5 px off


def test_read_psf_files(tmp_path: Path):
    volume = born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=100, size=17, nz=5, z_step_nm=200)
    good = write_tiff(tmp_path / "psf.tif", volume, axes="ZYX", pixel_size_um=0.1, z_step_um=0.2)
    image = read_psf(good)
    assert image.axes == "ZYX" and image.pixel_size_um == pytest.approx(0.1) and image.z_step_um == pytest.approx(0.2)
    np.testing.assert_array_equal(image.data, volume)

    stack = write_tiff(tmp_path / "tc.tif", np.stack([volume[:2], volume[:2]]), axes="TZYX")
    with pytest.raises(ImageReadError, match=r"tc\.tif.*one channel and one time point"):
        read_psf(stack)
    text = tmp_path / "notes.tif"
    text.write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.tif"):
        read_psf(text)
    blank = write_tiff(tmp_path / "blank.tif", np.zeros((9, 9), np.float32))
    with pytest.raises(ImageReadError, match=r"blank\.tif: has no positive values"):
        read_psf(blank)
