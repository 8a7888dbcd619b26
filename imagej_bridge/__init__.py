"""Fiji / ImageJ access. The JVM lives in a child process; only ``imagej_bridge.worker`` imports
scyjava/jpype/imagej, and nothing here imports torch or Qt.

Public API: :class:`FijiClient` (owns the worker), :func:`discover` (backends with reasons),
:mod:`imagej_bridge.macros` (safe quoting), :mod:`imagej_bridge.errors` (typed errors).
Importing this package is cheap: no Java, no numpy-heavy work.
"""

from decongan.imagej_bridge.arrays import ImageArray
from decongan.imagej_bridge.client import BridgeResult, FijiClient, MacroResult, RegistrationOutput
from decongan.imagej_bridge.discovery import Backend, Discovery, discover, find_java
from decongan.imagej_bridge.errors import (
    BridgeError,
    FijiUnavailable,
    MacroError,
    NeedsDisplay,
    PluginMissing,
    WorkerCrashed,
    WorkerTimeout,
)

__all__ = [
    "Backend",
    "BridgeError",
    "BridgeResult",
    "Discovery",
    "FijiClient",
    "FijiUnavailable",
    "ImageArray",
    "MacroError",
    "MacroResult",
    "NeedsDisplay",
    "PluginMissing",
    "RegistrationOutput",
    "WorkerCrashed",
    "WorkerTimeout",
    "discover",
    "find_java",
]
