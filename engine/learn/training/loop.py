"""The training loop: seeded, validated, checkpointed, resumable, cancellable.

:func:`iter_train` is a generator (the engine's progress style): it yields a
:class:`engine.progress.Progress` every ``log_every`` iterations (``values``: the mean losses of the
interval, ``iteration``, ``eta_s``, ``lr_g``), after every validation (``val_*`` and ``lq_*``
metrics, ``best_*``), and returns a :class:`RunSummary`. :func:`train` drains it.

What one run does
-----------------
1. Reads the preset (:func:`engine.learn.presets.load_preset`) and applies the overrides of the
   :class:`~engine.learn.training.config.TrainConfig`; prepares the data
   (:func:`engine.learn.training.data.prepare_training_data`); seeds Python, numpy and torch with ``seed``;
   builds the GAN system (:func:`engine.learn.systems.build_system`); writes ``RUN_DIR/config.json``.
2. Iterates: a batch from the :class:`~engine.learn.training.patches.PatchSampler` ->
   :func:`engine.learn.training.step.train_step`
   (both optimiser steps, EMA and LR schedulers; AMP and channels-last on CUDA only).
3. Every ``validation_every`` iterations and at the end: :class:`~engine.learn.training.validation.Validator`;
   a better paired SSIM (or, unpaired, any validation) replaces ``RUN_DIR/best``.
4. Every ``checkpoint_every`` iterations, at the end, and when cancelled: ``RUN_DIR/checkpoints/last``
   with every network, optimiser/scheduler/GradScaler state, the image pools, the torch/numpy/Python
   RNG states and the patch sampler's RNG state (:mod:`engine.learn.checkpoint`).

Exact resume
------------
A checkpoint is taken between iterations and holds every source of randomness, so
``N`` iterations in one go and ``N/2`` + resume + ``N/2`` give identical losses on CPU (tested).
On resume the stored configuration is used; only ``iterations`` (extend the run), ``device``,
``amp``, ``log_every``, ``checkpoint_every`` and ``vgg19_weights`` may change (a larger ``iterations``
extends the run; a cosine schedule is stretched to the new length). ``progress.jsonl``
is cut back to the checkpoint's iteration so it never holds events of work that was redone.

A run killed at any moment (SIGKILL, power cut) continues with one command: with ``resume`` from
its last checkpoint, or from the beginning (with a note) when it was killed before the first one;
a plain start over such a run folder restarts it. ``RUN_DIR/.lock`` records the pid and host of the
training process: a folder in use by a live process is refused, the lock of a dead one is taken
over, and the temporaries it left (``.*.partial*``, ``.*.old-*``) are deleted before training.

Cancellation
------------
Closing the generator (``gen.close()``), or a :class:`~engine.progress.CancelToken` (checked before
every iteration), saves a checkpoint of the last completed iteration; a token raises
:class:`~engine.progress.Cancelled` afterwards. A raw ``KeyboardInterrupt`` in the middle of an
iteration saves nothing (the state could be half-updated); the last periodic checkpoint remains.

Determinism on CUDA needs ``deterministic=True`` (cuDNN deterministic algorithms, no autotuning);
AMP makes results depend on the GPU model.

Why this module is long
-----------------------
The resumable loop is one generator (``_iter_train``, ~200 lines) because its local state
(iteration, loss sums, the last checkpoint's iteration, the best metric) is shared by the training
step, logging, validation, checkpointing and cancellation, and their order within an iteration is
what makes a resume exact; the start / restart / resume checks of the run folder sit beside it for
the same reason. What one iteration does is :mod:`engine.learn.training.step`; data, patches,
validation and configuration have their own modules.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from decongan.engine.errors import DeconganError
from decongan.engine.learn.checkpoint import (
    LOCK_NAME,
    RUN_ENTRIES,
    ChannelInfo,
    DataInfo,
    RunConfig,
    RunError,
    acquire_run_lock,
    append_progress,
    build_generator,
    clean_stale_temporaries,
    clear_run,
    foreign_entries,
    has_checkpoint,
    is_run_dir,
    load_checkpoint,
    load_run_config,
    read_best_metrics,
    save_best,
    save_checkpoint,
    save_run_config,
    truncate_progress,
)
from decongan.engine.learn.training.config import TrainConfig, apply_overrides, preset_updates
from decongan.engine.learn.training.data import TrainingData, prepare_training_data
from decongan.engine.learn.training.patches import PatchSampler
from decongan.engine.learn.training.validation import Validator, write_previews
from decongan.engine.progress import Cancelled, CancelToken, Progress, ProgressCallback, run_with_callbacks
from decongan.engine.provenance import software_versions

#: options that may differ when a run is resumed
RESUMABLE_FIELDS = ("iterations", "device", "amp", "log_every", "checkpoint_every", "vgg19_weights")


@dataclass
class RunSummary:
    """What a training run did."""

    run_dir: Path
    iterations: int
    total_iterations: int
    cancelled: bool = False
    resumed_from: int | None = None
    best_metric: float | None = None
    best_iteration: int | None = None
    criterion: str | None = None
    last_validation: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


class TrainingError(DeconganError, ValueError):
    """A run cannot start or continue (existing folder, missing checkpoint...)."""


# ---------------------------------------------------------------------------------------------
# RNG state <-> JSON
# ---------------------------------------------------------------------------------------------
def _python_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_rng_state(state: list[Any]) -> None:
    random.setstate((state[0], tuple(state[1]), state[2]))


def _numpy_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the global RNG other code may use)
    return {"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_numpy_rng_state(state: dict[str, Any]) -> None:
    legacy = (state["name"], np.asarray(state["keys"], dtype=np.uint32), state["pos"], state["has_gauss"], state["cached"])
    np.random.set_state(legacy)  # noqa: NPY002 (the global RNG other code may use)


def seed_everything(seed: int, *, device: Any = None, deterministic: bool = True) -> None:
    """Seed Python's, numpy's and torch's global random generators (and cuDNN's algorithm choice on CUDA).

    Parameters
    ----------
    seed : int
        The seed; numpy's global generator gets ``seed % 2**32``.
    device : torch.device, optional
        On a CUDA device every GPU's generator is seeded too and cuDNN is configured.
    deterministic : bool
        On CUDA: deterministic cuDNN algorithms and no autotuning (``cudnn.benchmark = False``),
        so a resumed run repeats the same losses; False lets cuDNN pick faster algorithms.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 (seed the global RNG other code may use)
    torch.manual_seed(seed)
    if device is not None and getattr(device, "type", "") == "cuda":
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = bool(deterministic)
        torch.backends.cudnn.benchmark = not deterministic


