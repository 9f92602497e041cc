"""The Colab badge and set-up cell at the top of every notebook.

Colab opens a notebook straight from the repository on GitHub. So each notebook starts with

1. a markdown cell with the "Open in Colab" badge, linking to that notebook on GitHub;
2. a code cell that, in Colab only, clones the kit and runs :func:`kit.colab.main` (which
   installs the pinned set without breaking Colab's own packages); anywhere else it does nothing,
   so the notebook runs the same locally and in the tests.

Both need the repository's public address, kept in one place: ``Repository`` under
``[project.urls]`` in ``pyproject.toml``. After setting or changing it, run
``python -m kit.colab_cells`` (``make colab-cells``) to write the two cells into every notebook;
``python -m kit.colab_cells --check`` (and the tests) fail when a notebook's cells are missing or
point elsewhere. Without an address there is nothing to link to, and no notebook may carry a
half-made badge.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("notebooks", "exercises")
TAG = "kit-colab-cells"  # the metadata tag that marks the two cells this module writes
BRANCH = "main"
CLONE_DIR = "/content/rag-ft-kit"  # Colab's working folder, shown in its file browser
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"

SETUP_SOURCE = """\
# Colab only: fetch the kit and install its pinned set. Anywhere else this cell does nothing.
import os
import sys

if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
    import subprocess

    REPOSITORY = {url}
    KIT_DIR = {home}
    if not os.path.isdir(KIT_DIR):
        clone = ["git", "clone", "-q", "--depth", "1", "--branch", {branch}, REPOSITORY, KIT_DIR]
        done = subprocess.run(clone, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"Could not fetch the kit from {{REPOSITORY}}: {{done.stderr}}")
    os.chdir(os.path.join(KIT_DIR, {folder}))
    if KIT_DIR not in sys.path:
        sys.path.insert(0, KIT_DIR)
    import kit.colab

    if kit.colab.main():
        raise SystemExit("Not ready yet: do what the message above says, then run this again.")
