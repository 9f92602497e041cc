"""kit.adapters without training: where adapters live, what a complete one is, what to pass.

The tests that train an adapter and load it back (on the right and on the wrong base model,
merged, after a failed save) are in test_finetune.py, which trains once for all of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import adapters
from kit.adapters import ADAPTER_MARKER, AdapterError


def _kit_adapter(folder: Path, weights: bytes = b"w" * 10) -> Path:
    """A folder shaped like a saved kit adapter: weights plus the marker listing them."""
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(weights)
    marker = {
        "base": {"name": "smollm2-135m-instruct"},
        "info": {},
        "files": {"adapter_model.safetensors": len(weights)},
    }
    (folder / ADAPTER_MARKER).write_text(json.dumps(marker))
    return folder


def test_a_complete_adapter_passes_and_a_cut_one_says_what_is_missing(tmp_path):
    good = _kit_adapter(tmp_path / "good")
    assert adapters.check_adapter(good) is None
    (good / "adapter_model.safetensors").write_bytes(b"w" * 3)  # a copy cut short
    assert "has 3 bytes, expected 10" in adapters.check_adapter(good)
    (good / "adapter_model.safetensors").unlink()
    assert "adapter_model.safetensors is missing" in adapters.check_adapter(good)


def test_the_wrong_folder_gets_a_hint_of_the_right_one(tmp_path):
    _kit_adapter(tmp_path / "run" / "adapter")
    assert "one level down: pass" in adapters.check_adapter(tmp_path / "run")
    plain = tmp_path / "peft"
    plain.mkdir()
    (plain / "adapter_config.json").write_text("{}")
    assert "plain peft adapter" in adapters.check_adapter(plain)
    with pytest.raises(AdapterError, match="Cannot use the adapter at"):
        adapters.read_adapter_info(plain)


def test_two_adapters_with_the_same_weights_have_the_same_hash(tmp_path):
    a = _kit_adapter(tmp_path / "a")
    b = _kit_adapter(tmp_path / "b")
    c = _kit_adapter(tmp_path / "c", weights=b"v" * 10)
    assert adapters.adapter_weights_hash(a) == adapters.adapter_weights_hash(b)
    assert adapters.adapter_weights_hash(a) != adapters.adapter_weights_hash(c)


def test_a_folder_under_home_is_hashed_by_its_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    b = _kit_adapter(tmp_path / "b", weights=b"v" * 10)
    _kit_adapter(tmp_path / "c", weights=b"w" * 10)
    assert adapters.adapter_weights_hash("~/b") == adapters.adapter_weights_hash(b)
    assert adapters.adapter_weights_hash("~/b") != adapters.adapter_weights_hash("~/c")


def test_a_base_model_mismatch_is_said_field_by_field():
    trained = {"architecture": "LlamaForCausalLM", "hidden_size": 576, "weights": "abc"}
    other = {**trained, "hidden_size": 960, "weights": "def"}
    wrong = adapters.fingerprint_mismatch(trained, other)
    assert len(wrong) == 2 and any("hidden_size: adapter trained on 576" in w for w in wrong)
    assert adapters.fingerprint_mismatch(trained, dict(trained)) == []


def test_the_notebooks_share_one_folder_per_profile():
    assert adapters.style_dir("smoke").name == "style-smoke"
    assert adapters.raft_dir("cpu").name == "raft-cpu"
    assert adapters.style_dir("smoke").parent == adapters.adapters_dir()
