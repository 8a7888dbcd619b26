"""``decongan batch --cluster dask[=ADDRESS] [--workers N]``: the options, their checks, the runner they give.

The work itself is the engine's (``engine.evaluate.cluster``): one task per input file, restored on
a worker by the same function the serial batch runs, the manifest written by this process alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from decongan.app.commands import CommandError

CLUSTER_HELP = ("run the restorations on a dask cluster, one task per image: 'dask' starts a local cluster "
                "(--workers processes, 1 thread each), dask=tcp://HOST:PORT uses a running scheduler, "
                "dask=slurm.toml starts SLURM jobs with dask-jobqueue (the hpc extra), dask=synchronous runs "
                "the tasks one by one in this process (debugging)")


def add_cluster_arguments(group: Any) -> None:
    """Add ``--cluster`` and ``--workers`` to the batch parser's cluster group.

    Parameters
    ----------
    group : argparse argument group
        The "clusters" group of ``decongan batch``.
    """
    group.add_argument("--cluster", metavar="dask[=ADDRESS]", help=CLUSTER_HELP)
    group.add_argument("--workers", type=int, metavar="N",
                       help="worker processes of --cluster dask's local cluster (default: one per core)")


def cluster_from_args(args: argparse.Namespace) -> Any:
    """The ``engine.evaluate.cluster.ClusterSpec`` of ``--cluster`` (None without it), refusing what cannot work.

    Refused before anything runs: ``--workers`` without ``--cluster dask``, ``--cluster`` with
    ``--report-only`` or ``--emit-slurm`` (they restore nothing) or with ``--decon fiji`` (the
    Fiji bridge is one local JVM, not a worker's; use --shard jobs for Fiji), a bad value, an
    unreadable SLURM configuration file.
    """
    from decongan.engine.evaluate.cluster import ClusterError, parse_cluster

    if args.cluster is None:
        if args.workers is not None:
            raise CommandError("--workers sizes the local cluster of --cluster dask; add --cluster dask")
        return None
    for flag, on in (("--report-only", args.report_only), ("--emit-slurm", args.emit_slurm is not None)):
        if on:
            raise CommandError(f"--cluster restores images; {flag} restores none: leave one out")
    if args.decon == "fiji":
        raise CommandError("--cluster cannot run --decon fiji: the Fiji bridge is one JVM on this machine, not a "
                           "dask worker's; use --decon engine, or --shard K/N jobs (--emit-slurm) for Fiji")
    try:
        return parse_cluster(args.cluster, workers=args.workers)
    except ClusterError as err:
        raise CommandError(f"--cluster: {err}") from err


@contextmanager
def cluster_runner(spec: Any, methods: list[Any], read: Any = None) -> Iterator[Any]:
    """The batch runner of ``spec`` while the cluster is up (None without a cluster: the batch runs here).

    The methods (and the reader) are checked first: one that cannot be sent to a worker is refused
    before the cluster starts (``engine.evaluate.cluster.check_portable``).

    Parameters
    ----------
    spec : engine.evaluate.cluster.ClusterSpec or None
        From :func:`cluster_from_args`.
    methods : list of MethodSpec
        The batch's methods.
    read : callable, optional
        The batch's image reader.

    Yields
    ------
    callable or None
    """
    if spec is None:
        yield None
        return
    from decongan.engine.evaluate.cluster import (
        SYNCHRONOUS,
        ClusterError,
        check_portable,
        dask_runner,
        describe,
    )

    try:
        if spec.kind != SYNCHRONOUS:  # the synchronous scheduler runs the tasks here, unpickled
            check_portable(methods, read)
    except ClusterError as err:
        raise CommandError(f"--cluster: {err}") from err
    print(f"batch: restoring on a {describe(spec)}")
    try:
        with dask_runner(spec) as runner:
            yield runner
    except ClusterError as err:  # the cluster could not start or be reached
        raise CommandError(f"--cluster: {err}") from err
