"""The run folder's lock (one training process per folder) and the clean-up of what a killed process left."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

from decongan.engine.learn.checkpoint.layout import (
    BEST,
    CONFIG_NAME,
    DOMAIN_NAME,
    PROGRESS_NAME,
    RunError,
    _recover_dir,
    best_dir,
    checkpoint_dir,
)

#: ``RUN_DIR/.lock``: JSON ``{"pid", "hostname", "started"}`` of the process that trains in the folder.
LOCK_NAME = ".lock"
#: Everything a run writes into its folder (besides temporaries); a folder holding only these (and
#: temporaries) is a run folder that may be restarted when it has no checkpoint.
RUN_ENTRIES = frozenset({CONFIG_NAME, PROGRESS_NAME, DOMAIN_NAME, "checkpoints", BEST, "validation", LOCK_NAME})
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
    """Names of the temporaries written here and by :func:`engine.outputs.atomic_path` (``.<name>.partial-*``,
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
