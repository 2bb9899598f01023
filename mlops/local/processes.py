"""Processes of the local AWS (its server, the engines it launches, the endpoint servers): alive, and stopped.

Linux's /proc tells a zombie from a live process and lists a process's children; where there is no /proc,
`kill(pid, 0)` alone answers and a tree is its process group.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (someone else's process counts as alive; a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    if status.is_file():  # a zombie has exited even though kill(0) finds it
        try:
            state = re.search(r"^State:\s+(\w)", status.read_text(encoding="utf-8", errors="replace"), re.M)
        except OSError:  # it ended while being read
            return False
        return not (state and state.group(1) in "ZX")
    return True


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc; none where there is no /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def terminate_tree(pid: int) -> None:
    """SIGTERM to `pid`, its process group and every process below it (a child may run in a session of its own)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children(current))
    for member in tree:
        for kill in (os.killpg, os.kill):
            try:
                kill(member, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
