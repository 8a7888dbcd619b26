"""``decongan fiji doctor``: which Fiji/ImageJ backend is used and why, Java, ImageJ and the plugins."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from decongan.app.fiji.client import FALLBACK_LABEL, client_for_backend
from decongan.imagej_bridge import errors as bridge_errors
from decongan.imagej_bridge.discovery import Backend, Discovery, discover, platform_summary
from decongan.imagej_bridge.plugins import PLUGINS, scan_plugins


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


