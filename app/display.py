"""Whether a graphical display is available (so Qt will not abort the process)."""

from __future__ import annotations

import os
import sys


def display_available() -> tuple[bool, str]:
    """Return ``(available, reason)``.

    On Linux Qt needs an X11 or Wayland display, or an explicit ``QT_QPA_PLATFORM`` such as
    ``offscreen``; without any of them it aborts with exit status 134. macOS and Windows always
    have a display for a logged-in user.
    """
    if sys.platform in ("darwin", "win32"):
        return True, "desktop session"
    if os.environ.get("QT_QPA_PLATFORM"):
        return True, f"QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}"
    for var in ("WAYLAND_DISPLAY", "DISPLAY"):
        if os.environ.get(var):
            return True, f"{var}={os.environ[var]}"
    return False, (
        "no display: DISPLAY and WAYLAND_DISPLAY are unset. Run the window on a desktop session, "
        "under a virtual screen (xvfb-run -a decongan gui), or use the command line (decongan --help)"
    )
