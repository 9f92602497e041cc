"""Inputs: the checks every public call makes before a library sees its arguments.

Two families of mistakes reach the kit from notebooks and the command line: a path that is not
one (``None``, ``""``, a number, ``~`` left unexpanded, a folder where a file is meant), and a
number that is not one (``"5"``, ``True``, ``nan``, ``2.5`` steps, a negative size). Each
function here turns such an argument into the clean value or raises :class:`InputError`, a
``ValueError`` whose message names the argument, what it got and what to pass instead.
NumPy numbers (``np.int64(3)``, ``np.float32(0.3)``) are numbers. Standard library only.
"""

from __future__ import annotations

import math
import numbers
import tempfile
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """An argument that cannot be used; the message says which, and what to pass instead."""


def user_path(
    value: Any, what: str = "path", must: str = "exist", error: type[Exception] = InputError
) -> Path:
    """``value`` as a Path, ``~`` expanded. ``must``: ``"exist"``, ``"file"``, ``"folder"`` or
    ``"any"`` (a path to write to). Raises ``error`` (a ValueError: InputError, or the calling
    stage's own, e.g. DataError) for None, bytes, numbers, lists, empty or blank strings, and a
    path that is not what ``must`` asks for."""
    if isinstance(value, bytes) or not isinstance(value, (str, Path)):
        raise error(
            f"{what} must be a path (a str or pathlib.Path), not {type(value).__name__} "
            f"{_short(value)}"
        )
    if not str(value).strip():
        raise error(f"{what} is empty: give the path of a {_kind(must)}")
    try:
        path = Path(value).expanduser()
        if isinstance(value, str) and not path.exists():  # " docs " typed for "docs"
            path = Path(value.strip()).expanduser()
        found = path.exists()
    except RuntimeError as err:  # "~someone/docs" for a user this machine does not have
        raise error(f"{what} {str(value)[:80]!r}: cannot expand '~' ({err})") from None
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL, ...
        problem = getattr(err, "strerror", None) or err
        raise error(f"{_short(value)}: not a usable {what} ({problem})") from None
    if must == "any":
        return path
    if not found:
        raise error(f"{path}: {what} not found")
    if must == "file" and not path.is_file():
        raise error(f"{path}: {what} is a folder; give a file in it")
    if must == "folder" and not path.is_dir():
        raise error(f"{path}: {what} is a file; give the folder that holds it")
    return path


def writable_folder(value: Any, what: str = "folder", error: type[Exception] = InputError) -> Path:
    """``value`` as a folder this process can write to, created if missing; ``error`` for a
    path that is a file or cannot be written (checked by writing, since permission bits
    mislead when running as root)."""
    folder = user_path(value, what, must="any", error=error)
    if folder.exists() and not folder.is_dir():
        raise error(f"{folder}: {what} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a file of its own, so two jobs checking one folder at once do not remove each other's
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".kit-write-test-"):
            pass
    except OSError as err:
        raise error(f"{folder}: cannot write to this {what} ({err.strerror or err})") from None
    return folder


def number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    whole: bool = False,
) -> float | int:
    """``value`` as an int (``whole``) or a float within [``low``, ``high``]. NumPy numbers are
    numbers; bools, strings, NaN, infinities, fractions where a whole number is meant and values
    out of range raise InputError naming ``name``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)):
        kind = "a whole number" if whole else "a number"
        raise InputError(f"{name} must be {kind}, not {type(value).__name__} {_short(value)}")
    if whole and float(value) != int(value):
        raise InputError(f"{name} must be a whole number, not {value!r}")
    out: float | int = int(value) if whole else float(value)
    if (low is not None and out < low) or (high is not None and out > high):
        raise InputError(f"{name} must be {_range(low, high)}, not {value!r}")
    return out


def text(value: Any, name: str, empty_ok: bool = False) -> str:
    """``value`` as a str (NumPy strings too); None, bytes, numbers, lists and (unless
    ``empty_ok``) blank strings raise InputError naming ``name``."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be text (a str), not {type(value).__name__} {_short(value)}")
    if not empty_ok and not value.strip():
        raise InputError(f"{name} is empty")
    return str(value)


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool: True/False (NumPy bools too), never the truth of a string such as
    ``"no"``, which is True in Python."""
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if isinstance(value, bool) or numpy_bool:
        return bool(value)
    raise InputError(f"{name} must be True or False, not {type(value).__name__} {_short(value)}")


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def _kind(must: str) -> str:
    return {"file": "file", "folder": "folder"}.get(must, "file or folder")


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
