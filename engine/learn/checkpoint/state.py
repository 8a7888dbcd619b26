"""What a run saves as it goes and resumes from: checkpoints (weights, training state, RNG states), the best
generator with its validation metrics, and the progress log kept in step with the checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decongan.engine.learn.checkpoint.layout import (
    GENERATOR_NAME,
    LAST,
    PROGRESS_NAME,
    STATE_NAME,
    TRAINING_STATE_NAME,
    RunError,
    _new_tmp_dir,
    _recover_dir,
    _replace_dir,
    best_dir,
    checkpoint_dir,
)
from decongan.engine.learn.checkpoint.weights import load_weights, save_weights
from decongan.engine.outputs import write_json_atomic, write_text_atomic


def save_checkpoint(
    run_dir: str | Path,
    *,
    networks: Mapping[str, Any],
    training_state: Mapping[str, Any],
    state: Mapping[str, Any],
    which: str = LAST,
) -> Path:
    """Write a complete checkpoint folder atomically.

    Parameters
    ----------
    run_dir : path
        The run folder.
    networks : mapping name -> nn.Module
        Saved as ``<name>.safetensors``.
    training_state : mapping
        Tensors and plain Python values only (optimiser/scheduler/scaler state dicts, torch RNG
        states); saved with ``torch.save`` and read with ``weights_only=True``.
    state : mapping
        JSON-serialisable (iteration, best metric, numpy/python/sampler RNG states).
    which : str
        Checkpoint name (folder under ``RUN_DIR/checkpoints``).
    """
    import torch

    dest = checkpoint_dir(run_dir, which)
    tmp = _new_tmp_dir(dest)
    try:
        for name, module in networks.items():
            save_weights(module, tmp / f"{name}.safetensors")
        with open(tmp / TRAINING_STATE_NAME, "wb") as handle:
            torch.save(dict(training_state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        write_json_atomic(tmp / STATE_NAME, dict(state))
        _replace_dir(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def has_checkpoint(run_dir: str | Path, which: str = LAST) -> bool:
    """Whether the run has a complete checkpoint ``which`` (its ``state.json`` exists).

    A checkpoint folder left half-replaced by a crash is recovered first.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    which : str
        Checkpoint name; ``"last"`` by default.

    Returns
    -------
    bool
    """
    dest = checkpoint_dir(run_dir, which)
    _recover_dir(dest)
    return (dest / STATE_NAME).is_file()


def load_checkpoint(
    run_dir: str | Path,
    *,
    networks: Mapping[str, Any],
    which: str = LAST,
    device: Any = "cpu",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load weights into ``networks`` and return ``(training_state, state)``.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    networks : mapping of str to torch.nn.Module
        Each network is loaded from ``<name>.safetensors`` in the checkpoint folder.
    which : str
        Checkpoint name; ``"last"`` by default.
    device : str or torch.device
        Where weights and the training state are loaded.

    Returns
    -------
    training_state : dict
        Optimiser/scheduler/scaler state dicts and torch RNG states (read with ``weights_only=True``).
    state : dict
        The JSON state (iteration, best metric, numpy/python/sampler RNG states).

    Raises
    ------
    RunError
        No checkpoint, a missing network file, weights that do not fit, or an unreadable training state.
    """
    import torch

    dest = checkpoint_dir(run_dir, which)
    _recover_dir(dest)
    if not (dest / STATE_NAME).is_file():
        raise RunError(f"{run_dir}: no '{which}' checkpoint to resume from (looked for {dest / STATE_NAME})")
    for name, module in networks.items():
        load_weights(module, dest / f"{name}.safetensors", device=device)
    try:
        training_state = torch.load(dest / TRAINING_STATE_NAME, map_location=device, weights_only=True)
    except Exception as err:  # corrupt or tampered file: never fall back to unsafe loading
        raise RunError(f"{dest / TRAINING_STATE_NAME}: cannot read the training state ({type(err).__name__}: {err})") from err
    state = json.loads((dest / STATE_NAME).read_text(encoding="utf-8"))
    return training_state, state


def save_best(run_dir: str | Path, generator: Any, metrics: Mapping[str, Any]) -> Path:
    """Write ``best/generator.safetensors`` and ``best/metrics.json`` atomically (as one folder).

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    generator : torch.nn.Module
        The generator to keep as the best model (its previous best folder is replaced).
    metrics : mapping
        JSON-serialisable validation metrics and the iteration they were measured at.

    Returns
    -------
    Path
        The ``best`` folder.
    """
    dest = best_dir(run_dir)
    tmp = _new_tmp_dir(dest)
    try:
        save_weights(generator, tmp / f"{GENERATOR_NAME}.safetensors")
        write_json_atomic(tmp / "metrics.json", dict(metrics))
        _replace_dir(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def read_best_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """The metrics stored with the best generator, or None when there is no best model yet.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.

    Returns
    -------
    dict or None
        The content of ``best/metrics.json``.
    """
    path = best_dir(run_dir) / "metrics.json"
    _recover_dir(best_dir(run_dir))
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# progress log
# ---------------------------------------------------------------------------------------------
def append_progress(run_dir: str | Path, record: Mapping[str, Any]) -> None:
    """Append one JSON object (one line) to ``RUN_DIR/progress.jsonl`` (a single write, flushed).

    Parameters
    ----------
    run_dir : str or Path
        The run folder; the file is created when missing.
    record : mapping
        JSON-serialisable values (numbers that JSON does not know, e.g. numpy floats, are written as floats).
    """
    line = json.dumps(dict(record), default=float) + "\n"
    with open(Path(run_dir) / PROGRESS_NAME, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()


def read_progress(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of ``progress.jsonl`` (a torn last line from a crash is skipped)."""
    path = Path(run_dir) / PROGRESS_NAME
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_progress(run_dir: str | Path, iteration: int) -> None:
    """Keep only the progress records up to ``iteration`` (called on resume, so the log matches the checkpoint).

    Parameters
    ----------
    run_dir : str or Path
        The run folder; nothing happens when it has no ``progress.jsonl``.
    iteration : int
        The checkpoint's iteration; records with a larger ``"iteration"`` are dropped (atomic rewrite).
    """
    path = Path(run_dir) / PROGRESS_NAME
    if not path.is_file():
        return
    kept = [r for r in read_progress(run_dir) if int(r.get("iteration", 0)) <= iteration]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
