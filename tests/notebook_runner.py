"""Execute a notebook top to bottom in a fresh kernel, offline and guarded, like a learner would.

Used by tests/test_notebooks.py. The notebook on disk is never changed: cells are added in
memory only (a first cell that switches the network guard on, a last one that asserts
nothing tried to go online, and, for exercises, each solution and its check after the shipped
answer's check).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

GUARD_ON = "from kit import netguard as _ng\n_ng.install()"
GUARD_CHECK = "assert not _ng.attempts, f'tried to go online: {_ng.attempts}'"
ANSWER_TAG = "answer:"  # a cell tagged "answer:q1" holds the learner's answer to q1
STRICT_ON = "import os as _os\n_os.environ['KIT_CHECKS_STRICT'] = '1'"
STRICT_OFF = "del _os.environ['KIT_CHECKS_STRICT']"


def load(path: Path) -> nbformat.NotebookNode:
    """Read a notebook file."""
    return nbformat.read(path, as_version=4)


def answer_cells(nb: nbformat.NotebookNode) -> dict[str, int]:
    """Map question name -> index of the cell tagged ``answer:<name>``."""
    found = {}
    for i, cell in enumerate(nb.cells):
        for tag in cell.get("metadata", {}).get("tags", []):
            if tag.startswith(ANSWER_TAG):
                found[tag[len(ANSWER_TAG) :]] = i
    return found


def interleave_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Each task twice in one run: as shipped (its check must say "not done"), then solved.

    After the first ``<q>.check()`` cell that follows the cell tagged ``answer:<q>``, two cells
    are inserted: the question's solution code, and the same check again in strict mode (a
    failed check raises). Original check cells are tagged ``check:shipped``, the inserted ones
    ``check:solved``. The cells after a task then run on its solution, as a learner's would.
    """
    module_name = nb.metadata.get("kit", {}).get("exercise_module")
    if not module_name:
        raise ValueError("exercise notebook has no metadata.kit.exercise_module")
    module = importlib.import_module(module_name)
    cells = list(nb.cells)
    for name, index in sorted(answer_cells(nb).items(), key=lambda kv: -kv[1]):
        check_at = next(
            (i for i in range(index + 1, len(cells)) if f"{name}.check(" in cells[i].source), None
        )
        if check_at is None:
            raise ValueError(f"the cell tagged answer:{name} has no {name}.check() cell after it")
        cells[check_at].metadata.setdefault("tags", []).append("check:shipped")
        solved = nbformat.v4.new_code_cell(getattr(module, name).solution_code)
        recheck = nbformat.v4.new_code_cell(
            f"{STRICT_ON}\n{cells[check_at].source}\n{STRICT_OFF}",
            metadata={"tags": ["check:solved"]},
        )
        cells[check_at + 1 : check_at + 1] = [solved, recheck]
    nb.cells = cells
    return nb


def tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    """The cells of ``nb`` that carry ``tag``."""
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def execute(
    nb: nbformat.NotebookNode, cwd: Path, env: dict[str, str] | None = None, timeout: int = 1200
) -> nbformat.NotebookNode:
    """Run every cell in a fresh python3 kernel started in ``cwd``; raise on the first error."""
    nb.cells.insert(0, nbformat.v4.new_code_cell(GUARD_ON))
    nb.cells.append(nbformat.v4.new_code_cell(GUARD_CHECK))
    kernel_env = {**os.environ, **(env or {})}
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env=kernel_env, cwd=str(cwd))
    return nb


def text_outputs(cell: nbformat.NotebookNode) -> str:
    """All text a cell printed or displayed (stream, plain text, html)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts.append(str(data.get("text/plain", "")))
        parts.append(str(data.get("text/markdown", "")))
        parts.append(str(data.get("text/html", "")))
        if out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "\n".join(parts)
