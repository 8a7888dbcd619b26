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

Besides the entries, the manifest holds the batch's ``status``: ``"restoring"`` while images are
restored, ``"restored"`` when every step ran, ``"reporting"`` from the moment the front end starts
the comparison and report (:func:`set_status`) and ``"complete"`` only once the report is written.
A batch stopped or killed at any point therefore never reads as complete; running the same
command again reuses the finished restorations and redoes the rest.

Configuration errors are not file errors: every method's ``check`` (a PSF that is all zero, an NA
above the immersion index ...) runs once before any file is read, and one failing check stops the
whole batch with one :class:`BatchError`. Failures of one file (unreadable image, a method raising)
are recorded with their reason and the batch continues. Inputs are never written: every output
path is checked against the inputs before anything runs. Cancelling (``CancelToken``) stops between
steps; what finished stays in the manifest, so the next run resumes.

Shards
------
``shard=(K, N)`` restores only the K-th of N deterministic parts of the inputs (the i-th file in
file-name order, counting from 0, belongs to shard ``i % N + 1``) and records them in its own
``OUT/manifest.shard-K-of-N.json``, so shards can run at the same time (one array task each) without
sharing a file. Every run reuses finished work recorded in *any* manifest of ``OUT``, so a shard
after an unsharded run (or the reverse) recomputes nothing. :func:`gather_batch` collects the
outputs of all manifests for a comparison of the whole folder (``decongan batch --report-only``).

Why this module is long
-----------------------
The manifest (entries, shards, status) and the loop that writes it must agree on every field of
an entry and on when an entry is reused; keeping both here keeps the reuse rule in one place. The
restoration methods, the report, the per-file work (``batch_steps``: one input through its methods,
the same function whether this loop or a cluster worker runs it) and the dask runner (``cluster``)
live outside this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decongan.engine.errors import DeconganError
from decongan.engine.evaluate.batch_steps import (  # noqa: F401 (public names of batches, defined with the per-file work)
    BatchItem,
    MethodSpec,
    Runner,
    _failed_step,
    _hash_input,
    _now,
    iter_restore_input,
    output_path,
    restore_input,
    sha256_file,
)
from decongan.engine.io import MicroscopyImage
from decongan.engine.outputs import write_json_atomic
from decongan.engine.progress import Cancelled, CancelToken, Progress

MANIFEST_NAME = "manifest.json"
SHARD_MANIFEST_GLOB = "manifest.shard-*-of-*.json"
MANIFEST_FORMAT = "decongan-batch-manifest"
MANIFEST_VERSION = 1


class BatchError(DeconganError, ValueError):
    """A batch that cannot start (bad folders, outputs that would overwrite inputs)."""


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


def manifest_name(shard: tuple[int, int] | None = None) -> str:
    """``manifest.json``, or ``manifest.shard-K-of-N.json`` for shard ``(K, N)``."""
    return MANIFEST_NAME if shard is None else f"manifest.shard-{shard[0]}-of-{shard[1]}.json"


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``; :class:`BatchError` otherwise."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise BatchError(f"shard {text!r}: expected K/N, e.g. 1/4 for the first of four parts") from None
    if n < 1 or not 1 <= k <= n:
        raise BatchError(f"shard {text!r}: K must be between 1 and N (N >= 1), e.g. 1/4 ... 4/4")
    return k, n


def select_shard(inputs: Sequence[str | Path], shard: tuple[int, int] | None) -> list[Path]:
    """The inputs of shard ``(K, N)``: the i-th file by file name (from 0) when ``i % N == K - 1``.

    The order is the sorted file *names* (not the full paths), so the split does not depend on
    the order the files were given in or on the folder's location. ``None`` returns every input
    (sorted the same way).

    Parameters
    ----------
    inputs : sequence of str or Path
        The input image files.
    shard : tuple of int (K, N) or None
        Shard K of N, ``1 <= K <= N`` (see :func:`parse_shard`).

    Returns
    -------
    list of Path
    """
    paths = sorted((Path(p) for p in inputs), key=lambda p: (p.name, str(p)))
    if shard is None:
        return paths
    k, n = shard
    return [p for i, p in enumerate(paths) if i % n == k - 1]


