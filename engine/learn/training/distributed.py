"""Data-parallel training over several processes (``torchrun``, ``srun``): one process per device.

A launcher starts N copies of the same training command; :func:`init_from_environment` (called by
the door, e.g. ``decongan train``) reads who is who from the launcher's variables and joins them in
one ``torch.distributed`` process group: gloo on the CPU, NCCL on CUDA (process ``LOCAL_RANK`` uses
GPU ``cuda:LOCAL_RANK``, or the one GPU it sees). Nothing changes for a single process: without those variables (or with a
world of 1) no group is made and training runs as always.

How the work is split, and why the result matches one process
--------------------------------------------------------------
Every process builds the same networks from the same seed (rank 0's weights are broadcast anyway)
and draws the *same global batch* from the same patch sampler (:func:`shard_batch`); process ``r``
of ``N`` trains on rows ``r*B/N ... (r+1)*B/N - 1`` of it. After each backward pass every gradient
is averaged over the processes (:func:`average_gradients`) before the optimiser step, so each
process takes the step one process would take on the whole batch (the mean of the per-process
mean losses is the mean loss of the batch); the reported losses are averaged the same way
(:func:`average_losses`). So, with the same seed and global batch size, the first iteration's
losses equal single-process training within float32 rounding (``tests/app/test_train_ddp.py``),
for networks without batch statistics (S1, S2, S5 have no BatchNorm or dropout; the unpaired S3/S4
image pools decide per process, so they train data-parallel without matching one process exactly).

Because the sampler's state is the global one, a checkpoint does not depend on the number of
processes: a run may be resumed with any number whose batch split is even (or with one process).

Gradients are averaged by a hook on each parameter (``register_post_accumulate_grad_hook``), not
by wrapping the networks in ``DistributedDataParallel``: the GAN step runs the discriminator more
than once per backward pass and freezes it during the generator's step, which DDP's reducer does
not allow, and DDP's ``module.`` prefix would change every checkpoint's keys. The hooks do what
DDP's reducer does (an all-reduce of each gradient in backward order), one tensor at a time.

Only rank 0 writes the run folder (configuration, progress log, checkpoints, best model,
previews, validation); the others only read it (a resumed checkpoint).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from decongan.engine.errors import DeconganError

#: launcher variables: torchrun's first, then Slurm's (srun)
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
SLURM_VARS = ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")


class DistributedError(DeconganError, RuntimeError):
    """A multi-process launch that cannot work (missing rendezvous address, too few GPUs, uneven batch)."""


@dataclass(frozen=True)
class Launch:
    """Who this process is among the launched ones.

    Attributes
    ----------
    rank : int
        0 ... world_size - 1; rank 0 writes the run folder.
    world_size : int
        Number of processes.
    local_rank : int
        Index of this process on its machine (picks its GPU).
    launcher : str
        ``"torchrun"`` or ``"srun"``.
    """

    rank: int
    world_size: int
    local_rank: int
    launcher: str


@dataclass(frozen=True)
class DistributedContext:
    """The process group this process trains in.

    Attributes
    ----------
    rank, world_size, local_rank : int
        As :class:`Launch`.
    backend : str
        ``"gloo"`` or ``"nccl"``.
    device : str
        This process's device (``"cpu"`` or ``"cuda:LOCAL_RANK"``).
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run folder and the log."""
        return self.rank == 0


def launch_from_environment(env: Mapping[str, str] | None = None) -> Launch | None:
    """This process's rank and world from torchrun's or Slurm's variables; None for a single process.

    Parameters
    ----------
    env : mapping, optional
        The environment (default ``os.environ``). torchrun sets ``RANK``, ``WORLD_SIZE`` and
        ``LOCAL_RANK``; ``srun`` sets ``SLURM_PROCID``, ``SLURM_NTASKS`` and ``SLURM_LOCALID``.

    Returns
    -------
    Launch or None
        None when neither launcher's variables say there is more than one process.

    Raises
    ------
    DistributedError
        Variables that are not whole numbers, or a rank outside 0 ... world size - 1.
    """
    env = os.environ if env is None else env
    for names, launcher in ((TORCHRUN_VARS, "torchrun"), (SLURM_VARS, "srun")):
        if names[0] not in env or names[1] not in env:
            continue
        try:
            rank, world, local = (int(env.get(name, "0")) for name in names)
        except ValueError:
            shown = ", ".join(f"{n}={env.get(n)!r}" for n in names)
            raise DistributedError(f"the {launcher} variables are not whole numbers ({shown})") from None
        if world <= 1:
            return None
        if not 0 <= rank < world or local < 0:
            raise DistributedError(f"the {launcher} variables give rank {rank} of {world} processes (local rank "
                                   f"{local}); a rank must be between 0 and the number of processes - 1")
        return Launch(rank, world, local, launcher)
    return None


def init_from_environment(device: str = "auto", env: Mapping[str, str] | None = None) -> DistributedContext | None:
    """Join the process group the launcher started (gloo on the CPU, NCCL on CUDA); None for one process.

    Parameters
    ----------
    device : str
        The training device asked for: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``; with
        CUDA, process ``LOCAL_RANK`` takes GPU ``cuda:LOCAL_RANK``, or ``cuda:0`` when it sees one GPU
        only (a launcher that gives each process its own).
    env : mapping, optional
        The environment (default ``os.environ``). Under ``srun``, ``MASTER_ADDR`` and ``MASTER_PORT``
        must name the rendezvous (rank 0's host and a free port); torchrun sets them itself.

    Returns
    -------
    DistributedContext or None

    Raises
    ------
    DistributedError
        No rendezvous address, fewer GPUs on this machine than processes on it, or an explicit CUDA
        device on a machine without one.
    """
    launch = launch_from_environment(env)
    if launch is None:
        return None
    import torch
    import torch.distributed as dist

    env = os.environ if env is None else env
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not env.get(name)]
    if missing:
        raise DistributedError(f"{launch.world_size} processes were launched ({launch.launcher}) but "
                               f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set "
                               "MASTER_ADDR to the first task's host name and MASTER_PORT to a free port "
                               "(torchrun sets both itself)")
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if not torch.cuda.is_available():
            raise DistributedError(f"device {device!r} was asked for but torch sees no CUDA device")
        count = torch.cuda.device_count()
        # each process sees all the machine's GPUs (torchrun) and takes its own, or sees only its own (srun --gpus-per-task 1)
        index = launch.local_rank if launch.local_rank < count else 0 if count == 1 else None
        if index is None:
            raise DistributedError(f"process {launch.rank} is number {launch.local_rank} on its machine, which has "
                                   f"{count} GPUs: start at most one process per GPU")
        torch.cuda.set_device(index)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=launch.rank, world_size=launch.world_size)
    return DistributedContext(launch.rank, launch.world_size, launch.local_rank, backend,
                              f"cuda:{index}" if cuda else "cpu")


def current() -> DistributedContext | None:
    """The process group of this process (made by :func:`init_from_environment`), or None.

    Returns
    -------
    DistributedContext or None
        None when torch.distributed is not initialised or has one process.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return None
    backend = str(dist.get_backend())
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0")))
    device = f"cuda:{torch.cuda.current_device()}" if backend == "nccl" else "cpu"
    return DistributedContext(dist.get_rank(), dist.get_world_size(), local, backend, device)


def shutdown() -> None:
    """Leave the process group (when one was made); safe to call without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_batch_split(batch_size: int, context: DistributedContext | None) -> int:
    """The per-process batch size of a global batch, refusing a split that is not even.

    Parameters
    ----------
    batch_size : int
        The global batch size (patches per iteration over all processes).
    context : DistributedContext or None
        The process group (None: one process).

    Returns
    -------
    int
        ``batch_size / world_size``.

    Raises
    ------
    DistributedError
        When the batch size is not a multiple of the number of processes.
    """
    world = 1 if context is None else context.world_size
    if batch_size % world:
        raise DistributedError(f"the batch size {batch_size} cannot be split evenly over {world} processes: choose a "
                               f"batch size that is a multiple of {world}, or another number of processes",
                               value=batch_size)
    return batch_size // world


def shard_batch(batch: Mapping[str, np.ndarray], context: DistributedContext | None) -> dict[str, np.ndarray]:
    """This process's rows of a global batch: rows ``rank*b ... (rank+1)*b - 1`` with ``b = B / world``.

    Parameters
    ----------
    batch : mapping of str to ndarray, each (B, C, H, W)
        The global batch every process drew from the same sampler.
    context : DistributedContext or None
        The process group (None: the whole batch).

    Returns
    -------
    dict of str to ndarray, each (B / world, C, H, W)
    """
    if context is None:
        return dict(batch)
    out = {}
    for key, array in batch.items():
        per = check_batch_split(len(array), context)
        out[key] = array[context.rank * per:(context.rank + 1) * per]
    return out


def broadcast_networks(networks: Mapping[str, Any], context: DistributedContext | None) -> None:
    """Give every process rank 0's parameters and buffers (in place).

    Parameters
    ----------
    networks : mapping of str to torch.nn.Module
        The system's networks, on this process's device.
    context : DistributedContext or None
        Nothing happens without a process group.
    """
    if context is None:
        return
    import torch.distributed as dist

    for name in sorted(networks):
        for tensor in [*networks[name].parameters(), *networks[name].buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(networks: Iterable[Any], context: DistributedContext | None) -> list[Any]:
    """Average every trainable parameter's gradient over the processes as backward produces it.

    Parameters
    ----------
    networks : iterable of torch.nn.Module
        The networks whose gradients are averaged (frozen parameters are left alone).
    context : DistributedContext or None
        Nothing happens without a process group.

    Returns
    -------
    list
        The hook handles (``handle.remove()`` detaches them).
    """
    if context is None:
        return []
    import torch.distributed as dist

    world = context.world_size

    def hook(parameter: Any) -> None:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad.div_(world)

    handles = []
    seen: set[int] = set()
    for net in networks:
        for parameter in net.parameters():
            if id(parameter) not in seen:  # a shared parameter is averaged once
                seen.add(id(parameter))
                handles.append(parameter.register_post_accumulate_grad_hook(hook))
    return handles


def average_losses(losses: Mapping[str, float], context: DistributedContext | None) -> dict[str, float]:
    """The mean of each loss over the processes (the global batch's loss when the split is even).

    Parameters
    ----------
    losses : mapping of str to float
        This process's losses of one iteration.
    context : DistributedContext or None
        Without a process group the losses are returned unchanged.

    Returns
    -------
    dict of str to float
    """
    if context is None:
        return dict(losses)
    import torch
    import torch.distributed as dist

    values = torch.tensor([float(v) for v in losses.values()], dtype=torch.float64, device=context.device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return dict(zip(losses, (values / context.world_size).cpu().tolist(), strict=True))


def any_process(flag: bool, context: DistributedContext | None) -> bool:
    """True on every process when ``flag`` is true on any of them (e.g. a stop asked of one process).

    Deciding together keeps the processes in step: one that stopped alone would leave the others
    waiting for it in the next gradient average.

    Parameters
    ----------
    flag : bool
        This process's answer.
    context : DistributedContext or None
        Without a process group ``flag`` is returned.

    Returns
    -------
    bool
    """
    if context is None:
        return bool(flag)
    import torch
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def broadcast_object(value: Any, context: DistributedContext | None) -> Any:
    """Rank 0's ``value`` on every process (picklable objects).

    Parameters
    ----------
    value : object
        What rank 0 sends (ignored on the other ranks).
    context : DistributedContext or None
        Without a process group ``value`` is returned.

    Returns
    -------
    object
    """
    if context is None:
        return value
    import torch.distributed as dist

    box = [value if context.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def describe(context: DistributedContext | None, batch_size: int) -> dict[str, Any]:
    """The run's data-parallel layout, for the run configuration and the log.

    Parameters
    ----------
    context : DistributedContext or None
        The process group (None: one process).
    batch_size : int
        The global batch size.

    Returns
    -------
    dict
        ``world_size``, ``global_batch_size``, ``per_process_batch_size`` and ``backend`` (None for one process).
    """
    world = 1 if context is None else context.world_size
    return {"world_size": world, "global_batch_size": int(batch_size),
            "per_process_batch_size": check_batch_split(int(batch_size), context),
            "backend": None if context is None else context.backend}


__all__ = ["DistributedContext", "DistributedError", "Launch", "any_process", "average_gradients", "average_losses",
           "broadcast_networks", "broadcast_object", "check_batch_split", "current", "describe",
           "init_from_environment", "launch_from_environment", "shard_batch", "shutdown"]
