"""Batch panel (mirrors ``decongan batch``): a folder through the chosen methods, resumable."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from app.gui.panels.base import Context, WorkflowPanel


class BatchPanel(WorkflowPanel):
    """Placeholder until engine.batch lands."""

    command = "batch"
    title = "Batch"
    rows_ready = Signal(list)

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.add_command_row()

    def parameters(self) -> dict[str, Any]:
        return {}

    def shutdown(self) -> None:
        pass
