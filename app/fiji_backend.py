"""App-layer adapters between the Fiji bridge (:mod:`imagej_bridge`) and the engine's result types.

The CLI, GUI and batch call these; they return what the engine returns (``Restored``,
``DeconvolvedImage``, ``RegistrationResult``) with an engine :class:`~engine.provenance.Provenance`
built from the bridge's provenance dict (backend, plugin and version, exact macro/config text).

* ``fiji_*`` functions use Fiji/ImageJ and raise :class:`FijiUnavailable` when no backend can do
  the job (no Java/ImageJ, or the plugin is not installed: then the message says how to install it).
* ``*_with_fallback`` functions try Fiji and otherwise run the engine's equivalent with the
  conventions of the missing plugin, labelled ``"engine (Fiji unavailable)"`` with the reason in
  the notes.

Clients are cached per backend (a JVM start costs 1-2 s) and shut down at interpreter exit.
Engine modules are imported lazily, inside the functions.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decongan.imagej_bridge import errors as bridge_errors
from decongan.imagej_bridge.client import BridgeResult, FijiClient, RegistrationOutput
from decongan.imagej_bridge.discovery import Backend, Discovery, discover, platform_summary
from decongan.imagej_bridge.plugins import PLUGINS, scan_plugins

FALLBACK_LABEL = "engine (Fiji unavailable)"


class FijiUnavailable(bridge_errors.FijiUnavailable):
    """No Fiji/ImageJ backend can run this operation; ``reason`` says why and how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- clients -----------------------------------------------------------------------------------------

_CLIENTS: dict[tuple[str, str, str], FijiClient] = {}
_BY_REQUEST: dict[tuple[str, str], FijiClient] = {}  # (fiji_dir, display) -> client: discovery runs once
_CLIENTS_LOCK = threading.Lock()


def get_client(fiji_dir: str | os.PathLike[str] | None = None, *, display: str = "auto") -> FijiClient:
    """The shared :class:`FijiClient` for the backend that discovery picks for ``fiji_dir``.

    Discovery (which may probe the network for the endpoint backend) runs once per ``fiji_dir``;
    :func:`close_clients` forgets the choice.

    Raises
    ------
    FijiUnavailable
        No backend is usable (the message lists each backend with its reason).
    """
    request_key = (os.fspath(fiji_dir) if fiji_dir is not None else "", display)
    with _CLIENTS_LOCK:
        cached = _BY_REQUEST.get(request_key)
        if cached is not None:
            return cached
    found = discover(fiji_dir)
    backend = found.active
    if backend is None:
        raise FijiUnavailable("no Fiji/ImageJ backend: " + "; ".join(f"{b.kind}: {b.reason}" for b in found.candidates))
    client = client_for_backend(backend, display=display)
    with _CLIENTS_LOCK:
        _BY_REQUEST[request_key] = client
    return client


def client_for_backend(backend: Backend, *, display: str = "auto") -> FijiClient:
    """The shared :class:`FijiClient` of one discovered backend (created on first use)."""
    key = (backend.kind, backend.location, display)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            try:
                client = FijiClient(backend, display=display)
            except bridge_errors.FijiUnavailable as err:
                raise FijiUnavailable(str(err)) from err
            _CLIENTS[key] = client
        return client


def close_clients() -> None:
    """Shut every cached worker down (also done at interpreter exit)."""
    with _CLIENTS_LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
        _BY_REQUEST.clear()
    for client in clients:
        client.close()


atexit.register(close_clients)


def _client(client: FijiClient | None, fiji_dir: str | os.PathLike[str] | None) -> FijiClient:
    return client if client is not None else get_client(fiji_dir)


def _call(function: Callable[[], Any]) -> Any:
    """Run a bridge call, turning "cannot run here" errors into :class:`FijiUnavailable`."""
    try:
        return function()
    except bridge_errors.PluginMissing as err:
        raise FijiUnavailable(str(err)) from err
    except bridge_errors.FijiUnavailable as err:
        raise FijiUnavailable(str(err)) from err


# -- provenance ----------------------------------------------------------------------------------------

