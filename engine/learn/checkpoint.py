"""Run directories: configuration, checkpoints, best model and progress log of one training run.

Layout of ``RUN_DIR``::

    config.json                      RunConfig (preset with overrides, normalisation, pixel size, scale,
                                     channels, data, seed, software versions, creation time)
    progress.jsonl                   one JSON object per log event (iteration, losses, metrics, eta)
    checkpoints/last/                the latest checkpoint (a folder, replaced as a whole)
        <net>.safetensors            weights of every network of the GAN system ("generator", ...)
        training_state.pt            optimiser, scheduler and GradScaler state and the torch RNG
                                     states (torch.save; read back with torch.load(weights_only=True))
        state.json                   iteration, best metric, numpy/python/sampler RNG states
    best/                            the best generator so far (by validation metric)
        generator.safetensors
        metrics.json
    validation/iter_NNNNNNN/         previews of the latest validations
    .lock                            pid and hostname of the process training in the folder (removed
                                     when it ends; a lock of a dead process is taken over)

Every file and folder is written atomically: a folder is filled under a temporary name beside
its destination and renamed into place (the previous version is renamed away first and deleted
afterwards; :func:`load_checkpoint` recovers the previous version if a crash happened between the
two renames). A process killed while writing leaves only hidden temporaries (``.*.partial*``,
``.*.old-*``); the next run in the folder deletes them once it holds the lock
(:func:`clean_stale_temporaries`). Nothing is ever read with pickle: weights are safetensors, the training state is
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from decongan.engine.atomic import write_json_atomic, write_text_atomic
from decongan.engine.errors import DeconganError
from decongan.engine.learn.degrade import DegradationSpec
from decongan.engine.learn.normalization import NormalizationConfig

RUN_FORMAT = "decongan-run/1"
CONFIG_NAME = "config.json"
PROGRESS_NAME = "progress.jsonl"
LAST = "last"
BEST = "best"
STATE_NAME = "state.json"
TRAINING_STATE_NAME = "training_state.pt"
GENERATOR_NAME = "generator"


class RunError(DeconganError, ValueError):
    """A run directory is missing, incomplete or inconsistent; the message names the path."""


class ChannelInfo(BaseModel):
    """How image channels were handled in training."""

    model_config = ConfigDict(extra="forbid")

    n_channels: int = 1
    handling: str = "per_channel"  # every channel is an independent 1-channel sample
    names: list[str] = Field(default_factory=list)


class DataInfo(BaseModel):
    """Where the training data came from and how it was split."""

    model_config = ConfigDict(extra="forbid")

    lq_dir: str | None = None
    hq_dir: str | None = None
    train_names: list[str] = Field(default_factory=list)
    val_names: list[str] = Field(default_factory=list)
    unmatched_lq: list[str] = Field(default_factory=list)
    unmatched_hq: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    n_train_planes: int = 0
    n_val_planes: int = 0
    planes: str = "every Z plane and T frame of a stack is an independent 2-D sample"
    registration: str | None = None
    synthetic_lq: DegradationSpec | None = None


class RunConfig(BaseModel):
    """Everything needed to rebuild, apply and trace a trained model (``RUN_DIR/config.json``).

    Attributes
    ----------
    preset : dict
        The full preset content after overrides (``Preset.model_dump(mode="json")``).
    preset_name : str
        "s1" ... "s5".
    paired : bool
        Paired (supervised) or unpaired training.
    scale : int
        Output pixels per input pixel of the generator.
    normalization : NormalizationConfig
        Percentile normalisation (mode and per-domain, per-channel parameters).
    pixel_size_um, hq_pixel_size_um : float or None
        Pixel size of the training inputs (LQ) and targets (HQ), micrometres.
    channels : ChannelInfo
    data : DataInfo
    seed : int
    train : dict
        The :class:`engine.learn.training.config.TrainConfig` the run was started with.
    versions : dict
        Software versions (:func:`engine.provenance.software_versions`).
    created : str
        ISO time (UTC) of the run's start.
    """

    model_config = ConfigDict(extra="forbid")

    format: str = RUN_FORMAT
    preset_name: str
    preset: dict[str, Any]
    paired: bool
    scale: int = 1
    normalization: NormalizationConfig
    pixel_size_um: float | None = None
    hq_pixel_size_um: float | None = None
    channels: ChannelInfo = Field(default_factory=ChannelInfo)
    data: DataInfo = Field(default_factory=DataInfo)
    seed: int = 0
    train: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def generator_spec(self) -> tuple[str, dict[str, Any]]:
        """``(model name, kwargs)`` of the generator, from the stored preset."""
        spec = self.preset.get("generator") or {}
        name = spec.get("name")
        if not name:
            raise RunError(f"the stored preset {self.preset_name!r} names no generator")
        return str(name), dict(spec.get("kwargs") or {})


# ---------------------------------------------------------------------------------------------
# paths and config
# ---------------------------------------------------------------------------------------------
def config_path(run_dir: str | Path) -> Path:
    """The path of a run's configuration, ``RUN_DIR/config.json`` (it may not exist).

    Parameters
    ----------
    run_dir : str or Path
        The run folder.

    Returns
    -------
    Path
    """
    return Path(run_dir) / CONFIG_NAME


def checkpoint_dir(run_dir: str | Path, which: str = LAST) -> Path:
    """The folder of a named checkpoint, ``RUN_DIR/checkpoints/<which>`` (it may not exist).

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    which : str
        Checkpoint name; ``"last"`` (the one training resumes from) by default.

    Returns
    -------
    Path
    """
    return Path(run_dir) / "checkpoints" / which


def best_dir(run_dir: str | Path) -> Path:
    """The folder of the best validated generator, ``RUN_DIR/best`` (it may not exist).

    Parameters
    ----------
    run_dir : str or Path
        The run folder.

    Returns
    -------
    Path
    """
    return Path(run_dir) / BEST


def save_run_config(run_dir: str | Path, config: RunConfig) -> Path:
    """Write ``RUN_DIR/config.json`` atomically (replacing an existing one: the run's own file).

    Parameters
    ----------
    run_dir : str or Path
        The run folder; it must exist.
    config : RunConfig
        The run's configuration (format, preset, training options, data facts).

    Returns
    -------
    Path
        The written ``config.json``.
    """
    return write_text_atomic(config_path(run_dir), config.model_dump_json(indent=2) + "\n")


def load_run_config(run_dir: str | Path) -> RunConfig:
    """Read ``RUN_DIR/config.json``.

    Raises
    ------
    RunError
        The folder or its config is missing or invalid.
    """
    run_dir = Path(run_dir)
    path = config_path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a run folder (it does not exist)")
    if not path.is_file():
        raise RunError(f"{run_dir}: not a DeconGAN run folder (no {CONFIG_NAME}); give the output folder of a training run")
    try:
        return RunConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise RunError(f"{path}: invalid run configuration ({err})") from err


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run folder, i.e. holds a ``config.json``.

    Parameters
    ----------
    path : str or Path
        Any folder (a missing one is not a run folder).

    Returns
    -------
    bool
    """
    return config_path(path).is_file()


# ---------------------------------------------------------------------------------------------
# atomic folders
# ---------------------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Move the filled folder ``tmp`` to ``dest``, replacing ``dest`` (see module doc)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:12]}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    _fsync_dir(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _recover_dir(dest: Path) -> None:
    """If a crash left ``dest`` missing but its previous version renamed away, put it back."""
    if dest.exists():
        return
    olds = sorted(dest.parent.glob(f".{dest.name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in olds:
        if old.is_dir():
            os.replace(old, dest)
            return


def _new_tmp_dir(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a run folder should be readable like any other
    return tmp


# ---------------------------------------------------------------------------------------------
# lock file and stale temporaries
# ---------------------------------------------------------------------------------------------
#: ``RUN_DIR/.lock``: JSON ``{"pid", "hostname", "started"}`` of the process that trains in the folder.
LOCK_NAME = ".lock"
#: Everything a run writes into its folder (besides temporaries); a folder holding only these (and
#: temporaries) is a run folder that may be restarted when it has no checkpoint.
RUN_ENTRIES = frozenset({CONFIG_NAME, PROGRESS_NAME, "checkpoints", BEST, "validation", LOCK_NAME})
_held_locks: set[Path] = set()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (a zombie counts as dead)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # Linux: a killed but not yet reaped child is a zombie ("Z"); it writes nothing any more
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


class RunLock:
    """The lock of one run folder, held by this process (:func:`acquire_run_lock`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def release(self) -> None:
        """Delete the lock file (idempotent)."""
        _held_locks.discard(self.path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_run_lock(run_dir: str | Path) -> dict[str, Any] | None:
    """The lock record of ``run_dir`` (pid, hostname, started), or None when there is no readable one."""
    try:
        record = json.loads((Path(run_dir) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def acquire_run_lock(run_dir: str | Path) -> RunLock:
    """Create ``RUN_DIR/.lock`` (the folder too), or take over the lock of a process that is gone.

    A lock left by a dead process of this machine (killed, crashed, power cut) is replaced. A lock
    of a live process, or of another machine (whose processes cannot be checked from here), is
    refused with a message naming the process and the file to delete if it is stale.

    Raises
    ------
    RunError
        When the folder is in use.
    """
    import socket

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    host = socket.gethostname()
    record = {"pid": os.getpid(), "hostname": host,
              "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            other = read_run_lock(folder)
            if other is None:  # unreadable (killed while writing it, which takes microseconds): stale
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            pid, other_host = int(other.get("pid", -1)), str(other.get("hostname", ""))
            own = pid == os.getpid() and other_host == host
            if own and path in _held_locks:
                raise RunError(f"{folder}: this process is already training in this folder") from None
            if other_host != host:
                raise RunError(f"{folder}: in use by process {pid} on {other_host} (since {other.get('started')}); "
                               f"if nothing runs there any more, delete {path} and start again") from None
            if not own and _pid_alive(pid):
                raise RunError(f"{folder}: in use by process {pid} on this machine (since {other.get('started')}); "
                               "wait for it to finish or stop it first") from None
            with contextlib.suppress(FileNotFoundError):  # left by a process that is gone: take it over
                path.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        _held_locks.add(path)
        return RunLock(path)
    raise RunError(f"{folder}: could not create the lock file {path} (another process keeps creating it)")


def _is_temporary(name: str) -> bool:
    """Names of the temporaries written here and by :func:`engine.atomic.atomic_path` (``.<name>.partial-*``,
    ``.<name>.<random>.partial<suffix>``, and ``.<name>.old-*`` of a replaced folder)."""
    return name.startswith(".") and (".partial" in name or ".old-" in name)


def clean_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporary files and folders a killed process left in ``run_dir``; return them.

    Call it only while holding the folder's lock (:func:`acquire_run_lock`): then no live process
    writes there, so every temporary is stale. A checkpoint or best model whose replacement was
    interrupted between its two renames is first put back (the ``.old-*`` copy is the complete one).
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        return []
    _recover_dir(checkpoint_dir(folder))
    _recover_dir(best_dir(folder))
    removed: list[Path] = []
    for current, dirs, files in os.walk(folder, topdown=True):
        base = Path(current)
        for name in list(dirs):
            if _is_temporary(name):
                shutil.rmtree(base / name, ignore_errors=True)
                removed.append(base / name)
                dirs.remove(name)
        for name in files:
            if _is_temporary(name):
                with contextlib.suppress(FileNotFoundError):
                    (base / name).unlink()
                removed.append(base / name)
    return removed


def foreign_entries(run_dir: str | Path) -> list[str]:
    """Names in ``run_dir`` that a training run does not write (sorted; [] for a missing folder)."""
    folder = Path(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name not in RUN_ENTRIES and not _is_temporary(p.name))


def clear_run(run_dir: str | Path) -> None:
    """Delete what a run wrote into ``run_dir`` (config, progress, checkpoints, best, validation).

    Only for a run without a checkpoint that is restarted while holding its lock; the lock stays.
    """
    folder = Path(run_dir)
    for name in RUN_ENTRIES - {LOCK_NAME}:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------
def _state_dict_for_safetensors(module: Any) -> dict[str, Any]:
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in module.state_dict().items()}


def save_weights(module: Any, path: str | Path, *, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``module.state_dict()`` as a safetensors file, atomically (copied to the CPU first).

    Parameters
    ----------
    module : torch.nn.Module
        The network whose parameters and buffers are saved.
    path : str or Path
        The ``.safetensors`` file; an existing file is replaced (callers pass paths inside the run).
    metadata : mapping of str to str, optional
        Stored in the safetensors header.

    Returns
    -------
    Path
        ``path``.
    """
    from safetensors.torch import save_file

    from decongan.engine.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file(_state_dict_for_safetensors(module), str(tmp), metadata=dict(metadata or {}))
    return Path(path)


def load_weights(module: Any, path: str | Path, *, device: Any = "cpu") -> Any:
    """Load safetensors weights into ``module`` (strict: every key and shape must match).

    Parameters
    ----------
    module : torch.nn.Module
        The network, built with the architecture the weights were saved from.
    path : str or Path
        A ``.safetensors`` file.
    device : str or torch.device
        Where the tensors are loaded before they are copied into ``module``.

    Returns
    -------
    torch.nn.Module
        ``module`` itself, with the weights loaded.

    Raises
    ------
    RunError
        The file is missing or unreadable, or its weights do not fit ``module``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: weights file not found")
    try:
        state = load_file(str(path), device=str(device))
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise RunError(f"{path}: cannot read the weights ({type(err).__name__}: {err})") from err
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RunError(f"{path}: weights do not fit the model built from the stored preset ({err})") from err
    return module


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# loading a trained generator
# ---------------------------------------------------------------------------------------------
def generator_kwargs(name: str, kwargs: Mapping[str, Any], scale: int) -> dict[str, Any]:
    """Constructor arguments of generator ``name``: the preset's kwargs plus ``scale`` when it takes one.

    The presets state the grid change once (``Preset.scale``); the system builder passes it to
    generators whose constructor has a ``scale`` argument, and so does this function.

    Parameters
    ----------
    name : str
        A registered generator name (``engine.learn.models``).
    kwargs : mapping
        The preset's generator arguments (an explicit ``"scale"`` is kept).
    scale : int
        Output pixels per input pixel along Y and X (1 for same-grid restoration).

    Returns
    -------
    dict
    """
    import inspect

    from decongan.engine.learn.models import model_factory

    out = dict(kwargs)
    try:
        accepts = "scale" in inspect.signature(model_factory(name)).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts and "scale" not in out:
        out["scale"] = int(scale)
    return out


def build_generator(config: RunConfig) -> Any:
    """The generator described by ``config`` (untrained weights)."""
    from decongan.engine.learn.models import create_model

    name, kwargs = config.generator_spec
    return create_model(name, **generator_kwargs(name, kwargs, config.scale))


def generator_weights_path(run_dir: str | Path, which: str = BEST) -> Path:
    """The path of the generator weights of ``which``: the best validated model or the last checkpoint.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    which : {"best", "last"}
        ``"best"``: ``best/generator.safetensors``; ``"last"``: the generator file of the last checkpoint.

    Returns
    -------
    Path
        An existing ``.safetensors`` file.

    Raises
    ------
    RunError
        That model does not exist yet (the message says when the other one does), or ``which`` is unknown.
    """
    run_dir = Path(run_dir)
    if which == BEST:
        _recover_dir(best_dir(run_dir))
        path = best_dir(run_dir) / f"{GENERATOR_NAME}.safetensors"
        if not path.is_file():
            hint = " (the run has a 'last' checkpoint: use it instead, which='last')" if has_checkpoint(run_dir) else ""
            raise RunError(f"{run_dir}: no best model yet (no validation has run){hint}")
        return path
    if which == LAST:
        last = checkpoint_dir(run_dir)
        _recover_dir(last)
        if not (last / STATE_NAME).is_file():
            raise RunError(f"{run_dir}: no 'last' checkpoint (training has not saved one yet)")
        state = json.loads((last / STATE_NAME).read_text(encoding="utf-8"))
        key = str(state.get("generator_key", GENERATOR_NAME))
        path = last / f"{key}.safetensors"
        if not path.is_file():
            raise RunError(f"{last}: the generator weights {path.name} are missing")
        return path
    raise RunError(f"unknown model choice {which!r}: use 'best' or 'last'")


def load_generator(run_dir: str | Path, *, which: str = BEST, device: Any = "cpu") -> tuple[Any, RunConfig]:
    """Rebuild a run's generator with its trained weights, in eval mode.

    Parameters
    ----------
    run_dir : path
        A run folder written by training (or a shipped model folder with the same layout).
    which : {"best", "last"}
        The best validated generator or the latest checkpoint.
    device : str or torch.device

    Returns
    -------
    generator : nn.Module
    config : RunConfig
    """
    import torch

    config = load_run_config(run_dir)
    path = generator_weights_path(run_dir, which)
    generator = build_generator(config)
    load_weights(generator, path, device="cpu")
    device = torch.device(device) if not isinstance(device, torch.device) else device
    return generator.to(device).eval(), config


__all__ = [
    "LOCK_NAME",
    "RUN_ENTRIES",
    "RunLock",
    "acquire_run_lock",
    "clean_stale_temporaries",
    "clear_run",
    "foreign_entries",
    "read_run_lock",
    "ChannelInfo",
    "DataInfo",
    "RunConfig",
    "RunError",
    "append_progress",
    "build_generator",
    "generator_kwargs",
    "checkpoint_dir",
    "has_checkpoint",
    "is_run_dir",
    "load_checkpoint",
    "load_generator",
    "load_run_config",
    "load_weights",
    "read_best_metrics",
    "read_progress",
    "save_best",
    "save_checkpoint",
    "save_run_config",
    "save_weights",
    "truncate_progress",
]
