"""One request layer: what is deconvolved, with which optics, settings and PSF, block by block.

Every door (``decongan deconvolve``, ``batch``, ``compare``, ``demo``, ``psf``, the GUI, the Fiji
adapter) builds its request from the pieces here, so the same image and PSF give the same result
whichever door is used:

:class:`Optics`
    NA, immersion index, emission wavelength, pixel size and z step, each a :class:`Quantity` that
    says where it came from (the file's metadata, the user, or a stated assumption).
:class:`DeconvolutionSettings`
    Iterations, method, edges, start estimate...: the defaults of every door, validated in one place.
:func:`psf_for_grid`
    The one Born & Wolf PSF builder for an image grid (size chosen by an energy rule, never as large
    as the stack unless asked).
:func:`focal_plane`
    The one in-focus-plane rule: the plane holding the PSF's peak.
:func:`plan_blocks`
    The one block planner: which planes or volumes of a (T, Z, C, Y, X) image go through
    deconvolution together, and with which PSF (per channel).
:func:`plan_lateral_tiles`, :func:`rl_exact_halo`
    The lateral tile planner for images read tile by tile (OME-Zarr), in
    :mod:`decongan.engine.optics.tile_plan` and re-exported here.

Numpy only at import time (scipy inside the PSF functions); torch is never imported here.

Why this module is long
-----------------------
This is the one request layer every door builds from. Its parts (optics with their sources, the
settings and their defaults, the PSF for a grid, the focal plane, the block planner) are each
short and share the :class:`Quantity` / :class:`Optics` vocabulary and one error type, so a door
imports, and a reviewer reads, one place. The block planner (:class:`Block`, :func:`plan_blocks`,
:func:`block_psfs`) is the piece to move to its own module should this one grow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.optics.psf import born_wolf_profile, born_wolf_psf, psf_focal_plane
from decongan.engine.optics.tile_plan import LateralTile, plan_lateral_tiles, rl_exact_halo

#: axes a MicroscopyImage may have, in their canonical order
CANONICAL_AXES = "TZCYX"

BlockAxes = Literal["ZYX", "YX"]
PsfUse = Literal["as_is", "focal_plane"]
Source = Literal["metadata", "user", "assumption"]
SOURCES: tuple[str, ...] = ("metadata", "user", "assumption")

#: deconvolution choices (engine.optics.deconvolution re-exports them)
EDGE_MODES: tuple[str, ...] = ("circular", "padded", "zero")
METHODS: tuple[str, ...] = ("rl", "rltv")
TV_VARIANTS: tuple[str, ...] = ("dey", "dl2")
INITIALS: tuple[str, ...] = ("input", "flat")
#: RL acceleration: "none" (plain RL, DL2/scikit-image parity) or "biggs" (engine.optics.rl_acceleration)
ACCELERATIONS: tuple[str, ...] = ("none", "biggs")
DEFAULT_TV_LAMBDA = 0.01
#: THE default boundary model for real images (every door); "circular" only when asked (DL2 parity)
DEFAULT_EDGES = "padded"
#: fraction of the PSF's energy that psf_for_grid keeps (see its docstring)
DEFAULT_PSF_ENERGY = 0.99


class OpticsError(DeconganError, ValueError):
    """An optics value is missing or impossible; the message names the image and what to give, in words.

    Parameters
    ----------
    message : str
        The message (names the image and the values, never a front-end's option).
    missing : tuple of str, optional
        The optics field names that are unknown (``"na"``, ``"ni"``, ``"wavelength_nm"``,
        ``"pixel_nm"``, ``"z_step_nm"``), so a front-end can name its own options; empty when a
        value is impossible rather than missing.
    """

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


# ---------------------------------------------------------------------------------------------
# optics with sources
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantity:
    """A value with its unit and where it came from.

    Attributes
    ----------
    value : float or None
        None when unknown.
    unit : str
        "nm", or "" for dimensionless values (NA, refractive index).
    source : {"metadata", "user", "assumption"} or None
        The image file's calibration, a value the user gave (command-line option, GUI field, API
        argument), or an assumption stated by the caller (``note`` says which); None when unknown.
    note : str
        Free text (e.g. why an assumption was made).
    """

    value: float | None
    unit: str = ""
    source: Source | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.source is not None and self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.value is not None:
            number = float(self.value)
            if not math.isfinite(number) or number <= 0:
                raise ValueError(f"must be a positive number{(' in ' + self.unit) if self.unit else ''}, got {self.value!r}")
            object.__setattr__(self, "value", number)
            if self.source is None:
                object.__setattr__(self, "source", "user")

    @property
    def known(self) -> bool:
        return self.value is not None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "unit": self.unit, "source": self.source}
        if self.note:
            out["note"] = self.note
        return out


#: per optics field: unit, words for messages (a front-end adds its own option names)
_OPTICS_FIELDS: dict[str, tuple[str, str]] = {
    "na": ("", "numerical aperture (NA)"),
    "ni": ("", "immersion refractive index"),
    "wavelength_nm": ("nm", "emission wavelength"),
    "pixel_nm": ("nm", "lateral pixel size"),
    "z_step_nm": ("nm", "z step"),
}


def _quantity(name: str, value: Any, source: Source | None) -> Quantity:
    unit = _OPTICS_FIELDS[name][0]
    if isinstance(value, Quantity):
        return value
    if value is None:
        return Quantity(None, unit, None)
    try:
        return Quantity(float(value), unit, source)
    except (TypeError, ValueError):
        raise OpticsError(f"{_OPTICS_FIELDS[name][1]} must be a positive number"
                          f"{(' in ' + unit) if unit else ''}, got {value!r}") from None


@dataclass(frozen=True)
class Optics:
    """The optics and sampling of one image, each value with its source.

    Attributes
    ----------
    na, ni, wavelength_nm, pixel_nm, z_step_nm : Quantity
        Numerical aperture, immersion refractive index, emission wavelength (nm), lateral pixel
        size in the sample plane (nm), axial step between planes (nm).
    origin : str
        What the values describe (the image file's path), named in error messages.

    Raises
    ------
    OpticsError
        When NA >= ni or ni < 1: no objective can have them.
    """

    na: Quantity = field(default_factory=lambda: Quantity(None))
    ni: Quantity = field(default_factory=lambda: Quantity(None))
    wavelength_nm: Quantity = field(default_factory=lambda: Quantity(None, "nm"))
    pixel_nm: Quantity = field(default_factory=lambda: Quantity(None, "nm"))
    z_step_nm: Quantity = field(default_factory=lambda: Quantity(None, "nm"))
    origin: str = "image"

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _OPTICS_FIELDS:
                value = getattr(self, f.name)
                if not isinstance(value, Quantity):
                    object.__setattr__(self, f.name, _quantity(f.name, value, "user"))
        if self.ni.known and self.ni.value < 1.0:  # type: ignore[operator]
            raise OpticsError(f"{self.origin}: the immersion refractive index ni must be >= 1 (air 1.0, water 1.33, "
                              f"oil 1.515), got {self.ni.value:g} ({self.ni.source})")
        if self.na.known and self.ni.known and self.na.value >= self.ni.value:  # type: ignore[operator]
            raise OpticsError(f"{self.origin}: NA {self.na.value:g} ({self.na.source}) must be smaller than the "
                              f"immersion index ni {self.ni.value:g} ({self.ni.source}); check the objective's "
                              "numerical aperture and its immersion medium")

    @classmethod
    def for_image(cls, image: Any, *, na: float | Quantity | None = None, ni: float | Quantity | None = None,
                  wavelength_nm: float | Quantity | None = None, pixel_nm: float | Quantity | None = None,
                  z_step_nm: float | Quantity | None = None) -> Optics:
        """The optics of ``image``: the user's values over the image's calibration.

        Parameters
        ----------
        image : engine.io.MicroscopyImage or None
            Its ``pixel_size_um`` / ``z_step_um`` (micrometres) give ``pixel_nm`` / ``z_step_nm``
            with source "metadata" when the user gives none; its ``path`` names it in messages.
        na, ni, wavelength_nm, pixel_nm, z_step_nm : float or Quantity, optional
            Values given by the user (source "user"); pass a :class:`Quantity` with source
            "assumption" (and a note) for assumed values.

        Returns
        -------
        Optics
        """
        origin = str(getattr(image, "path", None) or "image")
        metadata = {"pixel_nm": getattr(image, "pixel_size_um", None), "z_step_nm": getattr(image, "z_step_um", None)}
        values: dict[str, Quantity] = {}
        for name, given in (("na", na), ("ni", ni), ("wavelength_nm", wavelength_nm), ("pixel_nm", pixel_nm),
                            ("z_step_nm", z_step_nm)):
            if given is not None:
                values[name] = _quantity(name, given, "user")
            elif metadata.get(name):
                values[name] = Quantity(float(metadata[name]) * 1000.0, "nm", "metadata")  # type: ignore[arg-type]
            else:
                values[name] = _quantity(name, None, None)
        return cls(origin=origin, **values)

    def with_values(self, **values: float | Quantity | None) -> Optics:
        """A copy with some values replaced (plain numbers count as the user's)."""
        return replace(self, **{k: _quantity(k, v, "user") for k, v in values.items() if v is not None})

    def require(self, *names: str, purpose: str = "a Born & Wolf PSF") -> None:
        """Raise :class:`OpticsError` naming the image and the options to pass when a value is missing.

        Parameters
        ----------
        names : str
            Field names (``"na"``, ``"ni"``, ``"wavelength_nm"``, ``"pixel_nm"``, ``"z_step_nm"``).
        purpose : str
            What the values are needed for (in the message).
        """
        unknown = [n for n in names if n not in _OPTICS_FIELDS]
        if unknown:
            raise ValueError(f"unknown optics value(s) {', '.join(unknown)}; choose from {', '.join(_OPTICS_FIELDS)}")
        missing = [n for n in names if not getattr(self, n).known]
        if missing:
            words = ", ".join(_OPTICS_FIELDS[n][1] for n in missing)
            given = ", ".join(f"the {_OPTICS_FIELDS[n][1]}{' in nm' if _OPTICS_FIELDS[n][0] else ''}" for n in missing)
            where = " (not in the file's metadata)" if any(n in ("pixel_nm", "z_step_nm") for n in missing) else ""
            raise OpticsError(f"{self.origin}: {purpose} needs the {words}, which {'is' if len(missing) == 1 else 'are'} "
                              f"unknown{where}; give {given} (Python: {', '.join(n + '=' for n in missing)})",
                              missing=tuple(missing))

    def provenance(self) -> dict[str, Any]:
        """``{"na": {"value", "unit", "source"[, "note"]}, ...}`` for the known values (JSON-ready)."""
        return {n: getattr(self, n).as_dict() for n in _OPTICS_FIELDS if getattr(self, n).known}

    def summary(self) -> str:
        """One line: ``NA 1.4 (user), ni 1.515 (user), 520 nm (user), pixel 100 nm (metadata)...``."""
        labels = {"na": "NA", "ni": "ni", "wavelength_nm": "emission", "pixel_nm": "pixel", "z_step_nm": "z step"}
        parts = []
        for n in _OPTICS_FIELDS:
            q = getattr(self, n)
            if q.known:
                parts.append(f"{labels[n]} {q.value:g}{(' ' + q.unit) if q.unit else ''} ({q.source})")
        return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# deconvolution settings
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeconvolutionSettings:
    """Richardson-Lucy settings: the defaults of every door, validated here.

    Attributes
    ----------
    iterations : int
        RL updates (>= 0; the command-line doors ask for >= 1).
    method : {"rl", "rltv"}
    tv_lambda : float
        RL-TV weight (dimensionless for "dey"); ignored for "rl".
    tv_variant : {"dey", "dl2"}
    edges : {"padded", "circular", "zero"}
        "padded" (Bertero-Boccacci) is THE default for real images; "circular" is
        DeconvolutionLab2's convention, only when asked for (parity with Fiji).
    initial : {"input", "flat"} or float
        First estimate.
    epsilon : float
        Ratio threshold.
    device : str
        "auto", "cpu", "cuda" or "cuda:N".
    acceleration : {"none", "biggs"}
        "biggs": Biggs-Andrews accelerated RL (engine.optics.rl_acceleration); "none" (default):
        plain RL, the iterations DeconvolutionLab2 and scikit-image run.
    """

    iterations: int = 10
    method: str = "rl"
    tv_lambda: float = DEFAULT_TV_LAMBDA
    tv_variant: str = "dey"
    edges: str = DEFAULT_EDGES
    initial: str | float = "input"
    epsilon: float = 1e-6
    device: str = "auto"
    acceleration: str = "none"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.edges not in EDGE_MODES:
            raise ValueError(f"edges must be one of {', '.join(EDGE_MODES)}, got {self.edges!r}")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, (int, np.integer)) or self.iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {self.iterations!r}")
        if not (isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be a small positive number, got {self.epsilon!r}")
        if self.tv_variant not in TV_VARIANTS:
            raise ValueError(f"tv_variant must be 'dey' or 'dl2', got {self.tv_variant!r}")
        if not (isinstance(self.tv_lambda, (int, float)) and math.isfinite(self.tv_lambda) and self.tv_lambda >= 0):
            raise ValueError(f"tv_lambda must be >= 0, got {self.tv_lambda!r}")
        if self.method == "rltv" and self.tv_variant == "dl2" and self.edges != "circular":
            raise ValueError("tv_variant='dl2' reproduces DeconvolutionLab2 and needs edges='circular'")
        if isinstance(self.initial, str):
            if self.initial not in INITIALS:
                raise ValueError(f"initial must be 'input', 'flat' or a positive number, got {self.initial!r}")
        elif isinstance(self.initial, bool) or not isinstance(self.initial, (int, float)) \
                or not math.isfinite(self.initial) or self.initial <= 0:
            raise ValueError(f"initial must be 'input', 'flat' or a positive number, got {self.initial!r}")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.acceleration not in ACCELERATIONS:
            raise ValueError(f"acceleration must be one of {', '.join(ACCELERATIONS)}, got {self.acceleration!r}")
        if self.acceleration != "none" and self.method == "rltv" and self.tv_variant == "dl2":
            raise ValueError("tv_variant='dl2' reproduces DeconvolutionLab2's own iterations; it cannot be accelerated")

    def as_options(self) -> dict[str, Any]:
        """Keyword arguments of ``engine.optics.deconvolution.deconvolve_image`` / ``iter_deconvolve_image``."""
        return {"iterations": int(self.iterations), "method": self.method, "tv_lambda": float(self.tv_lambda),
                "tv_variant": self.tv_variant, "edges": self.edges, "initial": self.initial,
                "epsilon": float(self.epsilon), "device": self.device, "acceleration": self.acceleration}

    def label(self) -> str:
        """``"RL 10 it (padded edges)"``."""
        name = "RL-TV" if self.method == "rltv" else "RL"
        accelerated = ", Biggs-Andrews accelerated" if self.acceleration == "biggs" else ""
        return f"{name} {self.iterations} it ({self.edges} edges{accelerated})"


#: the settings every door starts from
DEFAULT_SETTINGS = DeconvolutionSettings()


# ---------------------------------------------------------------------------------------------
# the PSF of an image grid
# ---------------------------------------------------------------------------------------------
def focal_plane(psf: np.ndarray) -> np.ndarray:
    """THE in-focus plane of a PSF: the (Z, Y, X) plane holding its peak (a 2-D PSF is returned as is).

    Every door (preview, 2-D image with a 3-D PSF, Fiji adapter) uses this rule, never the middle
    plane (they differ for asymmetric or even-sized stacks).
    """
    return psf_focal_plane(psf)


def _odd_cap(n: int) -> int:
    """The largest odd number <= n (at least 1)."""
    return max(1, n if n % 2 == 1 else n - 1)


def _square_side_for_energy(profile: np.ndarray, cap: int, energy: float) -> int:
    """Smallest odd side ``N <= cap`` whose centred N x N square holds ``energy`` of the cap x cap square.

    ``profile``: radial intensity at integer pixel radii (PSF Generator's interpolation).
    """
    c = (cap - 1) / 2.0
    yy = np.arange(cap, dtype=np.float64)[:, None] - c
    xx = np.arange(cap, dtype=np.float64)[None, :] - c
    plane = np.interp(np.sqrt(yy * yy + xx * xx), np.arange(profile.size, dtype=np.float64), profile)
    ring = np.maximum(np.abs(yy), np.abs(xx)).astype(np.intp)  # square "ring" index = half side
    cumulative = np.cumsum(np.bincount(ring.ravel(), weights=plane.ravel()))
    half = int(np.searchsorted(cumulative, energy * cumulative[-1] * (1 - 1e-12)))
    return min(cap, 2 * half + 1)


def psf_for_grid(optics: Optics, *, yx_shape: Sequence[int], nz: int | None = None,
                 energy: float = DEFAULT_PSF_ENERGY, full_depth: bool = False) -> np.ndarray:
    """THE Born & Wolf PSF for an image grid, sum-normalised, sized by an energy rule.

    Size rule (``energy`` = e, default 0.99; the reference is the field of the image itself):

    * axial (3-D, ``nz > 1``): the PSF is evaluated on as many planes as the image (odd, centred
      on focus) and keeps the smallest odd number of planes, centred on focus, outside which no
      plane's brightest pixel reaches ``(1 - e)`` of the focal peak (1 % for e = 0.99). A widefield
      PSF carries the same light in every plane, so an energy fraction over Z would always ask for
      the whole stack; the brightness rule keeps every plane that still has a visible structure.
      ``full_depth=True`` keeps as many planes as the image (odd) instead.
    * lateral: the smallest odd square, centred on the axis, that holds at least ``e`` of the
      energy falling on an image-sized square (odd, at most ``max(yx_shape)``), counting the
      in-focus plane for a 2-D PSF and all kept planes (the whole kept volume) for a 3-D one.

    Both sizes are capped by the image (largest odd number <= its size). Example: NA 1.4, ni 1.515,
    520 nm, 100 nm pixels, 200 nm steps, 512 x 512 x 97 image -> 21 x 67 x 67 (2-D: 55 x 55).

    Parameters
    ----------
    optics : Optics
        Needs na, ni, wavelength_nm, pixel_nm, and z_step_nm for ``nz > 1``
        (:meth:`Optics.require` raises a message naming the image otherwise).
    yx_shape : (int, int)
        The image's plane size (Y, X), pixels.
    nz : int, optional
        The image's number of planes; None or 1 gives a 2-D (in-focus) PSF.
    energy : float
        Fraction in (0, 1).
    full_depth : bool
        Keep as many planes as the image instead of the brightness rule.

    Returns
    -------
    ndarray, float32, shape (N, N) or (nz', N, N)
        Sums to 1; peak at the centre ``(N - 1) / 2`` (and plane ``(nz' - 1) / 2``).
    """
    if not (isinstance(energy, (int, float)) and 0 < energy < 1):
        raise ValueError(f"energy must be a fraction between 0 and 1 (e.g. 0.99), got {energy!r}")
    ny, nx = (int(n) for n in yx_shape)
    if ny < 1 or nx < 1:
        raise ValueError(f"yx_shape must be positive, got {tuple(yx_shape)}")
    three_d = nz is not None and int(nz) > 1
    optics.require("na", "ni", "wavelength_nm", "pixel_nm", *(("z_step_nm",) if three_d else ()))
    na, ni, lam = optics.na.value, optics.ni.value, optics.wavelength_nm.value
    pixel = optics.pixel_nm.value
    cap = max(3, _odd_cap(max(ny, nx)))
    radii = np.arange(int(math.ceil(cap / math.sqrt(2.0))) + 2, dtype=np.float64) * pixel  # type: ignore[operator]
    if not three_d:
        profile = born_wolf_profile(radii, 0.0, na=na, ni=ni, wavelength_nm=lam)[0]  # type: ignore[arg-type]
        size = max(3, _square_side_for_energy(profile, cap, energy))
        return born_wolf_psf(na=na, ni=ni, wavelength_nm=lam, pixel_nm=pixel, size=size,  # type: ignore[arg-type]
                             normalize="sum")
    dz = optics.z_step_nm.value
    nz_cap = max(3, _odd_cap(int(nz))) if int(nz) >= 3 else 3  # type: ignore[arg-type]
    half_cap = (nz_cap - 1) // 2
    profile = born_wolf_profile(radii, dz * np.arange(half_cap + 1), na=na, ni=ni, wavelength_nm=lam)  # type: ignore[arg-type,operator]
    if full_depth:
        half = half_cap
    else:
        peaks = profile.max(axis=1)  # symmetric in z: planes 0 .. half_cap of defocus
        half = int(np.flatnonzero(peaks >= (1.0 - energy) * peaks[0]).max())
    half = max(half, 1)
    projected = profile[0] + 2.0 * profile[1:half + 1].sum(axis=0)
    size = max(3, _square_side_for_energy(projected, cap, energy))
    return born_wolf_psf(na=na, ni=ni, wavelength_nm=lam, pixel_nm=pixel, size=size, nz=2 * half + 1,  # type: ignore[arg-type]
                         z_step_nm=dz, normalize="sum")


# ---------------------------------------------------------------------------------------------
# block planning
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One plane or volume that goes through deconvolution on its own.

    Attributes
    ----------
    index : tuple of (int or slice(None))
        Index into the image's data array (one entry per image axis); ``data[index]`` has the
        axes ``axes``.
    channel : int
        Channel index (0 when the image has no C axis): picks the PSF of that channel.
    axes : {"ZYX", "YX"}
        Axes of ``data[index]``.
    psf : {"as_is", "focal_plane"}
        "as_is": the channel's PSF has the block's dimensions; "focal_plane": the channel's PSF is
        3-D but the block is a 2-D image (no Z axis), so the PSF's in-focus (peak) plane is used
        (:func:`decongan.engine.optics.psf.psf_focal_plane`).
    t, z : int or None
        Time point and plane of the block (None when the image has no such axis or the block
        spans it), for labels.
    """

    index: tuple[int | slice, ...]
    channel: int
    axes: BlockAxes
    psf: PsfUse = "as_is"
    t: int | None = None
    z: int | None = None

    @property
    def label(self) -> str:
        """``"t=0 c=1"``-style description (empty for a single-block image)."""
        parts = [f"t={self.t}" if self.t is not None else "", f"z={self.z}" if self.z is not None else "",
                 f"c={self.channel}"]
        return " ".join(p for p in parts if p)


def _psf_ndims(psf_ndim_per_channel: int | Sequence[int], n_channels: int) -> list[int]:
    ndims = [psf_ndim_per_channel] if isinstance(psf_ndim_per_channel, (int, np.integer)) else list(psf_ndim_per_channel)
    if len(ndims) == 1:
        ndims = ndims * n_channels
    if len(ndims) != n_channels:
        raise ValueError(f"{len(ndims)} PSFs were given for an image with {n_channels} channels (give 1 or {n_channels})")
    for n in ndims:
        if isinstance(n, bool) or n not in (2, 3):
            raise ValueError(f"a PSF must be 2-D (YX) or 3-D (ZYX), got a {n!r}-D one")
    return [int(n) for n in ndims]


def plan_blocks(axes: str, shape: Sequence[int], psf_ndim_per_channel: int | Sequence[int]) -> list[Block]:
    """The blocks of an image that are deconvolved independently, in processing order.

    Rules (one PSF per channel, or one for all channels):

    * image with Z + 3-D PSF: one ZYX volume per (T, C);
    * image with Z + 2-D PSF: one YX plane per (T, Z, C);
    * image without Z + 3-D PSF: one YX plane per (T, C), deconvolved with the PSF's in-focus
      (peak) plane (``Block.psf == "focal_plane"``);
    * image without Z + 2-D PSF: one YX plane per (T, C).

    Channels and time points are never mixed into a block, and never become Z planes.

    Parameters
    ----------
    axes : str
        The image's axes, a subset of ``"TZCYX"`` in that order ending with ``"YX"``
        (:attr:`decongan.engine.io.MicroscopyImage.axes`).
    shape : sequence of int
        The data's shape, one entry per axis.
    psf_ndim_per_channel : int or sequence of int
        Number of dimensions (2 or 3) of the PSF of each channel; a single value (or a 1-element
        sequence) applies to every channel.

    Returns
    -------
    list of Block
        Ordered by T, then C, then Z (plane by plane).

    Raises
    ------
    ValueError
        Axes not a canonical subset, shape of another length, PSF count not 1 or the number of
        channels, PSF dimension not 2 or 3.
    """
    axes = str(axes)
    shape = tuple(int(n) for n in shape)
    if (any(a not in CANONICAL_AXES for a in axes) or len(set(axes)) != len(axes)
            or "".join(sorted(axes, key=CANONICAL_AXES.index)) != axes or not axes.endswith("YX")):
        raise ValueError(f"axes {axes!r} must be a subset of {CANONICAL_AXES!r} in that order, ending with 'YX'")
    if len(shape) != len(axes):
        raise ValueError(f"axes {axes!r} do not match a shape of {len(shape)} dimensions {shape}")
    if any(n < 1 for n in shape):
        raise ValueError(f"shape {shape} has an empty axis")
    size = {a: n for a, n in zip(axes, shape, strict=True)}
    n_c = size.get("C", 1)
    ndims = _psf_ndims(psf_ndim_per_channel, n_c)
    has_z = "Z" in axes
    blocks: list[Block] = []
    for t in range(size.get("T", 1)):
        t_label = t if "T" in axes else None
        for c in range(n_c):
            if has_z and ndims[c] == 2:  # plane by plane
                for z in range(size["Z"]):
                    index = tuple(t if a == "T" else c if a == "C" else z if a == "Z" else slice(None) for a in axes)
                    blocks.append(Block(index, c, "YX", "as_is", t_label, z))
                continue
            index = tuple(t if a == "T" else c if a == "C" else slice(None) for a in axes)
            if has_z:
                blocks.append(Block(index, c, "ZYX", "as_is", t_label, None))
            else:
                blocks.append(Block(index, c, "YX", "focal_plane" if ndims[c] == 3 else "as_is", t_label, None))
    return blocks


def block_psfs(plan: Sequence[Block], psfs: Sequence[np.ndarray]) -> tuple[dict[int, np.ndarray], list[str]]:
    """The PSF every channel's blocks run with, and a note wherever it is not the PSF as given.

    Every backend (the engine's RL, the Fiji DL2 adapter) takes its kernels from here, so the same
    plan always runs with the same PSFs.

    Parameters
    ----------
    plan : sequence of Block
        From :func:`plan_blocks`.
    psfs : sequence of ndarray, shape (Y, X) or (Z, Y, X)
        One PSF for every channel, or one per channel (as counted by :func:`plan_blocks`).

    Returns
    -------
    kernels : dict of int to ndarray
        Channel -> its PSF: the in-focus (peak) plane of a 3-D PSF for a 2-D image, else the PSF as given.
    notes : list of str
        ``"channel 0: 2-D image, so the in-focus plane of the 3-D PSF was used"`` and
        ``"channel 0: 2-D PSF, so the Z stack was deconvolved plane by plane"``, once per channel.
    """
    kernels: dict[int, np.ndarray] = {}
    notes: list[str] = []
    for block in plan:
        if block.channel in kernels:
            continue
        kernel = psfs[block.channel if len(psfs) > 1 else 0]
        if block.psf == "focal_plane":
            kernel = focal_plane(kernel)
            notes.append(f"channel {block.channel}: 2-D image, so the in-focus plane of the 3-D PSF was used")
        elif block.z is not None:
            notes.append(f"channel {block.channel}: 2-D PSF, so the Z stack was deconvolved plane by plane")
        kernels[block.channel] = kernel
    return kernels, notes


__all__ = [
    "DEFAULT_EDGES",
    "DEFAULT_PSF_ENERGY",
    "DEFAULT_SETTINGS",
    "DEFAULT_TV_LAMBDA",
    "EDGE_MODES",
    "METHODS",
    "Block",
    "DeconvolutionSettings",
    "LateralTile",
    "Optics",
    "OpticsError",
    "Quantity",
    "block_psfs",
    "focal_plane",
    "plan_blocks",
    "plan_lateral_tiles",
    "psf_for_grid",
    "rl_exact_halo",
]
