"""Every notebook in notebooks/ and exercises/ runs top to bottom on the real bundled models.

Exercise notebooks run once, each task twice in the same kernel: as shipped (its check must say
the task is not done yet), then with the solution (its check must pass: strict mode turns a failed
check into an error).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import notebook_runner as runner

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
SMOKE = {"KIT_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


def test_there_are_notebooks_and_exercises():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    assert EXERCISES, "no exercise notebooks found in exercises/"


def _reads_the_comparison(path: Path, request: pytest.FixtureRequest) -> None:
    """A notebook that calls run_comparison reads the session's cached smoke comparison."""
    if "run_comparison(" in path.read_text():
        request.getfixturevalue("smoke_comparison")


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, request: pytest.FixtureRequest):
    _reads_the_comparison(path, request)
    nb = runner.execute(runner.load(path), cwd=path.parent, env=SMOKE)
    errors = [
        c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert not errors


@pytest.mark.notebook
@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercise_fails_as_shipped_and_passes_solved(path: Path, request: pytest.FixtureRequest):
    _reads_the_comparison(path, request)
    nb = runner.load(path)
    answers = runner.answer_cells(nb)
    assert answers, f"{path.name} has no cells tagged answer:qN"
    executed = runner.execute(runner.interleave_solutions(nb), cwd=path.parent, env=SMOKE)
    shipped = runner.tagged(executed, "check:shipped")
    solved = runner.tagged(executed, "check:solved")
    assert len(shipped) == len(solved) == len(answers)
    for cell in shipped:
        shown = runner.text_outputs(cell)
        assert "not attempted" in shown or "Incorrect" in shown, (cell.source, shown)
        assert "Correct." not in shown.replace("Incorrect.", "")
    for cell in solved:
        assert "Correct" in runner.text_outputs(cell), cell.source