"""


class ColabCellsError(ValueError):
    """The repository address is missing or is not one Colab can open notebooks from."""


def repository_url(root: Path = ROOT) -> str | None:
    """The ``Repository`` address under ``[project.urls]`` in ``pyproject.toml``, or None."""
    project = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    url = project.get("urls", {}).get("Repository")
    return url.strip() if isinstance(url, str) and url.strip() else None


def colab_link(url: str, notebook: str) -> str:
    """The Colab address that opens ``notebook`` (a path inside the repository) from ``url``.

    ``url`` must be a GitHub repository (``https://github.com/<owner>/<name>``): Colab opens
    notebooks from GitHub, not from other hosts.
    """
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", url)
    if not match:
        raise ColabCellsError(
            f"{url!r} is not a GitHub repository address (https://github.com/<owner>/<name>); "
            "Colab opens notebooks from GitHub only. Fix [project.urls] Repository in "
            "pyproject.toml."
        )
    owner, name = match.groups()
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{BRANCH}/{notebook}"


def badge_cell(url: str, notebook: str) -> nbformat.NotebookNode:
    """The markdown cell with the "Open in Colab" badge for ``notebook``."""
    cell = nbformat.v4.new_markdown_cell(
        f"[![Open In Colab]({BADGE})]({colab_link(url, notebook)})\n\n"
        "In Colab, pick a GPU runtime first if you can (Runtime > Change runtime type), then run "
        "the next cell. On your own machine it does nothing."
    )
    cell.metadata["tags"] = [TAG]
    return cell


def setup_cell(
    url: str, notebook: str, home: str = CLONE_DIR, branch: str = BRANCH
) -> nbformat.NotebookNode:
    """The code cell that, in Colab only, clones ``branch`` of ``url`` into ``home``, moves to
    ``notebook``'s folder there and runs the installer; it stops "Run all" until the kit is ready.
    """
    values = {
        "url": url,
        "home": home,
        "folder": Path(notebook).parent.as_posix(),
        "branch": branch,
    }
    # json.dumps writes each value as a double-quoted Python string literal, escapes included
    source = SETUP_SOURCE.format(**{k: json.dumps(v) for k, v in values.items()})
    cell = nbformat.v4.new_code_cell(source.rstrip("\n"))
    cell.metadata["tags"] = [TAG]
    return cell


def notebooks(root: Path = ROOT) -> list[Path]:
    """Every notebook of ``notebooks/`` and ``exercises/``, sorted."""
    return sorted(p for d in NOTEBOOK_DIRS for p in (root / d).glob("*.ipynb"))


def _tagged(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if TAG in c.get("metadata", {}).get("tags", [])]


def expected_cells(url: str, notebook: str) -> list[nbformat.NotebookNode]:
    """The two cells ``notebook`` should start with for the repository ``url``."""
    return [badge_cell(url, notebook), setup_cell(url, notebook)]


def _in_place(nb: nbformat.NotebookNode, wanted: list[nbformat.NotebookNode]) -> bool:
    """True if ``nb`` starts with the ``wanted`` cells and has no other tagged cell."""
    tagged = _tagged(nb)
    have = [(nb.cells[i].cell_type, nb.cells[i].source) for i in tagged]
    return tagged == [0, 1] and have == [(c.cell_type, c.source) for c in wanted]


def stamp(path: Path, url: str, root: Path = ROOT) -> bool:
    """Put the badge and set-up cells at the top of the notebook ``path``; True if it changed.

    Cells this module wrote before are replaced, so running it again after the address changed
    updates every notebook; the other cells and the notebook's metadata are kept as they are.
    Cell ids are renumbered 0, 1, ... as ``nbstripout`` (``make lint``) numbers them.
    """
    nb = nbformat.read(path, as_version=4)
    wanted = expected_cells(url, path.relative_to(root).as_posix())
    if _in_place(nb, wanted):
        return False
    tagged = _tagged(nb)
    nb.cells = wanted + [c for i, c in enumerate(nb.cells) if i not in tagged]
    for i, cell in enumerate(nb.cells):
        cell.id = str(i)
    nbformat.write(nb, path)
    return True


def problems(root: Path = ROOT, url: str | None = None) -> list[str]:
    """What is wrong with the Colab cells of every notebook (empty when all is right).

    With a repository address (``url``, or pyproject's when None) every notebook must start with
    exactly the cells :func:`stamp` writes; without one, no notebook may carry such cells.
    """
    url = url or repository_url(root)
    found = []
    for path in notebooks(root):
        name = path.relative_to(root).as_posix()
        nb = nbformat.read(path, as_version=4)
        if url is None:
            if _tagged(nb):
                found.append(f"{name}: has Colab cells but pyproject.toml names no repository")
        elif not _in_place(nb, expected_cells(url, name)):
            found.append(f"{name}: Colab cells missing or out of date (run make colab-cells)")
    return found


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, check) the Colab cells of every notebook; 0 when all is well."""
    parser = argparse.ArgumentParser(prog="python -m kit.colab_cells", description=__doc__)
    parser.add_argument("--check", action="store_true", help="check only, change nothing")
    args = parser.parse_args(argv)
    url = repository_url()
    try:
        if args.check:
            found = problems(url=url)
            print("\n".join(found) or "Colab cells: every notebook is in order.")
            return 1 if found else 0
        if url is None:
            print(
                "pyproject.toml names no repository: add `Repository = "
                '"https://github.com/<owner>/<name>"` under [project.urls], then run again.',
                file=sys.stderr,
            )
            return 2
        changed = [p.relative_to(ROOT).as_posix() for p in notebooks() if stamp(p, url)]
    except ColabCellsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Colab cells written into {len(changed)} notebook(s)" + (":" if changed else "."))
    for name in changed:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
