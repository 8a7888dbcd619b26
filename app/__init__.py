"""Front-ends: the command line (``app.cli``, no Qt) and the desktop window (``app.gui``, PySide6)."""
