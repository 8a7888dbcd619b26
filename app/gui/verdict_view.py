"""The window's "Dataset verdict" tab: the engine's paired verdict of a dataset-level evaluation, in words.

Nothing is re-derived here. After a batch, the verdict is the one its report states, read back from
``OUT/metrics.json`` (``"verdict"``, written by :func:`engine.evaluate.report.write_comparison_outputs`)
into :class:`engine.evaluate.verdict.Verdict`, whose ``headline`` the CLI prints too. For the fields
compared in the window, :func:`verdict_of_evaluations` runs the engine's
:func:`~engine.evaluate.verdict.paired_verdict` on their rows with the families of their columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from decongan.engine.evaluate.verdict import PairedComparison, Verdict

_FLOAT_FIELDS = {"median_difference", "ci_low", "ci_high", "rank_biserial"}


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    """The :class:`Verdict` of a ``metrics.json`` ``"verdict"`` record (``Verdict.as_dict``'s inverse).

    Raises
    ------
    ValueError
        When the record is not a verdict (a file from another version).
    """
    try:
        fields = set(PairedComparison.__dataclass_fields__)
        # metrics.json writes NaN (no interval, no effect size) as null: back to NaN
        comparisons = [PairedComparison(**{k: (float("nan") if v is None and k in _FLOAT_FIELDS else v)
                                           for k, v in c.items() if k in fields}) for c in data["comparisons"]]
        return Verdict(primary_metric=data["primary_metric"], best_classical=data["best_classical"],
                       comparisons=comparisons, notes=list(data.get("notes") or []),
                       families=dict(data.get("families") or {}), best_median=data.get("best_median"))
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a verdict record ({err})") from err


def verdict_from_metrics_json(path: str | Path) -> Verdict:
    """The verdict a comparison's report states, from its ``metrics.json``.

    Raises
    ------
    ValueError
        When the file cannot be read or holds no verdict (both name the file).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the comparison's metrics ({err})") from err
    if not isinstance(data, dict) or "verdict" not in data:
        raise ValueError(f"{path}: holds no verdict (written by an older DeconGAN); run the comparison again")
    try:
        return verdict_from_dict(data["verdict"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def verdict_of_evaluations(evaluations: Iterable[Any]) -> Verdict:
    """The engine's paired verdict of the fields compared in the window (``SetEvaluation`` objects)."""
    from decongan.engine.evaluate.verdict import families_of, paired_verdict

    evaluations = list(evaluations)
    rows = [row for ev in evaluations for row in ev.rows]
    return paired_verdict(rows, families_of(evaluations))


class VerdictView(QWidget):
    """The verdict's headline (best classical baseline, the primary metric's sentences, notes), then the other
    metrics' sentences, and where it comes from.

    Signals: none; :attr:`compare_button` asks the window for the verdict of its compared fields.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.source = QLabel("No dataset-level evaluation yet: run a batch (Batch panel), or compare several fields "
                             "and press the button below.")
        self.source.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.compare_button = QPushButton("Verdict of the fields compared in this window")
        layout.addWidget(self.source)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.compare_button)
        self.verdict: Verdict | None = None

    @property
    def headline(self) -> str:
        """The headline shown (the engine's :attr:`Verdict.headline`), or ``""``."""
        return self.verdict.headline if self.verdict is not None else ""

    def show_verdict(self, verdict: Verdict, source: str) -> None:
        """Show ``verdict`` (headline first) and say where it comes from."""
        import html

        self.verdict = verdict
        self.source.setText(source)
        others = [c.sentence for c in verdict.comparisons if c.metric != verdict.primary_metric and c.sentence]
        page = f"<p><b>{html.escape(verdict.headline or 'No paired comparison could be made.')}</b></p>"
        if others:
            page += "<p>Other metrics:</p><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in others) + "</ul>"
        self.text.setHtml(page)

    def show_problem(self, message: str) -> None:
        """Say why no verdict is shown (e.g. a metrics.json without one)."""
        self.verdict = None
        self.source.setText(message)
        self.text.clear()


__all__ = ["VerdictView", "verdict_from_dict", "verdict_from_metrics_json", "verdict_of_evaluations"]
