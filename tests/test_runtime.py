"""kit.runtime: notebook detection, peak memory and timing, one helper each."""

from __future__ import annotations

import types

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


def test_peak_memory_grows_with_what_the_process_holds():
    before = runtime.peak_memory_mb()
    block = bytearray(64 * 2**20)  # 64 MB, touched so it is resident
    block[::4096] = b"x" * len(block[::4096])
    after = runtime.peak_memory_mb()
    assert before > 10 and after >= before + 50, (before, after)


def test_timed_returns_the_result_and_the_seconds():
    out, seconds = runtime.timed(lambda: sum(range(1000)))
    assert out == 499500 and 0 <= seconds < 1