def load_manifest(out_dir: str | Path, name: str = MANIFEST_NAME) -> dict[str, Any]:
    """The manifest ``name`` of ``out_dir`` (an empty one when none exists or it is unreadable).

    A file that is not valid JSON or not a DeconGAN batch manifest counts as no manifest, so its
    entries are recomputed rather than trusted.

    Parameters
    ----------
    out_dir : str or Path
        The batch's output folder.
    name : str
        The manifest's file name (``manifest.json``, or a shard's, see :func:`manifest_name`).

    Returns
    -------
    dict
        ``{"format", "version", "entries": {...}, ...}``.
    """
    data = _read_manifest(Path(out_dir) / name)
    return data if data is not None else {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "entries": {}}


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The batch manifest at ``path``, or None when it is missing, unreadable or not a DeconGAN manifest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("entries"), dict):
        return None
    return data


def manifest_paths(out_dir: str | Path) -> list[Path]:
    """Every manifest of ``out_dir``: ``manifest.json`` (if present) then the shard manifests by name."""
    out = Path(out_dir)
    main = [out / MANIFEST_NAME] if (out / MANIFEST_NAME).exists() else []
    return main + sorted(out.glob(SHARD_MANIFEST_GLOB))


def recorded_inputs(out_dir: str | Path) -> list[str] | None:
    """The input files recorded by the batch manifests of ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        A folder that may hold a batch's results.

    Returns
    -------
    list of str or None
        The ``input`` of every entry of every valid manifest (``manifest.json`` first, then the shards');
        None when the folder holds no DeconGAN batch manifest at all (an empty list: manifests without
        entries yet).
    """
    manifests = [m for m in (_read_manifest(p) for p in manifest_paths(out_dir)) if m is not None]
    if not manifests:
        return None
    return [str(e["input"]) for m in manifests for e in m["entries"].values() if isinstance(e, dict) and e.get("input")]


