"""Run ``decongan train`` recording every write this process makes under one folder (for the DDP tests).

    python tests/ddp_train_audit.py LOG_DIR WATCHED_DIR train ...

Each process (``RANK`` from torchrun) appends one line per write event under ``WATCHED_DIR`` -- a file
opened for writing, a rename or replace, a removal, a new folder -- to ``LOG_DIR/writes-rank<RANK>.txt``,
using Python's audit hooks (``sys.addaudithook``), writes its pid to ``LOG_DIR/pid-rank<RANK>``, then runs the
command line with the remaining arguments.
"""

from __future__ import annotations

import os
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def main() -> int:
    log_dir, watched = sys.argv[1], os.path.abspath(sys.argv[2])
    rank = os.environ.get("RANK", "0")
    log = open(os.path.join(log_dir, f"writes-rank{rank}.txt"), "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    with open(os.path.join(log_dir, f"pid-rank{rank}"), "w", encoding="utf-8") as handle:  # for signals to one rank
        handle.write(str(os.getpid()))

    def inside(path: object) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(watched)

    def hook(event: str, args: tuple) -> None:
        if event == "open" and inside(args[0]):
            mode, flags = args[1], args[2]
            if (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & WRITE_FLAGS):
                log.write(f"open {args[0]}\n")
        elif event == "os.rename" and (inside(args[0]) or inside(args[1])):
            log.write(f"{event} {args[0]} -> {args[1]}\n")
        elif event in ("os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree", "os.truncate") and inside(args[0]):
            log.write(f"{event} {args[0]}\n")

    sys.addaudithook(hook)
    from decongan.app.cli import main as cli

    return cli(sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
