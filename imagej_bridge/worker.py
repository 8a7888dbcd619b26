"""The Fiji/ImageJ worker process: the only module that imports scyjava, jpype or imagej.

:class:`imagej_bridge.client.FijiClient` starts ``python -m imagej_bridge.worker --serve`` as a
fresh process (spawn semantics: nothing is inherited, and unlike ``multiprocessing``'s spawn the
caller's ``__main__`` is not re-imported) that connects back through an authenticated
``multiprocessing.connection``. The worker

1. writes its stdout/stderr (JVM messages included) to the log file the client opened;
2. for plain ImageJ 1.x on a machine without a display, starts a private Xvfb screen
   (``Xvfb -displayfd``; it dies with the worker);
3. starts the JVM (never downloading Java) and ImageJ: plain ImageJ 1.x through jpype, or an
   ImageJ2 gateway (local Fiji.app or Maven endpoint) through scyjava + pyimagej;
4. answers requests from :mod:`imagej_bridge.protocol` one at a time until :class:`Shutdown`
   or until the pipe closes, then ends the JVM with ``System.exit`` (ImageJ and plugins such as
   DeconvolutionLab2 leave non-daemon threads that would otherwise keep the process alive).

Plain ImageJ 1.x and its command table
--------------------------------------
ImageJ 1.x builds its command table (``Menus.getCommands()``: command -> class) while building
its AWT menu bar, which a headless JVM cannot do, so ``run("Command", ...)`` fails headless. Two
modes, chosen by the client (``WorkerConfig.display``):

* ``xvfb`` / ``desktop`` (preferred, used whenever Xvfb or a display exists): the JVM runs with
  ``java.awt.headless=false`` on a private Xvfb screen (or the user's display) and ImageJ fills
  its table itself. Everything works, including commands whose dialogs are only answered by
  macro options (StackReg, SIFT). Images stay hidden in batch mode.
* ``headless`` (no Xvfb, no display): the private static table ``ij.Menus.pluginsTable`` is filled
  by reflection from ``IJ_Props.txt`` (inside ij.jar), the built-in commands listed in
  ``resources/macros/ij1_builtin_commands.tsv`` (generated with ``python -m imagej_bridge.worker
  --dump-builtin-commands`` under Xvfb) and the ``plugins.config`` of every plugin jar. Commands
  that only need macro options run (Gaussian Blur, TurboReg, DeconvolutionLab2, PSF Generator);
  those that must open a window raise :class:`imagej_bridge.errors.NeedsDisplay`.

A JVM is headless or not for its whole life: switching mode means a new worker.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from decongan.imagej_bridge import operations
from decongan.imagej_bridge.arrays import ArrayRef, calibration_to_um
from decongan.imagej_bridge.plugins import PLUGINS, parse_plugins_config
from decongan.imagej_bridge.protocol import (
    BornWolfPsf,
    Describe,
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

LOG_LIMIT = 20_000  # characters of captured ImageJ output returned with each answer
#: packages ImageJ2/legacy plugins reflect into on Java 17+ (as Fiji's own launcher opens them)
_ADD_OPENS = ("java.base/java.lang", "java.base/java.util", "java.base/java.io", "java.base/java.nio",
              "java.desktop/java.awt", "java.desktop/sun.awt", "java.desktop/javax.swing")


class _Failed(Exception):
    """A request failure with the :class:`Failure` kind to report."""

    def __init__(self, kind: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


# -- process set-up ----------------------------------------------------------------------------------

def _watch_parent() -> None:
    """End the worker if the client process disappears (its pipe end may not close when it is killed)."""
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                _hard_exit(0)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def _die_with_parent() -> None:  # runs in the Xvfb child between fork and exec (Linux only)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_xvfb(timeout: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start ``Xvfb`` on a free display number; returns the process and ``":N"``."""
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(  # noqa: S603 (fixed argument list)
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
    finally:
        os.close(write_fd)
    deadline = time.monotonic() + timeout
    text = b""
    os.set_blocking(read_fd, False)
    try:
        while not text.endswith(b"\n"):
            if process.poll() is not None:
                raise RuntimeError(f"Xvfb exited with status {process.returncode} before giving a display number")
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"Xvfb gave no display number within {timeout:.0f} s")
            try:
                chunk = os.read(read_fd, 32)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                time.sleep(0.01)
            text += chunk
    finally:
        os.close(read_fd)
    return process, ":" + text.decode().strip()


_XVFB: subprocess.Popen | None = None


def _hard_exit(code: int) -> None:
    """Stop Xvfb and leave immediately (System.exit when the JVM runs: shutdown hooks, no hang)."""
    if _XVFB is not None and _XVFB.poll() is None:
        _XVFB.terminate()
        try:
            _XVFB.wait(timeout=2)  # reap it (an orphaned zombie is never reaped in some containers)
        except subprocess.TimeoutExpired:
            _XVFB.kill()
    try:
        import jpype

        if jpype.isJVMStarted():
            jpype.JClass("java.lang.System").exit(code)
    except BaseException:  # noqa: BLE001 - leaving anyway
        pass
    os._exit(code)


def ij_props_commands() -> dict[str, str]:
    """Command -> class of the menus listed in ij.jar's IJ_Props.txt, read as ImageJ reads it
    (``java.util.Properties``, so escapes are resolved); needs the running JVM."""
    import jpype

    props = jpype.JClass("java.util.Properties")()
    stream = jpype.JClass("ij.IJ").class_.getResourceAsStream("/IJ_Props.txt")
    if stream is None:
        return {}
    try:
        props.load(stream)
    finally:
        stream.close()
    commands = {}
    for key in props.stringPropertyNames():
        value = str(props.getProperty(key))
        match = re.match(r'^"([^"]+)",\s*(.+)$', value.strip())
        if re.match(r"^[a-z_]+\d\d$", str(key)) and match:
            commands[_strip_shortcut(match.group(1))] = match.group(2).strip()
    return commands


