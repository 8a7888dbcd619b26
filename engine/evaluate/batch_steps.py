"""The per-file work of a batch: one input file through its restoration methods, outputs written atomically.

:func:`iter_restore_input` is what every batch runs for one input, whether ``engine.evaluate.batch``
runs it in its own loop or a cluster's worker runs it as one task (:func:`restore_input`,
``engine.evaluate.cluster``). It reads the image once, runs each method on it and writes each
restoration to ``OUT/restored/<method>/<input stem>.tif``; it never reads or writes a manifest --
it returns the entries, and the batch's own process alone records them. Here too: the method
description (:class:`MethodSpec`), a step's outcome (:class:`BatchItem`) and the file hash.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decongan.engine.io import MicroscopyImage, read_image, safe_stem
from decongan.engine.progress import Cancelled
from decongan.engine.provenance import sha256_file


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
    check : callable, optional
        ``check() -> None``: validates the method's configuration (PSF, optics, model) once, before
        any file is read; whatever it raises stops the whole batch with one message.
    """

    name: str
    run: Callable[[MicroscopyImage], Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    check: Callable[[], None] | None = None

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



def output_path(out_dir: Path, method: MethodSpec, input_path: Path) -> Path:
    """Where a method's restoration of one input goes: ``OUT/restored/<method>/<input stem>.tif``.

    Parameters
    ----------
    out_dir : Path
        The batch's output folder.
    method : MethodSpec
        The restoration method (its name, made safe for a folder name).
    input_path : Path
        The input image file; its stem without image extensions (``.ome.tif`` too) names the output.

    Returns
    -------
    Path
    """
    from decongan.engine.io import image_stem

    return out_dir / "restored" / method.folder / f"{image_stem(input_path)}.tif"


#: how :func:`iter_batch` hands per-file work to other processes or machines: ``runner(tasks)`` takes
#: ``[(function, args, kwargs), ...]`` and yields ``(index, result)`` as each task finishes (in any
#: order); a task that raised yields its exception as the result (``engine.evaluate.cluster``).
Runner = Callable[[list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]],
                  Iterator[tuple[int, Any]]]


def _hash_input(path: Path) -> tuple[str | None, str | None]:
    """The input file's sha256 and None, or None and why the file cannot be read."""
    try:
        return sha256_file(path), None
    except OSError as err:
        return None, f"{path}: cannot read the file ({err.strerror or err})"


def _failed_step(path: Path, method: MethodSpec, input_hash: str | None,
                 reason: str) -> tuple[dict[str, Any], BatchItem]:
    """The manifest entry and outcome of a step whose task never ran (its reason names the file)."""
    entry = {"input": str(path), "input_sha256": input_hash, "method": method.name,
             "params_sha256": method.params_sha256, "parameters": method.parameters, "status": "failed",
             "error": reason, "finished": _now()}
    return entry, BatchItem(path, method.name, None, "failed", reason)


def iter_restore_input(
    path: Path,
    out_dir: Path,
    methods: Sequence[MethodSpec],
    *,
    input_hash: str | None,
    read_error: str | None = None,
    read: Callable[[Path], MicroscopyImage] | None = None,
) -> Generator[tuple[MethodSpec, dict[str, Any], BatchItem], None, None]:
    """Restore one input file with each method, writing each output atomically; yields each step's record.

    This is the whole per-file work of a batch, the same whether :func:`iter_batch` runs it in its
    own loop or on a cluster's worker (:func:`restore_input`): the image is read once, each method
    runs on it and its restoration is written (``engine.io.write_tiff``, atomic) to
    :func:`output_path`. Nothing here reads or writes a manifest; the caller records the entries.

    Parameters
    ----------
    path : Path
        The input image file.
    out_dir : Path
        The batch's output folder.
    methods : sequence of MethodSpec
        The methods to run on this input (those whose earlier results cannot be reused).
    input_hash : str or None
        The input file's sha256, as the manifest records it.
    read_error : str, optional
        Why the input cannot be read (every step then fails with this reason, nothing runs).
    read : callable, optional
        How to read the input (default ``engine.io.read_image``).

    Yields
    ------
    (MethodSpec, dict, BatchItem)
        The method, its manifest entry (status ``done`` with the output's sha256 and the provenance, or
        ``failed`` with the reason, naming the file) and the step's outcome.

    Raises
    ------
    engine.progress.Cancelled
        When a method is cancelled (nothing is recorded for it).
    """
    from decongan.engine.io import write_tiff

    reader = read or read_image
    image: MicroscopyImage | None = None
    for method in methods:
        dest = output_path(out_dir, method, path)
        started = time.perf_counter()
        entry: dict[str, Any] = {"input": str(path), "input_sha256": input_hash, "method": method.name,
                                 "params_sha256": method.params_sha256, "parameters": method.parameters}
        try:
            if read_error is not None:
                raise OSError(read_error)
            if image is None:
                image = reader(path)
            restored_image, provenance = _unpack(method.run(image), image)
            write_tiff(dest, restored_image, description=provenance.model_dump_json())
            seconds = time.perf_counter() - started
            entry.update(status="done", output=str(dest.relative_to(out_dir)), output_sha256=sha256_file(dest),
                         provenance=json.loads(provenance.model_dump_json()), finished=_now(),
                         seconds=round(seconds, 3))
            item = BatchItem(path, method.name, dest, "done", seconds=seconds)
        except Cancelled:
            raise
        except Exception as err:  # one bad file must not stop the batch; the reason is recorded
            reason = str(err) if str(path) in str(err) else f"{path.name}: {type(err).__name__}: {err}"
            entry.update(status="failed", error=reason, finished=_now())
            item = BatchItem(path, method.name, None, "failed", reason, seconds=time.perf_counter() - started)
            if image is None and read_error is None:
                read_error = reason  # do not try to read the same broken file for every method
        yield method, entry, item


def restore_input(path: Path, out_dir: Path, methods: Sequence[MethodSpec], *, input_hash: str | None,
                  read_error: str | None = None,
                  read: Callable[[Path], MicroscopyImage] | None = None) -> list[tuple[str, dict[str, Any], BatchItem]]:
    """:func:`iter_restore_input` run to the end: one cluster task (a whole input file).

    Parameters
    ----------
    path, out_dir, methods, input_hash, read_error, read
        As for :func:`iter_restore_input`.

    Returns
    -------
    list of (str, dict, BatchItem)
        Per method: its name, its manifest entry and its outcome (plain data, sent back to the client,
        which alone writes the manifest).
    """
    return [(method.name, entry, item) for method, entry, item in
            iter_restore_input(path, out_dir, methods, input_hash=input_hash, read_error=read_error, read=read)]


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
