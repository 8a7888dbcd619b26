"""The caller's side of the bridge: :class:`FijiClient` owns one worker process hosting the JVM.

Typical use::

    from decongan.imagej_bridge import FijiClient
    with FijiClient(fiji_dir="/opt/Fiji.app") as fiji:        # or FijiClient() to discover
        psf = fiji.born_wolf_psf(na=1.4, ni=1.515, wavelength_nm=520, pixel_nm=159, size=65)
        rl = fiji.richardson_lucy(image, psf.image, iterations=10)

Robustness: every request has a timeout; a worker that crashes, hangs (timeout), runs out of
memory or is cancelled is killed, the request raises a typed error (:mod:`imagej_bridge.errors`)
and the next request starts a fresh worker. The caller never hangs and never dies with the JVM.
A client is safe to share between threads (requests are serialised); :meth:`FijiClient.cancel`
may be called from any thread. At interpreter exit the worker is shut down (JVM ``System.exit``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Listener
from pathlib import Path
from typing import Any

import numpy as np

from decongan.imagej_bridge import errors, operations
from decongan.imagej_bridge.arrays import ImageArray, as_image, make_transfer_dir, read_array, write_array
from decongan.imagej_bridge.discovery import Backend, discover, find_java
from decongan.imagej_bridge.protocol import (
    BornWolfPsf,
    Describe,
    DisplayMode,
    Echo,
    Failure,
    Ping,
    Ready,
    Register,
    Reply,
    RichardsonLucy,
    RunMacro,
    Shutdown,
    WorkerConfig,
)

#: default seconds to wait for a worker to be ready
START_TIMEOUT = {"imagej1": 60.0, "fiji": 180.0, "endpoint": 1800.0}
DEFAULT_TIMEOUT = 600.0
POLL_S = 0.1
LOG_TAIL = 4000


def _builtin_commands_file() -> str | None:
    try:
        from decongan.resources import resource_path

        return str(resource_path("macros", "ij1_builtin_commands.tsv"))
    except (ImportError, FileNotFoundError):
        return None


def choose_display(requested: str = "auto") -> DisplayMode:
    """The display mode for plain ImageJ 1.x (see :mod:`imagej_bridge.worker`).

    ``auto``: a private Xvfb screen on Linux when ``Xvfb`` is installed (never pops windows in front
    of the user, and all commands work); else the user's display on Linux/Windows; else headless
    (macOS too: AWT in a JVM started from Python cannot use the Cocoa main thread).
    """
    if requested not in ("auto", "xvfb", "desktop", "headless"):
        raise ValueError(f"display must be auto, xvfb, desktop or headless, got {requested!r}")
    if requested != "auto":
        if requested == "xvfb" and shutil.which("Xvfb") is None:
            raise errors.FijiUnavailable("Xvfb is not installed (apt-get install xvfb); use display='headless'")
        return requested  # type: ignore[return-value]
    if sys.platform.startswith("linux"):
        if shutil.which("Xvfb"):
            return "xvfb"
        if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
            return "desktop"
        return "headless"
    return "desktop" if sys.platform == "win32" else "headless"


@dataclass
class BridgeResult:
    """An image computed by Fiji/ImageJ and how: ``provenance`` (backend, plugin, version, exact
    macro/config text, notes), ``values`` (numbers the operation returned) and ImageJ's ``log``."""

    image: np.ndarray
    provenance: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    log: str = ""
    pixel_size_um: float | None = None
    z_step_um: float | None = None


@dataclass
class MacroResult:
    """What :meth:`FijiClient.run_macro` returns: the output images, the macro's ``return`` value and log."""

    images: dict[str, ImageArray]
    result: str | None
    log: str
    provenance: dict[str, Any]


@dataclass
class RegistrationOutput:
    """What :meth:`FijiClient.register` returns.

    Attributes
    ----------
    aligned : ndarray, float32, shape of ``fixed``
        The moving image resampled onto the fixed grid (TurboReg: cubic B-spline; SIFT: bilinear).
    mask : ndarray of bool
        True where ``aligned`` sampled the inside of the moving image.
    matrix : ndarray, shape (2, 3)
        TurboReg's convention, target (fixed) -> source (moving): ``x = m00 + m01*u + m02*v``,
        ``y = m10 + m11*u + m12*v`` for the fixed pixel ``(u, v)`` (see :mod:`imagej_bridge.operations`).
    transform : str
        "translation", "rigid", "similarity" or "affine".
    provenance : dict
        backend, plugin, exact options/macro, notes.
    values : dict
        Refined landmarks (TurboReg) or SIFT's own matrix.
    """

    aligned: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray
    transform: str
    provenance: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    log: str = ""


