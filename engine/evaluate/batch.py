"""Resumable batch restoration of a folder: every image through every method, with a manifest.

The restoration methods are plain callables (``f(image: MicroscopyImage) -> restoration``, where a
restoration is anything :func:`engine.evaluate.compare.build_comparison_set` accepts: ``Restored``,
``DeconvolvedImage``, ``(MicroscopyImage, Provenance)``). The front end builds them (engine RL,
Fiji's DeconvolutionLab2 through the bridge, a GAN run), so this module never imports the bridge.

Manifest (``OUT/manifest.json``, rewritten atomically after every output)
-----------------------------------------------------------------------
One entry per (input file, method)::

    {"input": "IN/a.tif", "input_sha256": "...", "method": "RL 20 it", "params_sha256": "...",
     "output": "restored/RL_20_it/a.tif", "output_sha256": "...", "status": "done" | "failed",
     "error": "...", "finished": "2026-...", "seconds": 1.2, "provenance": {...}}

An entry is **reused** (the image is skipped) only when its status is ``done``, the input file's
sha256 and the method's parameter hash are unchanged, and the output file still exists with the
recorded sha256. A changed input, changed parameters, a deleted or edited output, or an earlier
failure make the step run again. ``params_sha256`` hashes the method's name and its ``parameters``
(JSON, sorted keys): put everything that changes the result there (PSF, iterations, model weights'
hash ...).

Failures of one file (unreadable image, a method raising) are recorded with their reason and the
batch continues. Inputs are never written: every output path is checked against the inputs before
anything runs. Cancelling (``CancelToken``) stops between steps; what finished stays in the
manifest, so the next run resumes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decongan.engine.atomic import write_json_atomic
from decongan.engine.errors import DeconganError
from decongan.engine.io import MicroscopyImage, read_image, safe_stem
from decongan.engine.progress import Cancelled, CancelToken, Progress

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "decongan-batch-manifest"
MANIFEST_VERSION = 1


class BatchError(DeconganError, ValueError):
    """A batch that cannot start (bad folders, outputs that would overwrite inputs)."""


@dataclass
class MethodSpec:
    """A restoration method of a batch.

    Attributes
    ----------
    name : str
        Column title and output sub-folder (made file-name safe).
    run : callable
        ``run(image: MicroscopyImage) -> restoration`` (see the module docstring).
    parameters : dict
        Everything that determines the result; hashed into the manifest.
    """

    name: str
    run: Callable[[MicroscopyImage], Any]
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def params_sha256(self) -> str:
        text = json.dumps({"method": self.name, "parameters": self.parameters}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def folder(self) -> str:
        return safe_stem(self.name)


@dataclass
class BatchItem:
    """Outcome of one (input, method) step."""

    input: Path
    method: str
    output: Path | None
    status: str  # "done", "skipped" (reused), "failed"
    error: str | None = None
    seconds: float = 0.0


@dataclass
class BatchResult:
    """What :func:`iter_batch` returns."""

    out_dir: Path
    items: list[BatchItem]
    manifest_path: Path

    @property
    def failed(self) -> list[BatchItem]:
        return [i for i in self.items if i.status == "failed"]

    @property
    def skipped(self) -> list[BatchItem]:
        return [i for i in self.items if i.status == "skipped"]

    @property
    def done(self) -> list[BatchItem]:
        return [i for i in self.items if i.status == "done"]

    def outputs_for(self, input_path: Path) -> dict[str, Path]:
        """Method name -> output file of every successful step of one input."""
        return {i.method: i.output for i in self.items
                if i.input == input_path and i.status in ("done", "skipped") and i.output is not None}


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def output_path(out_dir: Path, method: MethodSpec, input_path: Path) -> Path:
    """``OUT/restored/<method>/<input stem>.tif``."""
    from decongan.engine.evaluate.compare import image_stem

    return out_dir / "restored" / method.folder / f"{image_stem(input_path)}.tif"


def load_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of ``out_dir`` (an empty one when none exists or it is unreadable)."""
    path = Path(out_dir) / MANIFEST_NAME
    empty = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "entries": {}}
    if not path.exists():
        return empty
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return empty
    if data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("entries"), dict):
        return empty
    return data


def _key(input_path: Path, method: MethodSpec) -> str:
    return f"{input_path.name}::{method.name}"


