"""The Fiji bridge clients of the app layer: one shared :class:`FijiClient` per backend, and errors.

* :func:`get_client` / :func:`client_for_backend`: the cached client (a JVM start costs 1-2 s);
  :func:`close_clients` shuts them down (also at interpreter exit).
* :class:`FijiUnavailable`: no backend can do the job (no Java/ImageJ, or the plugin is missing:
  the message says how to install it); :func:`call_bridge` turns the bridge's errors into it.
* :func:`with_engine_fallback`: Fiji, else the engine labelled :data:`FALLBACK_LABEL`.
* :func:`provenance_from_bridge`: an engine ``Provenance`` from the bridge's provenance dict.

Adapters obtain their client through :func:`resolve_client`, which looks :func:`get_client` up in
this module at call time (tests replace it with a fake client by monkeypatching
``decongan.app.fiji.client.get_client``).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from typing import Any

from decongan.imagej_bridge import errors as bridge_errors
from decongan.imagej_bridge.client import BridgeResult, FijiClient, RegistrationOutput
from decongan.imagej_bridge.discovery import Backend, discover

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


def resolve_client(client: FijiClient | None, fiji_dir: str | os.PathLike[str] | None) -> FijiClient:
    """``client`` when given, else :func:`get_client` ``(fiji_dir)`` (looked up at call time)."""
    return client if client is not None else get_client(fiji_dir)


def call_bridge(function: Callable[[], Any]) -> Any:
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


def plugin_label(result: BridgeResult | RegistrationOutput) -> str:
    """"PLUGIN VERSION" of a bridge result (e.g. "DeconvolutionLab2 2.1.2"), or the plugin alone."""
    plugin = result.provenance.get("plugin", "Fiji")
    version = result.provenance.get("plugin_version")
    return f"{plugin} {version}".strip() if version else str(plugin)


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


