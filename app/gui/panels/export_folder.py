"""The Export panel's output folder: what an earlier export from the window wrote there (its manifest),
asking before writing into a folder that holds files, and removing the earlier export's files on
Replace so no stale figure, table or TIFF stays beside the new ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox, QWidget

#: what an export wrote into its folder (relative paths), so replacing it removes them all (no stale files)
EXPORT_MANIFEST = "export_manifest.json"


def owned_files(out: Path) -> list[Path]:
    """The files an earlier export from the window wrote into ``out`` (its manifest), that still exist there."""
    try:
        data = json.loads((Path(out) / EXPORT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    root = Path(out).resolve()
    files = []
    for rel in data.get("files", []) if isinstance(data, dict) else []:
        path = (root / str(rel)).resolve()
        if path.is_relative_to(root) and path.is_file():  # never outside the folder
            files.append(path)
    return files


def ask_existing_results(parent: QWidget, out: Path, owned: int, other: int) -> str:
    """Ask what to do with an output folder that already holds files: "replace", "another" or "cancel"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Output folder holds results")
    box.setText(f"{out} already holds files.")
    parts = []
    if owned:
        parts.append(f"Replace removes the {owned} file{'s' if owned != 1 else ''} of the earlier export "
                     "from this window first, so no stale figure or table stays beside the new ones.")
    if other:
        parts.append(f"{other} other file{'s' if other != 1 else ''} (not written by an export from this window) "
                     "stay; those with the names of the new outputs are replaced.")
    box.setInformativeText(" ".join(parts))
    replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
    another = box.addButton("Choose another folder...", QMessageBox.ButtonRole.ActionRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    return "replace" if clicked is replace else "another" if clicked is another else "cancel"


def remove_owned(out: Path) -> list[Path]:
    """Delete the files of the earlier export in ``out`` (its manifest) and the folders they leave empty."""
    removed = []
    for path in owned_files(out):
        path.unlink()
        removed.append(path)
        parent = path.parent
        while parent != Path(out).resolve() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    (Path(out) / EXPORT_MANIFEST).unlink(missing_ok=True)
    return removed


def recording_owned_files(work: Any, out: Path) -> Any:
    """Wrap an export job's ``work`` (a plain function of the job context) so that the files it creates or
    changes in ``out`` are listed in the manifest, also when it is cancelled or fails half-way (a later
    Replace removes them)."""
    from decongan.engine.outputs import write_json_atomic

    def files_in(folder: Path) -> dict[str, int]:
        root = Path(folder)
        return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} \
            if root.is_dir() else {}

    def recorded(ctx):
        before = files_in(out)
        try:
            return work(ctx)  # a plain function (write_comparison_outputs reports progress through ctx)
        finally:
            after = files_in(out)
            written = sorted(k for k, t in after.items() if before.get(k) != t and k != EXPORT_MANIFEST)
            if written:
                write_json_atomic(Path(out) / EXPORT_MANIFEST, {"written_by": "DeconGAN window (Export panel)",
                                                                "files": written})

    return recorded