def check_outputs_do_not_touch_inputs(inputs: Sequence[Path], out_dir: Path, methods: Sequence[MethodSpec]) -> None:
    """Raise :class:`BatchError` when any planned output (or the manifest) would be an input file."""
    resolved_inputs = {p.resolve() for p in inputs}
    planned = [out_dir / MANIFEST_NAME] + [output_path(out_dir, m, p) for p in inputs for m in methods]
    clashes = sorted({str(p) for p in planned if p.resolve() in resolved_inputs})
    if clashes:
        raise BatchError(f"the output folder {out_dir} would overwrite input files ({', '.join(clashes[:3])}); "
                         "choose an output folder outside the input folder")
    names = [m.folder for m in methods]
    if len(set(names)) != len(names):
        raise BatchError(f"two methods share the output folder name ({', '.join(names)}); give them distinct names")


def iter_batch(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    methods: Sequence[MethodSpec],
    *,
    read: Callable[[Path], MicroscopyImage] | None = None,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, BatchResult]:
    """Run every method on every input, resuming from the manifest; yields a Progress per step.

    Parameters
    ----------
    inputs : sequence of paths
        Image files.
    out_dir : path
        Output folder (created). Outputs go to ``OUT/restored/<method>/<stem>.tif`` (float32,
        calibrated, provenance JSON in the ImageJ Info field).
    methods : sequence of MethodSpec
    read : callable, optional
        How to read an input (default ``engine.io.read_image``).
    cancel : CancelToken, optional
        Checked before every step; raises :class:`engine.progress.Cancelled` (manifest saved).

    Returns
    -------
    BatchResult
    """
    from decongan.engine.io import write_tiff

    out = Path(out_dir)
    paths = [Path(p) for p in inputs]
    if not methods:
        raise BatchError("no restoration method was chosen")
    check_outputs_do_not_touch_inputs(paths, out, methods)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out)
    entries: dict[str, Any] = manifest["entries"]
    manifest_path = out / MANIFEST_NAME
    reader = read or read_image
    items: list[BatchItem] = []
    total = len(paths) * len(methods)
    step = 0

    def save() -> None:
        manifest["updated"] = _now()
        write_json_atomic(manifest_path, manifest)

    for path in paths:
        try:
            input_hash = sha256_file(path)
        except OSError as err:
            input_hash = None
            read_error: str | None = f"{path}: cannot read the file ({err.strerror or err})"
        else:
            read_error = None
        image: MicroscopyImage | None = None
        for method in methods:
            if cancel is not None and cancel.cancelled:
                save()
                raise Cancelled("batch cancelled by the user; run the same command again to resume")
            step += 1
            key = _key(path, method)
            dest = output_path(out, method, path)
            entry = entries.get(key)
            if (read_error is None and entry and entry.get("status") == "done"
                    and entry.get("input_sha256") == input_hash and entry.get("params_sha256") == method.params_sha256
                    and dest.exists() and entry.get("output_sha256") == sha256_file(dest)):
                items.append(BatchItem(path, method.name, dest, "skipped"))
                yield Progress(step, total, f"{path.name}: {method.name} (already done)")
                continue
            started = time.perf_counter()
            record: dict[str, Any] = {"input": str(path), "input_sha256": input_hash, "method": method.name,
                                      "params_sha256": method.params_sha256, "parameters": method.parameters}
            try:
                if read_error is not None:
                    raise OSError(read_error)
                if image is None:
                    image = reader(path)
                restored_image, provenance = _unpack(method.run(image), image)
                write_tiff(dest, restored_image, description=provenance.model_dump_json())
                seconds = time.perf_counter() - started
                record.update(status="done", output=str(dest.relative_to(out)), output_sha256=sha256_file(dest),
                              provenance=json.loads(provenance.model_dump_json()), finished=_now(),
                              seconds=round(seconds, 3))
                items.append(BatchItem(path, method.name, dest, "done", seconds=seconds))
                message = f"{path.name}: {method.name} done"
            except Cancelled:
                save()
                raise
            except Exception as err:  # one bad file must not stop the batch; the reason is recorded
                reason = str(err) if str(path) in str(err) else f"{path.name}: {type(err).__name__}: {err}"
                record.update(status="failed", error=reason, finished=_now())
                items.append(BatchItem(path, method.name, None, "failed", reason,
                                       seconds=time.perf_counter() - started))
                message = f"{path.name}: {method.name} FAILED"
                if image is None and read_error is None:
                    read_error = reason  # do not try to read the same broken file for every method
            entries[key] = record
            save()
            yield Progress(step, total, message)
    save()
    return BatchResult(out, items, manifest_path)


def _unpack(result: Any, like: MicroscopyImage) -> tuple[MicroscopyImage, Any]:
    from decongan.engine.provenance import Provenance

    provenance = getattr(result, "provenance", None)
    image = getattr(result, "image", result)
    if isinstance(result, tuple) and len(result) == 2:
        image, provenance = result
    if not isinstance(image, MicroscopyImage):
        image = like.with_data(image)
    if provenance is None:
        provenance = Provenance(method="unknown")
    return image, provenance


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
