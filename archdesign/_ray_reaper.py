"""The reaper of a local Ray instance: ends its processes when the driver dies.

Ray's own fate sharing (PR_SET_PDEATHSIG on the processes the driver starts) takes the
raylet and GCS down with a driver killed by SIGKILL, but not their children: the
dashboard and runtime-env agents, orphaned while they start, wait on the dead GCS for a
minute or more. So the driver starts this process in a session of its own, before Ray,
with a pipe on its stdin. Every process Ray starts carries an environment mark it
inherits, seen in /proc/PID/environ until the process retitles itself (setproctitle
reuses that memory); so while the pipe is open the reaper also keeps the list of the
driver's descendants that are marked or descend from one that was (by pid and start
time, so a reused pid is never taken for one). The driver's other children are never
touched.
When the pipe closes (the driver shut Ray down, or died), the reaper kills everything
listed or marked until none is left, and removes Ray's temporary directory.

    python -m archdesign._ray_reaper TEMP_DIR    # the mark's value is the directory
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import time

# The environment variable that marks the processes of one local Ray instance.
MARK = "ARCHDESIGN_RAY_SESSION"
# How often the driver's descendants are listed while it lives.
WATCH_S = 0.3
# Sweeps after the pipe closes: every SWEEP_S seconds, until two find nothing or
# SWEEP_LIMIT_S have passed.
SWEEP_S = 0.2
SWEEP_LIMIT_S = 10.0


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process but this one."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        out[int(entry)] = (int(fields[1]), fields[19])
    return out


def _is_marked(pid: int, value: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return f"{MARK}={value}".encode() in fh.read().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False


def ray_descendants(root: int, value: str, procs: dict[int, tuple[int, str]],
                    listed: dict[int, str]) -> dict[int, str]:
    """The descendants of ``root`` that are marked, already listed, or below one that
    is."""
    found: dict[int, str] = {}
    frontier = {(root, False)}
    while frontier:
        parents = dict(frontier)
        frontier = set()
        for pid, (ppid, start) in procs.items():
            if ppid in parents:
                ours = parents[ppid] or listed.get(pid) == start or _is_marked(pid, value)
                frontier.add((pid, ours))
                if ours:
                    found[pid] = start
    return found


def marked(value: str) -> list[int]:
    """The processes whose environment still shows ``MARK=value``."""
    return [pid for pid in _processes() if _is_marked(pid, value)]


def sweep(value: str, listed: dict[int, str]) -> None:
    end = time.monotonic() + SWEEP_LIMIT_S
    empty = 0
    while empty < 2 and time.monotonic() < end:
        procs = _processes()
        pids = {pid for pid, start in listed.items()
                if pid in procs and procs[pid][1] == start}
        pids.update(marked(value))
        empty = 0 if pids else empty + 1
        for pid in pids:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, signal.SIGKILL)
        time.sleep(SWEEP_S)


def main(argv: list[str]) -> None:
    (temp_dir,) = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver's Ctrl-C is not for us
    driver = os.getppid()
    listed: dict[int, str] = {}
    watch = os.path.isdir("/proc")
    while True:  # until the driver closes the pipe or dies
        readable, _, _ = select.select([sys.stdin], [], [], WATCH_S)
        if readable and not os.read(sys.stdin.fileno(), 4096):
            break
        if watch:
            listed.update(ray_descendants(driver, temp_dir, _processes(), listed))
    if watch:
        sweep(temp_dir, listed)
    shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
