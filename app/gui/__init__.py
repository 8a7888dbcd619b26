"""The DeconGAN desktop workbench (PySide6 + pyqtgraph).

Only this package imports Qt. ``decongan gui`` enters through :func:`app.gui.main.main`.
Long work runs off the GUI thread (:mod:`app.gui.jobs` for engine generators in threads,
:mod:`app.gui.process_job` for the training CLI in its own process); every error is shown by
one presenter (:mod:`app.gui.error_dialog`).
"""
