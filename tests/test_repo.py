"""Repo hygiene: stripped notebooks, one lock for versions, CI calls make test."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALL_NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/*.ipynb")])


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_stripped(path: Path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: a cell has saved outputs (make lint)"
            assert cell.get("execution_count") is None, f"{path.name}: execution counts saved"


def test_lock_pins_everything_exactly():
    lines = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) > 50
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.\-]+", line), line
    assert "torch==2.13.0" in lines


def test_environment_yml_and_colab_use_the_lock():
    env = (ROOT / "environment.yml").read_text()
    assert "requirements.lock" in env and "python=3.11" in env
    assert "requirements-models.txt" in env
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "requirements.lock" in readme  # the manual instructions use the lock too
    assert "kit.colab.main()" in readme  # Colab: the lock, minus what Colab is built on


def _torch_install_line(*make_args: str) -> str:
    """The pip command `make setup` would run first, as `make -n` prints it."""
    dry = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), *make_args, ".venv/.kit-installed"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    joined = dry.replace("\\\n", " ")
    return next(line for line in joined.splitlines() if "pip install" in line)


def test_torch_comes_first_and_from_torch_index_when_set():
    plain = _torch_install_line()
    assert "^torch==" in plain and "--index-url" not in plain  # a local mirror keeps working
    cpu = "https://download.pytorch.org/whl/cpu"
    chosen = _torch_install_line(f"TORCH_INDEX={cpu}")
    assert f"--index-url {cpu}" in chosen and "^torch==" in chosen
    readme = (ROOT / "README.md").read_text()
    assert f"TORCH_INDEX={cpu}" in readme  # the README says when to set it


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and line[0] != "#"]
    runs = [c for c in commands if c.startswith("make ")]
    assert runs == ["make test || status=$?"], runs  # the README's command, and only it
    assert commands[-1] == 'exit "$status"'  # its exit status is CI's
    assert "make test" in (ROOT / "README.md").read_text()
