"""Classical restoration baselines beside Richardson-Lucy: denoisers, Wiener/Tikhonov, denoise-then-RL.

Every baseline is a :class:`BaselineSpec`: a method name from :data:`BASELINES`, its kind
(``"denoise"``, ``"deconvolve"`` or ``"combined"``) and its parameters with their units; the spec's
:meth:`BaselineSpec.as_dict` goes into each result's provenance.

Methods
-------
``gaussian`` (denoise)
    ``scipy.ndimage.gaussian_filter`` with ``sigma_px`` (pixels) along Y and X only (Z stacks: plane by
    plane, the z sampling being different), reflecting borders, computed in float64.
``nlm`` (denoise)
    ``skimage.restoration.denoise_nl_means`` (fast mode) with ``h = h_sigma * sigma``, where ``sigma`` is the
    plane's noise standard deviation from ``skimage.restoration.estimate_sigma`` (wavelet MAD, also passed to
    NLM), patches of ``patch_px`` pixels searched within ``distance_px``. 2-D only: Z stacks plane by plane.
``tv`` (denoise)
    ``skimage.restoration.denoise_tv_chambolle`` with ``weight = weight_sigma * sigma`` (``sigma`` as for NLM,
    so the weight follows the noise level of each plane). 2-D: Z stacks plane by plane.
``rl``, ``rltv`` (deconvolve)
    The engine's Richardson-Lucy / RL-TV (:mod:`decongan.engine.optics.deconvolution`, numerics untouched)
    with ``iterations`` (and ``tv_lambda``), the other settings from ``DEFAULT_SETTINGS`` (padded edges).
``wiener`` (deconvolve)
    Closed-form Tikhonov-regularised inverse filter ``X = conj(H) Y / (|H|^2 + wiener_lambda)`` with the
    PSF normalised to sum 1 (so ``|H(0)| = 1`` and ``wiener_lambda`` is dimensionless), placed with its
    centre ``n // 2`` at the origin (the engine's ``"centred"`` placement). Edges: the image is extended
    by half the PSF size by mirror reflection (``numpy.pad`` ``"symmetric"``) up to a fast FFT length, and
    the central part is returned; 2-D or 3-D with the PSF's dimension. A linear filter: its output may be
    negative near sharp edges (ringing); it is not clipped.
``gaussian+rl``, ``nlm+rl``, ``tv+rl`` (combined)
    The denoiser, then RL on the denoised image, each with its own parameters.

BM3D is not offered: its PyPI package (``bm3d``) is licensed for non-commercial use only and depends on
a prebuilt binary (``bm4d``).

Whole images (:func:`restore_image`) go plane by plane for the denoisers (every T, Z, C plane) and
through :func:`decongan.engine.optics.request.plan_blocks` / ``block_psfs`` for RL and Wiener, as
every deconvolution door does.

The module is a little over 500 lines because the registry of every baseline's parameters, units and
tuning grids stays beside the code that runs them (one place to read what a parameter means).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.io import MicroscopyImage
from decongan.engine.optics.request import DEFAULT_SETTINGS, DEFAULT_TV_LAMBDA, DeconvolutionSettings
from decongan.engine.provenance import Provenance

Kind = Literal["denoise", "deconvolve", "combined"]


class BaselineError(DeconganError, ValueError):
    """An unknown baseline, a parameter out of its range, or a missing PSF; the message says which."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a baseline.

    Attributes
    ----------
    name : str
        Key in the spec's parameters (``"sigma_px"``, ``"iterations"`` ...).
    unit : str
        ``"px"``, ``"-"`` (dimensionless), ``"noise sigma"`` (multiples of the estimated noise std).
    default : float
        The stated default (used when nothing is tuned).
    grid : tuple of float
        The values a tuning tries, in increasing order.
    low, high : float
        Allowed range (``low < value <= high``; ``low`` inclusive for integers).
    integer : bool
        Whole numbers only (iterations, patch sizes).
    description : str
        What it does, in words.
    """

    name: str
    unit: str
    default: float
    grid: tuple[float, ...]
    low: float
    high: float
    integer: bool = False
    description: str = ""

    def check(self, value: Any, method: str) -> float | int:
        """The value as a number in range, else :class:`BaselineError` naming the method and parameter."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise BaselineError(f"{method}: {self.name} must be a number, got {value!r}", value=value)
        number = float(value)
        if self.integer:
            if not number.is_integer() or not self.low <= number <= self.high:
                raise BaselineError(f"{method}: {self.name} must be a whole number from {self.low:g} to "
                                    f"{self.high:g}, got {value!r}", value=value)
            return int(number)
        if not (math.isfinite(number) and self.low < number <= self.high):
            raise BaselineError(f"{method}: {self.name} must be above {self.low:g} and at most {self.high:g} "
                                f"({self.unit}), got {value!r}", value=value)
        return number


