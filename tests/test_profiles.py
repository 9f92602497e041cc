"""kit.profiles: the sizes every stage reads, picked for this machine, checked when changed."""

from __future__ import annotations

import pytest

from kit import profiles
from kit.profiles import ProfileError, get_profile, pick_profile


def test_profiles_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = (get_profile(n) for n in ("smoke", "cpu", "gpu"))
    assert smoke.max_steps > 0 and 0 < smoke.eval_questions < cpu.eval_questions
    assert smoke.max_seq_len <= cpu.max_seq_len <= gpu.max_seq_len
    assert get_profile(" CPU ") is cpu


def test_unknown_profile_names_the_choices():
    with pytest.raises(ProfileError, match="Unknown profile 'laptop'.*smoke, cpu, gpu"):
        get_profile("laptop")
    with pytest.raises(ProfileError, match="no field"):
        get_profile("cpu").with_(epochz=3)
    assert get_profile("cpu").with_(epochs=1).epochs == 1


def test_pick_profile_order(monkeypatch):
    monkeypatch.setenv("KIT_PROFILE", "gpu")
    assert pick_profile()[0].name == "gpu"
    monkeypatch.delenv("KIT_PROFILE")
    monkeypatch.setenv("CI", "true")
    assert pick_profile()[0].name == "smoke"
    monkeypatch.delenv("CI")
    assert pick_profile()[0].name in {"cpu", "gpu"}
    monkeypatch.setenv("KIT_PROFILE", "nope")
    with pytest.raises(ProfileError):
        profiles.resolve_profile(None)


def test_a_gpu_gets_a_larger_generator_and_the_offline_default_stays():
    from kit.models import DEFAULT_GENERATOR

    smoke, cpu, gpu = (get_profile(n) for n in ("smoke", "cpu", "gpu"))
    assert smoke.generator == cpu.generator == DEFAULT_GENERATOR
    assert gpu.generator == profiles.GPU_GENERATOR and "/" in gpu.generator  # a hub id
    assert cpu.with_(generator="my/model").generator == "my/model"
    for bad in ("", "   ", 3, None):
        with pytest.raises(ProfileError, match="generator"):
            cpu.with_(generator=bad)