def provenance_from_bridge(method: str, bridge: dict[str, Any], parameters: dict[str, Any],
                           client: FijiClient | None = None) -> Any:
    """An engine ``Provenance`` from the bridge's provenance dict (keeps the exact macro/config text)."""
    from decongan.engine.provenance import Provenance, software_versions

    params = dict(parameters)
    for key in ("plugin", "plugin_version", "algorithm", "model", "macro", "config", "call", "convention"):
        if bridge.get(key):
            params[f"fiji_{key}"] = bridge[key]
    versions = software_versions()
    info = client.info if client is not None else {}
    if info.get("imagej_version"):
        versions["imagej"] = str(info["imagej_version"])
    if info.get("imagej2_version"):
        versions["imagej2"] = str(info["imagej2_version"])
    if info.get("java_version"):
        versions["java"] = str(info["java_version"])
    if bridge.get("plugin") and bridge.get("plugin_version"):
        versions[str(bridge["plugin"])] = str(bridge["plugin_version"])
    return Provenance(method=method, backend=str(bridge.get("backend", "fiji")), parameters=params,
                      versions=versions, notes=list(bridge.get("notes", [])))


def _plugin_label(result: BridgeResult | RegistrationOutput) -> str:
    plugin = result.provenance.get("plugin", "Fiji")
    version = result.provenance.get("plugin_version")
    return f"{plugin} {version}".strip() if version else str(plugin)


# -- PSF -----------------------------------------------------------------------------------------------

def fiji_psf(*, na: float, ni: float, wavelength_nm: float, pixel_nm: float, size: int | Sequence[int] = 65,
             nz: int | None = None, z_step_nm: float | None = None, accuracy: str = "good",
             fiji_dir: str | os.PathLike[str] | None = None, client: FijiClient | None = None) -> Any:
    """Born & Wolf PSF from PSF Generator (peak = 1) as an engine ``Restored``.

    Raises
    ------
    FijiUnavailable
        No backend, or PSF Generator missing on a plain ImageJ 1.x (with an ImageJ2 backend the
        Ops Gibson-Lanni kernel is returned instead, noted in the provenance).
    """
    from decongan.engine.provenance import Restored

    fiji = _client(client, fiji_dir)
    result: BridgeResult = _call(lambda: fiji.born_wolf_psf(na=na, ni=ni, wavelength_nm=wavelength_nm,
                                                            pixel_nm=pixel_nm, size=size, nz=nz, z_step_nm=z_step_nm,
                                                            accuracy=accuracy))
    parameters = {"na": na, "ni": ni, "wavelength_nm": wavelength_nm, "pixel_nm": pixel_nm, "size": size, "nz": nz,
                  "z_step_nm": z_step_nm, "accuracy": accuracy, "normalize": "peak"}
    model = result.provenance.get("model", "Born & Wolf")
    provenance = provenance_from_bridge(f"{model} PSF ({_plugin_label(result)})", result.provenance, parameters, fiji)
    return Restored(result.image, provenance)


def engine_psf(*, na: float, ni: float, wavelength_nm: float, pixel_nm: float, size: int | Sequence[int] = 65,
               nz: int | None = None, z_step_nm: float | None = None, accuracy: str = "good") -> Any:
    """The engine's Born & Wolf PSF with PSF Generator's conventions (peak = 1) as a ``Restored``."""
    from decongan.engine.optics.psf import born_wolf_psf
    from decongan.engine.provenance import Provenance, Restored

    image = born_wolf_psf(na=na, ni=ni, wavelength_nm=wavelength_nm, pixel_nm=pixel_nm, size=size, nz=nz,
                          z_step_nm=z_step_nm, normalize="peak", accuracy=accuracy)
    parameters = {"na": na, "ni": ni, "wavelength_nm": wavelength_nm, "pixel_nm": pixel_nm, "size": size, "nz": nz,
                  "z_step_nm": z_step_nm, "accuracy": accuracy, "normalize": "peak"}
    return Restored(image, Provenance(method="Born & Wolf PSF (engine)", backend="engine", parameters=parameters))


# -- Richardson-Lucy -----------------------------------------------------------------------------------

def _rl_method(iterations: int, tv_lambda: float | None) -> str:
    return f"RL-TV {iterations} it" if tv_lambda is not None else f"RL {iterations} it"


