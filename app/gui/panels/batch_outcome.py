"""What a batch did, in words, from its manifest: outputs restored and, per method, what failed and why.

The Batch panel shows it in its status line and in the dialog at the end, so the cause of a failure
(e.g. an unknown pixel size) is read where the user looks, not only in a tooltip, and outputs that
are on disk are never reported as "not restored".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: distinct causes listed per method (the rest are counted)
MAX_CAUSES = 3


def summarize_manifest(entries: dict[str, Any], restored_dir: Path | None) -> tuple[str, list[str]]:
    """Summarise a batch manifest's entries.

    Parameters
    ----------
    entries : dict
        ``manifest.json``'s ``entries`` (each with ``method``, ``status`` and, when failed, ``error``).
    restored_dir : Path or None
        Where the restored images are (named in the summary).

    Returns
    -------
    head : str
        ``"14 outputs restored in OUT/restored, 14 failed"``.
    lines : list of str
        One line per method with failures: ``"RL 3 it (engine): 14 of 14 failed - <cause> (x14)"``.
    """
    done = sum(1 for e in entries.values() if e.get("status") in ("done", "skipped"))
    causes: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for e in entries.values():
        method = str(e.get("method", "?"))
        totals[method] = totals.get(method, 0) + 1
        if e.get("status") == "failed":
            reason = str(e.get("error") or "no reason recorded")
            per = causes.setdefault(method, {})
            per[reason] = per.get(reason, 0) + 1
    failed = sum(sum(per.values()) for per in causes.values())
    lines = []
    for method, per in causes.items():
        shown = list(per.items())[:MAX_CAUSES]
        reasons = "; ".join(reason + (f" (x{n})" if n > 1 else "") for reason, n in shown)
        more = f"; and {len(per) - MAX_CAUSES} other causes" if len(per) > MAX_CAUSES else ""
        lines.append(f"{method}: {sum(per.values())} of {totals[method]} failed - {reasons}{more}")
    where = f" in {restored_dir}" if restored_dir is not None else ""
    head = f"{done} output{'s' if done != 1 else ''} restored{where}" + (f", {failed} failed" if failed else "")
    return head, lines
