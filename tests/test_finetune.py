"""kit.finetune and kit.adapters on the real bundled model: train, reproduce, resume, save, load.

Runs are tiny (a few steps of 2 examples) so the whole file stays within a few minutes on a CPU.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal

import pytest

from kit.adapters import (
    ADAPTER_MARKER,
    AdapterError,
    adapter_weights_hash,
    base_fingerprint,
    check_adapter,
    fingerprint_mismatch,
    load_adapter,
    merge_adapter,
    save_adapter,
)
from kit.data import load_qa
from kit.finetune import (
    FinetuneError,
    StopAfterStep,
    adapter_identity,
    answer_questions,
    eval_loss,
    reply_loss,
    train_adapter,
)

pytestmark = pytest.mark.slow

TINY = dict(
    profile="smoke",
    max_steps=4,
    batch_size=2,
    train_examples=16,
    eval_examples=4,
    eval_steps=2,
    save_steps=2,
    max_seq_len=160,
    learning_rate=1e-3,
)


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    return train_adapter(output_dir=tmp_path_factory.mktemp("a"), **TINY)


@pytest.fixture(scope="module")
def adapter(run_a):
    return load_adapter(run_a.adapter_dir)


def test_a_run_trains_saves_and_reports(run_a, report_figure):
    assert run_a.completed and run_a.steps == run_a.max_steps == 4
    assert [s for s, _ in run_a.losses] == [1, 2, 3, 4]
    assert all(math.isfinite(v) for _, v in run_a.losses)
    assert [s for s, _ in run_a.eval_losses] == [2, 4]
    assert run_a.tokens_seen > 4 * 2 * 40 and run_a.useful_tokens_per_s > 0
    assert 100 < run_a.peak_mem_mb < 8000
    assert check_adapter(run_a.adapter_dir) is None
    info = json.loads((run_a.adapter_dir / ADAPTER_MARKER).read_text())
    assert info["base"]["name"] == "smollm2-135m-instruct" and info["info"]["final_eval_loss"]
    report_figure("tiny fine-tune (4 steps x 2 examples)", run_a.summary())


def test_same_seed_same_losses_and_a_stopped_run_resumes_to_the_same_result(run_a, tmp_path):
    def values(pairs):
        return [v for _, v in pairs]

    # a second run with the same seed, stopped after 2 steps as if killed: same losses so far
    stopped = train_adapter(output_dir=tmp_path, callbacks=[StopAfterStep(2)], **TINY)
    assert not stopped.completed and stopped.adapter_dir is None and stopped.steps == 2
    assert values(stopped.losses) == pytest.approx(values(run_a.losses)[:2], abs=1e-5)
    assert (tmp_path / "checkpoints" / "checkpoint-2").is_dir()
    # resumed from its checkpoint, it ends exactly where the uninterrupted run ended
    resumed = train_adapter(output_dir=tmp_path, resume=True, **TINY)
    assert resumed.completed and resumed.resumed_from_step == 2
    assert values(resumed.losses) == pytest.approx(values(run_a.losses), abs=1e-5)
    assert values(resumed.eval_losses) == pytest.approx(values(run_a.eval_losses), abs=1e-5)
    # resuming with other settings is refused, with the differences named
    with pytest.raises(FinetuneError, match="learning_rate"):
        train_adapter(output_dir=tmp_path, resume=True, **{**TINY, "learning_rate": 5e-4})


def test_reuse_returns_a_prebuilt_adapter_only_when_the_settings_match(run_a, tmp_path):
    import shutil

    prebuilt = tmp_path / "prebuilt"
    shutil.copytree(run_a.output_dir, prebuilt)
    again = train_adapter(output_dir=prebuilt, reuse=True, **TINY)
    assert again.adapter_dir == prebuilt / "adapter" and again.completed
    assert again.losses == run_a.losses and again.eval_losses == run_a.eval_losses
    assert again.train_seconds == run_a.train_seconds  # read back, not trained again
    # other settings: trained anew, on top of nothing
    other = train_adapter(output_dir=prebuilt, reuse=True, **{**TINY, "learning_rate": 5e-4})
    assert other.losses != run_a.losses and other.completed
    info = json.loads((other.adapter_dir / ADAPTER_MARKER).read_text())
    assert info["info"]["settings"]["profile"]["learning_rate"] == 5e-4


def test_training_can_continue_from_a_trained_adapter(run_a, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    start = load_file(run_a.adapter_dir / "adapter_model.safetensors")
    settings = {**TINY, "max_steps": 1, "learning_rate": 1e-12}
    cont = train_adapter(output_dir=tmp_path / "c", init_adapter=run_a.adapter_dir, **settings)
    fresh = train_adapter(output_dir=tmp_path / "f", **settings)
    # same seed, same first batch: the continued run starts from the trained adapter, so its
    # first loss is the trained model's, lower than a fresh LoRA's (which equals the base model's)
    assert cont.losses[0][1] < fresh.losses[0][1] - 0.05
    assert fresh.losses[0][1] == pytest.approx(run_a.losses[0][1], abs=1e-4)
    # a learning rate of 1e-12 moves nothing: it saved the weights it started from
    end = load_file(cont.adapter_dir / "adapter_model.safetensors")
    assert end.keys() == start.keys()
    assert all(torch_allclose(end[k], start[k]) for k in start)
    assert any(k.endswith("lora_B.weight") and start[k].abs().sum() > 0 for k in start)
    assert cont.settings["init_adapter"] == adapter_identity(run_a.adapter_dir)
    assert cont.settings["profile"]["lora_r"] == run_a.settings["profile"]["lora_r"]
    # the starting adapter is part of the settings: reuse with another start trains again
    again = train_adapter(
        output_dir=tmp_path / "c", init_adapter=run_a.adapter_dir, reuse=True, **settings
    )
    assert again.train_seconds == cont.train_seconds
    monkeypatch.setenv("HOME", str(run_a.adapter_dir.parent))  # "~/adapter": the same folder
    home = train_adapter(
        output_dir=tmp_path / "c", init_adapter="~/adapter", reuse=True, **settings
    )
    assert home.train_seconds == cont.train_seconds and home.settings == again.settings
    other = train_adapter(
        output_dir=tmp_path / "c", init_adapter=fresh.adapter_dir, reuse=True, **settings
    )
    assert other.settings["init_adapter"] != cont.settings["init_adapter"]
    with pytest.raises(AdapterError, match="not a kit adapter"):
        train_adapter(output_dir=tmp_path / "x", init_adapter=tmp_path, **settings)
    with pytest.raises(FinetuneError, match=r"keeps the LoRA shape.*lora_r"):
        train_adapter(init_adapter=run_a.adapter_dir, **{**settings, "lora_r": 4})


def test_an_adapter_identity_is_what_it_was_trained_with_not_its_bytes(run_a, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_a.adapter_dir, copy)
    assert adapter_identity(copy) == adapter_identity(run_a.adapter_dir)
    # the same training computed in another precision: other bytes, the same adapter
    marker = json.loads((copy / ADAPTER_MARKER).read_text())
    marker["info"]["settings"]["dtype"] = "bfloat16"
    (copy / ADAPTER_MARKER).write_text(json.dumps(marker))
    assert adapter_identity(copy) == adapter_identity(run_a.adapter_dir)
    # other training settings: another adapter
    marker["info"]["settings"]["seed"] = 7
    (copy / ADAPTER_MARKER).write_text(json.dumps(marker))
    assert adapter_identity(copy) != adapter_identity(run_a.adapter_dir)
    # no recorded settings (trained outside the kit): named by its weights
    marker["info"] = {}
    (copy / ADAPTER_MARKER).write_text(json.dumps(marker))
    assert adapter_identity(copy) == f"weights:{adapter_weights_hash(copy)}"


def test_starting_from_an_adapter_of_another_base_model_is_refused(run_a, other_base, tmp_path):
    with pytest.raises(AdapterError, match="different model"):
        train_adapter(
            base=str(other_base), init_adapter=run_a.adapter_dir, output_dir=tmp_path, **TINY
        )


def torch_allclose(a, b) -> bool:
    import torch

    return torch.allclose(a.float(), b.float(), atol=1e-6)


def test_a_learning_rate_that_blows_up_stops_with_a_clear_error(tmp_path):
    with pytest.raises(
        FinetuneError, match=r"training loss (became|jumped).*diverged.*Lower the learning rate"
    ):
        train_adapter(output_dir=tmp_path, **{**TINY, "learning_rate": 1e4})
    assert not (tmp_path / "adapter").exists()


def test_out_of_memory_suggests_a_smaller_profile(tmp_path, monkeypatch):
    import torch
    from transformers import Trainer

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(Trainer, "train", boom)
    with pytest.raises(FinetuneError, match="Out of memory.*batch_size"):
        train_adapter(output_dir=tmp_path, **{**TINY, "profile": "cpu"})


def test_adapter_answers_questions_without_retrieval(adapter):
    model, tokenizer = adapter
    answers = answer_questions(model, tokenizer, load_qa("test")[:2], max_new_tokens=12)
    assert [a.system for a in answers] == ["finetuned", "finetuned"]
    assert all(a.text and a.new_tokens > 0 and a.timings["total"] > 0 for a in answers)


def test_reply_loss_equals_the_models_own_loss(adapter):
    import torch

    from kit.chat_data import PadToLongest, format_example

    model, tokenizer = adapter
    pair = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello there."}]
    longer = [{"role": "user", "content": "Where is the head office?"}, pair[1]]
    feats = [format_example(tokenizer, pair), format_example(tokenizer, longer)]
    batch = PadToLongest(tokenizer.pad_token_id)(feats)
    with torch.inference_mode():
        ours = float(reply_loss(model, batch))
        theirs = float(model(**batch).loss)
    assert ours == pytest.approx(theirs, rel=2e-2)
    assert eval_loss(model, feats) == pytest.approx(ours, rel=1e-3)


@pytest.fixture(scope="module")
def other_base(adapter, tmp_path_factory):
    """A tiny random Llama with SmolLM2's tokenizer: another base model (unit tests only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("other")
    other = LlamaForCausalLM(
        LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=49152,
        )
    )
    other.save_pretrained(folder)
    adapter[1].save_pretrained(folder)
    return folder


