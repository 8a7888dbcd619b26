"""Optics and classical restoration: the request's optics, PSFs, Richardson-Lucy, classical baselines, registration.

Checked against the Fiji goldens (PSF Generator, DeconvolutionLab2, TurboReg) in
tests/engine/test_psf.py, test_deconvolution.py and test_registration.py. Public names resolve lazily.
"""

from decongan.engine._lazy import lazy_api

_API = {
    "PsfWarning": "psf", "airy_fwhm_nm": "psf", "born_wolf_psf": "psf", "check_psf": "psf",
    "gaussian_psf": "psf", "psf_focal_plane": "psf", "read_psf": "psf",
    "DeconvolvedImage": "image_deconvolution", "deconvolve_image": "image_deconvolution",
    "iter_deconvolve_image": "image_deconvolution", "iter_richardson_lucy": "deconvolution",
    "richardson_lucy": "deconvolution",
    "RegistrationError": "registration", "RegistrationResult": "registration", "Transform2D": "registration",
    "apply_transform": "registration", "iter_register": "registration", "register": "registration",
    "Block": "request", "block_psfs": "request", "DeconvolutionSettings": "request", "Optics": "request", "OpticsError": "request",
    "Quantity": "request", "focal_plane": "request", "plan_blocks": "request", "psf_for_grid": "request",
    "RlMemoryEstimate": "rl_memory", "estimate_rl_memory": "rl_memory",
    "BASELINES": "classical", "BaselineSpec": "classical", "restore_array": "classical", "restore_image": "classical",
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_api(__name__, _API, globals())
