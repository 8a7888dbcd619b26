"""Bead FWHM by 2-D Gaussian fits: Fiji's Born & Wolf PSFs, synthetic beads, and a real confocal bead stack."""

from __future__ import annotations

import numpy as np
import pytest

from decongan.engine.io import read_image
from decongan.engine.metrics import bead_fwhm
from decongan.engine.metrics.beads import FWHM_PER_SIGMA

GOLDEN_PSFS = {  # file -> (wavelength nm, NA, pixel nm)
    "psf_bw_2d_na1.4_ni1.515_dxy159_lambda461_65x65.tif": (461, 1.4, 159),
    "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif": (520, 1.4, 159),
    "psf_bw_2d_na1.4_ni1.515_dxy159_lambda565_65x65.tif": (565, 1.4, 159),
    "psf_bw_2d_na0.3_ni1.0_dxy650_lambda520_65x65.tif": (520, 0.3, 650),
}


def _fit_golden(golden_dir, name):
    wavelength, na, pixel = GOLDEN_PSFS[name]
    result = bead_fwhm(read_image(golden_dir / name).data, pixel_nm=pixel)
    assert result.n_ok == 1
    return result, 0.51 * wavelength / na


def test_fwhm_of_the_golden_born_wolf_psf_matches_the_analytic_value(golden_dir):
    """PSF Generator, NA 1.4, 520 nm, 159 nm pixels: FWHM ~ 0.51 lambda / NA = 189 nm."""
    result, analytic = _fit_golden(golden_dir, "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif")
    bead = result.beads[0]
    assert (bead.y, bead.x) == (pytest.approx(32, abs=0.01), pytest.approx(32, abs=0.01))
    assert bead.fwhm_x_nm == pytest.approx(bead.fwhm_y_nm, rel=1e-3)  # radially symmetric
    # a Gaussian fitted to an Airy disc has FWHM ~0.49-0.51 lambda/NA; sampling is 1.2 px per FWHM here
    assert result.median_fwhm_nm == pytest.approx(analytic, rel=0.06)


@pytest.mark.parametrize("name", ["psf_bw_2d_na1.4_ni1.515_dxy159_lambda565_65x65.tif",
                                  "psf_bw_2d_na0.3_ni1.0_dxy650_lambda520_65x65.tif"])
def test_fwhm_of_other_golden_psfs(golden_dir, name):
    result, analytic = _fit_golden(golden_dir, name)
    assert result.median_fwhm_nm == pytest.approx(analytic, rel=0.06)


def test_fwhm_grows_with_wavelength(golden_dir):
    names = [n for n in GOLDEN_PSFS if "na1.4" in n]
    fwhm = [_fit_golden(golden_dir, n)[0].median_fwhm_nm for n in names]  # 461, 520, 565 nm
    assert fwhm == sorted(fwhm) and len(set(fwhm)) == 3


def test_synthetic_elliptical_beads_are_recovered_and_crowded_ones_skipped():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:240].astype(float)
    image = np.full(yy.shape, 50.0)
    centres = [(40.3, 40.7), (40.0, 160.2), (150.6, 60.1), (140.2, 180.9)]
    sy, sx = 3.0, 2.0
    for amplitude, (cy, cx) in zip((800, 600, 1000, 700), centres, strict=True):
        image += amplitude * np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
    # a close pair (not isolated): must not be fitted
    for cy, cx in ((100.0, 110.0), (100.0, 117.0)):
        image += 900 * np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
    image += rng.normal(0, 5, image.shape)
    result = bead_fwhm(image, pixel_nm=40.0)
    fitted = sorted((round(b.y), round(b.x)) for b in result.beads if b.ok)
    assert fitted == sorted((round(cy), round(cx)) for cy, cx in centres)
    assert result.median_fwhm_y_px == pytest.approx(FWHM_PER_SIGMA * sy, rel=0.02)
    assert result.median_fwhm_x_px == pytest.approx(FWHM_PER_SIGMA * sx, rel=0.02)
    assert result.median_fwhm_nm == pytest.approx(40.0 * FWHM_PER_SIGMA * (sx + sy) / 2, rel=0.02)


def test_real_confocal_bead_stack_gives_a_plausible_lateral_fwhm(shared_data):
    """MPI-CBG confocal bead stack, 22.5 nm pixels: 4 isolated beads, each fitted on its best plane."""
    stack = read_image(shared_data / "psf_beads_and_otfs" / "confocal_beads_mpicbg_Bead_Image1_crop.tif")
    pixel_nm = stack.pixel_size_um * 1000
    result = bead_fwhm(stack.data, pixel_nm=pixel_nm)
    assert result.n_ok == 4
    assert all(b.r_squared > 0.95 for b in result.beads)
    # a high-NA confocal resolves ~150-300 nm laterally; the fit must land there for every bead
    assert 150 < result.median_fwhm_nm < 300
    for b in result.beads:
        assert 120 < b.fwhm_x_nm < 300 and 120 < b.fwhm_y_nm < 300
    # beads agree with each other (same PSF)
    spread = np.ptp([(b.fwhm_x_nm + b.fwhm_y_nm) / 2 for b in result.beads])
    assert spread < 0.1 * result.median_fwhm_nm


def test_no_beads_in_a_flat_image():
    result = bead_fwhm(np.full((64, 64), 3.0))
    assert result.beads == [] and np.isnan(result.median_fwhm_px)