def fiji_richardson_lucy(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10, tv_lambda: float | None = None,
                         fiji_dir: str | os.PathLike[str] | None = None, client: FijiClient | None = None) -> Any:
    """DeconvolutionLab2 RL (``tv_lambda`` None) or RL-TV on a 2-D/3-D array, as an engine ``Restored``.

    The image is sent as float32; DL2 normalises the PSF to sum 1 itself and uses periodic
    boundaries (see ../shared/golden/fiji/README.md).
    """
    from decongan.engine.provenance import Restored

    fiji = _client(client, fiji_dir)
    data = np.asarray(image, dtype=np.float32)
    kernel = np.asarray(psf, dtype=np.float32)
    result: BridgeResult = _call(lambda: fiji.richardson_lucy(data, kernel, iterations, tv_lambda))
    parameters = {"iterations": iterations, "method": "rltv" if tv_lambda is not None else "rl",
                  "tv_lambda": tv_lambda, "psf_shape": list(kernel.shape)}
    method = f"{_rl_method(iterations, tv_lambda)} ({_plugin_label(result)})"
    return Restored(result.image, provenance_from_bridge(method, result.provenance, parameters, fiji))


def engine_richardson_lucy(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10,
                           tv_lambda: float | None = None, device: str = "auto") -> Any:
    """The engine's RL with DeconvolutionLab2's conventions (periodic edges, DL2's RL-TV variant)."""
    from decongan.engine.optics.deconvolution import richardson_lucy
    from decongan.engine.provenance import Provenance, Restored

    options: dict[str, Any] = {"iterations": iterations, "edges": "circular", "device": device}
    if tv_lambda is not None:
        options.update(method="rltv", tv_lambda=tv_lambda, tv_variant="dl2")
    else:
        options["method"] = "rl"
    restored = richardson_lucy(np.asarray(image, dtype=np.float32), np.asarray(psf, dtype=np.float32), **options)
    method = f"{_rl_method(iterations, tv_lambda)} (engine, DeconvolutionLab2 conventions)"
    return Restored(restored, Provenance(method=method, backend="engine", parameters=options))


def fiji_deconvolve_image(image: Any, psf: np.ndarray, *, iterations: int = 10, tv_lambda: float | None = None,
                          psf_source: str | None = None, fiji_dir: str | os.PathLike[str] | None = None,
                          client: FijiClient | None = None,
                          progress: Callable[[Any], None] | None = None) -> Any:
    """Deconvolve every volume of an ``engine.io.MicroscopyImage`` with DeconvolutionLab2.

    Same block rules as ``engine.optics.deconvolution.iter_deconvolve_image``: a Z stack with a 3-D PSF
    in 3-D, with a 2-D PSF plane by plane; a 2-D image with a 3-D PSF uses its in-focus plane;
    channels and time points one at a time. Returns ``engine.optics.deconvolution.DeconvolvedImage``.
    """
    from decongan.engine.optics.deconvolution import DeconvolvedImage
    from decongan.engine.optics.psf import psf_focal_plane
    from decongan.engine.progress import Progress

    fiji = _client(client, fiji_dir)
    kernel = np.asarray(psf, dtype=np.float32)
    has_z = "Z" in image.axes
    notes: list[str] = []
    if not has_z and kernel.ndim == 3:
        kernel = psf_focal_plane(kernel).astype(np.float32)
        notes.append("2-D image, so the in-focus plane of the 3-D PSF was used")
    per_plane = has_z and kernel.ndim == 2
    if per_plane:
        notes.append("2-D PSF, so the Z stack was deconvolved plane by plane")
    block_axes = "YX" if (per_plane or not has_z) else "ZYX"
    lead_axes = image.axes[: len(image.axes) - len(block_axes)]
    data = image.data
    out = np.empty(data.shape, dtype=np.float32)
    lead_shape = data.shape[: len(lead_axes)]
    indices = list(np.ndindex(*lead_shape)) if lead_shape else [()]
    bridge: dict[str, Any] = {}
    for step, index in enumerate(indices):
        result: BridgeResult = _call(lambda index=index: fiji.richardson_lucy(
            np.ascontiguousarray(data[index], dtype=np.float32), kernel, iterations, tv_lambda))
        out[index] = result.image
        bridge = result.provenance
        if progress is not None:
            progress(Progress(step=step + 1, total=len(indices), message=f"Fiji block {step + 1}/{len(indices)}"))
    parameters: dict[str, Any] = {"iterations": iterations, "method": "rltv" if tv_lambda is not None else "rl",
                                  "tv_lambda": tv_lambda, "volume_axes": block_axes, "blocks": len(indices)}
    if psf_source:
        parameters["psf"] = str(psf_source)
    provenance = provenance_from_bridge(f"{_rl_method(iterations, tv_lambda)} ({bridge.get('plugin', 'Fiji')})",
                                        bridge, parameters, fiji)
    provenance.notes.extend(notes)
    return DeconvolvedImage(image.with_data(out), provenance)