def _strip_shortcut(label: str) -> str:
    """A menu label's command name: ImageJ drops a trailing keyboard shortcut such as "[n]" or "[F1]"
    (but keeps "[+]", "[-]", "[<]", "[>]", which are part of the command name)."""
    return re.sub(r"\s*\[(?:[A-Za-z0-9]|F\d{1,2})\]$", "", label)


# -- the ImageJ runtime ------------------------------------------------------------------------------

class Runtime:
    """The started JVM and ImageJ, with conversions between transfer files and ImagePlus objects."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.gateway: Any = None  # net.imagej.ImageJ when an ImageJ2 backend runs
        self.display = "headless"
        self.display_name = ""
        self.started_s = 0.0
        t0 = time.perf_counter()
        if config.kind == "imagej1":
            self._start_imagej1()
        else:
            self._start_imagej2()
        self._after_start()
        self.started_s = time.perf_counter() - t0

    # -- start-up --------------------------------------------------------------------------------
    def _jvm_options(self, headless: bool) -> list[str]:
        options = [f"-Djava.awt.headless={'true' if headless else 'false'}", "-XX:+ExitOnOutOfMemoryError",
                   "-Dfile.encoding=UTF-8", "-Duser.language=en", "-Duser.country=US"]
        if self.config.max_heap:
            options.append(f"-Xmx{self.config.max_heap}")
        return options + list(self.config.jvm_options)

    def _start_imagej1(self) -> None:
        global _XVFB
        config = self.config
        headless = config.display == "headless"
        if config.display == "xvfb":
            _XVFB, self.display_name = start_xvfb()
            os.environ["DISPLAY"] = self.display_name
        elif config.display == "desktop":
            self.display_name = os.environ.get("DISPLAY", "desktop")
        self.display = config.display
        os.environ["JAVA_HOME"] = config.java_home
        import jpype
        import jpype.imports  # noqa: F401 - enables "from ij import IJ"

        options = self._jvm_options(headless)
        if config.ij_folder:
            options += [f"-Dplugins.dir={config.ij_folder}", f"-Dij.dir={config.ij_folder}"]
        # jpype directly (scyjava adds ~0.5 s of imports and nothing else for a plain jar); the JVM
        # comes from JAVA_HOME, so nothing is ever downloaded.
        jpype.startJVM(jpype.getDefaultJVMPath(), *options, classpath=[config.location], convertStrings=False)
        if headless:
            self._fill_command_table()
        else:
            init = jpype.JClass("java.lang.Class").forName("ij.IJ").getDeclaredMethod("init")
            init.setAccessible(True)
            init.invoke(None)

    def _start_imagej2(self) -> None:
        """ImageJ2 + legacy ImageJ 1.x: a local Fiji.app (offline) or a Maven endpoint (pyimagej).

        Local Fiji.app: the JVM gets Fiji's own jars/ and plugins/ and the gateway is created
        directly (``new net.imagej.ImageJ()``, what pyimagej's ``imagej.init(dir)`` creates), because
        importing pyimagej adds imglib2-imglyb as a Maven endpoint, which an offline machine cannot
        resolve. Endpoint: pyimagej is imported first (its hooks add imglyb), then the JVM is
        started here and ``imagej.init(endpoint)`` creates the gateway. In both cases the JVM is
        started by this function with ``fetch="never"`` (pyimagej 1.8.0's own start fails with
        fetch="never": UnboundLocalError in ``_guess_java_version``).
        """
        config = self.config
        os.environ["JAVA_HOME"] = config.java_home
        import scyjava

        scyjava.config.set_java_constraints(fetch="never")
        for option in self._jvm_options(True) + [f"--add-opens={m}=ALL-UNNAMED" for m in _ADD_OPENS]:
            scyjava.config.add_option(option)
        if config.kind == "fiji":
            root = Path(config.location)
            jars = sorted(str(p) for p in (root / "jars").rglob("*.jar")) + sorted(
                str(p) for p in (root / "plugins").rglob("*.jar"))
            scyjava.config.add_classpath(*jars)
            for prop in (f"-Dplugins.dir={root / 'plugins'}", f"-Dimagej.dir={root}", f"-Dfiji.dir={root}",
                         f"-Dij.dir={root}", f"-Dscijava.app.directory={root}"):
                scyjava.config.add_option(prop)
            scyjava.start_jvm()
            try:
                gateway_class = scyjava.jimport("net.imagej.ImageJ")
            except Exception as err:  # noqa: BLE001 - ClassNotFound in several forms
                raise RuntimeError(f"{root} has no ImageJ2 (net.imagej.ImageJ not found in jars/): is it a complete "
                                   "Fiji.app?") from err
            self.gateway = gateway_class()
        else:
            import imagej

            scyjava.config.endpoints.append(config.location)
            if not config.location.startswith("sc.fiji:fiji") and "imagej-legacy" not in config.location:
                scyjava.config.endpoints.append("net.imagej:imagej-legacy:MANAGED")
            scyjava.config.endpoints.append("org.scijava:scijava-config:MANAGED")
            scyjava.start_jvm()
            gateway = imagej.init(config.location, mode="headless")
            if not gateway:  # pyimagej returns False when net.imagej.ImageJ is not on the classpath
                raise RuntimeError(f"pyimagej could not create an ImageJ2 gateway from {config.location}")
            self.gateway = gateway
        self.display = "headless (ImageJ2 legacy layer)"

    def _after_start(self) -> None:
        import jpype
        from ij import IJ
        from ij.macro import Interpreter
        from java.io import ByteArrayOutputStream, PrintStream
        from java.lang import System

        self.jpype = jpype
        self.IJ = IJ
        self.Interpreter = Interpreter
        self.buffer = ByteArrayOutputStream()
        stream = PrintStream(self.buffer, True, "UTF-8")
        System.setOut(stream)
        System.setErr(stream)
        self.stream = stream
        IJ.redirectErrorMessages(True)
        Interpreter.batchMode = True  # every image stays hidden, windows or not

    def _fill_command_table(self) -> None:
        """Headless ImageJ 1.x: fill ``ij.Menus``' command table and plugins path by reflection."""
        import jpype

        table = jpype.JClass("java.util.Hashtable")()
        for command, target in ij_props_commands().items():
            table.put(command, target)
        if self.config.builtin_commands and os.path.isfile(self.config.builtin_commands):
            for line in Path(self.config.builtin_commands).read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#") and "\t" in line:
                    command, target = line.split("\t", 1)
                    table.put(command, target)  # built-in menu items win, as in ImageJ's own table
        plugins = Path(self.config.ij_folder) / "plugins" if self.config.ij_folder else None
        if plugins is not None and plugins.is_dir():
            for jar_path in sorted(plugins.rglob("*.jar")):
                try:
                    with zipfile.ZipFile(jar_path) as jar:
                        if "plugins.config" not in jar.namelist():
                            continue
                        text = jar.read("plugins.config").decode("utf-8", errors="replace")
                except (OSError, zipfile.BadZipFile):
                    continue
                for _menu, command, target in parse_plugins_config(text):
                    table.put(command, target)
            for class_file in sorted(plugins.glob("*.class")):  # loose plugins: "My_Plugin" -> "My Plugin"
                name = class_file.stem
                if "_" in name and "$" not in name:
                    table.put(name.replace("_", " "), name)
        cls = jpype.JClass("java.lang.Class").forName("ij.Menus")
        field = cls.getDeclaredField("pluginsTable")
        field.setAccessible(True)
        field.set(None, table)
        if plugins is not None and plugins.is_dir():
            path_field = cls.getDeclaredField("pluginsPath")
            path_field.setAccessible(True)
            path_field.set(None, str(plugins) + os.sep)

    # -- captured output ---------------------------------------------------------------------------
    def reset_log(self) -> None:
        self.stream.flush()
        self.buffer.reset()

    def peek_log(self) -> str:
        self.stream.flush()
        return str(self.buffer.toString("UTF-8"))

    def take_log(self) -> str:
        self.stream.flush()
        text = str(self.buffer.toString("UTF-8"))
        self.buffer.reset()
        if text:
            sys.stderr.write(text if text.endswith("\n") else text + "\n")
        return text[-LOG_LIMIT:]

    # -- classes -------------------------------------------------------------------------------------
    def load_class(self, name: str) -> Any:
        """A Java class through ImageJ's plugin class loader, or None when absent."""
        try:
            return self.jpype.JClass(name, loader=self.IJ.getClassLoader())
        except Exception:  # noqa: BLE001 - ClassNotFoundException, NoClassDefFoundError
            return None

    def plugin_version(self, key: str) -> str:
        try:
            if key == "psf_generator":
                about = self.load_class("psfgenerator.About")
                return str(about.version()) if about is not None else ""
            if key == "deconvolutionlab2":
                constants = self.load_class("deconvolutionlab.Constants")
                return str(constants.version) if constants is not None else ""
        except Exception:  # noqa: BLE001 - informational only
            return ""
        return ""

    def describe(self) -> dict[str, Any]:
        from ij import Menus
        from java.awt import GraphicsEnvironment
        from java.lang import Runtime as JRuntime
        from java.lang import System

        commands = Menus.getCommands()
        plugins = {}
        for key, info in PLUGINS.items():
            present = self.load_class(info.marker_class) is not None
            plugins[key] = {"name": info.name, "present": present,
                            "version": self.plugin_version(key) if present else "",
                            "command_registered": bool(commands is not None and commands.containsKey(info.command))}
        info = {
            "backend": self.config.kind,
            "location": self.config.location,
            "imagej_version": str(self.IJ.getFullVersion()),
            "imagej2_version": str(self.gateway.getVersion()) if self.gateway is not None else None,
            "java_version": str(System.getProperty("java.version")),
            "java_home": str(System.getProperty("java.home")),
            "headless": bool(GraphicsEnvironment.isHeadless()),
            "display": self.display,
            "display_name": self.display_name,
            "plugins_dir": str(Menus.getPlugInsPath()) if Menus.getPlugInsPath() is not None else None,
            "commands": int(commands.size()) if commands is not None else 0,
            "max_heap_mb": int(JRuntime.getRuntime().maxMemory() // (1024 * 1024)),
            "plugins": plugins,
            "ops": self.gateway is not None,
            "start_s": round(self.started_s, 3),
            "pid": os.getpid(),
            "xvfb_pid": _XVFB.pid if _XVFB is not None else None,
        }
        return info

    def label(self) -> str:
        version = str(self.IJ.getFullVersion())
        return f"{self.config.kind}:{self.config.location} (ImageJ {version}, {self.display})"

    # -- images --------------------------------------------------------------------------------------
    def direct_buffer(self, nbytes: int) -> Any:
        """A reusable native-order direct buffer of exactly ``nbytes`` (limit), grown when needed."""
        from java.nio import ByteBuffer, ByteOrder

        current = getattr(self, "_direct", None)
        if current is None or current.capacity() < nbytes:
            current = ByteBuffer.allocateDirect(max(nbytes, 1 << 20)).order(ByteOrder.nativeOrder())
            self._direct = current
        current.clear()
        current.limit(nbytes)
        return current

    def read_image(self, ref: ArrayRef, title: str | None = None) -> Any:
        """An ImagePlus holding the transfer file's pixels exactly (float32/uint16/uint8)."""
        from ij import ImagePlus, ImageStack
        from ij.process import ByteProcessor, FloatProcessor, ShortProcessor
        from java.io import RandomAccessFile

        jp = self.jpype
        shape = ref.shape
        nz, ny, nx = (1, *shape) if len(shape) == 2 else shape
        itemsize = np.dtype(ref.dtype).itemsize
        plane = ny * nx
        buffer = self.direct_buffer(plane * itemsize)
        stack = ImageStack(nx, ny)
        handle = RandomAccessFile(ref.path, "r")
        try:
            channel = handle.getChannel()
            for _ in range(nz):
                buffer.position(0)
                buffer.limit(plane * itemsize)
                while buffer.hasRemaining():
                    if channel.read(buffer) < 0:
                        raise _Failed("bad_request", f"transfer file {ref.path} is shorter than shape {shape}")
                buffer.flip()
                if ref.dtype == "float32":
                    pixels = jp.JArray(jp.JFloat)(plane)
                    buffer.asFloatBuffer().get(pixels)
                    processor = FloatProcessor(nx, ny, pixels)
                elif ref.dtype == "uint16":
                    pixels = jp.JArray(jp.JShort)(plane)
                    buffer.asShortBuffer().get(pixels)
                    processor = ShortProcessor(nx, ny, pixels, None)
                elif ref.dtype == "uint8":
                    pixels = jp.JArray(jp.JByte)(plane)
                    buffer.get(pixels)
                    processor = ByteProcessor(nx, ny, pixels, None)
                else:
                    raise _Failed("bad_request", f"unsupported dtype {ref.dtype}")
                stack.addSlice("", processor)
        finally:
            handle.close()
        imp = ImagePlus(title or ref.title or "image", stack)
        if nz > 1:
            imp.setDimensions(1, nz, 1)
        calibration = imp.getCalibration()
        if ref.pixel_size_um is not None:
            calibration.pixelWidth = calibration.pixelHeight = float(ref.pixel_size_um)
            calibration.setUnit("micron")
        if ref.z_step_um is not None:
            calibration.pixelDepth = float(ref.z_step_um)
            calibration.setUnit("micron")
        return imp

    def write_image(self, imp: Any, *, slices: list[int] | None = None, title: str | None = None) -> ArrayRef:
        """Write an ImagePlus (or the 1-based ``slices`` of its stack) to a new transfer file."""
        from java.io import RandomAccessFile

        stack = imp.getStack()
        indices = slices or list(range(1, stack.getSize() + 1))
        nx, ny = int(imp.getWidth()), int(imp.getHeight())
        depth = int(imp.getBitDepth())
        dtype = {32: "float32", 16: "uint16", 8: "uint8"}.get(depth)
        if dtype is None:
            raise _Failed("macro", f"image {imp.getTitle()!s} is {depth}-bit (RGB); convert it to 8-, 16- or 32-bit")
        itemsize = np.dtype(dtype).itemsize
        buffer = self.direct_buffer(nx * ny * itemsize)
        path = Path(self.config.transfer_dir) / f"out-{uuid.uuid4().hex}.raw"
        handle = RandomAccessFile(str(path), "rw")
        try:
            channel = handle.getChannel()
            for index in indices:
                pixels = stack.getProcessor(int(index)).getPixels()
                buffer.position(0)
                buffer.limit(nx * ny * itemsize)
                if depth == 32:
                    buffer.asFloatBuffer().put(pixels)
                elif depth == 16:
                    buffer.asShortBuffer().put(pixels)
                else:
                    buffer.put(pixels)
                buffer.position(0)
                buffer.limit(nx * ny * itemsize)
                while buffer.hasRemaining():
                    channel.write(buffer)
        finally:
            handle.close()
        calibration = imp.getCalibration()
        unit = str(calibration.getUnit())
        pixel = calibration_to_um(float(calibration.pixelWidth), unit)
        z_step = calibration_to_um(float(calibration.pixelDepth), unit) if len(indices) > 1 else None
        shape = (ny, nx) if len(indices) == 1 else (len(indices), ny, nx)
        return ArrayRef(str(path), shape, dtype, pixel, z_step, title if title is not None else str(imp.getTitle()))

    def save_tiff(self, imp: Any, name: str) -> str:
        """Save an ImagePlus as a TIFF in the transfer folder (for plugins that read files)."""
        from ij.io import FileSaver

        path = str(Path(self.config.transfer_dir) / name)
        saver = FileSaver(imp)
        ok = saver.saveAsTiffStack(path) if imp.getStackSize() > 1 else saver.saveAsTiff(path)
        if not ok:
            raise _Failed("remote", f"ImageJ could not write {path}")
        return path

    def close_images(self) -> None:
        from ij import WindowManager

        ids = WindowManager.getIDList()
        for image_id in list(ids) if ids is not None else []:
            imp = WindowManager.getImage(int(image_id))
            if imp is not None:
                imp.changes = False
                self.Interpreter.removeBatchModeImage(imp)
                imp.close()
        WindowManager.setTempCurrentImage(None)

    def open_titles(self) -> list[str]:
        from ij import WindowManager

        ids = WindowManager.getIDList()
        titles = []
        for image_id in list(ids) if ids is not None else []:
            imp = WindowManager.getImage(int(image_id))
            if imp is not None:
                titles.append(str(imp.getTitle()))
        return titles

    # -- macros ----------------------------------------------------------------------------------------
    def run_macro(self, text: str, inputs: dict[str, Any] | None = None) -> str | None:
        """Run ``text`` with ``inputs`` (title -> ImagePlus) open in batch mode; raise on ImageJ errors."""
        from ij import WindowManager

        for title, imp in (inputs or {}).items():
            imp.setTitle(title)
            self.Interpreter.addBatchModeImage(imp)
            WindowManager.setTempCurrentImage(imp)
        interpreter = self.Interpreter()
        interpreter.setIgnoreErrors(True)
        failure: str | None = None
        result = None
        try:
            value = interpreter.run(text, None)
            result = None if value is None else str(value)
        except Exception as err:  # noqa: BLE001 - Java exceptions ("Macro canceled", HeadlessException)
            failure = f"{type(err).__name__}: {err}"
        message = interpreter.getErrorMessage()
        headless_failure = "java.awt.HeadlessException" in self.peek_log()
        if message is not None or failure is not None or headless_failure:
            log = self.take_log()
            detail = str(message) if message is not None else _last_message(log) or failure or "macro aborted"
            if headless_failure or "HeadlessException" in (failure or ""):
                raise _Failed("needs_display",
                              "a command tried to open a dialog or window, which plain ImageJ 1.x cannot do without a "
                              "display (java.awt.HeadlessException); install Xvfb (the worker then uses a virtual "
                              "screen), or use Fiji", log=log)
            raise _Failed("macro", detail, log=log)
        return result


def _last_message(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.startswith("\tat ")]
    return lines[-1] if lines else ""


# -- request handlers ----------------------------------------------------------------------------------

def _missing(key: str) -> _Failed:
    info = PLUGINS[key]
    return _Failed("plugin_missing", info.name, plugin=info.name, hint=info.install)


def handle_echo(rt: Runtime, request: Echo) -> Reply:
    images = {}
    for name, ref in request.images.items():
        imp = rt.read_image(ref, title=name)
        images[name] = rt.write_image(imp, title=name)
    return Reply(images=images, provenance={"backend": rt.label()})


def handle_macro(rt: Runtime, request: RunMacro) -> Reply:
    inputs = {name: rt.read_image(ref, title=name) for name, ref in request.inputs.items()}
    result = rt.run_macro(request.text, inputs)
    from ij import WindowManager

    images = {}
    for name in request.outputs:
        imp = WindowManager.getImage(name)
        if imp is None:
            log = rt.take_log()
            raise _Failed("macro", f"the macro produced no image titled {name!r} (open images: {rt.open_titles()})",
                          log=log)
        images[name] = rt.write_image(imp, title=name)
    return Reply(values={"result": result}, images=images,
                 provenance={"backend": rt.label(), "plugin": "ImageJ macro", "macro": request.text})


def handle_psf(rt: Runtime, request: BornWolfPsf) -> Reply:
    generator = rt.load_class("PSFGenerator")
    if generator is None:
        if rt.gateway is not None and request.allow_ops_fallback:
            return _psf_with_ops(rt, request)
        raise _missing("psf_generator")
    config_path = Path(rt.config.transfer_dir) / f"psf-{uuid.uuid4().hex}.txt"
    config_path.write_text(request.config_text, encoding="utf-8")
    try:
        imp = generator.computeImagePlus(str(config_path))
    finally:
        config_path.unlink(missing_ok=True)
    if imp is None:
        raise _Failed("macro", "PSF Generator returned no image (see the log)", log=rt.take_log())
    middle = None
    if request.nz_requested in (None, 1):
        middle = [int(imp.getStackSize()) // 2 + 1]
    ref = rt.write_image(imp, slices=middle, title="PSF")
    ref = ArrayRef(ref.path, ref.shape, ref.dtype, request.pixel_nm / 1000.0,
                   None if middle else request.z_step_nm / 1000.0, "PSF")
    provenance = {"backend": rt.label(), "plugin": "PSF Generator", "plugin_version": rt.plugin_version("psf_generator"),
                  "model": "Born & Wolf", "config": request.config_text,
                  "call": "PSFGenerator.computeImagePlus(<config file>)"}
    if middle:
        provenance["notes"] = [f"2-D PSF = middle plane (defocus 0) of an NZ={request.nz_run} run "
                               "(PSF Generator refuses fewer than 3 planes)"]
    return Reply(images={"psf": ref}, provenance=provenance)


def _psf_with_ops(rt: Runtime, request: BornWolfPsf) -> Reply:
    from net.imglib2 import FinalDimensions
    from net.imglib2.img.display.imagej import ImageJFunctions
    from net.imglib2.type.numeric.real import FloatType

    ny, nx = request.size
    nz = request.nz_run if request.nz_requested not in (None, 1) else 1
    args = operations.kernel_diffraction_arguments(na=request.na, ni=request.ni, wavelength_nm=request.wavelength_nm,
                                                   pixel_nm=request.pixel_nm, z_step_nm=request.z_step_nm)
    dims = FinalDimensions(rt.jpype.JArray(rt.jpype.JLong)([nx, ny, nz]))
    kernel = rt.gateway.op().create().kernelDiffraction(dims, args["NA"], args["lambda"], args["ns"], args["ni"],
                                                         args["resLateral"], args["resAxial"], args["pZ"], FloatType())
    imp = ImageJFunctions.wrapFloat(kernel, "PSF").duplicate()
    ref = rt.write_image(imp, title="PSF")
    ref = ArrayRef(ref.path, ref.shape, ref.dtype, request.pixel_nm / 1000.0,
                   request.z_step_nm / 1000.0 if nz > 1 else None, "PSF")
    call = ("op().create().kernelDiffraction(dims=[{0}, {1}, {2}], NA={NA}, lambda={lambda}, ns={ns}, ni={ni}, "
            "resLateral={resLateral}, resAxial={resAxial}, pZ={pZ}, FloatType)").format(nx, ny, nz, **args)
    return Reply(images={"psf": ref}, provenance={
        "backend": rt.label(), "plugin": "ImageJ Ops create.kernelDiffraction",
        "plugin_version": str(rt.gateway.getVersion()), "model": "Gibson-Lanni", "call": call,
        "notes": ["PSF Generator is not installed: ImageJ Ops' Gibson-Lanni kernel (ns = ni, pZ = 0, lengths in "
                  "metres) was used instead; it is NOT the Born & Wolf model, expect small differences"]})


def handle_rl(rt: Runtime, request: RichardsonLucy) -> Reply:
    if rt.load_class("DeconvolutionLab2_Run") is None:
        if rt.gateway is not None and request.allow_ops_fallback:
            return _rl_with_ops(rt, request)
        raise _missing("deconvolutionlab2")
    image = rt.read_image(request.image, title="image")
    psf = rt.read_image(request.psf, title="psf")
    tag = uuid.uuid4().hex[:12]
    image_path = rt.save_tiff(image, f"dl2-image-{tag}.tif")
    psf_path = rt.save_tiff(psf, f"dl2-psf-{tag}.tif")
    out_name = f"dl2-out-{tag}"
    options = operations.dl2_options(image_path=image_path, psf_path=psf_path, iterations=request.iterations,
                                     tv_lambda=request.tv_lambda, out_name=out_name, out_dir=rt.config.transfer_dir)
    macro = operations.dl2_macro(options)
    out_path = Path(rt.config.transfer_dir) / f"{out_name}.tif"
    try:
        rt.run_macro(macro)
        if not out_path.is_file():
            raise _Failed("macro", f"DeconvolutionLab2 wrote no output file {out_path.name} (see the log)",
                          log=rt.take_log())
        from ij.io import Opener

        result = Opener().openImage(str(out_path))
        if result is None:
            raise _Failed("macro", f"ImageJ cannot read DeconvolutionLab2's output {out_path}", log=rt.take_log())
        ref = rt.write_image(result, title="deconvolved")
    finally:
        for path in (image_path, psf_path, str(out_path)):
            Path(path).unlink(missing_ok=True)
    ref = ArrayRef(ref.path, ref.shape, ref.dtype, request.image.pixel_size_um, request.image.z_step_um, "deconvolved")
    algorithm = operations.dl2_algorithm(request.iterations, request.tv_lambda)
    return Reply(images={"image": ref}, provenance={
        "backend": rt.label(), "plugin": "DeconvolutionLab2", "plugin_version": rt.plugin_version("deconvolutionlab2"),
        "algorithm": algorithm, "macro": macro,
        "notes": ["DL2 defaults: PSF normalised to sum 1 and circularly shifted (even sizes displace it by one "
                  "pixel), periodic boundaries, first estimate = input, no positivity constraint"]})


def _rl_with_ops(rt: Runtime, request: RichardsonLucy) -> Reply:
    import jpype
    from net.imglib2.img.display.imagej import ImageJFunctions

    image = rt.read_image(request.image, title="image")
    psf_imp = rt.read_image(request.psf, title="psf")
    # Ops does not normalise the kernel: divide by its sum here (in Java, exact float32 arithmetic).
    total = 0.0
    stack = psf_imp.getStack()
    for index in range(1, stack.getSize() + 1):
        total += float(np.asarray(stack.getProcessor(index).getPixels(), dtype=np.float64).sum())
    if not (math.isfinite(total) and total > 0):
        raise _Failed("bad_request", f"the PSF must have a positive sum, got {total}")
    for index in range(1, stack.getSize() + 1):
        stack.getProcessor(index).multiply(1.0 / total)
    img = ImageJFunctions.wrapFloat(image)
    kernel = ImageJFunctions.wrapFloat(psf_imp)
    ops = rt.gateway.op()
    if request.tv_lambda is None:
        result = ops.run("deconvolve.richardsonLucy", img, kernel, jpype.JInt(request.iterations))
        call = f"op().run(\"deconvolve.richardsonLucy\", image, kernel / sum(kernel), {request.iterations})"
    else:
        result = ops.run("deconvolve.richardsonLucyTV", img, kernel, jpype.JInt(request.iterations),
                         jpype.JFloat(request.tv_lambda))
        call = (f"op().run(\"deconvolve.richardsonLucyTV\", image, kernel / sum(kernel), {request.iterations}, "
                f"{request.tv_lambda})")
    out = ImageJFunctions.wrapFloat(result, "deconvolved").duplicate()
    ref = rt.write_image(out, title="deconvolved")
    ref = ArrayRef(ref.path, ref.shape, ref.dtype, request.image.pixel_size_um, request.image.z_step_um, "deconvolved")
    return Reply(images={"image": ref}, provenance={
        "backend": rt.label(), "plugin": "ImageJ Ops deconvolve.richardsonLucy" + ("TV" if request.tv_lambda is not None else ""),
        "plugin_version": str(rt.gateway.getVersion()), "call": call,
        "notes": ["DeconvolutionLab2 is not installed: ImageJ Ops' Richardson-Lucy was used (kernel normalised to "
                  "sum 1 here; Ops pads the image by mirroring and starts from a constant estimate), so results "
                  "differ from DL2's periodic RL"]})


def handle_register(rt: Runtime, request: Register) -> Reply:
    kind = operations.transform_name(request.transform)
    if request.method == "sift":
        if rt.load_class("SIFT_Align") is None:
            raise _missing("sift")
        return _register_with_sift(rt, request, kind)
    if rt.load_class("TurboReg_") is None:
        if request.method == "auto" and rt.load_class("SIFT_Align") is not None:
            return _register_with_sift(rt, request, kind)
        raise _missing("turboreg")
    moving = rt.read_image(request.moving, title="moving")
    fixed = rt.read_image(request.fixed, title="fixed")
    if moving.getStackSize() != 1 or fixed.getStackSize() != 1:
        raise _Failed("bad_request", "TurboReg registers 2-D images; register one plane (or a projection)")
    tag = uuid.uuid4().hex[:12]
    source_path = rt.save_tiff(moving, f"turboreg-moving-{tag}.tif")
    target_path = rt.save_tiff(fixed, f"turboreg-fixed-{tag}.tif")
    try:
        options = operations.turboreg_options(
            source_path=source_path, target_path=target_path, transform=kind,
            source_shape=(int(moving.getHeight()), int(moving.getWidth())),
            target_shape=(int(fixed.getHeight()), int(fixed.getWidth())))
        plugin = rt.IJ.runPlugIn("TurboReg_", options)
        output = plugin.getTransformedImage() if plugin is not None else None
        if output is None:
            log = rt.take_log()
            raise _Failed("macro", _last_message(log) or "TurboReg returned no image", log=log)
        count = {"translation": 1, "rigid": 3, "similarity": 2, "affine": 3}[kind]
        source = [[float(v) for v in row][:2] for row in list(plugin.getSourcePoints())[:count]]
        target = [[float(v) for v in row][:2] for row in list(plugin.getTargetPoints())[:count]]
        aligned = rt.write_image(output, slices=[1], title="aligned")
        mask = rt.write_image(output, slices=[2], title="mask") if output.getStackSize() > 1 else None
    finally:
        Path(source_path).unlink(missing_ok=True)
        Path(target_path).unlink(missing_ok=True)
    matrix = operations.turboreg_matrix(source, target, kind)
    images = {"aligned": ArrayRef(aligned.path, aligned.shape, aligned.dtype, request.fixed.pixel_size_um, None,
                                  "aligned")}
    if mask is not None:
        images["mask"] = mask
    return Reply(values={"matrix": matrix.tolist(), "source_points": source, "target_points": target,
                         "transform": kind},
                 images=images,
                 provenance={"backend": rt.label(), "plugin": "TurboReg", "plugin_version": "",
                             "call": 'IJ.runPlugIn("TurboReg_", options)',
                             "macro": operations.turboreg_macro(options),
                             "convention": "matrix: TurboReg target->source [[tx, a, b], [ty, c, d]]"})


def _register_with_sift(rt: Runtime, request: Register, kind: str) -> Reply:
    from ij import ImagePlus, ImageStack, WindowManager

    moving = rt.read_image(request.moving, title="moving")
    fixed = rt.read_image(request.fixed, title="fixed")
    if (moving.getWidth(), moving.getHeight()) != (fixed.getWidth(), fixed.getHeight()):
        raise _Failed("bad_request", "SIFT stack alignment needs moving and fixed images of the same size")
    stack = ImageStack(int(fixed.getWidth()), int(fixed.getHeight()))
    stack.addSlice("fixed", fixed.getProcessor().convertToFloat())
    stack.addSlice("moving", moving.getProcessor().convertToFloat())
    pair = ImagePlus("decongan-sift-pair", stack)
    macro = f'run("{operations.SIFT_COMMAND}", "{operations.sift_options(kind)}");'
    rt.run_macro(macro, {"decongan-sift-pair": pair})
    deadline = time.monotonic() + 600
    output = None
    while time.monotonic() < deadline:  # the plugin may finish on its own thread
        output = WindowManager.getImage("Aligned 2 of 2")
        if output is not None:
            break
        time.sleep(0.05)
    log = rt.take_log()
    if output is None:
        raise _Failed("macro", "SIFT produced no aligned stack", log=log)
    try:
        sift = operations.parse_sift_matrix(log)
    except ValueError as err:
        raise _Failed("macro", str(err), log=log) from None
    matrix = operations.sift_to_turboreg(sift)
    aligned = rt.write_image(output, slices=[2], title="aligned")
    return Reply(values={"matrix": matrix.tolist(), "sift_matrix": sift.tolist(), "transform": kind},
                 images={"aligned": ArrayRef(aligned.path, aligned.shape, aligned.dtype, request.fixed.pixel_size_um,
                                             None, "aligned")},
                 provenance={"backend": rt.label(), "plugin": "Linear Stack Alignment with SIFT (mpicbg)",
                             "plugin_version": "", "macro": macro, "log": log,
                             "convention": "matrix: TurboReg target->source (inverse of SIFT's moving->reference)",
                             "notes": ["SIFT feature alignment (bilinear resampling, 0 outside"
                                       + ("; TurboReg is not installed" if request.method == "auto" else "")
                                       + "); its RANSAC uses a shared Random(69997), so results are reproducible "
                                       "only in a fresh worker"]},
                 log=log)


HANDLERS = {Echo: handle_echo, RunMacro: handle_macro, BornWolfPsf: handle_psf, RichardsonLucy: handle_rl,
            Register: handle_register}


# -- main loop ------------------------------------------------------------------------------------------

def _failure_from_exception(rt: Runtime | None, err: BaseException) -> Failure:
    log = rt.take_log() if rt is not None else ""
    if isinstance(err, _Failed):
        return Failure(err.kind, err.message, log=err.details.pop("log", "") or log, details=err.details)
    text = f"{type(err).__name__}: {err}"
    if "HeadlessException" in text or "HeadlessException" in log:
        return Failure("needs_display", f"{text} (plain ImageJ 1.x cannot open windows without a display: "
                                        "install Xvfb, or use Fiji)", log=log)
    stacktrace = ""
    java_trace = getattr(err, "stacktrace", None)
    if callable(java_trace):
        try:
            stacktrace = str(java_trace())
        except Exception:  # noqa: BLE001
            stacktrace = ""
    return Failure("remote", text, log=log, details={"traceback": traceback.format_exc(), "java": stacktrace})


def serve() -> None:
    """Process entry point (``python -m imagej_bridge.worker --serve``).

    Reads one JSON line from stdin (``address``, ``family``, ``authkey`` of the client's
    ``multiprocessing.connection.Listener``), connects, receives the :class:`WorkerConfig`, then
    runs :func:`main`. stdout/stderr are the log file the client opened.
    """
    import json
    from multiprocessing.connection import Client

    handshake = json.loads(sys.stdin.readline())
    conn = Client(handshake["address"], family=handshake["family"], authkey=bytes.fromhex(handshake["authkey"]))
    config = conn.recv()
    if not isinstance(config, WorkerConfig):
        os._exit(2)
    main(conn, config)


def main(conn: Any, config: WorkerConfig) -> None:
    """Start ImageJ, answer :class:`Ready` (or a start :class:`Failure`), then serve requests until told to stop."""
    rt: Runtime | None = None
    try:
        rt = Runtime(config)
        conn.send(Ready(rt.describe()))
        rt.reset_log()
    except BaseException as err:  # noqa: BLE001 - report any start-up failure
        try:
            conn.send(Failure("start", f"{type(err).__name__}: {err}",
                              details={"traceback": traceback.format_exc()}))
        finally:
            conn.close()
            _hard_exit(1)
    _watch_parent()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            _hard_exit(0)
        if isinstance(request, Shutdown):
            conn.send(Reply(values={"bye": True}))
            conn.close()
            _hard_exit(0)
        t0 = time.perf_counter()
        try:
            rt.reset_log()
            if isinstance(request, Ping):
                answer: Reply | Failure = Reply(values={"pong": True})
            elif isinstance(request, Describe):
                answer = Reply(values=rt.describe())
            else:
                handler = HANDLERS.get(type(request))
                if handler is None:
                    answer = Failure("bad_request", f"unknown request {type(request).__name__}")
                else:
                    reply = handler(rt, request)
                    log = rt.take_log()
                    answer = Reply(reply.values, reply.images, reply.provenance, reply.log or log)
        except BaseException as err:  # noqa: BLE001 - every failure goes back to the client
            answer = _failure_from_exception(rt, err)
        finally:
            try:
                rt.close_images()
            except Exception:  # noqa: BLE001
                pass
        if isinstance(answer, Reply):
            answer.values.setdefault("elapsed_s", round(time.perf_counter() - t0, 4))
        try:
            conn.send(answer)
        except (BrokenPipeError, OSError):
            _hard_exit(0)


def dump_builtin_commands(ij_jar: str, java_home: str) -> str:
    """Built-in (hard-coded) menu commands of an ImageJ 1.x jar, as TSV: run with a display (Xvfb)."""
    os.environ["JAVA_HOME"] = java_home
    import jpype

    jpype.startJVM(jpype.getDefaultJVMPath(), "-Djava.awt.headless=false", "-Dplugins.dir=/nonexistent",
                   classpath=[ij_jar], convertStrings=True)
    init = jpype.JClass("java.lang.Class").forName("ij.IJ").getDeclaredMethod("init")
    init.setAccessible(True)
    init.invoke(None)
    commands = jpype.JClass("ij.Menus").getCommands()
    listed = ij_props_commands()
    version = str(jpype.JClass("ij.IJ").getFullVersion())
    lines = [f"# ImageJ {version} built-in menu commands (command<TAB>class) missing from, or overriding, IJ_Props.txt.",
             "# Generated by: xvfb-run python -m imagej_bridge.worker --dump-builtin-commands ij.jar"]
    for key in sorted(str(k) for k in commands.keySet()):
        target = str(commands.get(key))
        if listed.get(key) != target:
            lines.append(f"{key}\t{target}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - process entry points
    if len(sys.argv) == 2 and sys.argv[1] == "--serve":
        serve()
        os._exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "--dump-builtin-commands":
        sys.stdout.write(dump_builtin_commands(sys.argv[2], os.environ.get("JAVA_HOME", "/usr/lib/jvm/default-java")))
        sys.stdout.flush()
        os._exit(0)
    print("usage: python -m imagej_bridge.worker --serve | --dump-builtin-commands PATH/TO/ij.jar", file=sys.stderr)
    sys.exit(2)