def test_loading_onto_another_base_model_is_a_clear_error(run_a, adapter, other_base):
    import torch

    model, tokenizer = adapter
    fp = base_fingerprint(model, "smollm2-135m-instruct")
    with pytest.raises(AdapterError, match="different model.*hidden_size"):
        load_adapter(run_a.adapter_dir, base=str(other_base))
    # same architecture and sizes, other weights: the weight hash tells them apart
    base = model.get_base_model()
    with torch.no_grad():
        row = base.get_input_embeddings().weight[0].clone()
        base.get_input_embeddings().weight[0] += 1.0
        changed = base_fingerprint(model, "smollm2-135m-instruct")
        base.get_input_embeddings().weight[0] = row
    assert fingerprint_mismatch(fp, changed) and fingerprint_mismatch(fp, changed)[0].startswith(
        "weights"
    )
    assert base_fingerprint(model, "smollm2-135m-instruct") == fp


def test_a_failed_save_leaves_no_half_adapter(adapter, tmp_path, monkeypatch):
    model, tokenizer = adapter
    target = tmp_path / "adapter"
    save_adapter(model, tokenizer, target, {"name": "x"})
    before = sorted(p.name for p in target.iterdir())

    def disk_full(folder, *args, **kwargs):
        (folder / "adapter_model.safetensors").parent.mkdir(parents=True, exist_ok=True)
        (folder / "adapter_model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save_pretrained", disk_full)
    with pytest.raises(AdapterError, match="disk is full.*untouched"):
        save_adapter(model, tokenizer, target, {"name": "x"})
    assert sorted(p.name for p in target.iterdir()) == before and check_adapter(target) is None
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temporary left behind
    (target / "adapter_model.safetensors").write_bytes(b"truncated")
    with pytest.raises(AdapterError, match="adapter_model.safetensors has 9 bytes"):
        load_adapter(target)


