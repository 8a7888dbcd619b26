"""Export panel: comparison figure, tables, restored TIFFs and the HTML report, with a preview."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.gui.panels.base import Context, WorkflowPanel


class ExportPanel(WorkflowPanel):
    """Placeholder until engine.figures / engine.report land."""

    command = "compare"
    title = "Export"

    def __init__(self, ctx: Context, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.add_command_row()