# -- registration ----------------------------------------------------------------------------------------

def fiji_register(moving: np.ndarray, fixed: np.ndarray, transform: str = "rigid", *,
                  fiji_dir: str | os.PathLike[str] | None = None,
                  client: FijiClient | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
    """TurboReg (else SIFT) registration of 2-D ``moving`` onto ``fixed``.

    Returns
    -------
    aligned : ndarray, float32, shape of ``fixed``
    matrix : ndarray (2, 3)
        TurboReg convention, target (fixed) -> source (moving), layout ``[[tx, a, b], [ty, c, d]]``;
        ``engine.optics.registration.Transform2D.from_turboreg_matrix`` converts it.
    provenance : engine Provenance
    """
    fiji = _client(client, fiji_dir)
    output: RegistrationOutput = _call(lambda: fiji.register(np.asarray(moving, dtype=np.float32),
                                                             np.asarray(fixed, dtype=np.float32), transform))
    parameters = {"transform": output.transform, "matrix_turboreg": output.matrix.tolist(),
                  **{k: v for k, v in output.values.items() if k in ("source_points", "target_points", "sift_matrix")}}
    provenance = provenance_from_bridge(f"registered ({output.transform}, {_plugin_label(output)})",
                                        output.provenance, parameters, fiji)
    return output.aligned, output.matrix, provenance


def registration_result(moving: np.ndarray, fixed: np.ndarray, output: RegistrationOutput, *,
                        elapsed_s: float = 0.0) -> Any:
    """An ``engine.optics.registration.RegistrationResult`` from a Fiji registration (NCCs computed here)."""
    from decongan.engine.optics.registration import (
        RegistrationResult,
        Transform2D,
        normalised_cross_correlation,
    )

    fixed = np.asarray(fixed, dtype=np.float32)
    moving = np.asarray(moving, dtype=np.float32)
    transform = Transform2D.from_turboreg_matrix(output.matrix, kind=output.transform, fixed_shape=fixed.shape,
                                                 moving_shape=moving.shape)
    if moving.shape == fixed.shape:
        before = normalised_cross_correlation(fixed, moving)
    else:
        from skimage.transform import resize

        before = normalised_cross_correlation(fixed, resize(moving, fixed.shape, order=1).astype(np.float32))
    after = normalised_cross_correlation(fixed, output.aligned, output.mask)
    details = {"backend": output.provenance.get("backend"), "plugin": output.provenance.get("plugin"),
               "macro": output.provenance.get("macro"), "notes": output.provenance.get("notes", []),
               "matrix_turboreg": output.matrix.tolist()}
    return RegistrationResult(transform, output.aligned, output.mask, float(before), float(after), True, elapsed_s,
                              details)


def iter_fiji_register(moving: np.ndarray, fixed: np.ndarray, *, transform: str = "rigid",
                       fiji_dir: str | os.PathLike[str] | None = None,
                       client: FijiClient | None = None) -> Generator[Any, None, Any]:
    """Generator form (GUI jobs): yields ``Progress`` and returns an engine ``RegistrationResult``."""
    import time

    from decongan.engine.progress import Progress

    yield Progress(step=0, total=2, message="starting Fiji")
    fiji = _client(client, fiji_dir)
    fiji.start()
    yield Progress(step=1, total=2, message="registering with Fiji")
    t0 = time.perf_counter()
    output: RegistrationOutput = _call(lambda: fiji.register(np.asarray(moving, dtype=np.float32),
                                                             np.asarray(fixed, dtype=np.float32), transform))
    result = registration_result(moving, fixed, output, elapsed_s=time.perf_counter() - t0)
    yield Progress(step=2, total=2, message="done")
    return result


# -- fallback ---------------------------------------------------------------------------------------------

def with_engine_fallback(fiji_call: Callable[[], Any], engine_call: Callable[[], Any]) -> Any:
    """``fiji_call()``; if Fiji cannot do it, ``engine_call()`` labelled "engine (Fiji unavailable)".

    Both return objects with a ``provenance`` (``Restored``, ``DeconvolvedImage``); the fallback's
    provenance gets ``backend = "engine (Fiji unavailable)"`` and the reason in its notes.
    """
    try:
        return fiji_call()
    except FijiUnavailable as err:
        result = engine_call()
        result.provenance.backend = FALLBACK_LABEL
        result.provenance.notes.append(f"Fiji unavailable: {err.reason}")
        return result


def psf_with_fallback(*, fiji_dir: str | os.PathLike[str] | None = None, **parameters: Any) -> Any:
    """:func:`fiji_psf`, else :func:`engine_psf` labelled "engine (Fiji unavailable)"."""
    return with_engine_fallback(lambda: fiji_psf(fiji_dir=fiji_dir, **parameters), lambda: engine_psf(**parameters))


def richardson_lucy_with_fallback(image: np.ndarray, psf: np.ndarray, *, iterations: int = 10,
                                  tv_lambda: float | None = None,
                                  fiji_dir: str | os.PathLike[str] | None = None) -> Any:
    """:func:`fiji_richardson_lucy`, else the engine's DL2-convention RL labelled "engine (Fiji unavailable)"."""
    return with_engine_fallback(
        lambda: fiji_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda, fiji_dir=fiji_dir),
        lambda: engine_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda))