def test_a_save_killed_between_its_renames_is_mended_by_the_next_save(adapter, tmp_path):
    """A save moves the old adapter aside, then the new one in: a kill between the two left no
    adapter folder and hidden leftovers. The next save puts the old one back first and clears
    what dead processes left; a live process's temporary folder is left alone."""
    import shutil

    from kit.adapters import _tidy_leftovers

    model, tokenizer = adapter
    target = tmp_path / "adapter"
    save_adapter(model, tokenizer, target, {"name": "x"})
    gone = _dead_pid()
    target.rename(tmp_path / f".adapter.old-{gone}")  # killed after the first rename
    (tmp_path / f".adapter.tmp-{gone}").mkdir()  # and a half-written new one
    live = tmp_path / f".adapter.tmp-{os.getppid()}"
    live.mkdir()  # another process saving now
    _tidy_leftovers(target)
    assert check_adapter(target) is None  # the previous adapter is back
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["adapter", live.name])
    shutil.rmtree(live)


def _dead_pid() -> int:
    """The id of a process that has ended."""
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_merge_gives_a_standalone_model_with_the_same_outputs(run_a, adapter, tmp_path):
    import torch

    from kit.models import load_generator

    model, tokenizer = adapter
    folder = merge_adapter(run_a.adapter_dir, tmp_path / "merged")
    merged, _ = load_generator(str(folder))
    assert not hasattr(merged, "peft_config")
    ids = torch.tensor([tokenizer("Where is Korvella based?")["input_ids"]])
    with torch.inference_mode():
        a, b = model(input_ids=ids).logits[0, -1], merged(input_ids=ids).logits[0, -1]
    assert int(a.argmax()) == int(b.argmax())
    assert float((a - b).abs().mean()) < 0.15  # bfloat16 rounding of the merged weights
    assert merge_adapter(run_a.adapter_dir, folder) == folder  # its own merge: replaced
    mine = tmp_path / "models"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(AdapterError, match="not a model merge_adapter wrote"):
        merge_adapter(run_a.adapter_dir, mine)  # a folder of yours is never replaced
    assert (mine / "notes.txt").read_text() == "my notes"
    gone = _dead_pid()  # a merge killed between its two renames: the model moved aside ...
    folder.rename(tmp_path / f".merged.old-{gone}")
    (tmp_path / f".merged.tmp-{gone}").mkdir()
    assert merge_adapter(run_a.adapter_dir, folder) == folder  # ... is put back, then replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged.")]


