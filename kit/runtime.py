"""Runtime: where the kit is running and what a step costs, one helper each.

- :func:`in_notebook`: a Jupyter / Colab kernel (rich output, live plots) or a plain terminal;
- :func:`peak_memory_mb`: this process's peak resident memory (right on Linux and macOS);
- :func:`timed`: a call's result and its wall time;
- :func:`pid_alive`, :func:`leftovers_of`: what processes that were killed left behind;
- :func:`lock_file`: an exclusive lock on an open file, held until it is closed.

Standard library only, so every layer of the kit may import it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

NOTEBOOK_SHELLS = ("ZMQInteractiveShell", "Shell")
"""IPython shells that render rich output: Jupyter's kernel, and Colab's (``google.colab``)."""


def in_notebook() -> bool:
    """True inside a Jupyter or Colab kernel; False in a terminal, IPython's console or a script."""
    try:
        from IPython import get_ipython  # optional: a plain Python run has no IPython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    return type(shell).__name__ in NOTEBOOK_SHELLS or "google.colab" in type(shell).__module__


def peak_memory_mb(device: str = "cpu") -> float:
    """The peak memory so far, in MB: this process's resident memory (``ru_maxrss``: bytes on
    macOS, KB elsewhere), or for ``device="cuda"`` the GPU memory torch allocated. 0.0 where it
    cannot be read (Windows)."""
    if device == "cuda":
        import torch  # heavy: only when a GPU is asked about

        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource  # POSIX only
    except ImportError:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn()``; return its result and the seconds of wall time it took."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs now (this one included). On Windows, where
    ``os.kill(pid, 0)`` would end the process, every id counts as running (nothing is cleared)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def leftovers_of(target: Path, kinds: tuple[str, ...] = ("tmp",)) -> Iterator[tuple[str, Path]]:
    """(kind, folder) for each ``.<target name>.<kind>-<pid>`` folder beside ``target`` whose
    process is gone: what a save or conversion killed part-way left. Exact names only."""
    shape = re.compile(rf"\.{re.escape(target.name)}\.({'|'.join(kinds)})-(\d+)")
    for left in sorted(target.parent.iterdir()) if target.parent.is_dir() else []:
        match = shape.fullmatch(left.name)
        if match and left.is_dir() and not pid_alive(int(match[2])):
            yield match[1], left


def lock_file(f: IO[Any], wait: bool = True) -> bool:
    """Take an exclusive lock on the open file ``f``, held until it is closed (the operating
    system also drops it when the process dies). ``wait=False``: return False at once when
    another holds it. Where the OS has no ``fcntl`` (Windows) nothing is locked: True."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True