# -- doctor -----------------------------------------------------------------------------------------------

@dataclass
class DoctorReport:
    """What ``decongan fiji doctor`` prints: backends with reasons, Java, ImageJ, plugins, fixes."""

    discovery: Discovery
    worker: dict[str, Any] = field(default_factory=dict)
    worker_error: str = ""
    scanned: dict[str, str | None] = field(default_factory=dict)

    @property
    def active(self) -> Backend | None:
        return self.discovery.active

    def plugin_present(self, key: str) -> bool | None:
        """True/False from the running worker when available, else from the jar scan (None: unknown)."""
        plugins = self.worker.get("plugins") or {}
        if key in plugins:
            return bool(plugins[key]["present"])
        if self.scanned:
            return self.scanned.get(key) is not None
        return None

    def summary(self) -> str:
        """One line for a status label."""
        if self.active is None:
            return f"Fiji unavailable ({self.discovery.candidates[-1].reason}); the engine is used"
        version = self.worker.get("imagej_version")
        head = f"{self.active.kind} {self.active.location}" + (f" (ImageJ {version})" if version else "")
        if self.worker_error:
            return f"{head}: does not start: {self.worker_error.splitlines()[0]}"
        states = []
        for key in ("psf_generator", "deconvolutionlab2", "turboreg"):
            present = self.plugin_present(key)
            states.append(f"{PLUGINS[key].name} {'yes' if present else 'missing' if present is False else '?'}")
        return f"{head}: " + ", ".join(states)

    def lines(self) -> list[str]:
        """The full human-readable report."""
        out = ["DeconGAN Fiji doctor", f"machine: {platform_summary()}", f"Java: {self.discovery.java_reason}",
               "backends, in order (the first usable one is active):"]
        active = self.active
        for number, backend in enumerate(self.discovery.candidates, start=1):
            if backend is active:
                state = "ACTIVE"
            elif backend.usable:
                state = "usable (not needed)"
            else:
                state = "not used"
            where = f" [{backend.location}]" if backend.location else ""
            source = f" (from {backend.source})" if backend.source else ""
            out.append(f"  {number}. {backend.kind:<9}{state}{where}{source}: {backend.reason}")
        if active is None:
            out.append(f"  4. none     ACTIVE: callers use the engine, labelled \"{FALLBACK_LABEL}\"")
        if self.worker:
            info = self.worker
            display = info.get("display", "")
            if info.get("display_name"):
                display += f" {info['display_name']}"
            imagej2 = f", ImageJ2 {info['imagej2_version']}" if info.get("imagej2_version") else ""
            out.append(f"ImageJ: {info.get('imagej_version')}{imagej2}; Java {info.get('java_version')} "
                       f"({info.get('java_home')}); display: {display}; headless JVM: {info.get('headless')}; "
                       f"max heap {info.get('max_heap_mb')} MB; {info.get('commands')} commands; "
                       f"ready in {info.get('ready_s')} s")
            out.append(f"plugins folder: {info.get('plugins_dir') or 'none'}; ImageJ Ops: {'yes' if info.get('ops') else 'no'}")
        elif self.worker_error:
            out.append(f"ImageJ: the worker did not start: {self.worker_error}")
        out.append("plugins:")
        for key, info in PLUGINS.items():
            present = self.plugin_present(key)
            worker_plugin = (self.worker.get("plugins") or {}).get(key, {})
            version = f" {worker_plugin['version']}" if worker_plugin.get("version") else ""
            where = f" ({self.scanned[key]})" if self.scanned.get(key) else ""
            if present:
                out.append(f"  {info.name:<34} present{version}{where}")
            else:
                state = "missing" if present is False else "unknown"
                out.append(f"  {info.name:<34} {state}: {info.install}")
        out.append("without a plugin: PSF -> engine Born & Wolf (PSF Generator's conventions); RL -> engine RL with "
                   "DeconvolutionLab2's conventions; registration -> SIFT if present, else the engine; results are "
                   f"labelled \"{FALLBACK_LABEL}\"")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "java": self.discovery.java_reason,
            "backends": [{"kind": b.kind, "location": b.location, "usable": b.usable, "active": b is self.active,
                          "reason": b.reason, "source": b.source} for b in self.discovery.candidates],
            "worker": self.worker, "worker_error": self.worker_error,
            "plugins": {key: self.plugin_present(key) for key in PLUGINS},
            "summary": self.summary(),
        }


