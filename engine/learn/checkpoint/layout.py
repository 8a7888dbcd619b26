"""The run folder: its layout, the run configuration (``config.json``) and atomic folder replacement.

Layout of ``RUN_DIR``::

    config.json                      RunConfig (preset with overrides, normalisation, pixel size, scale,
                                     channels, data, seed, software versions, creation time)
    progress.jsonl                   one JSON object per log event (iteration, losses, metrics, eta)
    domain.json                      the training inputs' domain (pixel size, intensity statistics;
                                     engine.learn.domain), read before a result is trusted
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

import datetime as _dt
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from decongan.engine.errors import DeconganError
from decongan.engine.learn.degrade import DegradationSpec
from decongan.engine.learn.normalization import NormalizationConfig
from decongan.engine.outputs import write_text_atomic

RUN_FORMAT = "decongan-run/1"
CONFIG_NAME = "config.json"
PROGRESS_NAME = "progress.jsonl"
DOMAIN_NAME = "domain.json"
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
    distributed : dict
        Data-parallel layout (``engine.learn.training.distributed.describe``): ``world_size``,
        ``global_batch_size``, ``per_process_batch_size``, ``backend``, and ``segments`` (the
        iteration each launch started at and its number of processes); empty for runs made before.
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
    distributed: dict[str, Any] = Field(default_factory=dict)
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