_SIGMA = Parameter("sigma_px", "px", 1.0, (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0), 0.0, 50.0,
                   description="Gaussian standard deviation along Y and X")
_H = Parameter("h_sigma", "noise sigma", 0.8, (0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 6.0), 0.0, 20.0,
               description="NLM cut-off h in multiples of the plane's estimated noise std")
_PATCH = Parameter("patch_px", "px", 5, (5,), 3, 21, integer=True, description="NLM patch side")
_DISTANCE = Parameter("distance_px", "px", 6, (6,), 1, 30, integer=True, description="NLM search distance")
_WEIGHT = Parameter("weight_sigma", "noise sigma", 1.0, (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0), 0.0, 1000.0,
                    description="TV (Chambolle) weight in multiples of the plane's estimated noise std")
_ITERATIONS = Parameter("iterations", "-", DEFAULT_SETTINGS.iterations, (1, 2, 3, 5, 8, 12, 20, 30, 50), 1, 10000,
                        integer=True, description="Richardson-Lucy iterations")
_TV_LAMBDA = Parameter("tv_lambda", "-", DEFAULT_TV_LAMBDA, (0.002, 0.01, 0.04), 0.0, 0.16,
                       description="RL-TV weight (Dey et al.; below 1/6 so that 3-D stays stable)")
_WIENER = Parameter("wiener_lambda", "-", 1e-2, (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0), 0.0, 1e6,
                    description="Tikhonov regularisation, relative to |H(0)|^2 = 1")
_COMBINED_ITERATIONS = replace(_ITERATIONS, grid=(1, 2, 5, 10, 20))