def doctor(fiji_dir: str | os.PathLike[str] | None = None, *, start_worker: bool = True,
           probe_network: bool = True, display: str = "auto") -> DoctorReport:
    """Discover the backends and, if one is usable and ``start_worker``, start it to ask ImageJ itself."""
    found = discover(fiji_dir, probe_network=probe_network)
    report = DoctorReport(found)
    active = found.active
    if active is not None:
        report.scanned = {key: (str(path) if path else None)
                          for key, path in scan_plugins(active.plugin_folders).items()} if active.plugin_folders else {}
    if active is not None and start_worker:
        try:
            client = client_for_backend(active, display=display)
            client.start()
            report.worker = client.describe()
            report.worker["ready_s"] = client.info.get("ready_s")
        except (bridge_errors.BridgeError, OSError) as err:
            report.worker_error = str(err)
    return report


# -- cross-check against the goldens ----------------------------------------------------------------------

def default_golden_dir() -> Path:
    """``$DECONGAN_SHARED/golden/fiji``, else ``../shared/golden/fiji`` next to the repository."""
    shared = os.environ.get("DECONGAN_SHARED")
    base = Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared"
    return base / "golden" / "fiji"


@dataclass
class CheckLine:
    """One line of ``decongan fiji crosscheck``: an operation run by ``runner`` compared with its golden."""

    operation: str
    runner: str  # "fiji" or "engine"
    status: str  # "ok", "DIFFERS", "missing" (plugin not installed), "unavailable", "error", "info"
    max_abs_diff: float | None = None
    detail: str = ""

    def text(self) -> str:
        diff = f"max|diff| {self.max_abs_diff:.3g}" if self.max_abs_diff is not None else ""
        parts = [p for p in (diff, self.detail) if p]
        return f"{self.operation:<38} {self.runner:<7} {self.status:<11} " + "; ".join(parts)


