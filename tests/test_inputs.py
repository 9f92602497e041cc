"""kit.inputs: one check for paths, numbers, text and flags, used by every public call."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from kit.inputs import InputError, flag, number, text, user_path, writable_folder


def test_user_path_expands_tilde_and_tells_file_from_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "f.txt").write_text("x")
    assert user_path("~/f.txt", must="file") == tmp_path / "f.txt"
    with pytest.raises(InputError, match="is a file; give the folder"):
        user_path("~/f.txt", "docs", must="folder")
    with pytest.raises(InputError, match="is a folder; give a file"):
        user_path(tmp_path, "questions", must="file")
    with pytest.raises(InputError, match="not found"):
        user_path(tmp_path / "nope")
    assert user_path(tmp_path / "new", must="any") == tmp_path / "new"  # to be written


def test_writable_folder_is_created_and_a_file_is_refused(tmp_path):
    assert writable_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        writable_folder(tmp_path / "file", "--out folder")
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == []  # the probe is gone


def test_number_whole_range_and_what_is_not_a_number():
    assert number(np.int64(3), "k", whole=True) == 3 and isinstance(
        number(3.0, "k", whole=True), int
    )
    assert number(np.float32(0.25), "p", 0, 1) == pytest.approx(0.25)
    for bad, said in [
        ("3", "must be a number"),
        (True, "must be a number"),
        (math.nan, "must be a number"),
        (-0.5, "between 0 and 1"),
    ]:
        with pytest.raises(InputError, match=said):
            number(bad, "p", 0, 1)
    with pytest.raises(InputError, match="must be a whole number, not 2.5"):
        number(2.5, "steps", whole=True)


def test_text_and_flag_refuse_look_alikes():
    assert text(np.str_("hi"), "q") == "hi"
    with pytest.raises(InputError, match="q is empty"):
        text("  ", "q")
    with pytest.raises(InputError, match="must be text"):
        text(b"hi", "q")
    assert flag(np.bool_(True), "f") is True
    with pytest.raises(InputError, match="must be True or False, not str 'no'"):
        flag("no", "f")


def test_the_caller_chooses_the_error_class(tmp_path: Path):
    class StageError(ValueError):
        pass

    with pytest.raises(StageError, match="folder is empty"):
        user_path("", "folder", error=StageError)
