"""Typed errors of the Fiji bridge. Callers catch :class:`FijiUnavailable` and :class:`PluginMissing`
to fall back to the engine; every message says what went wrong and, where possible, how to fix it."""

from __future__ import annotations


class BridgeError(Exception):
    """Base class of every error raised by :mod:`imagej_bridge`."""


class FijiUnavailable(BridgeError):
    """No Fiji/ImageJ backend can be used (no Java, no ImageJ, or the JVM does not start)."""


class JavaNotFound(FijiUnavailable):
    """No Java runtime was found (JAVA_HOME, the system JDK or a Fiji.app's bundled Java)."""


class WorkerStartError(FijiUnavailable):
    """The worker process, its JVM or ImageJ failed to start. ``log`` holds the tail of the worker log."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message + (f"\n--- worker log (tail) ---\n{log}" if log else ""))
        self.log = log


class WorkerCrashed(BridgeError):
    """The worker process died during a request (JVM crash, killed, out of memory).

    The next request starts a fresh worker; ``exitcode`` is the worker's exit status (negative:
    killed by that signal) and ``log`` the tail of its log.
    """

    def __init__(self, message: str, *, exitcode: int | None = None, log: str = "") -> None:
        super().__init__(message + (f"\n--- worker log (tail) ---\n{log}" if log else ""))
        self.exitcode = exitcode
        self.log = log


class WorkerOutOfMemory(WorkerCrashed):
    """The JVM ran out of heap; raise the heap limit (``max_heap``, e.g. "8g") or use smaller images."""


class WorkerTimeout(BridgeError, TimeoutError):
    """A request took longer than its timeout; the worker was killed and will be replaced."""


class WorkerCancelled(BridgeError):
    """The request was cancelled by :meth:`imagej_bridge.client.FijiClient.cancel`; the worker was killed."""


class MacroError(BridgeError):
    """ImageJ reported an error while running a macro, command or plugin.

    ``message`` is ImageJ's own message; ``macro`` the text that ran and ``log`` what ImageJ printed.
    """

    def __init__(self, message: str, *, macro: str = "", log: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.macro = macro
        self.log = log


class NeedsDisplay(MacroError):
    """A command opened a dialog or window, which plain ImageJ 1.x cannot do without a display.

    Install Xvfb (``apt-get install xvfb``) so the worker can use a virtual display, or use Fiji
    (its legacy layer runs ImageJ 1.x commands headless).
    """


class PluginMissing(BridgeError):
    """An ImageJ plugin needed by an operation is not installed; the message says how to install it."""

    def __init__(self, plugin: str, hint: str) -> None:
        super().__init__(f"{plugin} is not installed in this Fiji/ImageJ: {hint}")
        self.plugin = plugin
        self.hint = hint


class RemoteError(BridgeError):
    """An unexpected exception inside the worker (Java or Python). ``details`` holds its traceback."""

    def __init__(self, message: str, *, details: str = "", log: str = "") -> None:
        super().__init__(message)
        self.details = details
        self.log = log