def load_all_entries(out_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Entry key -> its entries in every manifest of ``out_dir`` (``manifest.json`` first)."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for path in manifest_paths(out_dir):
        for key, entry in load_manifest(path.parent, path.name)["entries"].items():
            if isinstance(entry, dict):
                merged.setdefault(key, []).append(entry)
    return merged


def batch_status(out_dir: str | Path, shard: tuple[int, int] | None = None) -> str | None:
    """The ``status`` recorded in a batch's manifest (None when there is no manifest or it has none).

    Parameters
    ----------
    out_dir : str or Path
        The batch's output folder.
    shard : tuple of int (K, N), optional
        Read the manifest of shard K of N (``manifest.shard-K-of-N.json``) instead of ``manifest.json``.

    Returns
    -------
    str or None
        ``"reporting"`` or ``"complete"`` (see :func:`set_status`), or None.
    """
    return load_manifest(out_dir, manifest_name(shard)).get("status")


def set_status(out_dir: str | Path, status: str, shard: tuple[int, int] | None = None, **fields: Any) -> None:
    """Record the batch's ``status`` (and any extra fields) in its manifest, atomically.

    The front end calls it with ``"reporting"`` before it compares and reports, and with
    ``"complete"`` once the report is written; anything in between leaves the batch incomplete.

    Parameters
    ----------
    out_dir : str or Path
        The batch's output folder (created when missing).
    status : str
        ``"reporting"`` or ``"complete"``.
    shard : tuple of int (K, N), optional
        Write the manifest of shard K of N instead of ``manifest.json``.
    **fields
        JSON-serialisable extra fields stored at the manifest's top level.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = manifest_name(shard)
    manifest = load_manifest(out, name)
    manifest.update(fields)
    manifest["status"] = status
    manifest["updated"] = _now()
    write_json_atomic(out / name, manifest)


def check_methods(methods: Sequence[MethodSpec]) -> None:
    """Run every method's configuration ``check``; one :class:`BatchError` for all that fail.

    Raises
    ------
    BatchError
        ``"configuration error, no image was processed: <method>: <reason>"`` (methods that fail
        with the same reason are named together).
    """
    if not methods:
        raise BatchError("no restoration method was chosen")
    reasons: dict[str, list[str]] = {}
    for method in methods:
        if method.check is None:
            continue
        try:
            method.check()
        except Cancelled:
            raise
        except Exception as err:  # any failure of a configuration check is a configuration error
            reasons.setdefault(str(err) or type(err).__name__, []).append(method.name)
    if reasons:
        parts = [f"{', '.join(names)}: {reason}" for reason, names in reasons.items()]
        raise BatchError("configuration error, no image was processed: " + "; ".join(parts))


def _reusable(entries: Sequence[dict[str, Any]], input_hash: str | None, method: MethodSpec, dest: Path,
              out: Path, output_hashes: dict[Path, str]) -> dict[str, Any] | None:
    """The first ``done`` entry with this input and parameter hash whose output is intact, else None."""
    if input_hash is None:
        return None
    for entry in entries:
        if (entry.get("status") == "done" and entry.get("input_sha256") == input_hash
                and entry.get("params_sha256") == method.params_sha256 and entry.get("output")
                and out / entry["output"] == dest and dest.exists()):
            if dest not in output_hashes:
                output_hashes[dest] = sha256_file(dest)
            if entry.get("output_sha256") == output_hashes[dest]:
                return entry
    return None


def _key(input_path: Path, method: MethodSpec) -> str:
    return f"{input_path.name}::{method.name}"


def check_outputs_do_not_touch_inputs(inputs: Sequence[Path], out_dir: Path, methods: Sequence[MethodSpec]) -> None:
    """Refuse, before anything is written, a batch whose outputs would overwrite its inputs.

    Parameters
    ----------
    inputs : sequence of Path
        The input image files.
    out_dir : Path
        The batch's output folder.
    methods : sequence of MethodSpec
        The restoration methods; each writes ``OUT/restored/<method folder>/<input stem>.tif``.

    Raises
    ------
    BatchError
        When a planned output or the manifest is an input file (the message names up to three), or
        when two methods share an output folder name.
    """
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
    shard: tuple[int, int] | None = None,
    runner: Runner | None = None,
) -> Generator[Progress, None, BatchResult]:
    """Run every method on every input, resuming from the manifests; yields a Progress per step.

    Every method's ``check`` runs first: a configuration error stops the batch before any file is
    read or any output (even the output folder) is made.

    Parameters
    ----------
    inputs : sequence of paths
        Image files (with ``shard``, all of them: the shard picks its part, see
        :func:`select_shard`).
    out_dir : path
        Output folder (created). Outputs go to ``OUT/restored/<method>/<stem>.tif`` (float32,
        calibrated, provenance JSON in the ImageJ Info field).
    methods : sequence of MethodSpec
    read : callable, optional
        How to read an input (default ``engine.io.read_image``).
    cancel : CancelToken, optional
        Checked before every step; raises :class:`engine.progress.Cancelled` (manifest saved).
    shard : (K, N), optional
        Restore only shard K of N, recorded in ``OUT/manifest.shard-K-of-N.json``.
    runner : Runner, optional
        Run the per-file work (:func:`restore_input`, one task per input file with the steps that
        cannot be reused) through it -- e.g. on a dask cluster (``engine.evaluate.cluster``). The
        reuse rule, the manifest and the cancel checks stay here: the tasks return their entries and
        this process alone writes the manifest, after each file. Without it, every step runs here.

    Returns
    -------
    BatchResult

    Raises
    ------
    BatchError
        A configuration error (a method's ``check``), no method, or outputs that would overwrite
        inputs -- all before anything is read or written.
    """
    out = Path(out_dir)
    paths = select_shard(inputs, shard) if shard is not None else [Path(p) for p in inputs]
    check_methods(methods)
    check_outputs_do_not_touch_inputs(paths, out, methods)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / manifest_name(shard)
    earlier = load_all_entries(out)  # finished work of every manifest (other shards, an unsharded run)
    manifest = load_manifest(out, manifest_path.name)
    entries: dict[str, Any] = manifest["entries"]
    manifest["status"] = "restoring"
    if shard is not None:
        manifest["shard"] = {"k": shard[0], "n": shard[1], "inputs": [p.name for p in paths]}
    output_hashes: dict[Path, str] = {}
    reader = read
    items: list[BatchItem] = []
    total = len(paths) * len(methods)
    step = 0

    def save() -> None:
        manifest["updated"] = _now()
        write_json_atomic(manifest_path, manifest)

    def stop_if_cancelled() -> None:
        if cancel is not None and cancel.cancelled:
            save()
            raise Cancelled("batch cancelled by the user; run the same command again to resume")

    def record(path: Path, method: MethodSpec, entry: dict[str, Any], item: BatchItem) -> Progress:
        nonlocal step
        step += 1
        entries[_key(path, method)] = entry
        items.append(item)
        save()
        state = "done" if item.status == "done" else "FAILED"
        return Progress(step, total, f"{path.name}: {method.name} {state}")

    pending: list[tuple[Path, str | None, str | None, list[MethodSpec]]] = []
    for path in paths:
        input_hash, read_error = _hash_input(path)
        todo: list[MethodSpec] = []
        for method in methods:
            stop_if_cancelled()
            key = _key(path, method)
            dest = output_path(out, method, path)
            own = [entries[key]] if isinstance(entries.get(key), dict) else []
            entry = _reusable(own + earlier.get(key, []), input_hash if read_error is None else None, method,
                              dest, out, output_hashes)
            if entry is None:
                todo.append(method)
                continue
            if entries.get(key) is not entry:
                entries[key] = dict(entry)  # found in another manifest: this one records it too
                save()
            items.append(BatchItem(path, method.name, dest, "skipped"))
            step += 1
            yield Progress(step, total, f"{path.name}: {method.name} (already done)")
        if not todo:
            continue
        if runner is not None:  # restored by the runner's workers once every input is planned
            pending.append((path, input_hash, read_error, todo))
            continue
        steps = iter_restore_input(path, out, todo, input_hash=input_hash, read_error=read_error, read=reader)
        for _ in todo:
            stop_if_cancelled()
            try:
                method, entry, item = next(steps)
            except Cancelled:
                save()
                raise
            yield record(path, method, entry, item)
    if pending and runner is not None:
        tasks = [(restore_input, (path, out, todo), {"input_hash": input_hash, "read_error": read_error,
                                                     "read": reader})
                 for path, input_hash, read_error, todo in pending]
        finished = runner(tasks)
        try:
            for index, outcome in finished:
                path, input_hash, _, todo = pending[index]
                if isinstance(outcome, BaseException):  # the task itself failed (a worker lost, not picklable)
                    reason = f"{path.name}: the cluster could not run this file ({type(outcome).__name__}: {outcome})"
                    outcome = [(m.name, *_failed_step(path, m, input_hash, reason)) for m in todo]
                for method_name, entry, item in outcome:
                    yield record(path, next(m for m in todo if m.name == method_name), entry, item)
                stop_if_cancelled()
        except Cancelled:
            save()
            raise
        finally:
            close = getattr(finished, "close", None)
            if close is not None:
                close()  # a runner cancels the tasks that have not finished
    manifest["status"] = "restored"
    save()
    return BatchResult(out, items, manifest_path)


def gather_batch(inputs: Sequence[str | Path], out_dir: str | Path, methods: Sequence[MethodSpec]) -> BatchResult:
    """The recorded outcome of every (input, method) step, from all manifests of ``out_dir``.

    Nothing is computed: this is how the comparison of a sharded batch finds its restored images.
    A step counts as ``skipped`` (done earlier) under the same rule as :func:`iter_batch` reuses it
    (unchanged input and parameters, intact output), and as ``failed`` when a manifest records a
    failure of this input with these parameters.

    Parameters
    ----------
    inputs : sequence of str or Path
        The input image files of the whole batch (all shards).
    out_dir : str or Path
        The batch's output folder, holding ``manifest.json`` and/or ``manifest.shard-K-of-N.json``.
    methods : sequence of MethodSpec
        The restoration methods, with the parameters the outputs must have been made with.

    Returns
    -------
    BatchResult
        One item per (input, method), with its output path and status; the manifest path is
        ``OUT/manifest.json``.

    Raises
    ------
    BatchError
        When any step has no such record (a shard not run yet, a changed input or parameters, a
        deleted output): the message names the first files and says to run the missing shards; or
        when an output would overwrite an input (:func:`check_outputs_do_not_touch_inputs`).
    """
    out = Path(out_dir)
    check_outputs_do_not_touch_inputs([Path(p) for p in inputs], out, methods)
    earlier = load_all_entries(out)
    items: list[BatchItem] = []
    missing: list[str] = []
    output_hashes: dict[Path, str] = {}
    for path in (Path(p) for p in inputs):
        try:
            input_hash: str | None = sha256_file(path)
        except OSError:
            input_hash = None
        for method in methods:
            dest = output_path(out, method, path)
            candidates = earlier.get(_key(path, method), [])
            if _reusable(candidates, input_hash, method, dest, out, output_hashes) is not None:
                items.append(BatchItem(path, method.name, dest, "skipped"))
                continue
            failure = next((e for e in candidates if e.get("status") == "failed"
                            and e.get("params_sha256") == method.params_sha256
                            and e.get("input_sha256") == input_hash), None)
            if failure is not None:
                items.append(BatchItem(path, method.name, None, "failed", failure.get("error")))
            else:
                missing.append(f"{path.name} ({method.name})")
    if missing:
        raise BatchError(f"{len(missing)} restoration(s) are not recorded as done in the manifests of {out}: "
                         f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; run the shards that hold "
                         "them (or the whole batch, which restores what is missing) first")
    return BatchResult(out, items, out / MANIFEST_NAME)


