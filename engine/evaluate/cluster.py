"""A batch's per-file work on a dask.distributed cluster: a LocalCluster, an existing scheduler, or SLURM.

:func:`dask_runner` gives a :data:`engine.evaluate.batch_steps.Runner` for
``engine.evaluate.batch.iter_batch(..., runner=...)``: each task is one input file restored by
:func:`engine.evaluate.batch_steps.restore_input` -- the function the serial batch runs -- on a
worker, which writes its outputs atomically and returns the manifest entries; the batch's own
process alone writes the manifest, so workers never race on it. The reuse rule, cancelling and the
manifest stay in ``engine.evaluate.batch``; results are the same bytes whichever way they are
computed (``tests/app/test_cli_batch_cluster.py``).

Where the tasks run (:func:`parse_cluster`):

* ``local`` -- a ``distributed.LocalCluster`` on this machine: ``workers`` worker processes (default:
  one per core) with one thread each;
* ``scheduler`` -- an existing dask scheduler at an address (``tcp://host:8786``), whatever started it;
* ``slurm`` -- ``dask_jobqueue.SLURMCluster`` (the optional ``hpc`` extra) from a small TOML file
  (:func:`read_slurm_config`);
* ``synchronous`` -- dask's single-threaded scheduler in this process, one task after the other
  (for debugging a method; nothing is pickled).

dask and dask-jobqueue are optional: they are imported only here, when a cluster is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decongan.engine.errors import DeconganError

#: LocalCluster workers are processes (True); the tests set False (threads of this process) to start fast
LOCAL_PROCESSES = True
#: the keys a SLURM configuration file may hold (dask_jobqueue.SLURMCluster's options) besides ``jobs``
SLURM_KEYS: frozenset[str] = frozenset({
    "cores", "memory", "processes", "queue", "account", "walltime", "job_cpu", "job_mem", "job_extra_directives",
    "job_directives_skip", "job_script_prologue", "worker_extra_args", "local_directory", "log_directory",
    "interface", "death_timeout", "python", "name", "shebang", "scheduler_options",
})
SYNCHRONOUS = "synchronous"

Task = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class ClusterError(DeconganError, ValueError):
    """A cluster that cannot be used: a bad configuration file, a missing package, no scheduler."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where a batch's tasks run.

    Attributes
    ----------
    kind : str
        ``"local"``, ``"scheduler"``, ``"slurm"`` or ``"synchronous"``.
    address : str or None
        The scheduler's address (``kind="scheduler"``).
    config : Path or None
        The SLURM configuration file (``kind="slurm"``).
    workers : int or None
        LocalCluster worker processes (None: one per core).
    """

    kind: str
    address: str | None = None
    config: Path | None = None
    workers: int | None = None
    slurm: dict[str, Any] = field(default_factory=dict, compare=False)


def parse_cluster(text: str, *, workers: int | None = None) -> ClusterSpec:
    """``"dask"``, ``"dask=ADDRESS"``, ``"dask=FILE.toml"`` or ``"dask=synchronous"`` -> a :class:`ClusterSpec`.

    Parameters
    ----------
    text : str
        ``dask`` alone is a LocalCluster; after ``=``: a scheduler address (``tcp://host:8786``,
        ``tls://...``), a SLURM configuration file (ending in ``.toml``, read now), or ``synchronous``.
    workers : int, optional
        Worker processes of a LocalCluster (at least 1; None: one per core). Refused with the other kinds,
        whose size is the scheduler's or the configuration file's.

    Returns
    -------
    ClusterSpec

    Raises
    ------
    ClusterError
        An unknown engine, a bad worker count, or a configuration file that cannot be read.
    """
    engine, _, target = text.partition("=")
    if engine != "dask":
        raise ClusterError(f"cluster {text!r}: the only cluster engine is dask (dask, dask=tcp://HOST:PORT, "
                           "dask=slurm.toml or dask=synchronous)", value=text)
    if workers is not None and workers < 1:
        raise ClusterError(f"the number of workers must be at least 1, got {workers}", value=workers)
    if target and workers is not None:
        raise ClusterError(f"cluster {text!r}: the number of workers applies to a local cluster only; the "
                           "scheduler or the configuration file decides how many work elsewhere", value=workers)
    if not target:
        return ClusterSpec("local", workers=workers)
    if target == SYNCHRONOUS:
        return ClusterSpec(SYNCHRONOUS)
    if target.endswith(".toml"):
        path = Path(target)
        return ClusterSpec("slurm", config=path, slurm=read_slurm_config(path))
    if "://" not in target and ":" not in target:
        raise ClusterError(f"cluster {text!r}: {target!r} is neither a scheduler address (tcp://HOST:PORT) nor a "
                           "SLURM configuration file (FILE.toml)", value=text)
    return ClusterSpec("scheduler", address=target)


def read_slurm_config(path: str | Path) -> dict[str, Any]:
    """The SLURMCluster options of a TOML file with one ``[slurm]`` table.

    Parameters
    ----------
    path : str or Path
        A file such as::

            [slurm]
            jobs = 4                 # SLURM jobs to start (required)
            cores = 8                # cores per job (required)
            memory = "32GB"          # memory per job (required)
            walltime = "04:00:00"
            queue = "normal"
            job_extra_directives = ["--gres=gpu:1"]

        Any other key of :data:`SLURM_KEYS` is passed to ``dask_jobqueue.SLURMCluster`` as given.
        Without ``processes``, each job runs ``cores`` worker processes of one thread each (as a
        LocalCluster does), not dask-jobqueue's own split.

    Returns
    -------
    dict
        The options, ``jobs`` and ``processes`` included.

    Raises
    ------
    ClusterError
        A missing or unreadable file, a table other than ``[slurm]``, an unknown key (typos are
        refused, not ignored), or a missing or non-positive ``jobs``, ``cores`` or ``memory``;
        the message names the file.
    """
    path = Path(path)
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ClusterError(f"{path}: reading a TOML configuration needs Python 3.11 or newer", path=path) from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ClusterError(f"{path}: cannot read the SLURM configuration ({err.strerror or err})", path=path) from None
    except tomllib.TOMLDecodeError as err:
        raise ClusterError(f"{path}: not a valid TOML file ({err})", path=path) from None
    if set(data) != {"slurm"} or not isinstance(data["slurm"], dict):
        raise ClusterError(f"{path}: expected one [slurm] table, found {sorted(data) or 'nothing'}", path=path)
    options = dict(data["slurm"])
    unknown = sorted(set(options) - SLURM_KEYS - {"jobs"})
    if unknown:
        raise ClusterError(f"{path}: unknown key(s) {', '.join(unknown)} in [slurm]; known: jobs, "
                           f"{', '.join(sorted(SLURM_KEYS))}", path=path)
    for key in ("jobs", "cores", "processes"):
        value = options.get(key)
        if (key != "processes" or value is not None) and (not isinstance(value, int) or isinstance(value, bool)
                                                           or value < 1):
            raise ClusterError(f"{path}: [slurm] {key} must be a whole number of at least 1, got {value!r}",
                               path=path, value=value)
    if not isinstance(options.get("memory"), str) or not options["memory"].strip():
        raise ClusterError(f"{path}: [slurm] memory must be given as text, e.g. memory = \"32GB\"", path=path)
    options.setdefault("processes", options["cores"])
    return options


def start_slurm_cluster(options: dict[str, Any], *, config: Path | None = None) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` with ``options`` (:func:`read_slurm_config`), scaled to ``jobs`` jobs.

    Parameters
    ----------
    options : dict
        SLURMCluster options plus ``jobs``.
    config : Path, optional
        The file they came from (named in errors).

    Returns
    -------
    dask_jobqueue.SLURMCluster

    Raises
    ------
    ClusterError
        When dask-jobqueue is not installed.
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ClusterError(f"{config or 'a SLURM cluster'}: needs dask-jobqueue, which is not installed "
                           "(pip install 'decongan[hpc]')", path=config) from None
    kwargs = {k: v for k, v in options.items() if k != "jobs"}
    cluster = SLURMCluster(**kwargs)
    cluster.scale(jobs=options["jobs"])
    return cluster


def check_portable(methods: Iterable[Any], read: Callable[..., Any] | None = None) -> None:
    """Refuse, before any cluster starts, a method (or reader) that cannot be sent to a worker.

    Each task carries its methods to a worker process (cloudpickle, as dask does); a method holding
    something that cannot be pickled (an open connection, a handle to a local process) would
    otherwise fail on every file.

    Parameters
    ----------
    methods : iterable of MethodSpec
        The batch's restoration methods.
    read : callable, optional
        The batch's image reader.

    Raises
    ------
    ClusterError
        Naming the first method that cannot be sent and why.
    """
    _import_distributed()  # says how to install it; cloudpickle comes with it
    import cloudpickle

    for method in methods:
        try:
            cloudpickle.dumps(method)
        except Exception as err:  # whatever pickling raises, the method cannot go to a worker
            raise ClusterError(f"the method {method.name!r} cannot be sent to cluster workers "
                               f"({type(err).__name__}: {err}); restore it without a cluster", value=method.name) from None
    if read is not None:
        try:
            cloudpickle.dumps(read)
        except Exception as err:  # the reader goes with every task too
            raise ClusterError(f"the image reader cannot be sent to cluster workers ({type(err).__name__}: "
                               f"{err})") from None


def describe(spec: ClusterSpec) -> str:
    """One line saying where the tasks run (for the command's output and the report).

    Parameters
    ----------
    spec : ClusterSpec
        From :func:`parse_cluster`.

    Returns
    -------
    str
    """
    if spec.kind == "local":
        n = spec.workers or os.cpu_count() or 1
        unit = "processes" if LOCAL_PROCESSES else "threads of this process"
        return f"dask LocalCluster, {n} worker {unit}, 1 thread each"
    if spec.kind == "scheduler":
        return f"dask scheduler at {spec.address}"
    if spec.kind == "slurm":
        o = spec.slurm
        return (f"dask-jobqueue SLURMCluster from {spec.config}: {o['jobs']} job(s) of {o['cores']} cores, "
                f"{o['memory']}, {o['processes']} worker process(es) each")
    return "dask synchronous scheduler (one task at a time, in this process)"


def client_runner(client: Any) -> Callable[[list[Task]], Iterator[tuple[int, Any]]]:
    """A batch runner submitting each task to a ``distributed.Client``; results as they finish.

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster that runs the tasks.

    Returns
    -------
    callable
        ``runner(tasks)`` yielding ``(index, result)`` in the order tasks finish; a task that raised
        (or whose worker died) yields its exception. Closing the generator early cancels the tasks
        that have not finished.
    """
    from distributed import as_completed

    def run(tasks: list[Task]) -> Iterator[tuple[int, Any]]:
        futures = [client.submit(fn, *args, pure=False, **kwargs) for fn, args, kwargs in tasks]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                if future.status == "finished":
                    yield index[future.key], future.result()
                else:
                    yield index[future.key], future.exception()
        finally:
            client.cancel([f for f in futures if not f.done()])

    return run


def synchronous_runner(tasks: list[Task]) -> Iterator[tuple[int, Any]]:
    """Run each task with dask's synchronous scheduler in this process, in order (a batch runner).

    Parameters
    ----------
    tasks : list of (function, args, kwargs)
        The batch's per-file tasks.

    Yields
    ------
    (int, object)
        The task's index and its result, or the exception it raised.
    """
    import dask

    for i, (fn, args, kwargs) in enumerate(tasks):
        try:
            yield i, dask.delayed(fn, pure=False)(*args, **kwargs).compute(scheduler=SYNCHRONOUS)
        except Exception as err:  # a task's own failure; the batch records it against its file
            yield i, err


@contextmanager
def dask_runner(spec: ClusterSpec) -> Iterator[Callable[[list[Task]], Iterator[tuple[int, Any]]]]:
    """Start (or connect to) the cluster of ``spec`` and give a batch runner; close it on exit.

    Parameters
    ----------
    spec : ClusterSpec
        From :func:`parse_cluster`.

    Yields
    ------
    callable
        The runner for ``iter_batch(..., runner=...)``.

    Raises
    ------
    ClusterError
        When dask.distributed (or dask-jobqueue for SLURM) is not installed, or no scheduler answers.
    """
    if spec.kind == SYNCHRONOUS:
        _import_distributed()
        yield synchronous_runner
        return
    distributed = _import_distributed()
    cluster = None
    if spec.kind == "local":
        import logging

        cluster = distributed.LocalCluster(n_workers=spec.workers or os.cpu_count() or 1, threads_per_worker=1,
                                           processes=LOCAL_PROCESSES, dashboard_address=None,
                                           silence_logs=logging.ERROR)
    elif spec.kind == "slurm":
        cluster = start_slurm_cluster(spec.slurm, config=spec.config)
    try:
        try:
            client = distributed.Client(cluster if cluster is not None else spec.address, timeout="20s")
        except OSError as err:
            raise ClusterError(f"no dask scheduler answered at {spec.address} ({err})", value=spec.address) from None
        try:
            yield client_runner(client)
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError("a dask cluster needs dask.distributed, which is not installed "
                           "(pip install 'decongan[cluster]')") from None
    return distributed