def test_an_adapter_saved_to_a_home_path_lands_in_the_home_folder(adapter, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    model, tokenizer = adapter
    saved = save_adapter(model, tokenizer, "~/adapters/mine", {"name": "x"})
    assert saved == tmp_path / "adapters" / "mine" and check_adapter(saved) is None
    assert not (tmp_path / "~").exists()


class _SendSigterm(StopAfterStep):
    """At ``step``, the process receives SIGTERM, as a closed Colab tab or a killed job sends."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)
        return control


def test_sigterm_stops_at_the_end_of_the_step_with_a_checkpoint_to_resume_from(
    run_a, tmp_path, capsys
):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        train_adapter(output_dir=tmp_path, callbacks=[_SendSigterm(2)], **TINY)
    assert stop.value.code == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert "SIGTERM received: stopped at step 2" in out
    assert (tmp_path / "checkpoints" / "checkpoint-2").is_dir()
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is only there while training
    assert "python -m kit run or train: run the same command again" in out
    # resume="auto", what `python -m kit run` trains with: running it again continues
    resumed = train_adapter(output_dir=tmp_path, resume="auto", **TINY)
    assert resumed.completed and resumed.resumed_from_step == 2
    assert resumed.losses[-1][1] == pytest.approx(run_a.losses[-1][1], abs=1e-5)


def test_sigterm_in_the_last_step_saves_the_finished_adapter_before_stopping(tmp_path):
    from kit.adapters import check_adapter

    with pytest.raises(SystemExit) as stop:
        train_adapter(output_dir=tmp_path, callbacks=[_SendSigterm(4)], **TINY)  # 4 of 4
    assert stop.value.code == 128 + signal.SIGTERM
    assert check_adapter(tmp_path / "adapter") is None  # the complete run is kept
    again = train_adapter(output_dir=tmp_path, resume="auto", reuse=True, **TINY)
    assert again.steps == 4 and again.adapter_dir == tmp_path / "adapter"  # reused: no retrain


def test_resuming_from_another_runs_checkpoint_checks_that_runs_settings(run_a, tmp_path):
    import shutil

    other = tmp_path / "a"
    train_adapter(output_dir=other, callbacks=[StopAfterStep(2)], **TINY)
    checkpoint = other / "checkpoints" / "checkpoint-2"
    with pytest.raises(FinetuneError, match="learning_rate"):  # its record, not b's
        faster = {**TINY, "learning_rate": 5e-4}
        train_adapter(output_dir=tmp_path / "b", resume=checkpoint, **faster)
    loose = tmp_path / "loose" / "checkpoint-2"
    shutil.copytree(checkpoint, loose)
    with pytest.raises(FinetuneError, match="no kit-run.json beside it"):
        train_adapter(output_dir=tmp_path / "c", resume=loose, **TINY)


def test_auto_resume_starts_over_when_the_settings_differ_or_the_run_had_finished(
    run_a, tmp_path, capsys
):
    import shutil

    train_adapter(output_dir=tmp_path, callbacks=[StopAfterStep(2)], **TINY)
    again = train_adapter(output_dir=tmp_path, resume="auto", **{**TINY, "learning_rate": 5e-4})
    assert again.completed and not again.resumed_from_step
    # a finished run whose adapter was deleted (to train again) is not "continued" at its end
    finished = tmp_path / "finished"
    shutil.copytree(run_a.output_dir, finished)
    shutil.rmtree(finished / "adapter")
    retrained = train_adapter(output_dir=finished, resume="auto", reuse=True, **TINY)
    assert retrained.completed and not retrained.resumed_from_step and retrained.steps == 4
    assert "Continuing" not in capsys.readouterr().out


def test_a_damaged_checkpoint_is_skipped_and_a_damaged_record_named(run_a, tmp_path):
    ckpts = tmp_path / "checkpoints"
    train_adapter(output_dir=tmp_path, callbacks=[StopAfterStep(3)], **TINY)
    state = ckpts / "checkpoint-3" / "trainer_state.json"
    state.write_text(state.read_text()[:200])  # the save of step 3 cut short by a kill
    assert (ckpts / "checkpoint-3").is_dir()
    resumed = train_adapter(output_dir=tmp_path, resume=True, **TINY)
    assert resumed.completed and resumed.resumed_from_step == 2  # the complete one before it
    steps = sorted(int(p.name.split("-")[-1]) for p in ckpts.glob("checkpoint-*"))
    assert 3 not in steps and steps[-1] == 4  # the broken save of step 3 was cleared first
    assert resumed.losses[-1][1] == pytest.approx(run_a.losses[-1][1], abs=1e-5)
    record = ckpts / "kit-run.json"
    record.write_text(record.read_text()[:50])
    with pytest.raises(FinetuneError, match="kit-run.json is damaged.*resume=False"):
        train_adapter(output_dir=tmp_path, resume=True, **TINY)
    assert train_adapter(output_dir=tmp_path, resume="auto", **TINY).completed  # starts over


def test_a_second_training_into_the_same_folder_is_refused(tmp_path):
    """Two trainings into one folder (two notebooks with the default folder) would delete each
    other's checkpoints and mix their adapters: the second is refused while the first runs."""
    from kit.finetune import training_lock

    first = tmp_path / "checkpoints" / "checkpoint-2"  # what the first training wrote so far
    first.mkdir(parents=True)
    (tmp_path / "checkpoints" / "kit-run.json").write_text("{}")
    refused = pytest.raises(FinetuneError, match="Another training is writing into .*process")
    with training_lock(tmp_path), refused:  # as a training in another notebook holds it
        train_adapter(output_dir=tmp_path, **TINY)  # resume=False would clear checkpoints/
    assert first.is_dir() and (tmp_path / "checkpoints" / "kit-run.json").read_text() == "{}"


def test_a_folder_that_is_not_a_kit_adapter_says_what_to_pass_instead(run_a, tmp_path):
    import shutil

    above = check_adapter(run_a.output_dir)  # the run's folder, one level above its adapter
    assert f"one level down: pass {run_a.adapter_dir}" in above
    plain = tmp_path / "plain"
    shutil.copytree(run_a.adapter_dir, plain)
    (plain / ADAPTER_MARKER).unlink()  # what peft's own save_pretrained leaves
    assert "plain peft adapter" in check_adapter(plain)
    with pytest.raises(Exception, match="PeftModel.from_pretrained"):
        load_adapter(plain)


def test_the_notebook_can_build_the_lora_config_and_arguments_and_pass_the_config(run_a, tmp_path):
    from peft import LoraConfig
    from transformers import TrainingArguments

    from kit.finetune import lora_config, training_arguments
    from kit.profiles import get_profile

    smoke = get_profile("smoke")
    config = lora_config(smoke)
    assert isinstance(config, LoraConfig) and config.r == smoke.lora_r
    assert set(config.target_modules) == set(smoke.lora_targets)
    args = training_arguments(smoke, tmp_path / "ckpt", max_steps=12)
    assert isinstance(args, TrainingArguments) and args.learning_rate == smoke.learning_rate
    assert args.max_steps == 12 and args.eval_steps == 3 and args.save_steps == 3

    config.r, config.lora_alpha, config.target_modules = 4, 8, ["q_proj", "v_proj"]
    before = repr(config.to_dict())
    run = train_adapter(output_dir=tmp_path, lora_config=config, **TINY)
    assert repr(config.to_dict()) == before  # the learner's object is not changed
    saved = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    assert saved["r"] == 4 and saved["lora_alpha"] == 8
    assert sorted(saved["target_modules"]) == ["q_proj", "v_proj"]
    with pytest.raises(FinetuneError, match="change \\['lora_r'\\] on the config"):
        train_adapter(lora_config=config, **{**TINY, "lora_r": 2})
    with pytest.raises(FinetuneError, match="not both"):
        train_adapter(lora_config=config, init_adapter=run_a.adapter_dir, **TINY)
    with pytest.raises(FinetuneError, match="must be a peft LoraConfig"):
        train_adapter(lora_config={"r": 4}, **TINY)


def _tiny_profile():
    """The smoke profile with TINY's sizes: what ``train_adapter(**TINY)`` trains with."""
    from kit.profiles import get_profile

    return get_profile("smoke").with_(**{k: v for k, v in TINY.items() if k != "profile"})


def test_the_notebook_can_pass_its_own_training_arguments(run_a, tmp_path):
    import shutil

    from kit.finetune import training_arguments

    tiny = _tiny_profile()
    args = training_arguments(tiny)
    assert (args.learning_rate, args.max_steps, args.per_device_train_batch_size) == (1e-3, 4, 2)
    assert (args.eval_steps, args.save_steps, args.output_dir) == (2, 2, "trainer_output")
    # the profile's own arguments: the very run of run_a, so its adapter is reused
    prebuilt = tmp_path / "prebuilt"
    shutil.copytree(run_a.output_dir, prebuilt)
    again = train_adapter(profile=tiny, output_dir=prebuilt, reuse=True, args=args)
    assert again.train_seconds == run_a.train_seconds and "training" not in again.settings
    assert args.output_dir == "trainer_output"  # the learner's object is not changed
    # another learning rate: another run, recorded as the same knob a keyword argument sets
    args.learning_rate = 5e-4
    args.output_dir = str(prebuilt / "checkpoints")  # the run's own checkpoint folder: accepted
    other = train_adapter(
        profile=tiny, output_dir=prebuilt, reuse=True, args=args, callbacks=[StopAfterStep(2)]
    )
    assert other.steps == 2 and not other.completed
    assert other.settings["profile"] == tiny.with_(learning_rate=5e-4).as_dict()
    # any other field that shapes the result is part of the settings: resume tells them apart
    args.lr_scheduler_type, args.weight_decay = "linear", 0.1
    with pytest.raises(FinetuneError, match=r"training\.lr_scheduler_type, training\.weight_dec"):
        train_adapter(profile=tiny, output_dir=prebuilt, resume=True, args=args)
    args.lr_scheduler_type, args.weight_decay = "cosine", 0.0
    resumed = train_adapter(profile=tiny, output_dir=prebuilt, resume=True, args=args)
    assert resumed.completed and resumed.resumed_from_step == 2
    assert json.loads((resumed.adapter_dir / ADAPTER_MARKER).read_text())["info"]["settings"][
        "profile"
    ]["learning_rate"] == pytest.approx(5e-4)


def test_arguments_that_count_epochs_train_the_run_the_profile_plans(tmp_path):
    from kit.finetune import training_arguments

    tiny = _tiny_profile().with_(max_steps=0, epochs=0.5, warmup_ratio=0.1, save_steps=0)
    args = training_arguments(tiny)
    # the number of steps needs the data: shares of the run until train_adapter knows it
    assert (args.max_steps, args.num_train_epochs, args.warmup_steps) == (-1, 0.5, 0.1)
    assert (args.eval_steps, args.save_steps) == (2, 0.25)
    run = train_adapter(profile=tiny, output_dir=tmp_path, args=args)
    assert run.completed and run.max_steps == 3 and "training" not in run.settings
    # without the arguments, the profile plans the very same run: reused, not trained again
    again = train_adapter(profile=tiny, output_dir=tmp_path, reuse=True)
    assert again.train_seconds == run.train_seconds


def test_training_arguments_that_contradict_the_run_are_refused(tmp_path):
    from kit.finetune import training_arguments

    tiny = _tiny_profile()
    args = training_arguments(tiny)
    with pytest.raises(FinetuneError, match=r"change \['learning_rate'\] on it"):
        train_adapter(profile=tiny, args=args, learning_rate=1e-3)
    with pytest.raises(FinetuneError, match="seed=7 but args.seed=42"):
        train_adapter(profile=tiny, args=args, seed=7)
    with pytest.raises(FinetuneError, match="must be transformers TrainingArguments"):
        train_adapter(profile=tiny, args={"learning_rate": 1e-3})
    elsewhere = training_arguments(tiny, tmp_path / "elsewhere")
    with pytest.raises(FinetuneError, match=r"args.output_dir is .* keeps its checkpoints in"):
        train_adapter(profile=tiny, output_dir=tmp_path / "run", args=elsewhere)
    args.logging_steps, args.bf16 = 10, True
    with pytest.raises(
        FinetuneError, match=r"sets \['logging_steps', 'bf16'\] itself: .*loss curve.*dtype="
    ):
        train_adapter(profile=tiny, output_dir=tmp_path / "run", args=args)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_the_profile_generator_is_what_trains_and_answers(tmp_path, converted, index):
    """The gpu profile's larger model, tried with a local folder (no hub here): the profile's
    ``generator`` is the base the adapter records, and the model a RAG answers with."""
    import shutil
    from pathlib import Path

    from kit.profiles import get_profile
    from kit.rag import build_rag

    mine = tmp_path / "my-model"

    def link(src, dst):  # the same weights under another name; copied across file systems
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(converted, mine, copy_function=link)
    prof = get_profile("smoke").with_(generator=str(mine))
    run = train_adapter(output_dir=tmp_path / "run", **{**TINY, "profile": prof})
    assert run.settings["base"] == str(mine)
    qa = build_rag(index, profile=prof, max_new_tokens=8)
    model, _ = qa.model_and_tokenizer
    assert Path(model.name_or_path) == mine.resolve()
    assert qa.answer("How many sensors can one H4 hub take?").text


def test_a_precision_asked_for_is_the_precision_trained_in(monkeypatch):
    """dtype='bfloat16' forces bf16 on a CPU even where auto would choose float32 (the refusal
    message tells learners to force it that way); auto follows the machine."""
    from kit import finetune
    from kit.profiles import resolve_profile

    cpu = resolve_profile("cpu")
    monkeypatch.setattr(finetune, "cpu_prefers_bf16", lambda: False)
    assert finetune._train_dtype(cpu.with_(dtype="bfloat16"), "cpu") == ("bfloat16", False)
    assert finetune._train_dtype(cpu.with_(dtype="auto"), "cpu") == ("float32", False)
    assert finetune._train_dtype(cpu.with_(dtype="float32"), "cpu") == ("float32", False)
    monkeypatch.setattr(finetune, "cpu_prefers_bf16", lambda: True)
    assert finetune._train_dtype(cpu.with_(dtype="auto"), "cpu") == ("bfloat16", False)
    assert finetune._train_dtype(cpu.with_(dtype="float32"), "cpu") == ("float32", False)


def test_raft_paraphrases_are_held_out_together_whatever_their_source_numbers():
    """Two paraphrases of one fact, as RAFT examples, cite their shuffled sources by other
    numbers: the held-out split keeps them together, so the held-out loss is not measured on a
    reply the model trained on."""
    from kit.data import ChatExample
    from kit.finetune import reply_group, split_examples

    def example(i: int, reply: str) -> ChatExample:
        messages = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": reply}]
        return ChatExample(f"ex-{i}", messages, ["kb-001"], False)

    pair = [
        example(0, "Answer: 129 euros.\nSource: Price list [1]"),
        example(1, "Answer: 129 euros.\nSource: Price list [2]"),
    ]
    others = [example(i, f"Answer: {i} metres.\nSource: Manual [1]") for i in range(2, 14)]
    assert reply_group(pair[0].messages[-1]["content"]) == reply_group(
        pair[1].messages[-1]["content"]
    )
    assert reply_group("A [1-2].\nSource: B [2]; A [1]") == "A.\nSource: A; B"
    for seed in range(12):
        train, held = split_examples(pair + others, n_eval=3, seed=seed)
        assert len(held) >= 1
        in_held = {e.id for e in held} & {"ex-0", "ex-1"}
        assert in_held in (set(), {"ex-0", "ex-1"}), (seed, in_held)


def test_replacing_the_shared_adapter_says_which_settings_differ(run_a, capsys):
    """An exercise's tweaked run into the profile's folder replaces the adapter the notebooks
    reuse: it says so, naming what differs, so the retraining that follows is no surprise."""
    from kit.finetune import _say_what_is_replaced

    settings = dict(run_a.settings)
    _say_what_is_replaced(run_a.adapter_dir, settings)
    assert capsys.readouterr().out == ""  # same settings: the same adapter again
    profile = {**settings["profile"], "learning_rate": 0.5}
    _say_what_is_replaced(run_a.adapter_dir, {**settings, "profile": profile})
    said = capsys.readouterr().out
    assert "replaces the adapter" in said and "profile.learning_rate" in said


def test_an_adapter_is_not_reused_on_a_base_with_other_weights(run_a):
    """A base model folder of yours saved again (new weights, same name): its old adapter is
    trained again, not reused."""
    from kit.adapters import read_adapter_info
    from kit.finetune import reusable_run

    saved = read_adapter_info(run_a.adapter_dir)["base"]
    assert reusable_run(run_a.adapter_dir, run_a.settings, saved) is not None
    other = {**saved, "weights": "0" * 16}
    assert reusable_run(run_a.adapter_dir, run_a.settings, other) is None
    assert reusable_run(run_a.adapter_dir, run_a.settings) is not None  # no fingerprint: as before
