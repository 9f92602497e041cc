"""Checks: exercise questions you can check, hint and solve, in the style of Kaggle's learntools.

In an exercise notebook::

    from kit.exercises.setup import q3
    similarity = ____          # your answer replaces the blank
    q3.check()                 # "Correct" or one sentence on what is wrong
    q3.hint()                  # a nudge
    q3.solution()              # the code that solves it

``check()`` reads the variables a question names from the caller's namespace (the notebook), so
the learner only writes ordinary code. It works the same in Jupyter, Colab and plain Python.
Tests call :meth:`Question.evaluate` with explicit values and assert on ``.passed``.

A question is defined by its variable names and a checking function that raises
:class:`Incorrect` with a learner-readable sentence when an answer is wrong.

Set ``KIT_CHECKS_STRICT=1`` to make a failed ``check()`` raise :class:`ExerciseFailed`: the
tests run exercise notebooks that way, so a wrong solution fails the test run.
"""

from __future__ import annotations

import html
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kit.inputs import InputError, number
from kit.runtime import in_notebook


class _Blank:
    """The placeholder ``____`` a learner replaces with an answer."""

    def __repr__(self) -> str:
        return "____"


____ = _Blank()  # the learntools convention for "fill me in"


class Incorrect(Exception):
    """Raised by a checking function; its message is shown to the learner."""


def as_number(value: object, name: str, whole: bool = False) -> float:
    """``value`` as a number for a check (NumPy numbers too), or :class:`Incorrect` saying what
    it should be: a string, a bool, NaN or (with ``whole``) a fraction is not accepted."""
    if hasattr(value, "item") and not isinstance(value, (int, float)):  # a tensor or an array
        try:
            value = value.item()  # type: ignore[union-attr]
        except (ValueError, RuntimeError):
            raise Incorrect(f"`{name}` should be one number, not several.") from None
    try:
        return number(value, f"`{name}`", whole=whole)
    except InputError as err:
        raise Incorrect(f"{err}.") from None


class ExerciseFailed(AssertionError):
    """Raised by ``check()`` in strict mode (``KIT_CHECKS_STRICT=1``) when an answer fails."""


@dataclass
class Result:
    """The outcome of one check: passed or not, and the message shown to the learner."""

    question: str
    passed: bool
    message: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if not self.attempted:
            return f"{self.question}: not attempted yet. {self.message}"
        return f"{self.question}: {'Correct' if self.passed else 'Incorrect'}. {self.message}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else ("#9a6700" if not self.attempted else "#cf222e")
        return f"<span style='color:{colour}'>{html.escape(str(self))}</span>"


@dataclass
class Question:
    """One exercise task.

    name: shown in messages ("Question 1"); variables: names the learner defines;
    checker: called with those values as keyword arguments, returns a success message (or
    None) or raises :class:`Incorrect`; hint_text / solution_code: shown on request.
    """

    name: str
    variables: list[str]
    checker: Callable[..., str | None]
    hint_text: str
    solution_code: str
    history: list[Result] = field(default_factory=list, repr=False)

    def evaluate(self, **values: Any) -> Result:
        """Check explicit values (no display): the form the tests use."""
        missing = [v for v in self.variables if v not in values or isinstance(values[v], _Blank)]
        if missing:
            names = ", ".join(f"`{m}`" for m in missing)
            result = Result(
                self.name, False, f"Set {names} (replace the ____), then check again.", False
            )
        else:
            try:
                message = self.checker(**{v: values[v] for v in self.variables})
                result = Result(self.name, True, message or "Well done.")
            except Incorrect as wrong:
                result = Result(self.name, False, str(wrong))
        self.history.append(result)
        return result

    def check(self, **values: Any) -> None:
        """Check the learner's answer and show the verdict.

        With no arguments, the question's variables are read from the calling namespace (the
        notebook's globals). Keyword arguments override them.
        """
        caller = inspect.currentframe().f_back  # type: ignore[union-attr]
        namespace = {**caller.f_globals, **caller.f_locals} if caller else {}
        found = {v: namespace[v] for v in self.variables if v in namespace}
        result = self.evaluate(**{**found, **values})
        _show(result)
        if not result.passed and os.environ.get("KIT_CHECKS_STRICT", "") not in {"", "0"}:
            raise ExerciseFailed(str(result))

    def hint(self) -> None:
        """Show a hint."""
        _show_text(f"Hint ({self.name}): {self.hint_text}")

    def solution(self) -> None:
        """Show the solution code."""
        _show_text(f"Solution ({self.name}):\n\n{self.solution_code.strip()}", code=True)


def _show(result: Result) -> None:
    if in_notebook():
        from IPython.display import display

        display(result)
    else:
        print(result)


def _show_text(text: str, code: bool = False) -> None:
    if in_notebook():
        from IPython.display import Markdown, display

        if code:
            head, _, body = text.partition("\n\n")
            display(Markdown(f"{head}\n\n```python\n{body}\n```"))
        else:
            display(Markdown(text))
    else:
        print(text)
