"""Every notebook in notebooks/ and exercises/ runs top to bottom on the real bundled models.

Exercise notebooks run twice: once with the solutions put in the answer cells (every check must
pass: strict mode turns a failed check into an error), once as shipped (every check must say the
task is not done yet).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import notebook_runner as runner

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
SMOKE = {"KIT_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
CHECK_CALL = re.compile(r"\bq\w*\.check\(")


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
def test_exercise_solutions_pass(path: Path, request: pytest.FixtureRequest):
    _reads_the_comparison(path, request)
    nb = runner.fill_solutions(runner.load(path))
    assert runner.answer_cells(nb), f"{path.name} has no cells tagged answer:qN"
    executed = runner.execute(nb, cwd=path.parent, env={**SMOKE, "KIT_CHECKS_STRICT": "1"})
    checks = [c for c in executed.cells if c.cell_type == "code" and CHECK_CALL.search(c.source)]
    assert checks, "no qN.check() calls"
    for cell in checks:
        assert "Correct" in runner.text_outputs(cell), cell.source


@pytest.mark.notebook
@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercise_unfilled_checks_fail(path: Path, request: pytest.FixtureRequest):
    _reads_the_comparison(path, request)
    executed = runner.execute(runner.load(path), cwd=path.parent, env=SMOKE)
    checks = [c for c in executed.cells if c.cell_type == "code" and CHECK_CALL.search(c.source)]
    assert len(checks) >= len(runner.answer_cells(executed))
    for cell in checks:
        shown = runner.text_outputs(cell)
        assert "not attempted" in shown or "Incorrect" in shown, (cell.source, shown)
        assert "Correct." not in shown.replace("Incorrect.", "")