class _Worker:
    """One running worker process, its connection and its log file."""

    def __init__(self, process: subprocess.Popen, conn: Any, config: WorkerConfig) -> None:
        self.process = process
        self.conn = conn
        self.config = config
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, limit: int = LOG_TAIL) -> str:
        try:
            with open(self.config.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - limit))
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """Kill the worker without waiting for anything slow (its Xvfb gets SIGTERM from the kernel:
        the worker starts it with PR_SET_PDEATHSIG)."""
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass

    def shutdown(self, timeout: float = 5.0) -> None:
        """Ask the worker to end its JVM; kill it if it does not within ``timeout`` seconds."""
        try:
            if self.process.poll() is None and self.conn is not None:
                self.conn.send(Shutdown())
                if self.conn.poll(timeout):
                    self.conn.recv()
                self.process.wait(timeout=timeout)
        except (OSError, EOFError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


def _finalize(state: dict[str, Any]) -> None:
    worker = state.get("worker")
    if worker is not None:
        worker.shutdown(timeout=3.0)
        state["worker"] = None
    folder = state.get("transfer_dir")
    if folder and state.get("own_dir"):
        shutil.rmtree(folder, ignore_errors=True)


class FijiClient:
    """Owner of the Fiji/ImageJ worker process.

    Parameters
    ----------
    backend : Backend, optional
        The backend to run (from :func:`imagej_bridge.discovery.discover`). None: discover with
        ``fiji_dir`` and use the first usable one; :class:`~imagej_bridge.errors.FijiUnavailable`
        if there is none.
    fiji_dir : path, optional
        A Fiji.app or plain ImageJ 1.x folder (``--fiji DIR``).
    display : {"auto", "xvfb", "desktop", "headless"}
        Plain ImageJ 1.x only (see :mod:`imagej_bridge.worker`); ``auto`` prefers a private Xvfb.
    max_heap : str, optional
        JVM heap limit such as "4g" (default: the JVM's, a quarter of the RAM).
    start_timeout : float, optional
        Seconds to wait for ImageJ to be ready (default 60 for ImageJ 1.x, 180 for a Fiji.app,
        30 min for an endpoint's first download).
    timeout : float
        Default seconds per request.
    transfer_dir : path, optional
        Folder for array transfers (default: a private folder in /dev/shm or the temp folder).
    start : bool
        Start the worker now (default: at the first request).
    """

    def __init__(self, backend: Backend | None = None, *, fiji_dir: str | os.PathLike[str] | None = None,
                 display: str = "auto", max_heap: str | None = None, start_timeout: float | None = None,
                 timeout: float = DEFAULT_TIMEOUT, transfer_dir: str | os.PathLike[str] | None = None,
                 start: bool = False) -> None:
        if backend is None:
            found = discover(fiji_dir)
            backend = found.active
            if backend is None:
                reasons = "; ".join(f"{b.kind}: {b.reason}" for b in found.candidates)
                raise errors.FijiUnavailable(f"no Fiji/ImageJ backend can be used ({reasons})")
        if not backend.usable:
            raise errors.FijiUnavailable(f"backend {backend.label} cannot be used: {backend.reason}")
        self.backend = backend
        java, reason = find_java(backend.location if backend.kind == "fiji" else None)
        if java is None:
            raise errors.JavaNotFound(reason)
        self.java = java
        self.display: DisplayMode = choose_display(display) if backend.kind == "imagej1" else "headless"
        self.max_heap = max_heap
        self.start_timeout = start_timeout or START_TIMEOUT[backend.kind]
        self.timeout = float(timeout)
        own_dir = transfer_dir is None
        self.transfer_dir = make_transfer_dir() if own_dir else Path(transfer_dir)  # type: ignore[arg-type]
        self._lock = threading.RLock()
        self._cancelled = threading.Event()
        self._starts = 0
        self._state: dict[str, Any] = {"worker": None, "transfer_dir": str(self.transfer_dir), "own_dir": own_dir}
        self._finalizer = weakref.finalize(self, _finalize, self._state)
        if start:
            self.start()

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def _worker(self) -> _Worker | None:
        return self._state["worker"]

    @property
    def pid(self) -> int | None:
        """The worker's process id (None when not running)."""
        worker = self._worker
        return worker.pid if worker is not None and worker.alive() else None

    @property
    def info(self) -> dict[str, Any]:
        """What the worker reported at start (versions, display, plugins); empty before the start."""
        worker = self._worker
        return dict(worker.info) if worker is not None else {}

    @property
    def starts(self) -> int:
        """How many workers this client has started (restarts included)."""
        return self._starts

    def config(self) -> WorkerConfig:
        """The :class:`WorkerConfig` a new worker gets."""
        log_path = self.transfer_dir / f"worker-{self._starts + 1}.log"
        return WorkerConfig(kind=self.backend.kind, location=self.backend.location, java_home=str(self.java.home),
                            transfer_dir=str(self.transfer_dir), log_path=str(log_path),
                            ij_folder=self.backend.ij_folder, display=self.display, max_heap=self.max_heap,
                            builtin_commands=_builtin_commands_file())

    def start(self) -> dict[str, Any]:
        """Start the worker if it is not running; returns its start-up info."""
        with self._lock:
            worker = self._worker
            if worker is not None and worker.alive():
                return dict(worker.info)
            if worker is not None:
                worker.kill()
                self._state["worker"] = None
            return self._spawn()

    def _spawn(self) -> dict[str, Any]:
        config = self.config()
        t0 = time.monotonic()
        authkey = os.urandom(32)
        family = "AF_PIPE" if sys.platform == "win32" else "AF_UNIX"
        listener = Listener(family=family, authkey=authkey)
        # The worker runs in its private transfer folder, never in the caller's working directory: there a
        # folder holding ``imagej_bridge/__init__.py`` (or ``decongan/``) would be imported instead of the
        # installed package (``-m`` puts the working directory first on sys.path; ``-P``, Python >= 3.11,
        # leaves it out as well). Paths are made absolute before the working directory changes. The
        # package is found where it is installed (no PYTHONPATH of the repository).
        import dataclasses

        def absolute(path: str | None) -> str | None:
            return os.path.abspath(path) if path else path

        config = dataclasses.replace(
            config, location=config.location if config.kind == "endpoint" else absolute(config.location),
            ij_folder=absolute(config.ij_folder), java_home=absolute(config.java_home),
            transfer_dir=absolute(config.transfer_dir), log_path=absolute(config.log_path),
            builtin_commands=absolute(config.builtin_commands))
        env = dict(os.environ)
        env["JAVA_HOME"] = config.java_home
        safe_path = ["-P"] if sys.version_info >= (3, 11) else []
        with open(config.log_path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
                [sys.executable, *safe_path, "-m", "decongan.imagej_bridge.worker", "--serve"], stdin=subprocess.PIPE,
                stdout=log, stderr=subprocess.STDOUT, env=env, close_fds=True, cwd=config.transfer_dir)
        self._starts += 1
        worker = _Worker(process, None, config)
        accepted: dict[str, Any] = {}

        def accept() -> None:
            try:
                accepted["conn"] = listener.accept()
            except (OSError, EOFError) as err:  # closed on timeout, or a bad authkey
                accepted["error"] = err

        thread = threading.Thread(target=accept, name="fiji-worker-accept", daemon=True)
        thread.start()
        try:
            handshake = {"address": listener.address, "family": family, "authkey": authkey.hex()}
            process.stdin.write((json.dumps(handshake) + "\n").encode())
            process.stdin.close()
        except OSError:
            pass
        deadline = t0 + self.start_timeout
        while thread.is_alive() and process.poll() is None and time.monotonic() < deadline:
            thread.join(POLL_S)
        listener.close()
        thread.join(1.0)
        conn = accepted.get("conn")
        if conn is None:
            worker.kill()
            why = "timed out" if process.poll() is None else f"exited with status {process.returncode}"
            raise errors.WorkerStartError(f"{self.backend.label}: the worker process {why} before connecting",
                                          log=worker.log_tail())
        worker.conn = conn
        conn.send(config)
        message: Any = None
        while True:
            if conn.poll(POLL_S):
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    message = None
                break
            if process.poll() is not None and not conn.poll(0):
                break
            if time.monotonic() > deadline:
                worker.kill()
                raise errors.WorkerStartError(
                    f"{self.backend.label} did not start within {self.start_timeout:.0f} s", log=worker.log_tail())
        if isinstance(message, Ready):
            worker.info = dict(message.info)
            worker.info["ready_s"] = round(time.monotonic() - t0, 3)
            self._state["worker"] = worker
            return dict(worker.info)
        process.poll()
        detail = message.message if isinstance(message, Failure) else f"worker exited with status {process.returncode}"
        tail = worker.log_tail()
        worker.kill()
        raise errors.WorkerStartError(f"{self.backend.label} failed to start: {detail}", log=tail)

    def close(self) -> None:
        """Shut the worker down (JVM ``System.exit``) and remove the transfer folder."""
        with self._lock:
            self._finalizer()

    def restart(self) -> dict[str, Any]:
        """Kill the worker and start a fresh one ("restart Fiji")."""
        with self._lock:
            worker = self._worker
            if worker is not None:
                worker.shutdown(timeout=2.0)
                self._state["worker"] = None
            return self._spawn()

    def cancel(self) -> None:
        """Abort the running request from another thread: the worker is killed (it raises WorkerCancelled)."""
        self._cancelled.set()
        worker = self._worker
        if worker is not None:
            worker.kill()

    def __enter__(self) -> FijiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------------
    def request(self, message: Any, *, timeout: float | None = None) -> Reply:
        """Send one request and wait for its :class:`Reply`; failures become typed exceptions."""
        limit = self.timeout if timeout is None else float(timeout)
        with self._lock:
            if self._finalizer.alive is False:
                raise errors.BridgeError("this FijiClient is closed")
            self._cancelled.clear()
            self.start()
            worker = self._worker
            assert worker is not None  # noqa: S101 - start() either set it or raised
            try:
                worker.conn.send(message)
            except (OSError, BrokenPipeError) as err:
                return self._lost(worker, f"the worker stopped before the request was sent ({err})")
            deadline = time.monotonic() + limit
            while True:
                try:
                    ready = worker.conn.poll(POLL_S)
                except (OSError, EOFError):
                    ready = True
                if ready:
                    try:
                        answer = worker.conn.recv()
                    except (EOFError, OSError):
                        return self._lost(worker, "the worker died during the request")
                    break
                if self._cancelled.is_set():
                    worker.kill()
                    self._state["worker"] = None
                    raise errors.WorkerCancelled(f"{type(message).__name__} cancelled; the worker was stopped")
                if not worker.alive():
                    return self._lost(worker, "the worker died during the request")
                if time.monotonic() > deadline:
                    worker.kill()
                    self._state["worker"] = None
                    raise errors.WorkerTimeout(
                        f"{type(message).__name__} did not finish within {limit:g} s; the Fiji worker was killed "
                        "and will be restarted by the next request")
        if isinstance(answer, Failure):
            raise self._error(answer)
        return answer

    def _lost(self, worker: _Worker, what: str) -> Reply:
        try:
            worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        code = worker.exitcode
        tail = worker.log_tail()
        worker.kill()
        self._state["worker"] = None
        if self._cancelled.is_set():
            raise errors.WorkerCancelled("the request was cancelled; the worker was stopped")
        if "OutOfMemoryError" in tail or code == 3:
            raise errors.WorkerOutOfMemory(
                f"the JVM ran out of memory (heap limit {self.max_heap or 'JVM default'}); use max_heap= "
                "(e.g. '8g') or smaller images. The worker will be restarted.", exitcode=code, log=tail)
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        raise errors.WorkerCrashed(f"{what} ({how}); the next request starts a new worker", exitcode=code, log=tail)

    @staticmethod
    def _error(failure: Failure) -> errors.BridgeError:
        if failure.kind == "plugin_missing":
            return errors.PluginMissing(failure.details.get("plugin", failure.message),
                                        failure.details.get("hint", ""))
        if failure.kind == "needs_display":
            return errors.NeedsDisplay(failure.message, log=failure.log)
        if failure.kind == "macro":
            return errors.MacroError(failure.message, log=failure.log)
        if failure.kind == "bad_request":
            return errors.BridgeError(failure.message)
        return errors.RemoteError(failure.message, details=str(failure.details.get("traceback", "")),
                                  log=failure.log)

    def _send_images(self, images: Mapping[str, ImageArray | np.ndarray]) -> dict[str, Any]:
        return {name: write_array(self.transfer_dir, as_image(image, title=name)) for name, image in images.items()}

    @staticmethod
    def _discard(refs: Mapping[str, Any]) -> None:
        for ref in refs.values():
            Path(ref.path).unlink(missing_ok=True)

    def _receive(self, reply: Reply) -> dict[str, ImageArray]:
        return {name: read_array(ref) for name, ref in reply.images.items()}

    # -- operations ------------------------------------------------------------------------------------
    def ping(self, *, timeout: float = 30.0) -> float:
        """Round-trip time of an empty request, seconds."""
        t0 = time.perf_counter()
        self.request(Ping(), timeout=timeout)
        return time.perf_counter() - t0

    def describe(self, *, timeout: float = 60.0) -> dict[str, Any]:
        """ImageJ/Java versions, display mode and which plugins are installed (loads their classes)."""
        return self.request(Describe(), timeout=timeout).values

    def echo(self, images: Mapping[str, ImageArray | np.ndarray], *, timeout: float | None = None) -> dict[str, ImageArray]:
        """Send images to ImageJ (as ImagePlus) and back; the result must equal the input exactly."""
        refs = self._send_images(images)
        try:
            reply = self.request(Echo(refs), timeout=timeout)
        finally:
            self._discard(refs)
        return self._receive(reply)

    def run_macro(self, text: str, inputs: Mapping[str, ImageArray | np.ndarray] | None = None,
                  outputs: Sequence[str] = (), *, timeout: float | None = None) -> MacroResult:
        """Run an ImageJ macro.

        Parameters
        ----------
        text : str
            Macro source. Build it with :mod:`imagej_bridge.macros` (never paste raw values).
        inputs : mapping of title -> image
            Opened (hidden, batch mode) before the macro runs, titled by their keys; the last one
            is the current image.
        outputs : sequence of str
            Titles of images to return after the macro ran.
        timeout : float, optional
            Seconds (default: the client's).

        Raises
        ------
        MacroError
            With ImageJ's own message (``.message``) and log (``.log``).
        """
        refs = self._send_images(inputs or {})
        try:
            reply = self.request(RunMacro(text, refs, tuple(outputs)), timeout=timeout)
        finally:
            self._discard(refs)
        return MacroResult(self._receive(reply), reply.values.get("result"), reply.log, reply.provenance)

    def born_wolf_psf(self, *, na: float, ni: float, wavelength_nm: float, pixel_nm: float,
                      size: int | Sequence[int] = 65, nz: int | None = None, z_step_nm: float | None = None,
                      accuracy: str = "good", allow_ops_fallback: bool = True,
                      timeout: float | None = None) -> BridgeResult:
        """Born & Wolf PSF from PSF Generator (config-file API), peak-normalised (peak = 1).

        Parameters follow ``engine.optics.psf.born_wolf_psf`` (lengths in nm; ``size`` N or (ny, nx);
        ``nz`` None for a 2-D in-focus PSF). Without PSF Generator, an ImageJ2 backend uses ImageJ
        Ops' Gibson-Lanni kernel (noted in the provenance); otherwise :class:`PluginMissing`.

        Returns
        -------
        BridgeResult
            ``image`` float32 ``(ny, nx)`` or ``(nz, ny, nx)``; provenance with the exact config text.
        """
        config_text = operations.psf_generator_config(na=na, ni=ni, wavelength_nm=wavelength_nm, pixel_nm=pixel_nm,
                                                      size=size, nz=nz, z_step_nm=z_step_nm, accuracy=accuracy)
        nz_run, dz = operations.psf_generator_planes(nz, z_step_nm)
        request = BornWolfPsf(config_text, nz, float(na), float(ni), float(wavelength_nm), float(pixel_nm),
                              operations.psf_size(size), nz_run, dz, allow_ops_fallback)
        reply = self.request(request, timeout=timeout)
        image = self._receive(reply)["psf"]
        return BridgeResult(image.data, reply.provenance, reply.values, reply.log, image.pixel_size_um, image.z_step_um)

    def richardson_lucy(self, image: ImageArray | np.ndarray, psf: ImageArray | np.ndarray, iterations: int = 10,
                        tv_lambda: float | None = None, *, allow_ops_fallback: bool = True,
                        timeout: float | None = None) -> BridgeResult:
        """Richardson-Lucy (``tv_lambda`` None) or RL-TV with DeconvolutionLab2 (``-algorithm RL n`` / ``RLTV n l``).

        ``image`` and ``psf`` are float32 arrays (2-D or 3-D, same number of dimensions); DL2
        normalises the PSF to sum 1 itself. Without DL2, an ImageJ2 backend uses ImageJ Ops
        (kernel normalised here, noted in the provenance); otherwise :class:`PluginMissing`.
        """
        image_array = as_image(image, title="image")
        psf_array = as_image(psf, title="psf")
        if image_array.data.ndim != psf_array.data.ndim:
            raise ValueError(f"image is {image_array.data.ndim}-D but the PSF is {psf_array.data.ndim}-D")
        operations.dl2_algorithm(iterations, tv_lambda)  # validates
        refs = self._send_images({"image": image_array, "psf": psf_array})
        try:
            reply = self.request(RichardsonLucy(refs["image"], refs["psf"], int(iterations), tv_lambda,
                                                allow_ops_fallback), timeout=timeout)
        finally:
            self._discard(refs)
        result = self._receive(reply)["image"]
        return BridgeResult(result.data, reply.provenance, reply.values, reply.log, result.pixel_size_um,
                            result.z_step_um)

    def register(self, *, moving: ImageArray | np.ndarray, fixed: ImageArray | np.ndarray, transform: str = "rigid",
                 method: str = "auto", timeout: float | None = None) -> RegistrationOutput:
        """Register ``moving`` onto ``fixed`` with TurboReg (``method="auto"``: else SIFT linear alignment).

        The images are keyword-only (as in the engine's ``register``), so they cannot be swapped.

        ``method`` "turboreg" or "sift" forces one plugin (:class:`PluginMissing` when it is absent).
        SIFT needs a display in plain ImageJ 1.x (Xvfb) and images of the same size.

        The returned matrix is in TurboReg's documented convention, **target (fixed) -> source
        (moving)**, layout ``[[tx, a, b], [ty, c, d]]``: the fixed pixel ``(u, v)`` samples the
        moving image at ``(tx + a*u + b*v, ty + c*u + d*v)`` (x right, y down, pixel centres at
        integers). ``engine.optics.registration.Transform2D.from_turboreg_matrix`` converts it to the
        engine's 3x3 matrix (same direction). A SIFT result is converted into the same convention.
        """
        kind = operations.transform_name(transform)
        if method not in ("auto", "turboreg", "sift"):
            raise ValueError(f"method must be auto, turboreg or sift, got {method!r}")
        moving_array = as_image(moving, title="moving")
        fixed_array = as_image(fixed, title="fixed")
        for name, array in (("moving", moving_array), ("fixed", fixed_array)):
            if array.data.ndim != 2:
                raise ValueError(f"{name} must be a 2-D image, got shape {array.data.shape}")
        refs = self._send_images({"moving": moving_array, "fixed": fixed_array})
        try:
            reply = self.request(Register(refs["moving"], refs["fixed"], kind, method), timeout=timeout)  # type: ignore[arg-type]
        finally:
            self._discard(refs)
        images = self._receive(reply)
        matrix = np.asarray(reply.values["matrix"], dtype=float)
        aligned = images["aligned"].data.astype(np.float32, copy=False)
        if "mask" in images:
            mask = images["mask"].data > 0
        else:
            mask = operations.valid_mask(matrix, aligned.shape, moving_array.data.shape, rounded=False)
        return RegistrationOutput(aligned, mask, matrix, kind, reply.provenance, reply.values, reply.log)
