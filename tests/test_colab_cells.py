"""kit.colab_cells: the Colab badge and set-up cell at the top of every notebook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kit import colab, colab_cells
from tests.test_catalog import title

ROOT = Path(__file__).resolve().parent.parent
URL = "https://github.com/example-org/rag-ft-kit"


def test_every_notebook_has_the_colab_cells_of_the_repository_named_in_pyproject():
    # With [project.urls] Repository set, every notebook must carry its badge and set-up cell;
    # without it, none may carry a half-made one.
    assert colab_cells.problems() == []
    assert colab_cells.main(["--check"]) == 0


def test_the_badge_opens_the_notebook_from_github_and_other_hosts_are_refused():
    link = colab_cells.colab_link(URL + ".git", "exercises/01_rag.ipynb")
    assert link == (
        "https://colab.research.google.com/github/example-org/rag-ft-kit/blob/main/"
        "exercises/01_rag.ipynb"
    )
    with pytest.raises(colab_cells.ColabCellsError, match="GitHub only"):
        colab_cells.colab_link("https://gitlab.com/example-org/rag-ft-kit", "x.ipynb")


@pytest.fixture
def project(tmp_path):
    """A copy of the repository's notebooks and pyproject.toml, with no repository address."""
    for folder in colab_cells.NOTEBOOK_DIRS:
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_stamping_puts_two_cells_on_top_once_and_updates_them_when_the_address_changes(project):
    paths = colab_cells.notebooks(project)
    assert len(paths) >= 10
    before = {p: nbformat.read(p, as_version=4) for p in paths}
    assert all(colab_cells.stamp(p, URL, project) for p in paths)
    assert not any(colab_cells.stamp(p, URL, project) for p in paths)  # already in place
    assert colab_cells.problems(project, URL) == []
    assert colab_cells.problems(project, URL + "-fork")  # another address: out of date
    # pyproject names no repository, so cells that point somewhere are a problem
    assert len(colab_cells.problems(project)) == len(paths)

    other = "https://github.com/another/kit"
    assert all(colab_cells.stamp(p, other, project) for p in paths)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        name = path.relative_to(project).as_posix()
        assert nb.cells[0].source.startswith(f"[![Open In Colab]({colab_cells.BADGE})]")
        assert colab_cells.colab_link(other, name) in nb.cells[0].source
        assert other in nb.cells[1].source and URL not in nb.cells[1].source
        # the notebook's own cells (tags, metadata, sources) and its metadata are kept, in order
        assert [_without_id(c) for c in nb.cells[2:]] == [
            _without_id(c) for c in before[path].cells
        ]
        assert nb.metadata == before[path].metadata
        assert [c.id for c in nb.cells] == [str(i) for i in range(len(nb.cells))]
        assert title(path) == title(ROOT / name)  # the catalog still finds the title
        nbformat.validate(nb)
    # the written cells pass the project's own lint and format checks
    ruff = Path(sys.executable).parent / "ruff"
    config = ["--config", str(ROOT / "pyproject.toml")]
    first_party = ["--config", "lint.isort.known-first-party=['kit']"]
    for args in (["check", *config, *first_party], ["format", "--check", *config]):
        done = subprocess.run([ruff, *args, "."], cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace("[build-system]", f'[project.urls]\nRepository = "{other}"\n\n[build-system]')
    )
    assert colab_cells.repository_url(project) == other
    assert colab_cells.problems(project) == []


def _without_id(cell: nbformat.NotebookNode) -> dict:
    return {k: v for k, v in cell.items() if k != "id"}


def _run_cell(
    source: str, cwd: Path, fake_colab: Path | None = None
) -> subprocess.CompletedProcess:
    """Run a cell's ``source`` in a fresh Python, as a kernel (in Colab if ``fake_colab``)."""
    env = {k: v for k, v in os.environ.items() if k != "COLAB_RELEASE_TAG"}
    env |= {"PIP_NO_INDEX": "1", "PIP_DRY_RUN": "1"}  # should pip run at all, it changes nothing
    if fake_colab is not None:
        env["PYTHONPATH"] = str(fake_colab)
    # a kernel's command line, as Colab starts it: the cell must not read it as options
    code = "import sys\nsys.argv = ['colab_kernel_launcher.py', '-f', 'kernel.json']\n"
    code += source + "\nimport os, sys\nprint('cwd', os.getcwd())\n"
    code += "print('kit', sys.modules['kit'].__file__ if 'kit' in sys.modules else None)\n"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def _output(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _fake_colab(tmp_path: Path) -> Path:
    """A folder for PYTHONPATH that makes Python start as in Colab: ``google.colab`` imported."""
    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "sitecustomize.py").write_text("import google.colab\n")
    return fake


def test_outside_colab_the_setup_cell_does_nothing(tmp_path):
    cell = colab_cells.setup_cell(URL, "notebooks/01_rag.ipynb", home=str(tmp_path / "kit"))
    out = _output(_run_cell(cell.source, tmp_path))
    assert out == f"cwd {tmp_path}\nkit None\n"
    assert list(tmp_path.iterdir()) == []  # nothing cloned


def test_in_colab_the_setup_cell_clones_the_kit_and_runs_its_installer(tmp_path):
    # This environment holds exactly the lock, the bundled models and the kit, so the installer
    # finds nothing to install and the cell runs for real here: clone (the committed HEAD of
    # this checkout), change folder, import the clone's kit, check every package.
    pins = colab.read_pins((ROOT / "requirements.lock").read_text())
    installed = colab.installed_versions()
    assert colab.install_plan(pins, installed)["install"] == []
    models = colab.read_pins((ROOT / "requirements-models.txt").read_text())
    assert all(installed.get(name) == version for name, version in models.items())
    assert "rag-ft-kit" in installed
    # a repository with this checkout's HEAD on `main` (the branch the badge opens)
    origin = tmp_path / "origin.git"
    for git in (["init", "-q", "--bare", str(origin)], ["push", "-q", str(origin), "HEAD:main"]):
        subprocess.run(["git", "-C", str(ROOT), *git], capture_output=True, check=True)
    fake = _fake_colab(tmp_path)
    home = tmp_path / "content" / "rag-ft-kit"
    cell = colab_cells.setup_cell(f"file://{origin}", "exercises/01_rag.ipynb", home=str(home))
    first = _output(_run_cell(cell.source, tmp_path, fake))
    assert (home / "kit" / "colab.py").is_file() and (home / ".git").is_dir()
    assert f"cwd {home / 'exercises'}\n" in first
    assert f"kit {home / 'kit' / '__init__.py'}\n" in first
    assert "0 package(s) to install" in first and "Ready: no restart needed" in first
    # Run again (after a restart, say): the clone is reused (a second `git clone` into the
    # folder would fail, and the cell with it).
    second = _output(_run_cell(cell.source, home / "exercises", fake))
    assert "Ready: no restart needed" in second


def test_in_colab_a_failed_clone_stops_the_notebook_with_gits_message(tmp_path):
    fake = _fake_colab(tmp_path)
    cell = colab_cells.setup_cell(
        f"file://{tmp_path}/no-such-repository", "notebooks/01_rag.ipynb", home=str(tmp_path / "k")
    )
    done = _run_cell(cell.source, tmp_path, fake)
    assert done.returncode == 1
    assert "Could not fetch the kit from file://" in done.stderr
    assert "no-such-repository" in done.stderr and "fatal" in done.stderr
