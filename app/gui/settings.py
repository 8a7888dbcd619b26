"""Persisted user settings (QSettings), with a temporary location for tests.

The store is chosen, first match wins:

1. an explicit ``QSettings`` or ini path passed to :class:`Settings`;
2. the ``DECONGAN_SETTINGS`` environment variable (path of an ini file; tests set it);
3. the platform's native user store under organisation "DeconGAN", application "decongan".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "DeconGAN"
APPLICATION = "decongan"
SETTINGS_ENV = "DECONGAN_SETTINGS"
MAX_RECENT = 10

#: key -> default value; the type of the default is the type returned by :meth:`Settings.get`.
DEFAULTS: dict[str, Any] = {
    "fiji/location": "",
    "viewer/lut": "grey",
    "viewer/contrast_shared": False,
    "viewer/percentile_low": 0.1,
    "viewer/percentile_high": 99.9,
    "predict/tile": 512,
    "predict/overlap": 64,
    "device": "auto",
    "last_dir": "",
}


class Settings:
    """Typed access to the persisted settings.

    Parameters
    ----------
    store : QSettings or str or Path, optional
        The backing store, or the path of an ini file to use instead of the user's settings.
    """

    def __init__(self, store: QSettings | str | Path | None = None) -> None:
        if isinstance(store, QSettings):
            self.store = store
        else:
            path = store if store is not None else os.environ.get(SETTINGS_ENV)
            if path:
                self.store = QSettings(str(path), QSettings.Format.IniFormat)
            else:
                self.store = QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope,
                                       ORGANIZATION, APPLICATION)

    @property
    def location(self) -> str:
        """Where the settings are stored (file name or registry path)."""
        return self.store.fileName()

    # -- generic -----------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The stored value of ``key`` converted to the type of its default."""
        if default is None:
            default = DEFAULTS.get(key)
        value = self.store.value(key, default)
        if default is None or value is None:
            return value
        try:
            if isinstance(default, bool):
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            if isinstance(default, int):
                return int(value)
            if isinstance(default, float):
                return float(value)
            if isinstance(default, str):
                return str(value)
        except (TypeError, ValueError):
            return default
        return value

    def set(self, key: str, value: Any) -> None:
        self.store.setValue(key, value)

    def sync(self) -> None:
        self.store.sync()

    # -- recent files ------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        """Recently opened files and folders, newest first (entries that vanished are dropped)."""
        value = self.store.value("recent_files", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or []) if v and Path(str(v)).exists()]

    def add_recent(self, path: str | Path) -> list[str]:
        """Put ``path`` first in the recent list (at most :data:`MAX_RECENT`) and return the list."""
        path = str(Path(path).resolve())
        items = [p for p in self.recent_files() if p != path]
        items.insert(0, path)
        items = items[:MAX_RECENT]
        self.store.setValue("recent_files", items)
        self.set("last_dir", str(Path(path).parent if Path(path).is_file() else path))
        return items

    def clear_recent(self) -> None:
        self.store.setValue("recent_files", [])

    # -- window ------------------------------------------------------------------------------------
    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.store.setValue("window/geometry", geometry)
        self.store.setValue("window/state", state)

    def window_geometry(self) -> tuple[QByteArray | None, QByteArray | None]:
        geometry = self.store.value("window/geometry")
        state = self.store.value("window/state")
        return (geometry if isinstance(geometry, QByteArray) else None,
                state if isinstance(state, QByteArray) else None)
