"""kit.colab: the Colab install plan keeps Colab's runtime, installs the rest of the lock."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kit import colab

ROOT = Path(__file__).resolve().parent.parent
PINS = colab.read_pins((ROOT / "requirements.lock").read_text())


def test_read_pins_reads_the_lock_and_refuses_a_loose_line():
    assert PINS["torch"] and PINS["haystack-ai"] and PINS["scikit-learn"]
    assert colab.read_pins("# c\n\nFoo_Bar.baz==1.0  # why\n") == {"foo-bar-baz": "1.0"}
    with pytest.raises(ValueError, match="line 2 .*not a 'name==version' pin"):
        colab.read_pins("a==1\nb>=2\n")


def test_every_package_the_kit_imports_is_installed_on_colab_except_torch_and_widgets():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {colab.normalise(re.split(r"[<>=!~\[ ]", d)[0]) for d in deps}
    kept = {n for n in names if colab.kept(n)}
    # Colab's CUDA torch and the widgets its front end renders stay; the rest comes from the lock
    assert kept == {"torch", "ipywidgets"}
    assert names <= set(PINS)


def test_install_plan_keeps_colabs_runtime_and_installs_what_differs():
    colab_has = {
        "torch": "2.9.0+cu126",  # kept, whatever its version
        "ipykernel": "6.17.1",  # the kernel Colab talks to: kept
        "nvidia_cublas_cu12": "12.6.4.1",
        "numpy": PINS["numpy"],  # already right
        "pandas": "0.0.1",  # another version: installed at the pin
    }
    plan = colab.install_plan(PINS, colab_has)
    assert {"torch", "ipykernel", "jupyterlab", "playwright"} <= set(plan["kept"])
    assert "numpy" in plan["already"]
    assert f"pandas=={PINS['pandas']}" in plan["install"]
    assert f"peft=={PINS['peft']}" in plan["install"]  # missing: installed
    assert not any(p.startswith(("torch==", "ipykernel==")) for p in plan["install"])
    assert len(plan["install"]) + len(plan["already"]) + len(plan["kept"]) == len(PINS)


def test_a_restart_is_asked_only_for_changed_packages_already_imported():
    before = {"numpy": "1.0", "pandas": "1.0", "scikit-learn": "1.0"}
    to_install = ["numpy==2.0", "pandas==2.0", "peft==0.1", "scikit-learn==2.0"]
    owners = {"numpy": ["numpy"], "pandas": ["pandas"], "sklearn": ["scikit-learn"]}
    imported = {"numpy", "numpy.linalg", "sklearn.base", "os"}
    # peft was not installed before; pandas was, but is not imported yet
    assert colab.restart_needed(to_install, before, imported, owners) == ["numpy", "scikit-learn"]
    assert colab.restart_needed([], before, imported, owners) == []
    # run in a separate process it cannot see the kernel's modules: every change counts
    assert colab.restart_needed(to_install, before, None) == ["numpy", "pandas", "scikit-learn"]
    # the real module -> package table of this environment knows sklearn is scikit-learn
    assert colab.restart_needed(["scikit-learn==0.1"], before, {"sklearn"}) == ["scikit-learn"]


def test_colab_is_recognised_in_the_kernel_and_in_a_shell_command(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert not colab.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101-060000_RC00")
    assert colab.in_colab()  # `!python -m kit.colab` runs outside the kernel: the variable says
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    assert colab.in_colab()


def test_installed_versions_are_the_ones_python_imports():
    from importlib import metadata

    versions = colab.installed_versions()
    assert versions["numpy"] == metadata.version("numpy")
    assert versions["scikit-learn"] == metadata.version("scikit-learn")


def test_outside_colab_it_does_nothing_and_the_dry_run_matches_this_environment(capsys):
    assert colab.main([]) == 0
    assert "Not in Colab" in capsys.readouterr().out
    assert colab.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    # `make setup` installed exactly the lock here, so a Colab-style plan has nothing to add
    assert out.startswith("0 package(s) to install"), out


def _runtime(monkeypatch, **versions: str) -> dict[str, str]:
    """This environment's packages with ``versions`` changed, as ``installed_versions`` sees
    them from now on; change the returned dict to "install" something."""
    runtime = colab.installed_versions() | versions
    monkeypatch.setattr(colab, "installed_versions", lambda: dict(runtime))
    return runtime


def test_a_restart_once_asked_is_asked_again_until_the_kernel_restarts(monkeypatch):
    # Colab's runtime has an old numpy, already imported; pip "installs" the pinned one.
    import numpy  # noqa: F401  (the kernel has imported it)

    runtime = _runtime(monkeypatch, numpy="1.0")
    monkeypatch.setattr(colab, "STARTED_WITH", dict(runtime))  # what the kernel started with
    calls = []

    def pip(command, **kwargs):
        calls.append(command[command.index("--no-deps") + 1 :])
        runtime["numpy"] = PINS["numpy"]
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(colab.subprocess, "run", pip)
    assert colab.main(["--force"]) == colab.RESTART
    assert calls == [[f"numpy=={PINS['numpy']}"]]
    # run again without a restart: the new numpy is installed, but this kernel holds the old one
    assert colab.main(["--force"]) == colab.RESTART
    assert len(calls) == 1
    # after the restart, a new process starts with the new numpy: ready, nothing installed
    monkeypatch.setattr(colab, "STARTED_WITH", dict(runtime))
    assert colab.main(["--force"]) == 0
    assert len(calls) == 1


def test_a_failed_install_shows_pips_message(monkeypatch, capsys):
    _runtime(monkeypatch, pandas="0.0.1")
    monkeypatch.setattr(
        colab.subprocess,
        "run",
        lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "No matching dist"),
    )
    assert colab.main(["--force"]) == 1
    out = capsys.readouterr().out
    assert f"pip could not install pandas=={PINS['pandas']}" in out and "No matching dist" in out


def test_an_install_that_python_does_not_see_is_an_error_not_a_restart_loop(monkeypatch, capsys):
    _runtime(monkeypatch, pandas="0.0.1")
    monkeypatch.setattr(  # pip succeeds, but another pandas stays first on sys.path
        colab.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 0)
    )
    assert colab.main(["--force"]) == 1
    assert f"other versions of pandas=={PINS['pandas']}" in capsys.readouterr().out


def test_in_a_kernel_its_command_line_is_not_read_as_options(monkeypatch, capsys):
    launcher = ["colab_kernel_launcher.py", "-f", "/root/.local/share/jupyter/runtime/k.json"]
    monkeypatch.setattr(sys, "argv", launcher)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert colab.main() == 0
    assert "Not in Colab" in capsys.readouterr().out
