"""kit.runtime: notebook detection, peak memory and timing, one helper each."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from kit import runtime


@pytest.mark.parametrize(
    ("name", "module", "expected"),
    [
        ("ZMQInteractiveShell", "ipykernel.zmqshell", True),  # Jupyter, nbclient
        ("Shell", "google.colab._shell", True),  # Colab
        ("TerminalInteractiveShell", "IPython.terminal.interactiveshell", False),
    ],
)
def test_in_notebook_knows_jupyter_colab_and_a_terminal(monkeypatch, name, module, expected):
    import IPython

    shell_class = types.new_class(name)
    shell_class.__module__ = module
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell_class())
    assert runtime.in_notebook() is expected


def test_in_notebook_is_false_in_a_script(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert runtime.in_notebook() is False


def test_peak_memory_is_in_megabytes_and_at_least_what_is_held_now():
    pages = int(Path("/proc/self/statm").read_text().split()[1])  # resident pages now (Linux)
    now_mb = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    peak = runtime.peak_memory_mb()
    assert now_mb * 0.95 <= peak < now_mb * 100, (now_mb, peak)  # KB read as bytes: x1024 off
    block = bytearray(int(peak - now_mb + 100) * 2**20)  # 100 MB beyond the peak so far
    block[::4096] = b"x" * len(block[::4096])
    assert runtime.peak_memory_mb() >= peak + 90


def test_timed_returns_the_result_and_the_seconds():
    out, seconds = runtime.timed(lambda: sum(range(1000)))
    assert out == 499500 and 0 <= seconds < 1