PSF_CASES = (
    ("PSF 2-D NA1.4 ni1.515 159nm 520nm", "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif",
     {"na": 1.4, "ni": 1.515, "wavelength_nm": 520.0, "pixel_nm": 159.0, "size": 65, "nz": None, "z_step_nm": None}),
    ("PSF 3-D NA1.4 33x200nm 520nm", "psf_bw_3d_na1.4_ni1.515_dxy159_dz200_lambda520_65x65x33.tif",
     {"na": 1.4, "ni": 1.515, "wavelength_nm": 520.0, "pixel_nm": 159.0, "size": 65, "nz": 33, "z_step_nm": 200.0}),
    ("PSF 2-D NA0.3 ni1.0 650nm 520nm", "psf_bw_2d_na0.3_ni1.0_dxy650_lambda520_65x65.tif",
     {"na": 0.3, "ni": 1.0, "wavelength_nm": 520.0, "pixel_nm": 650.0, "size": 65, "nz": None, "z_step_nm": None}),
)
RL_CASES = (("DL2 RL 10", "dl2_rl10.tif", 10, None), ("DL2 RL-TV 10 lambda 0.01", "dl2_rltv10_l0.01.tif", 10, 0.01))
REG_CASES = (("TurboReg translation", "translation", "translation"), ("TurboReg rigid", "rigid", "rigidBody"),
             ("TurboReg affine", "affine", "affine"))
#: registration ground truth of the golden pair (README), TurboReg convention
REG_TRUTH = np.array([[14.3475687398, 0.9986295348, -0.0523359562], [-10.7481001022, 0.0523359562, 0.9986295348]])
TOLERANCE = {"psf": 1e-5, "rl_relative": 1e-4, "reg_px_fiji": 0.01, "reg_px_engine": 0.05}


def read_turboreg_transform(path: Path) -> np.ndarray:
    """The 2x3 matrix of a golden ``turboreg_*_transform.txt`` (the first two 3-number lines)."""
    rows = []
    for line in path.read_text().splitlines():
        values = line.split()
        if line and not line.startswith("#") and len(values) == 3:
            rows.append([float(v) for v in values])
    if len(rows) < 2:
        raise ValueError(f"{path}: no 2x3 matrix found")
    return np.array(rows[:2])