# ---------------------------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------------------------
def _resolve_resume(config: TrainConfig) -> tuple[TrainConfig, RunConfig]:
    out = Path(config.out)
    if not is_run_dir(out):
        raise TrainingError(f"{out}: nothing to resume (no config.json); start a new run instead of resuming")
    run_config = load_run_config(out)
    if not has_checkpoint(out):
        raise TrainingError(f"{out}: the run has no checkpoint yet; start it again as a new run (not resuming), in a new output folder")
    stored = TrainConfig.model_validate({**run_config.train, "out": str(out), "resume": True})
    changes: dict[str, Any] = {}
    for name in RESUMABLE_FIELDS:
        if name in config.model_fields_set and getattr(config, name) is not None:
            changes[name] = getattr(config, name)
    return stored.model_copy(update=changes), run_config


def _check_new_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise TrainingError(f"{out}: exists and is not a folder; choose a new output folder")
        if foreign_entries(out) or has_checkpoint(out):
            hint = " (it holds a run: resume the run to continue it)" if is_run_dir(out) else ""
            raise TrainingError(f"{out}: the output folder exists and is not empty{hint}; choose a new output folder")


def _check_out_before_locking(config: TrainConfig) -> None:
    """Refuse, before writing anything, a folder that is a file or holds files no run writes."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out}: exists and is not a folder; choose a new output folder")
    if is_run_dir(out) or not foreign_entries(out):
        return
    if config.resume:
        raise TrainingError(f"{out}: nothing to resume (no config.json) and the folder holds other files "
                            f"({', '.join(foreign_entries(out)[:3])}); choose a new output folder")
    _check_new_out(out)


def _start_or_restart(config: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """Decide, holding the lock, how a run in ``config.out`` starts: resume, fresh, or restart.

    * a checkpoint and ``resume``: resume (:func:`_resolve_resume`);
    * a checkpoint, no ``resume``: refused (resume the run instead);
    * no checkpoint (the run was stopped or killed before its first one, or never began): the run
      starts from the beginning, with ``resume`` too (its stored configuration, when there is one,
      plus the options that may change on resume); what it wrote is deleted first.
    """
    out = Path(config.out)
    notes: list[str] = []
    if has_checkpoint(out):
        if not config.resume:
            _check_new_out(out)  # raises: "resume the run to continue it"
        return config, notes
    if config.resume:
        if is_run_dir(out):
            try:
                run_config = load_run_config(out)
            except RunError:
                run_config = None
            if run_config is not None:
                stored = TrainConfig.model_validate({**run_config.train, "out": str(out), "resume": False})
                changes = {name: getattr(config, name) for name in RESUMABLE_FIELDS
                           if name in config.model_fields_set and getattr(config, name) is not None}
                config = stored.model_copy(update=changes)
            else:
                config = config.model_copy(update={"resume": False})
        else:
            if config.lq_dir is None and config.hq_dir is None:
                raise TrainingError(f"{out}: nothing to resume (no config.json): the run never started; give the "
                                    "low- and high-quality image folders and the other options to start it")
            config = config.model_copy(update={"resume": False})
        notes.append(f"{out}: no checkpoint to resume from (the run stopped before its first one); "
                     "it was started from the beginning")
    elif is_run_dir(out) or any(p.name in RUN_ENTRIES for p in out.iterdir() if p.name != LOCK_NAME):
        notes.append(f"{out}: the run there had no checkpoint (it stopped before its first one); started again")
    clear_run(out)
    return config, notes


def _check_generator_round_trip(system: Any, run_config: RunConfig) -> str:
    """Make sure the generator can be rebuilt from config.json alone; return its weight key."""
    rebuilt = build_generator(run_config)
    live = system.generator
    a = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in live.state_dict().items()}
    if a != b:
        raise RunError("the generator rebuilt from the stored preset does not match the trained one; "
                       "this is a bug in the preset/config handling")
    for key, net in system.networks().items():
        if net is live:
            return key
    raise RunError("the system's generator is not one of its networks")


def _run_config(config: TrainConfig, preset: Any, data: TrainingData) -> RunConfig:
    pairing = data.pairing
    return RunConfig(
        preset_name=preset.name,
        preset=preset.model_dump(mode="json"),
        paired=preset.paired,
        scale=preset.scale,
        normalization=data.normalization,
        pixel_size_um=data.pixel_size_um,
        hq_pixel_size_um=data.hq_pixel_size_um,
        channels=ChannelInfo(n_channels=data.n_channels, names=data.channel_names),
        data=DataInfo(
            lq_dir=str(config.lq_dir) if config.lq_dir else None,
            hq_dir=str(config.hq_dir) if config.hq_dir else None,
            train_names=data.train_names,
            val_names=data.val_names,
            unmatched_lq=pairing.lq_only if pairing else [],
            unmatched_hq=pairing.hq_only if pairing else [],
            skipped=data.skipped,
            n_train_planes=len(data.train),
            n_val_planes=len(data.val),
            registration="; ".join(data.registration) or None,
            synthetic_lq=data.synthetic,
        ),
        seed=config.seed,
        train=config.model_dump(mode="json"),
        versions=software_versions("torch", "safetensors", "pydantic"),
    )


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
def iter_train(config: TrainConfig, *, cancel: CancelToken | None = None) -> Generator[Progress, None, RunSummary]:
    """Train one GAN (module doc); yields progress, returns a :class:`RunSummary`.

    The run folder is locked while training (``RUN_DIR/.lock``: pid and hostname; a lock of a dead
    process is taken over) and the temporaries of killed processes are deleted first. A run killed
    at any moment continues with one command: ``resume=True`` continues from the last checkpoint,
    or starts the run from the beginning (with a note) when it has none; a plain start over a run
    folder without a checkpoint restarts it; a plain start over a run with a checkpoint is refused.

    Parameters
    ----------
    config : TrainConfig
        Preset, data folders (2-D images, or stacks whose Z planes, time frames and channels are used as
        separate 2-D samples), output run folder ``config.out``, iterations, patch size (px), batch size,
        device, seed, and ``resume``.
    cancel : CancelToken, optional
        When set, training stops after the current iteration and saves a checkpoint.

    Yields
    ------
    Progress
        One event per iteration (losses), validation and checkpoint events, with ``eta_s`` in seconds.

    Returns
    -------
    RunSummary
        Iterations done, elapsed seconds, best validation metric and its iteration, the run folder and notes.

    Raises
    ------
    TrainingError, DataError, PresetError, RunError
        Unusable options, folders or run state, a folder in use (messages say what to do).
    Cancelled
        When ``cancel`` was set (after saving a checkpoint).
    """
    from decongan.engine.learn.training import distributed

    context = distributed.current()
    if context is not None and not context.is_main:  # rank 0 locks and prepares the folder; the others follow
        decided = distributed.broadcast_object(None, context)
        if isinstance(decided, str):
            raise TrainingError(f"process 0 could not start the run: {decided}")
        return (yield from _iter_train(decided[0], cancel=cancel, notes=decided[1], context=context))
    try:
        _check_out_before_locking(config)
        lock = acquire_run_lock(config.out)
    except Exception as err:
        distributed.broadcast_object(str(err), context)
        raise
    try:
        try:
            removed = clean_stale_temporaries(config.out)
            config, notes = _start_or_restart(config)
        except Exception as err:
            distributed.broadcast_object(str(err), context)
            raise
        if removed:
            notes.append(f"removed {len(removed)} temporary file(s)/folder(s) left by a stopped process")
        distributed.broadcast_object((config, notes), context)
        return (yield from _iter_train(config, cancel=cancel, notes=notes, context=context))
    finally:
        lock.release()


def _iter_train(config: TrainConfig, *, cancel: CancelToken | None, notes: list[str],
                context: Any = None) -> Generator[Progress, None, RunSummary]:
    import torch

    from decongan.engine.device import resolve_device
    from decongan.engine.learn.domain import domain_path, record_training_domain
    from decongan.engine.learn.presets import load_preset
    from decongan.engine.learn.systems import build_system
    from decongan.engine.learn.training import distributed
    from decongan.engine.learn.training.step import train_step

    start_time = time.perf_counter()
    out = Path(config.out)
    writer = context is None or context.is_main  # only rank 0 writes the run folder (distributed.py)
    run_config: RunConfig | None = None
    if config.resume:
        config, run_config = _resolve_resume(config)
    elif writer:
        _check_new_out(out)
    device = resolve_device(context.device if context is not None else config.device)
    amp = bool(config.amp) if config.amp is not None else device.type == "cuda"
    amp = amp and device.type == "cuda"

    # -- preset, data ---------------------------------------------------------------------------
    if run_config is not None:
        from decongan.engine.learn.presets import Preset

        preset = Preset.model_validate(run_config.preset)
        if config.iterations is not None and config.iterations != preset.iterations:
            preset = preset.with_overrides(iterations=config.iterations)
    else:
        preset = apply_overrides(load_preset(config.preset), preset_updates(config))
    total = int(preset.iterations)
    layout = distributed.describe(context, preset.batch_size)  # refuses a batch that does not split evenly
    for note in notes:
        yield Progress(0, total, f"note: {note}")
    yield Progress(0, total, "reading the training data")
    data = prepare_training_data(
        lq_dir=config.lq_dir, hq_dir=config.hq_dir, paired=preset.paired, scale=preset.scale,
        patch_size=preset.patch_size, seed=config.seed, val_names=config.val_names,
        val_fraction=config.val_fraction, max_val_planes=config.max_val_planes,
        pixel_size_um=config.pixel_size_um, synthetic=config.synthetic_lq,
        normalization_mode=config.normalization, p_low=config.p_low, p_high=config.p_high,
        normalization=run_config.normalization if run_config is not None else None,
        register=config.registration,
    )

    # -- system -----------------------------------------------------------------------------------
    seed_everything(config.seed, device=device, deterministic=config.deterministic)
    system = build_system(preset, device=device, vgg19_weights=config.vgg19_weights,
                          pretrained=None if run_config is not None else config.pretrained)
    if run_config is None:
        run_config = _run_config(config, preset, data)
        run_config.distributed = {**layout, "segments": [{"start_iteration": 0, "world_size": layout["world_size"]}]}
        if writer:
            out.mkdir(parents=True, exist_ok=True)
            save_run_config(out, run_config)
            record_training_domain(out, data)  # the inputs' domain, checked before a result is trusted
    else:  # an extended run records its new length (and this launch's number of processes)
        run_config = run_config.model_copy(update={"preset": preset.model_dump(mode="json"),
                                                   "train": {**run_config.train, **config.model_dump(mode="json", include=set(RESUMABLE_FIELDS))},
                                                   "distributed": {**layout, "segments": run_config.distributed.get("segments", [])}})
        if writer:
            save_run_config(out, run_config)
            if not domain_path(out).is_file():  # a run made before domain records gets one when resumed
                record_training_domain(out, data)
    generator_key = _check_generator_round_trip(system, run_config)
    sampler = PatchSampler(data, patch_size=preset.patch_size, batch_size=preset.batch_size, seed=config.seed,
                           foreground_threshold=config.foreground_threshold,
                           foreground_reject_prob=config.foreground_reject_prob)
    validator = Validator(data.val, paired=preset.paired, scale=preset.scale, device=device,
                          tile=config.val_tile, overlap=config.val_overlap)
    val_every = int(preset.validation_every)
    ckpt_every = int(config.checkpoint_every or val_every)

    summary = RunSummary(run_dir=out, iterations=0, total_iterations=total, criterion=validator.criterion,
                         notes=[*notes, *data.notes])
    if data.pairing is not None and (data.pairing.lq_only or data.pairing.hq_only):
        summary.notes.append(data.pairing.summary())
    if data.skipped:
        summary.notes.append(f"planes smaller than the patch were skipped: {', '.join(data.skipped)}")
    best: dict[str, Any] = {"metric": None, "iteration": None}

    # -- resume -------------------------------------------------------------------------------------
    start = 0
    if config.resume:
        training_state, state = load_checkpoint(out, networks=system.networks(), device=device)
        system.load_training_state(training_state["system"])
        for scheduler in system.schedulers().values():  # an extended run: cosine annealing over the new length
            if getattr(scheduler, "T_max", total) != total:
                scheduler.T_max = total
        torch.set_rng_state(training_state["rng"]["torch"].cpu())
        if device.type == "cuda" and training_state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all([s.cpu() for s in training_state["rng"]["cuda"]])
        _set_python_rng_state(state["python_rng"])
        _set_numpy_rng_state(state["numpy_rng"])
        sampler.set_state(state["sampler_rng"])
        start = int(state["iteration"])
        best = dict(state.get("best") or best)
        summary.resumed_from = start
        if writer:
            truncate_progress(out, start)
            run_config.distributed["segments"].append({"start_iteration": start, "world_size": layout["world_size"]})
            save_run_config(out, run_config)
        if start >= total:
            summary.iterations = start
            summary.best_metric, summary.best_iteration = best.get("metric"), best.get("iteration")
            yield Progress(start, total, f"already trained for {start} of {total} iterations")
            return summary
    system.train()
    distributed.broadcast_networks(system.networks(), context)  # every process starts from rank 0's weights
    distributed.average_gradients(system.networks().values(), context)

    def checkpoint(iteration: int) -> None:
        if not writer:
            return
        training_state = {
            "system": system.training_state(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else []},
        }
        state = {
            "iteration": iteration,
            "total_iterations": total,
            "generator_key": generator_key,
            "best": best,
            "python_rng": _python_rng_state(),
            "numpy_rng": _numpy_rng_state(),
            "sampler_rng": sampler.get_state(),
        }
        save_checkpoint(out, networks=system.networks(), training_state=training_state, state=state)

    def validate(iteration: int) -> Progress:
        if not writer:  # validation, best model and previews are rank 0's
            return Progress(iteration, total, f"validation at iteration {iteration} (by process 0)")
        metrics = validator(system.generator)
        improved = False
        if validator.criterion is None:
            improved = True
        else:
            value = metrics[validator.criterion]
            improved = best["metric"] is None or value > best["metric"]
        if improved:
            best["metric"] = metrics.get(validator.criterion) if validator.criterion else None
            best["iteration"] = iteration
            save_best(out, system.generator, {
                "iteration": iteration,
                "criterion": validator.criterion or "latest validation (unpaired: no ground truth ranks models)",
                "metrics": metrics,
                "val_names": data.val_names,
            })
        summary.last_validation = metrics
        write_previews(out / "validation", validator, iteration=iteration)
        values = {f"val_{k}" if not k.startswith("lq_") else k: v for k, v in metrics.items()}
        values["iteration"] = float(iteration)
        if best["metric"] is not None:
            values[f"best_{validator.criterion}"] = float(best["metric"])
        if best["iteration"] is not None:
            values["best_iteration"] = float(best["iteration"])
        append_progress(out, {"event": "validation", "iteration": iteration, **values})
        return Progress(iteration, total, f"validation at iteration {iteration}"
                        + (f": SSIM {metrics['ssim']:.4f} (LQ {metrics['lq_ssim']:.4f}), PSNR {metrics['psnr']:.2f} dB"
                           if "ssim" in metrics else f": BGSTD {metrics['bgstd']:.4f}, CUF {metrics['cuf']:.4f}"),
                        values)

    yield Progress(start, total, (f"resuming at iteration {start}" if start else "training") +
                   f" on {device.type}: {len(data.train)} training planes, {len(data.val)} validation planes; "
                   f"{layout['world_size']} process(es), global batch {layout['global_batch_size']} "
                   f"({layout['per_process_batch_size']} per process)",
                   {"iteration": float(start), "world_size": float(layout["world_size"]),
                    "global_batch_size": float(layout["global_batch_size"])})
    if writer:
        append_progress(out, {"event": "distributed", "iteration": start, **layout})
    if start == 0 and validator and writer:
        base = validator.baseline()
        append_progress(out, {"event": "baseline", "iteration": 0, **base})
        yield Progress(0, total, "validation baseline (LQ vs GT)" if preset.paired else "validation baseline (LQ)", base)

    loop_start = time.perf_counter()
    iteration = start
    sums: dict[str, float] = {}
    count = 0
    saved_at = start
    try:
        while iteration < total:
            if distributed.any_process(cancel is not None and cancel.cancelled, context):  # all stop together
                raise Cancelled("cancelled by the user")
            batch = distributed.shard_batch(sampler.sample(), context)  # this process's rows of the global batch
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            losses = distributed.average_losses(train_step(system, tensors, amp=amp), context)
            iteration += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
            final = iteration == total
            if iteration % config.log_every == 0 or final:
                rate = (time.perf_counter() - loop_start) / (iteration - start)
                values = {k: v / count for k, v in sums.items()}
                values.update({"iteration": float(iteration), "eta_s": round(rate * (total - iteration), 1),
                               "it_per_s": round(1.0 / rate, 4) if rate > 0 else 0.0})
                if writer:
                    append_progress(out, {"event": "train", **values})
                sums, count = {}, 0
                yield Progress(iteration, total, f"iteration {iteration}/{total}", values)
            if validator and (iteration % val_every == 0 or final):
                yield validate(iteration)
            if iteration % ckpt_every == 0 or final:
                checkpoint(iteration)
                saved_at = iteration
    except (Cancelled, GeneratorExit):
        if iteration > saved_at or not has_checkpoint(out):  # (a checkpoint at 0 lets --resume start the run)
            checkpoint(iteration)
        summary.cancelled = True
        if writer:
            append_progress(out, {"event": "cancelled", "iteration": iteration})
        raise
    if writer and not validator and read_best_metrics(out) is None:  # nothing to validate on: the final model is "best"
        save_best(out, system.generator, {"iteration": iteration, "criterion": "final (no validation images)",
                                          "metrics": {}})
        best["iteration"] = iteration
    summary.iterations = iteration
    summary.best_metric, summary.best_iteration = best["metric"], best["iteration"]
    summary.elapsed_s = time.perf_counter() - start_time
    if not writer:
        return summary
    append_progress(out, {"event": "done", "iteration": iteration, "elapsed_s": round(summary.elapsed_s, 2),
                          "best_iteration": best["iteration"], "best_metric": best["metric"]})
    return summary


def train(config: TrainConfig, *, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None) -> RunSummary:
    """Run :func:`iter_train` to completion, forwarding its progress; cancellable with ``cancel``.

    Parameters
    ----------
    config : TrainConfig
        The training options (see :func:`iter_train`).
    progress : callable, optional
        Called with each :class:`~decongan.engine.progress.Progress` event.
    cancel : CancelToken, optional
        When set, training stops after the current iteration and saves a checkpoint.

    Returns
    -------
    RunSummary

    Raises
    ------
    TrainingError, DataError, PresetError, RunError, Cancelled
        As :func:`iter_train`.
    """
    return run_with_callbacks(iter_train(config, cancel=cancel), progress=progress, cancel=cancel)


def summary_json(summary: RunSummary) -> str:
    """The summary as one JSON line."""
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in summary.__dict__.items()}
    return json.dumps(data)


__all__ = ["RESUMABLE_FIELDS", "RunSummary", "TrainingError", "iter_train", "seed_everything", "summary_json", "train"]