@dataclass(frozen=True)
class BaselineMethod:
    """A baseline of :data:`BASELINES`: what it is and which parameters it takes.

    Attributes
    ----------
    method : str
        Its name (``"gaussian"``, ``"nlm+rl"`` ...).
    kind : {"denoise", "deconvolve", "combined"}
    title : str
        Human name used in labels.
    parameters : tuple of Parameter
    needs_psf : bool
        Deconvolution (and combinations) need the LQ system's PSF.
    per_plane : bool
        The method is 2-D only and runs plane by plane on Z stacks.
    """

    method: str
    kind: Kind
    title: str
    parameters: tuple[Parameter, ...]
    needs_psf: bool
    per_plane: bool

    def parameter(self, name: str) -> Parameter:
        """The :class:`Parameter` called ``name`` (``KeyError`` if the method has none)."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)


#: every baseline, by method name
BASELINES: dict[str, BaselineMethod] = {b.method: b for b in (
    BaselineMethod("gaussian", "denoise", "Gaussian", (_SIGMA,), False, True),
    BaselineMethod("nlm", "denoise", "NLM", (_H, _PATCH, _DISTANCE), False, True),
    BaselineMethod("tv", "denoise", "TV", (_WEIGHT,), False, True),
    BaselineMethod("rl", "deconvolve", "RL", (_ITERATIONS,), True, False),
    BaselineMethod("rltv", "deconvolve", "RL-TV", (replace(_ITERATIONS, grid=(3, 5, 10, 20, 40)), _TV_LAMBDA),
                   True, False),
    BaselineMethod("wiener", "deconvolve", "Wiener", (_WIENER,), True, False),
    BaselineMethod("gaussian+rl", "combined", "Gaussian+RL", (replace(_SIGMA, grid=(0.5, 1.0, 1.5, 2.0, 3.0)),
                                                               _COMBINED_ITERATIONS), True, True),
    BaselineMethod("nlm+rl", "combined", "NLM+RL", (replace(_H, grid=(0.6, 0.8, 1.0)), _PATCH, _DISTANCE,
                                                     _COMBINED_ITERATIONS), True, True),
    BaselineMethod("tv+rl", "combined", "TV+RL", (replace(_WEIGHT, grid=(0.5, 1.0, 2.0, 4.0)),
                                                   _COMBINED_ITERATIONS), True, True),
)}


def baseline_method(method: str) -> BaselineMethod:
    """The :data:`BASELINES` entry of ``method``.

    Parameters
    ----------
    method : str
        A name from :data:`BASELINES`.

    Returns
    -------
    BaselineMethod

    Raises
    ------
    BaselineError
        For an unknown name (the message lists the known ones).
    """
    try:
        return BASELINES[method]
    except KeyError:
        raise BaselineError(f"unknown baseline {method!r}; known: {', '.join(BASELINES)}", value=method) from None


def _format(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class BaselineSpec:
    """A baseline with all its parameters (validated; missing ones take the stated defaults).

    Attributes
    ----------
    method : str
        A name from :data:`BASELINES`.
    parameters : dict of str to number
        Every parameter of the method, in the units of :attr:`units`.
    """

    method: str
    parameters: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        entry = baseline_method(self.method)
        given = dict(self.parameters)
        unknown = sorted(set(given) - {p.name for p in entry.parameters})
        if unknown:
            raise BaselineError(f"{self.method}: unknown parameter(s) {', '.join(unknown)}; it takes "
                                f"{', '.join(p.name for p in entry.parameters)}", value=unknown)
        checked = {p.name: p.check(given.get(p.name, p.default), self.method) for p in entry.parameters}
        object.__setattr__(self, "parameters", checked)

    @property
    def entry(self) -> BaselineMethod:
        """The :data:`BASELINES` entry."""
        return BASELINES[self.method]

    @property
    def kind(self) -> Kind:
        """``"denoise"``, ``"deconvolve"`` or ``"combined"``."""
        return self.entry.kind

    @property
    def units(self) -> dict[str, str]:
        """Parameter name -> unit."""
        return {p.name: p.unit for p in self.entry.parameters}

    @property
    def label(self) -> str:
        """Column title, e.g. ``"Gaussian sigma_px=1.5"`` or ``"NLM+RL h_sigma=0.8 iterations=5"``."""
        shown = [p for p in self.entry.parameters if len(p.grid) > 1 or p.name in ("iterations",)]
        return " ".join([self.entry.title] + [f"{p.name}={_format(self.parameters[p.name])}" for p in shown])

    def with_parameters(self, **values: float) -> BaselineSpec:
        """A copy with some parameters replaced (validated again)."""
        return BaselineSpec(self.method, {**self.parameters, **values})

    def as_dict(self) -> dict[str, Any]:
        """``{"method", "kind", "parameters", "units", "per_plane"}`` for provenance and JSON."""
        return {"method": self.method, "kind": self.kind, "parameters": dict(self.parameters), "units": self.units,
                "per_plane": self.entry.per_plane}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineSpec:
        """The spec written by :meth:`as_dict` (``method`` and ``parameters`` are read; units are checked)."""
        if not isinstance(data, Mapping) or "method" not in data:
            raise BaselineError(f"a baseline needs a 'method' and 'parameters', got {data!r}", value=data)
        spec = cls(str(data["method"]), dict(data.get("parameters") or {}))
        units = data.get("units")
        if units is not None and dict(units) != spec.units:
            raise BaselineError(f"{spec.method}: recorded units {dict(units)} differ from this version's "
                                f"{spec.units}", value=units)
        return spec


# ---------------------------------------------------------------------------------------------
# the computations, one block (Y, X) or (Z, Y, X) of one channel
# ---------------------------------------------------------------------------------------------
def noise_sigma(plane: np.ndarray) -> float:
    """The noise standard deviation of one plane (``skimage.restoration.estimate_sigma``, wavelet MAD).

    Parameters
    ----------
    plane : ndarray, shape (Y, X)
        Intensities in the image's units.

    Returns
    -------
    float
        Standard deviation, image units (0 for a noise-free plane).
    """
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(np.asarray(plane, dtype=np.float64)))


def _planes(data: np.ndarray) -> np.ndarray:
    return data.reshape((-1, *data.shape[-2:]))


def _denoise_plane(method: str, plane: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    if method == "gaussian":
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(plane, float(p["sigma_px"]))
    sigma = noise_sigma(plane)
    if sigma <= 0:  # nothing to remove: both denoisers would return the plane
        return plane
    if method == "nlm":
        from skimage.restoration import denoise_nl_means

        return denoise_nl_means(plane, patch_size=int(p["patch_px"]), patch_distance=int(p["distance_px"]),
                                h=float(p["h_sigma"]) * sigma, sigma=sigma, fast_mode=True, preserve_range=True)
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(plane, weight=float(p["weight_sigma"]) * sigma)


def denoise(spec: BaselineSpec, data: np.ndarray) -> np.ndarray:
    """Apply the denoising step of ``spec`` to every YX plane of ``data``.

    Parameters
    ----------
    spec : BaselineSpec
        A ``denoise`` or ``combined`` baseline (its denoiser's parameters are used).
    data : ndarray, shape (..., Y, X)
        Any real dtype; computed in float64.

    Returns
    -------
    ndarray, float32, shape of ``data``

    Raises
    ------
    BaselineError
        For a deconvolution-only spec or non-finite data.
    """
    if spec.kind == "deconvolve":
        raise BaselineError(f"{spec.method} has no denoising step", value=spec.method)
    method = spec.method.split("+", 1)[0]
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim < 2 or not np.all(np.isfinite(arr)):
        raise BaselineError(f"{spec.label}: the image must be at least 2-D and finite, got shape {arr.shape}")
    out = np.empty(arr.shape, dtype=np.float32)
    flat_in, flat_out = _planes(arr), _planes(out)
    for i, plane in enumerate(flat_in):
        flat_out[i] = _denoise_plane(method, plane, spec.parameters)
    return out


def wiener_deconvolve(data: np.ndarray, psf: np.ndarray, wiener_lambda: float) -> np.ndarray:
    """Tikhonov-regularised inverse filter with mirrored edges (module docstring: ``wiener``).

    Parameters
    ----------
    data : ndarray, shape (Y, X) or (Z, Y, X)
        Measured image (any real dtype; computed in float64).
    psf : ndarray, same number of dimensions
        PSF on the image's grid, centre at index ``n // 2`` (any normalisation: divided by its sum).
    wiener_lambda : float
        Regularisation, > 0, relative to ``|H(0)|^2 = 1`` (dimensionless).

    Returns
    -------
    ndarray, float32, shape of ``data``
        The estimate, image units (not clipped).

    Raises
    ------
    BaselineError
        Mismatched dimensions, a PSF that does not sum to a positive number, a bad ``wiener_lambda``.
    """
    from scipy import fft

    from decongan.engine.optics.fft_conv import fast_shape, kernel_at_origin, kernel_centre

    y = np.asarray(data, dtype=np.float64)
    kernel = np.asarray(psf, dtype=np.float64)
    if kernel.ndim != y.ndim or y.ndim not in (2, 3):
        raise BaselineError(f"Wiener: the image is {y.ndim}-D {y.shape} but the PSF {kernel.ndim}-D {kernel.shape}")
    lam = BASELINES["wiener"].parameter("wiener_lambda").check(wiener_lambda, "wiener")
    total = float(kernel.sum())
    if not (math.isfinite(total) and total > 0):
        raise BaselineError(f"Wiener: the PSF sums to {total:g}; it must sum to a positive number", value=total)
    kernel = kernel / total
    margins = [k // 2 for k in kernel.shape]
    canvas = fast_shape([max(n + 2 * m, k) for n, m, k in zip(y.shape, margins, kernel.shape, strict=True)])
    pads = [(m, c - n - m) for n, m, c in zip(y.shape, margins, canvas, strict=True)]
    padded = np.pad(y, pads, mode="symmetric")
    otf = fft.rfftn(kernel_at_origin(kernel, canvas, kernel_centre(kernel.shape, canvas, "centred")))
    estimate = fft.irfftn(fft.rfftn(padded) * otf.conj() / (otf.real ** 2 + otf.imag ** 2 + lam), s=canvas)
    return np.ascontiguousarray(estimate[tuple(slice(m, m + n) for m, n in zip(margins, y.shape, strict=True))],
                                dtype=np.float32)


def _rl_options(spec: BaselineSpec, settings: DeconvolutionSettings) -> dict[str, Any]:
    options = settings.as_options()
    options["iterations"] = int(spec.parameters["iterations"])
    options["method"] = "rltv" if spec.method == "rltv" else "rl"
    if spec.method == "rltv":
        options["tv_lambda"] = float(spec.parameters["tv_lambda"])
    return options


def _need_psf(spec: BaselineSpec, psf: Any) -> None:
    if spec.entry.needs_psf and psf is None:
        raise BaselineError(f"{spec.label} deconvolves: it needs the PSF of the LQ system", value=spec.method)


def restore_array(spec: BaselineSpec, data: np.ndarray, psf: np.ndarray | None = None, *,
                  settings: DeconvolutionSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """Run one baseline on one block of one channel.

    Parameters
    ----------
    spec : BaselineSpec
    data : ndarray, shape (Y, X) or (Z, Y, X)
        Intensities (non-negative for RL).
    psf : ndarray, optional
        PSF of the LQ system on the data's grid, same number of dimensions (deconvolution and
        combinations only).
    settings : DeconvolutionSettings
        RL settings other than iterations / TV weight (default: the engine's, padded edges).

    Returns
    -------
    ndarray, float32, shape of ``data``
        The restoration, image units.

    Raises
    ------
    BaselineError
        A missing PSF, a PSF of the wrong dimension for Wiener.
    ValueError
        RL's own checks (non-finite values, a PSF that does not fit).
    """
    _need_psf(spec, psf)
    if spec.kind == "denoise":
        return denoise(spec, data)
    if spec.method == "wiener":
        return wiener_deconvolve(data, psf, spec.parameters["wiener_lambda"])  # type: ignore[arg-type]
    from decongan.engine.optics.deconvolution import richardson_lucy

    source = denoise(spec, data) if spec.kind == "combined" else data
    return richardson_lucy(source, psf, **_rl_options(spec, settings))  # type: ignore[arg-type]


def restore_image(spec: BaselineSpec, image: MicroscopyImage, psf: np.ndarray | Sequence[np.ndarray] | None = None,
                  *, settings: DeconvolutionSettings = DEFAULT_SETTINGS, psf_source: str | None = None) -> Any:
    """Run one baseline on a whole image (every T, C; Z as the method allows) with provenance.

    Parameters
    ----------
    spec : BaselineSpec
    image : MicroscopyImage
        Axes among T, Z, C, Y, X.
    psf : ndarray or sequence of ndarray, optional
        A 2-D or 3-D PSF on the image's grid, or one per channel (deconvolution and combinations).
    settings : DeconvolutionSettings
        RL settings other than iterations / TV weight.
    psf_source : str, optional
        Description of the PSF for the provenance.

    Returns
    -------
    engine.optics.deconvolution.DeconvolvedImage
        float32 image with the input's axes and calibration; provenance ``method`` = the spec's label,
        ``parameters["baseline"]`` = :meth:`BaselineSpec.as_dict`.

    Raises
    ------
    BaselineError
        A missing PSF.
    NegativeImageError
        RL on an image with negative values (subtract the offset first).
    """
    from decongan.engine.optics.deconvolution import DeconvolvedImage, deconvolve_image

    _need_psf(spec, psf)
    if image.metadata.get("rgb"):
        image.require_single_channel()
    notes: list[str] = []
    if spec.entry.per_plane and "Z" in image.axes and image.n_z > 1:
        notes.append(f"{spec.entry.title.split('+')[0]} is 2-D: the Z stack was denoised plane by plane")
    parameters: dict[str, Any] = {"baseline": spec.as_dict()}
    if psf_source:
        parameters["psf"] = psf_source
    if spec.kind == "denoise":
        result = image.with_data(denoise(spec, image.data))
        return DeconvolvedImage(result, Provenance(method=spec.label, backend="engine/cpu (scipy, scikit-image)",
                                                   parameters=parameters, notes=notes))
    if spec.method == "wiener":
        return _wiener_image(spec, image, psf, parameters, notes)  # type: ignore[arg-type]
    source = image.with_data(denoise(spec, image.data)) if spec.kind == "combined" else image
    deconvolved = deconvolve_image(source, psf, psf_source=psf_source, **_rl_options(spec, settings))  # type: ignore[arg-type]
    provenance = deconvolved.provenance
    provenance.parameters = {**provenance.parameters, **parameters, "rl_method": provenance.method}
    provenance.method = spec.label
    provenance.notes = notes + list(provenance.notes)
    return DeconvolvedImage(deconvolved.image, provenance)


def _wiener_image(spec: BaselineSpec, image: MicroscopyImage, psf: np.ndarray | Sequence[np.ndarray],
                  parameters: dict[str, Any], notes: list[str]) -> Any:
    from decongan.engine.optics.deconvolution import DeconvolvedImage
    from decongan.engine.optics.psf import check_psf
    from decongan.engine.optics.request import block_psfs, plan_blocks

    psfs = [check_psf(p) for p in ([psf] if isinstance(psf, np.ndarray) else psf)]
    plan = plan_blocks(image.axes, image.data.shape, [p.ndim for p in psfs])
    kernels, psf_notes = block_psfs(plan, psfs)
    out = np.empty(image.data.shape, dtype=np.float32)
    for block in plan:
        out[block.index] = wiener_deconvolve(image.data[block.index], kernels[block.channel],
                                             spec.parameters["wiener_lambda"])
    parameters["psf_shapes"] = sorted({tuple(k.shape) for k in kernels.values()})
    return DeconvolvedImage(image.with_data(out), Provenance(
        method=spec.label, backend="engine/cpu (scipy.fft)", parameters=parameters,
        notes=notes + psf_notes + ["Wiener/Tikhonov is linear: negative values near edges are ringing, not clipped"]))


__all__ = [
    "BASELINES",
    "BaselineError",
    "BaselineMethod",
    "BaselineSpec",
    "Parameter",
    "baseline_method",
    "denoise",
    "noise_sigma",
    "restore_array",
    "restore_image",
    "wiener_deconvolve",
]