def max_displacement(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> float:
    """Largest distance (px) between where two TurboReg matrices send the corners of a ``shape`` grid."""
    h, w = shape
    corners = np.array([[1.0, 0, 0], [1.0, w - 1, 0], [1.0, 0, h - 1], [1.0, w - 1, h - 1]])
    return float(np.linalg.norm(corners @ np.asarray(a).T - corners @ np.asarray(b).T, axis=1).max())


def iter_crosscheck(golden_dir: str | os.PathLike[str], *, fiji_dir: str | os.PathLike[str] | None = None,
                    run_fiji: bool = True, run_engine: bool = True,
                    client: FijiClient | None = None) -> Generator[CheckLine, None, None]:
    """Run PSF, RL and registration on the golden inputs with Fiji and with the engine; yield one line each."""
    import tifffile

    golden = Path(golden_dir)
    if not (golden / "README.md").is_file():
        raise FileNotFoundError(f"{golden} does not hold the Fiji goldens (README.md missing); use --golden DIR")
    fiji: FijiClient | None = None
    fiji_problem = ""
    if run_fiji:
        try:
            fiji = _client(client, fiji_dir)
            fiji.start()
        except (FijiUnavailable, bridge_errors.BridgeError) as err:
            fiji_problem = str(err).splitlines()[0]

    def attempt(operation: str, runner: str, compute: Callable[[], CheckLine]) -> CheckLine:
        if runner == "fiji" and fiji is None:
            return CheckLine(operation, runner, "unavailable", None, fiji_problem)
        try:
            return compute()
        except (FijiUnavailable, bridge_errors.PluginMissing) as err:
            missing = err if isinstance(err, bridge_errors.PluginMissing) else err.__cause__
            if isinstance(missing, bridge_errors.PluginMissing):
                return CheckLine(operation, runner, "missing", None,
                                 f"{missing.plugin} is not installed (how to install it: decongan fiji doctor)")
            return CheckLine(operation, runner, "unavailable", None, str(err).splitlines()[0])
        except Exception as err:  # noqa: BLE001 - one line per failure, the others still run
            return CheckLine(operation, runner, "error", None, f"{type(err).__name__}: {err}".splitlines()[0])

    runners = [r for r, on in (("fiji", run_fiji), ("engine", run_engine)) if on]

    # PSF
    for name, filename, params in PSF_CASES:
        expected = tifffile.imread(golden / filename).astype(np.float32)
        for runner in runners:
            def psf_line(name=name, params=params, expected=expected, runner=runner) -> CheckLine:
                restored = fiji_psf(client=fiji, **params) if runner == "fiji" else engine_psf(**params)
                diff = float(np.abs(restored.image - expected).max())
                status = "ok" if diff <= TOLERANCE["psf"] else "DIFFERS"
                return CheckLine(name, runner, status, diff, f"{restored.provenance.method}; peak 1")
            yield attempt(name, runner, psf_line)

    # Richardson-Lucy
    image = tifffile.imread(golden / "input_filaments_256_blurred_poisson.tif").astype(np.float32)
    psf = tifffile.imread(golden / "psf_bw_2d_na1.4_ni1.515_dxy159_lambda520_65x65.tif").astype(np.float32)
    for name, filename, iterations, tv_lambda in RL_CASES:
        expected = tifffile.imread(golden / filename).astype(np.float32)
        scale = float(np.abs(expected).max())
        for runner in runners:
            def rl_line(iterations=iterations, tv_lambda=tv_lambda, expected=expected, scale=scale,
                        runner=runner, name=name) -> CheckLine:
                if runner == "fiji":
                    restored = fiji_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda, client=fiji)
                else:
                    restored = engine_richardson_lucy(image, psf, iterations=iterations, tv_lambda=tv_lambda)
                diff = float(np.abs(restored.image - expected).max())
                status = "ok" if diff <= TOLERANCE["rl_relative"] * scale else "DIFFERS"
                return CheckLine(name, runner, status, diff, f"relative {diff / scale:.2g} of max {scale:.4g}; "
                                 f"{restored.provenance.method}")
            yield attempt(name, runner, rl_line)

    # registration
    moving = tifffile.imread(golden / "reg_moving_rot3deg_shift7.5_-4.25_256.tif").astype(np.float32)
    fixed = tifffile.imread(golden / "reg_target_256.tif").astype(np.float32)
    for name, kind, golden_name in REG_CASES:
        expected = read_turboreg_transform(golden / f"turboreg_{golden_name}_transform.txt")
        golden_stack = tifffile.imread(golden / f"turboreg_{golden_name}_aligned.tif")
        aligned_golden, mask_golden = golden_stack[0], golden_stack[1] > 0
        for runner in runners:
            def reg_line(kind=kind, expected=expected, aligned_golden=aligned_golden, mask_golden=mask_golden,
                         runner=runner, name=name) -> CheckLine:
                if runner == "fiji":
                    output = _call(lambda: fiji.register(moving, fixed, kind))
                    aligned, mask, matrix = output.aligned, output.mask, output.matrix
                    label = f"registered ({_plugin_label(output)})"
                    tolerance = TOLERANCE["reg_px_fiji"]
                else:
                    from decongan.engine.optics.registration import register

                    result = register(moving, fixed, transform=kind)
                    aligned, mask, matrix = result.aligned, result.mask, result.transform.to_turboreg_matrix()
                    label = "engine registration"
                    tolerance = TOLERANCE["reg_px_engine"]
                vs_golden = max_displacement(matrix, expected, fixed.shape)
                vs_truth = max_displacement(matrix, REG_TRUTH, fixed.shape)
                common = mask_golden & mask
                diff = float(np.abs(aligned - aligned_golden)[common].max()) if common.any() else None
                if kind == "translation" and runner == "engine":
                    status = "info"  # a translation cannot model the 3-degree rotation: optimum depends on the criterion
                else:
                    status = "ok" if vs_golden <= tolerance else "DIFFERS"
                return CheckLine(name, runner, status, diff,
                                 f"matrix vs TurboReg golden {vs_golden:.3g} px, vs ground truth {vs_truth:.3g} px "
                                 f"(image diff where both are valid); {label}")
            yield attempt(name, runner, reg_line)
