"""Typed messages between :class:`imagej_bridge.client.FijiClient` and the worker process.

Every request is a frozen dataclass sent (pickled) through a ``multiprocessing`` pipe; images
travel as :class:`imagej_bridge.arrays.ArrayRef` (a file in the transfer folder), never as
pixels in the pipe. The worker answers each request with exactly one :class:`Reply` or
:class:`Failure`. At start-up it sends :class:`Ready` (or :class:`Failure` with ``kind="start"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from decongan.imagej_bridge.arrays import ArrayRef

BackendKind = Literal["fiji", "endpoint", "imagej1"]
DisplayMode = Literal["xvfb", "desktop", "headless"]
TransformName = Literal["translation", "rigid", "similarity", "affine"]


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the worker needs to start its JVM (decided by the client, see discovery).

    Attributes
    ----------
    kind : {"fiji", "endpoint", "imagej1"}
        ImageJ2 gateway over a local Fiji.app, over a Maven endpoint, or plain ImageJ 1.x.
    location : str
        Fiji.app folder, endpoint string (e.g. "sc.fiji:fiji") or path of ij.jar.
    ij_folder : str or None
        ImageJ 1.x folder holding ``plugins/`` (None: no plugins folder).
    java_home : str
        JDK/JRE folder (JAVA_HOME); the worker never downloads Java.
    display : {"xvfb", "desktop", "headless"}
        Plain ImageJ 1.x only: a private Xvfb screen, the user's display, or a headless JVM with the
        command table filled by reflection. Fiji always runs headless (its legacy layer allows it).
    max_heap : str or None
        JVM ``-Xmx`` value, e.g. "4g" (None: the JVM default, a quarter of the RAM).
    transfer_dir : str
        Private folder for array files and plugin input/output files.
    log_path : str
        File receiving the worker's stdout/stderr (JVM messages included).
    builtin_commands : str or None
        Tab-separated file of ImageJ 1.x's built-in menu commands (headless mode).
    """

    kind: BackendKind
    location: str
    java_home: str
    transfer_dir: str
    log_path: str
    ij_folder: str | None = None
    display: DisplayMode = "headless"
    max_heap: str | None = None
    builtin_commands: str | None = None
    jvm_options: tuple[str, ...] = ()


# -- requests -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ping:
    """Answered immediately (``values["pong"] = True``); measures the round trip."""


@dataclass(frozen=True)
class Describe:
    """Versions, mode, and which plugins are loadable (``values``)."""


@dataclass(frozen=True)
class Echo:
    """Convert each image to an ImagePlus and back (tests exactness and transfer speed)."""

    images: dict[str, ArrayRef]


@dataclass(frozen=True)
class RunMacro:
    """Run an ImageJ macro with ``inputs`` open as images titled by their key; return ``outputs``.

    ``values["result"]`` is the macro's ``return`` value (a string) or None.
    """

    text: str
    inputs: dict[str, ArrayRef] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class BornWolfPsf:
    """PSF Generator (Born & Wolf) from its config file; else ImageJ Ops' Gibson-Lanni kernel."""

    config_text: str
    nz_requested: int | None
    na: float
    ni: float
    wavelength_nm: float
    pixel_nm: float
    size: tuple[int, int]
    nz_run: int
    z_step_nm: float
    allow_ops_fallback: bool = True


@dataclass(frozen=True)
class RichardsonLucy:
    """DeconvolutionLab2 RL / RL-TV; else ImageJ Ops deconvolve.richardsonLucy[TV]."""

    image: ArrayRef
    psf: ArrayRef
    iterations: int
    tv_lambda: float | None = None
    allow_ops_fallback: bool = True


@dataclass(frozen=True)
class Register:
    """Register ``moving`` (source) onto ``fixed`` (target).

    ``method``: "auto" (TurboReg -align, else SIFT linear alignment), "turboreg" or "sift".
    """

    moving: ArrayRef
    fixed: ArrayRef
    transform: TransformName
    method: Literal["auto", "turboreg", "sift"] = "auto"


@dataclass(frozen=True)
class Shutdown:
    """End the JVM and the worker process (answered with a Reply first)."""


Request = Ping | Describe | Echo | RunMacro | BornWolfPsf | RichardsonLucy | Register | Shutdown


# -- answers --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ready:
    """Sent once when the JVM and ImageJ are up; ``info`` as :class:`Describe` returns."""

    info: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A successful answer: plain values, images (as files) and provenance."""

    values: dict[str, Any] = field(default_factory=dict)
    images: dict[str, ArrayRef] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    log: str = ""


FailureKind = Literal["start", "macro", "needs_display", "plugin_missing", "remote", "bad_request"]


@dataclass(frozen=True)
class Failure:
    """A failed request. ``kind`` selects the exception the client raises (see :mod:`imagej_bridge.errors`)."""

    kind: FailureKind
    message: str
    log: str = ""
    details: dict[str, Any] = field(default_factory=dict)
