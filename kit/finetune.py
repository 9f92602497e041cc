"""Fine-tune: teach the generator a house style (or your data) with LoRA, on a CPU in minutes.

One call does the whole stage::

    result = train_adapter()                       # bundled style set, the profile of this machine
    model, tokenizer = load_adapter(result.adapter_dir)
    answers = answer_questions(model, tokenizer, load_qa("test"))

The two objects that define a run are the ones the peft and transformers examples build, and
they can be yours: :func:`lora_config` and :func:`training_arguments` give the profile's, and
``train_adapter(lora_config=config, args=args)`` trains with them once you changed a field.

What happens inside :func:`train_adapter`:

1. the examples are loaded and validated (:mod:`kit.chat_data`), a slice is held out for the
   evaluation loss (whole groups of examples sharing a reply, so it is not seen in paraphrase);
2. each example is rendered with the chat template, the loss only on the assistant's reply;
3. the base model gets small trainable LoRA matrices (peft) next to its frozen weights;
4. the transformers ``Trainer`` trains them, with batches of similar lengths padded only to
   their longest example, bfloat16 weights on CPUs that compute in bfloat16, the output layer
   evaluated only where there is something to learn, a progress bar, a live loss curve in
   notebooks, the held-out loss a few times, and checkpoints to resume from;
5. the adapter is saved atomically with a fingerprint of its base model (:mod:`kit.adapters`).

A run is reproducible: same data, settings and seed give the same loss curve, and a run stopped
and resumed from its last checkpoint gives the same losses as one that never stopped.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

# torch, transformers and peft load with this module anyway: its callbacks subclass transformers'
# TrainerCallback, which imports all three. matplotlib, pandas and IPython are imported inside the
# functions that draw a figure, build a table or talk to a notebook (slow to import, or optional).
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from kit.adapters import (
    AdapterError,
    adapter_weights_hash,
    adapters_dir,
    attach_adapter,
    base_fingerprint,
    check_adapter,
    fingerprint_mismatch,
    load_adapter,
    merge_adapter,
    read_adapter_info,
    refuse_foreign,
    save_adapter,
    style_dir,
)
from kit.chat_data import (
    IGNORE_INDEX,
    FormatReport,
    PadToLongest,
    format_example,
    format_examples,
    length_grouped_batches,
    load_examples,
)
from kit.citations import bracketed_ids, is_abstention
from kit.data import ChatExample, DataError, QARecord, style_compliant
from kit.generate import (
    BATCH_SIZE,
    DEFAULT_SYSTEM,
    Answer,
    Generation,
    Plan,
    chat_messages,
    run_plans,
)
from kit.inputs import user_path
from kit.models import best_device, cpu_prefers_bf16, load_generator, pick_generator
from kit.processes import is_main_process, largest, main_decides, world_size
from kit.profiles import Profile, resolve_profile
from kit.runtime import in_notebook, lock_file, peak_memory_mb

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "lora_config",
    "training_arguments",
    "AdapterError",
    "DataError",
    "FinetuneError",
    "StopAfterStep",
    "TrainResult",
    "answer_questions",
    "format_example",
    "load_adapter",
    "merge_adapter",
    "reply_loss",
    "side_by_side",
    "train_adapter",
]

RUN_FILE = "kit-run.json"  # in the checkpoints folder: the settings a resume must match


class FinetuneError(RuntimeError):
    """Training could not go on (NaN loss, out of memory, a resume that does not match)."""


@dataclass
class TrainResult:
    """What a fine-tuning run produced and measured.

    adapter_dir: the saved adapter (None if the run was stopped before its last step);
    losses / eval_losses: (step, loss) pairs, training loss every step and held-out loss;
    train_seconds: wall time of the training loop (this session, evaluation included);
    tokens_seen: real (non-padding) tokens trained on, all sessions;
    useful_tokens_per_s: real tokens per second of training, this session, evaluation excluded;
    peak_mem_mb: peak memory of this process (CPU: resident set size; GPU: allocated).
    """

    adapter_dir: Path | None
    output_dir: Path
    profile: str
    losses: list[tuple[int, float]]
    eval_losses: list[tuple[int, float]]
    steps: int
    max_steps: int
    train_seconds: float
    tokens_seen: int
    useful_tokens_per_s: float
    peak_mem_mb: float
    train_examples: int
    eval_examples: int
    format_report: FormatReport | None = None
    resumed_from_step: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        """True when the run reached its last step (and saved the adapter)."""
        return self.steps >= self.max_steps and self.adapter_dir is not None

    @property
    def final_loss(self) -> float:
        """Training loss at the last step (NaN if none)."""
        return self.losses[-1][1] if self.losses else float("nan")

    @property
    def final_eval_loss(self) -> float:
        """Held-out loss at the last evaluation (NaN if none)."""
        return self.eval_losses[-1][1] if self.eval_losses else float("nan")

    def summary(self) -> str:
        """One readable paragraph about the run."""
        state = "complete" if self.completed else f"stopped at step {self.steps}"
        if self.resumed_from_step:  # the seconds below are this session's only
            state += f", continued from step {self.resumed_from_step}"
        return (
            f"{self.profile} profile, {state}: {self.steps}/{self.max_steps} steps on "
            f"{self.train_examples} examples in {self.train_seconds:.0f} s"
            f"{' (since it continued)' if self.resumed_from_step else ''}, "
            f"{self.useful_tokens_per_s:.0f} useful tokens/s, "
            f"peak memory {self.peak_mem_mb:.0f} MB; "
            f"loss {self.losses[0][1] if self.losses else float('nan'):.3f} -> "
            f"{self.final_loss:.3f}, held-out loss {self.final_eval_loss:.3f}."
        )

    def plot(self):
        """A matplotlib Figure of the training and held-out loss curves."""
        return draw_losses(self.losses, self.eval_losses)


# --------------------------------------------------------------------------- the loss


def reply_loss(model: Any, inputs: dict[str, Any], num_items: Any = None) -> Any:
    """Mean cross-entropy over the reply tokens (labels != -100) of a right-padded batch.

    Faster than ``model(**inputs).loss`` on a CPU in two ways, same value: the output layer (a
    576 x 49,152 matrix for SmolLM2, a fifth of the model's compute) runs only where a label is
    learned, not on the prompt or padding; and no attention mask is passed, because with right
    padding no real token can see a padding token anyway (attention looks only backwards), which
    keeps the fast causal attention path. ``num_items`` (the Trainer's count of label tokens over
    all accumulated batches) makes gradient accumulation exact.

    With several training processes the model arrives wrapped in DistributedDataParallel, whose
    own forward must run for the gradients to be averaged: the output layer then runs on the
    positions where any row of the batch learns a token (``logits_to_keep``), a little more than
    the exact ones; the loss is the same.
    """
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        positions = keep.any(dim=0).nonzero().squeeze(1)
        out = model(input_ids=inputs["input_ids"], use_cache=False, logits_to_keep=positions)
        logits, targets = out.logits[keep[:, positions]], labels[:, positions][keep[:, positions]]
    else:
        lm = model.get_base_model() if hasattr(model, "get_base_model") else model
        body = getattr(lm, lm.base_model_prefix)
        hidden = body(input_ids=inputs["input_ids"], use_cache=False).last_hidden_state
        logits, targets = lm.get_output_embeddings()(hidden[:, :-1][keep]), labels[keep]
    total = F.cross_entropy(logits.float(), targets, reduction="sum")
    denom = num_items if num_items is not None else keep.sum().clamp(min=1)
    return total / denom


def eval_loss(model: Any, features: Sequence[dict], batch_size: int = 8) -> float:
    """Token-weighted mean reply loss of ``model`` over formatted examples (no gradients)."""
    collate = PadToLongest(0)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            batch = collate([features[i] for i in order[b : b + batch_size]])
            batch = {k: v.to(model.device) for k, v in batch.items()}
            n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(reply_loss(model, batch)) * n
            count += n
    model.train(was_training)
    return total / max(count, 1)


# --------------------------------------------------------------------------- callbacks


class StopAfterStep(TrainerCallback):
    """Stop training after ``step`` optimizer steps, as if the run had been killed there.

    With ``save=True`` (default) a checkpoint is written at that step first, so
    ``train_adapter(..., resume=True)`` continues from exactly there.
    """

    def __init__(self, step: int, save: bool = True):
        self.step, self.save = step, save

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_save = control.should_save or self.save
            control.should_training_stop = True
        return control


class StopOnSignal(TrainerCallback):
    """SIGTERM (a killed job, a runtime or laptop shutting down) ends training at the end of the
    current step with a checkpoint written, as :class:`StopAfterStep` does, so
    ``train_adapter(..., resume=True)`` continues from there; a second SIGTERM is not held back.
    Ctrl-C stops at once instead.

    ``with stopper.listening():`` installs the handler (main thread only) and restores the
    previous one on the way out; ``received`` is the signal number once one arrived.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: Any = signal.SIG_DFL

    @contextmanager
    def listening(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # Python delivers signals to the main thread only
            return
        self._previous = signal.signal(signal.SIGTERM, self._note)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, self._previous)

    def _note(self, signum: int, frame: Any) -> None:
        self.received = signum
        signal.signal(signal.SIGTERM, self._previous)  # a second SIGTERM is not held back

    def on_step_end(self, args, state, control, **kwargs):
        # several processes: all stop at the step where the first one heard the signal
        self.received = largest(self.received or 0) or None
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True
        return control


class _LossGuard(TrainerCallback):
    """Stop with a clear error when training diverges: a NaN or infinite loss or gradient, or a
    loss that shot far above where it started (gradient clipping often turns a too-large learning
    rate into a loss stuck near ln(vocabulary size) rather than a NaN)."""

    def __init__(self, learning_rate: float):
        self.learning_rate = learning_rate
        self.first: float | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        loss, grad = logs.get("loss"), logs.get("grad_norm")
        if loss is None:
            return
        if self.first is None and math.isfinite(loss):
            self.first = loss
        bad = not math.isfinite(loss) or (grad is not None and not math.isfinite(grad))
        blown = self.first is not None and loss > 2 * self.first + 2
        if bad or blown:
            what = f"became {loss:g}" if bad else f"jumped from {self.first:.2f} to {loss:.2f}"
            raise FinetuneError(
                f"The training loss {what} at step {state.global_step}: training diverged, the "
                f"updates are too large. Lower the learning rate (now {self.learning_rate:g}), "
                f"e.g. to {self.learning_rate / 10:g}, and train again. No adapter was saved."
            )


class LiveLossPlot(TrainerCallback):
    """Redraw a loss-curve figure in the notebook every ``every`` steps (nothing when headless)."""

    def __init__(self, every: int = 5):
        self.every = max(1, every)
        self.handle = None
        self.losses: list[tuple[int, float]] = []
        self.eval_losses: list[tuple[int, float]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        if in_notebook():
            from IPython.display import HTML, display  # optional: only inside a notebook

            self.handle = display(
                HTML("<i>loss curve: waiting for the first steps</i>"), display_id=True
            )

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.losses.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.eval_losses.append((state.global_step, float(logs["eval_loss"])))
            self._draw()
        elif "loss" in logs and state.global_step % self.every == 0:
            self._draw()

    def on_train_end(self, args, state, control, **kwargs):
        self._draw()

    def _draw(self) -> None:
        if self.handle is None or not self.losses:
            return
        import matplotlib.pyplot as plt  # slow to import: only once there is a curve to draw

        fig = draw_losses(self.losses, self.eval_losses)
        self.handle.update(fig)
        plt.close(fig)


def draw_losses(losses: Sequence[tuple[int, float]], eval_losses: Sequence[tuple[int, float]]):
    """A small matplotlib Figure: training loss per step and held-out loss."""
    import matplotlib.pyplot as plt  # slow to import: only when a figure is drawn

    fig, ax = plt.subplots(figsize=(6, 3.2))
    if losses:
        ax.plot(*zip(*losses, strict=True), label="training loss", color="#4c72b0")
    if eval_losses:
        ax.plot(*zip(*eval_losses, strict=True), "o-", label="held-out loss", color="#dd8452")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (reply tokens)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- data split


def split_examples(
    examples: Sequence[ChatExample], n_eval: int, seed: int = 42
) -> tuple[list[ChatExample], list[ChatExample]]:
    """Hold out at most ``n_eval`` examples for the evaluation loss; return (train, held out).

    Examples that share the same reply (paraphrased questions about one fact) stay together, so
    the held-out loss measures replies the model has not been trained on (:func:`reply_group`:
    RAFT replies that differ only in the numbers of their shuffled sources are one); a group is
    held out only if it fits in ``n_eval``. Never held out: replies that decline ("I don't
    know", shared by many questions: a behaviour to learn, not a fact to test) and examples that
    carry the canary (the privacy lesson trains on them on purpose). When no group fits,
    nothing is held out and the run has no held-out loss.
    """
    if n_eval <= 0 or len(examples) < 4:
        return list(examples), []
    n_eval = min(n_eval, len(examples) // 4)
    groups: dict[str, list[ChatExample]] = {}
    for ex in examples:
        groups.setdefault(reply_group(ex.messages[-1]["content"]), []).append(ex)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    held: list[ChatExample] = []
    for k in keys:
        if _kept_for_training(groups[k]):
            continue
        if len(held) + len(groups[k]) <= n_eval:
            held += groups[k]
    held_ids = {id(e) for e in held}
    return [e for e in examples if id(e) not in held_ids], held


def reply_group(reply: str) -> str:
    """What :func:`split_examples` groups a reply by: the reply without its source numbers
    (``[2]``) and with its ``Source:`` line's titles in a fixed order. Two paraphrases of one
    fact turned into RAFT examples see their sources shuffled, so one ends ``Source: Price list
    [1]`` and the other ``Source: Price list [2]``: still the same fact to hold out together."""
    lines = []
    for line in reply.splitlines():
        line = re.sub(r"\s*\[\d+(?:\s*[,-]\s*\d+)*\]", "", line)
        if line.startswith("Source:"):
            titles = sorted(t.strip() for t in line.removeprefix("Source:").split(";"))
            line = "Source: " + "; ".join(titles)
        lines.append(line)
    return "\n".join(lines)


def _kept_for_training(group: Sequence[ChatExample]) -> bool:
    """True for a group :func:`split_examples` never holds out: a declining reply, the canary."""
    return is_abstention(group[0].messages[-1]["content"]) or any(e.contains_canary for e in group)


# --------------------------------------------------------------------------- small helpers


def _train_dtype(profile: Profile, device: str) -> tuple[str, bool]:
    """(weights dtype, fp16 autocast) for this device. ``auto``: bf16 where the hardware is
    faster in it; ``bfloat16`` asked for: bf16 wherever the device computes in it (a CPU always
    can, slowly without native bf16), else float32."""
    if profile.dtype not in ("bfloat16", "auto"):
        return profile.dtype, False
    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bfloat16", False
        return "float32", True  # e.g. a T4: fp32 weights, fp16 mixed precision
    if device == "cpu" and (profile.dtype == "bfloat16" or cpu_prefers_bf16()):
        return "bfloat16", False
    return "float32", False


def _latest_checkpoint(folder: Path) -> Path | None:
    found = [
        p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()
    ]
    done = [p for p in found if _complete_checkpoint(p)]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _complete_checkpoint(folder: Path) -> bool:
    """True when ``folder`` holds a readable ``trainer_state.json`` (written last by the Trainer:
    a save cut short by a kill or a full disk leaves it missing or half-written)."""
    try:
        return isinstance(json.loads((folder / "trainer_state.json").read_text("utf-8")), dict)
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def _data_hash(features: Sequence[dict]) -> str:
    digest = hashlib.sha256()
    for f in features:
        digest.update(json.dumps([f["input_ids"], f["labels"]]).encode())
    return digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A setting as it is recorded: enums by their value, sets sorted (their order changes from
    one Python process to the next)."""
    if isinstance(value, Enum):
        return value.value
    return sorted(value) if isinstance(value, set | frozenset) else value


# --------------------------------------------------------------------------- the LoRA config


def lora_config(profile: str | Profile | None = None) -> LoraConfig:
    """The profile's LoRA settings as the peft ``LoraConfig`` that :func:`train_adapter` uses:
    rank ``r``, ``lora_alpha`` (the update is scaled by alpha / r), dropout and the modules that
    get an adapter. Change one and pass it back: ``train_adapter(lora_config=config)``."""
    return _lora_for(resolve_profile(profile))


def _lora_for(prof: Profile) -> LoraConfig:
    targets = list(prof.lora_targets)
    return LoraConfig(
        r=prof.lora_r,
        lora_alpha=prof.lora_alpha,
        lora_dropout=prof.lora_dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        task_type="CAUSAL_LM",
    )


def _adopt_lora(config: Any, prof: Profile) -> tuple[LoraConfig, Profile, dict[str, Any]]:
    """A LoraConfig the learner built -> (a copy for causal LM, the profile with its shape, every
    other field where it differs from the profile's config: recorded, so reuse and resume tell
    the two apart). FinetuneError if it is not a LoraConfig."""
    if not isinstance(config, LoraConfig):
        raise FinetuneError(
            f"lora_config must be a peft LoraConfig (e.g. kit.finetune.lora_config(profile)), "
            f"not {type(config).__name__}."
        )
    config = copy.deepcopy(config)
    config.task_type = config.task_type or "CAUSAL_LM"
    targets = config.target_modules
    targets = [targets] if isinstance(targets, str) else sorted(targets or ())
    if set(targets) == set(prof.lora_targets):  # the same modules: the same profile, reusable
        targets = list(prof.lora_targets)
    prof = prof.with_(
        lora_r=int(config.r),
        lora_alpha=int(config.lora_alpha),
        lora_dropout=float(config.lora_dropout),
        lora_targets=tuple(targets),
    )
    same_shape, mine = _lora_for(prof).to_dict(), config.to_dict()
    skip = {"task_type", "base_model_name_or_path", "revision", "inference_mode", "peft_type"}
    extras = {
        k: repr(_plain(v))
        for k, v in sorted(mine.items())
        if k not in skip and v != same_shape.get(k)
    }
    return config, prof, extras


# --------------------------------------------------------------------------- the TrainingArguments

SEED = 42  # a run's seed unless told otherwise: data sample, held-out split, batch order, LoRA

_WHY_RESUME = "checkpoints every save_steps in <output_dir>/checkpoints are what resume=True uses"
_WHY_LOG = "the loss of every step feeds the loss curve and the divergence guard"
_WHY_DATA = "the kit feeds its own length-grouped batches, the same order on every run and resume"
_WHY_MACHINE = (
    "the device and precision are chosen for this machine (force a precision with "
    "train_adapter(dtype='float32') or dtype='bfloat16')"
)
# The TrainingArguments fields train_adapter sets itself, even with the learner's ``args``; a
# value other than transformers' default or the kit's own is refused, with the reason.
_KIT_FIELDS = {
    "output_dir": _WHY_RESUME,
    "save_strategy": _WHY_RESUME,
    "save_only_model": _WHY_RESUME,
    "ignore_data_skip": _WHY_RESUME,
    "eval_strategy": "the held-out loss is measured every eval_steps when there is a held-out set",
    "logging_strategy": _WHY_LOG,
    "logging_steps": _WHY_LOG,
    "logging_nan_inf_filter": _WHY_LOG,
    "remove_unused_columns": _WHY_DATA,
    "train_sampling_strategy": _WHY_DATA,
    "data_seed": _WHY_DATA,
    "dataloader_num_workers": _WHY_DATA,
    "prediction_loss_only": _WHY_DATA,
    "use_cpu": _WHY_MACHINE,
    "fp16": _WHY_MACHINE,
    "bf16": _WHY_MACHINE,
    "report_to": "the kit shows progress itself and runs offline: no logging service",
    "accelerator_config": "with several processes each one trains on its part of every batch, "
    "so that a step is the same batch as in one process",
}
# Profile fields and the TrainingArguments fields that set the same knob: with ``args``, the
# keyword argument is refused.
_SAME_KNOB = {
    "learning_rate": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "max_steps": "max_steps",
    "epochs": "num_train_epochs",
    "warmup_ratio": "warmup_steps",
    "eval_steps": "eval_steps",
    "save_steps": "save_steps",
}
# The learner's fields that reach a run's settings as Profile fields (so ``args.learning_rate =
# 1e-3`` trains the same run as ``learning_rate=1e-3``), or as its seed and number of steps.
_IN_PROFILE = {
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "eval_steps",
    "save_steps",
    "seed",
}
# Fields that change neither the weights nor the losses: not part of a run's settings.
_BOOKKEEPING = {
    "run_name", "project", "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id",
    "push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo",
    "hub_always_push", "hub_revision", "disable_tqdm", "log_level", "log_level_replica",
    "log_on_each_node", "logging_first_step", "save_total_limit", "save_on_each_node",
    "skip_memory_metrics", "do_train", "do_eval", "do_predict", "resume_from_checkpoint",
    "dataloader_pin_memory", "dataloader_persistent_workers", "dataloader_prefetch_factor",
    "include_num_input_tokens_seen", "ddp_find_unused_parameters",
}  # fmt: skip


def training_arguments(
    profile: str | Profile | None = None,
    output_dir: str | Path | None = None,
    max_steps: int | None = None,
    evaluate: bool = True,
    seed: int = SEED,
    fp16: bool = False,
) -> TrainingArguments:
    """The transformers ``TrainingArguments`` :func:`train_adapter` runs the Trainer with.

    In: the profile (batch size, learning rate, ...); the checkpoint folder (None: transformers'
    placeholder, which train_adapter replaces with ``<output_dir>/checkpoints``); the number of
    optimizer steps (None: the profile's ``max_steps``; a profile that counts epochs gives
    ``max_steps=-1``, its ``num_train_epochs``, and the warm-up, evaluation and checkpoint steps
    as shares of the run, turned into steps once the data fixes their number); whether there is
    a held-out set to evaluate; the seed; fp16 mixed precision. The held-out loss and the
    checkpoints come about 4 times per run unless the profile's ``eval_steps`` / ``save_steps``
    say otherwise. Change a field and pass them back: ``train_adapter(args=args)``. Under
    torchrun (several processes) each batch of ``batch_size`` is split between the processes
    (``split_batches``), so that a step trains on the same examples as in one process.
    """
    prof = resolve_profile(profile)
    steps = max_steps if max_steps is not None else prof.max_steps
    processes = world_size()  # >1 under torchrun / accelerate launch
    if steps > 0:
        warmup, every = round(prof.warmup_ratio * steps), max(1, math.ceil(steps / 4))
    else:
        warmup, every = prof.warmup_ratio, 0.25  # shares of the run, as transformers reads them
    return TrainingArguments(
        output_dir=None if output_dir is None else str(output_dir),
        # with several processes, a batch is split between them (below): still one step's batch
        per_device_train_batch_size=prof.batch_size,
        per_device_eval_batch_size=math.ceil(max(prof.batch_size, 8) / processes) * processes,
        gradient_accumulation_steps=prof.grad_accum,
        learning_rate=prof.learning_rate,
        max_steps=steps if steps > 0 else -1,
        num_train_epochs=prof.epochs,  # only when max_steps is -1
        lr_scheduler_type="cosine",  # down to 0 by the last step, after a short warm-up
        warmup_steps=warmup,
        logging_steps=1,  # a loss point per step for the curve
        logging_nan_inf_filter=False,  # a NaN must reach the loss guard, not be hidden
        eval_strategy="steps" if evaluate else "no",
        eval_steps=prof.eval_steps or every,
        save_strategy="steps",
        save_steps=prof.save_steps or every,
        save_total_limit=2,
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="sequential",  # the kit orders the batches itself (by length)
        remove_unused_columns=False,
        prediction_loss_only=True,
        use_cpu=best_device() == "cpu",
        fp16=fp16,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
        accelerator_config={"split_batches": processes > 1},
        ddp_find_unused_parameters=False,  # several processes: every LoRA matrix gets a gradient
    )


@cache
def _default_args() -> TrainingArguments:
    """transformers' own defaults (a field left at its default is not a choice to refuse)."""
    return TrainingArguments()


def _adopt_args(
    args: Any, prof: Profile, seed: int | None, overrides: dict[str, Any]
) -> tuple[TrainingArguments, Profile, int]:
    """The learner's TrainingArguments -> (a checked copy, the profile with their learning rate,
    batch size, accumulation and length, their seed). FinetuneError when they are not
    TrainingArguments, or keyword arguments set the same knobs."""
    if not isinstance(args, TrainingArguments):
        raise FinetuneError(
            "args must be transformers TrainingArguments (e.g. kit.finetune.training_arguments("
            f"profile)), not {type(args).__name__}."
        )
    clash = sorted(k for k in overrides if k in _SAME_KNOB)
    if clash:
        raise FinetuneError(
            f"args holds the training settings: change {[_SAME_KNOB[k] for k in clash]} on it "
            f"(e.g. args.{_SAME_KNOB[clash[0]]} = ...) instead of passing {clash} as keyword "
            "arguments."
        )
    if seed is not None and seed != args.seed:
        raise FinetuneError(
            f"seed={seed} but args.seed={args.seed}: set the seed on the arguments only."
        )
    args = dataclasses.replace(args)  # a copy, checked as transformers checks it; theirs stays
    if args.max_steps > 0:
        length = {"max_steps": args.max_steps}
    else:
        length = {"max_steps": 0, "epochs": float(args.num_train_epochs)}
    wanted = {
        "learning_rate": args.learning_rate,
        "batch_size": args.per_device_train_batch_size,
        "grad_accum": args.gradient_accumulation_steps,
        **length,
    }
    changed = {k: v for k, v in wanted.items() if getattr(prof, k) != v}
    return args, prof.with_(**changed) if changed else prof, args.seed


def _check_kit_fields(
    args: TrainingArguments, prof: Profile, ckpt_dir: Path, seed: int, fp16: bool
) -> None:
    """FinetuneError if the learner's arguments set a field train_adapter sets itself to
    something else than transformers' default or the kit's value, or another checkpoint folder."""
    default, where = _default_args(), Path(args.output_dir).expanduser().resolve()
    if args.output_dir != default.output_dir and where != ckpt_dir.expanduser().resolve():
        raise FinetuneError(
            f"args.output_dir is {args.output_dir!r}, but this run keeps its checkpoints in "
            f"{ckpt_dir} (<output_dir>/checkpoints, where resume=True finds them). Pass the "
            "folder as train_adapter(output_dir=...) and leave it out of the arguments "
            "(training_arguments(profile) builds them without one)."
        )
    kit = training_arguments(prof, ckpt_dir, 1, evaluate=True, seed=seed, fp16=fp16)
    bad = [
        name
        for name in _KIT_FIELDS
        if name != "output_dir"
        and getattr(args, name) not in (getattr(default, name), getattr(kit, name))
    ]
    if bad:
        why = "; ".join(dict.fromkeys(_KIT_FIELDS[name] for name in bad))
        raise FinetuneError(
            f"train_adapter sets {bad} itself: {why}. Leave them at their defaults (as "
            "training_arguments(profile) builds them)."
        )


def _as_steps(value: float, max_steps: int, rounding: Any) -> int:
    """A number of steps, or a share of the run (between 0 and 1) as steps."""
    return int(value) if not 0 < value < 1 else int(rounding(value * max_steps))


def _learner_args(
    args: TrainingArguments, prof: Profile, kit: TrainingArguments
) -> tuple[TrainingArguments, Profile, dict[str, str]]:
    """The arguments of a run with the learner's ``args``: every field theirs except those the
    kit sets (``_KIT_FIELDS``, from ``kit``, the profile's arguments for this run), shares of the
    run turned into steps (warm-up rounded to the nearest step, evaluation and checkpoints up).
    Out: (the arguments, the profile with their eval_steps / save_steps, every other field that
    differs from ``kit``: recorded, so reuse and resume tell the runs apart)."""
    n = kit.max_steps
    evals = kit.eval_steps if args.eval_steps is None else _as_steps(args.eval_steps, n, math.ceil)
    saves = kit.save_steps if args.save_steps is None else _as_steps(args.save_steps, n, math.ceil)
    warmup = _as_steps(args.warmup_steps, n, round)
    final = dataclasses.replace(
        args,
        **{name: getattr(kit, name) for name in _KIT_FIELDS},
        max_steps=n,
        warmup_steps=warmup,
        eval_steps=evals,
        save_steps=saves,
    )
    schedule = {"eval_steps": evals, "save_steps": saves}
    changed = {k: v for k, v in schedule.items() if v != getattr(kit, k)}
    skip = set(_KIT_FIELDS) | _IN_PROFILE | _BOOKKEEPING
    extras = {
        f.name: repr(_plain(getattr(final, f.name)))
        for f in dataclasses.fields(final)
        if f.name not in skip and getattr(final, f.name) != getattr(kit, f.name)
    }
    return final, prof.with_(**changed) if changed else prof, extras


# --------------------------------------------------------------------------- training


@dataclass
class _Knobs:
    """What a run trains, once the profile, the overrides, the LoRA config and the learner's
    TrainingArguments are settled (``args`` None: the profile's)."""

    prof: Profile
    seed: int
    lora: LoraConfig | None  # None: continue the LoRA of init_adapter
    lora_extras: dict[str, Any] = field(default_factory=dict)
    init_id: str | None = None
    args: TrainingArguments | None = None


@dataclass
class _Batches:
    """The formatted examples in the fixed order training sees them, and what they add up to."""

    features: list[dict]
    eval_features: list[dict]
    report: FormatReport
    ordered: list[dict]  # the training examples, batch after batch, all epochs
    step_tokens: list[int]  # real tokens per optimizer step
    max_steps: int


def train_adapter(
    examples: Any = None,
    profile: str | Profile | None = None,
    output_dir: str | Path | None = None,
    base: str | None = None,
    resume: bool | str | Path = False,
    callbacks: Sequence[TrainerCallback] | None = None,
    live_plot: bool = False,
    seed: int | None = None,
    system: str = DEFAULT_SYSTEM,
    reuse: bool = False,
    init_adapter: str | Path | None = None,
    lora_config: LoraConfig | None = None,
    args: TrainingArguments | None = None,
    **overrides: Any,
) -> TrainResult:
    """Fine-tune ``base`` with LoRA on ``examples``; save the adapter; return a TrainResult.

    In:
      examples: None (the bundled house-style set), a list of ChatExample / dicts, or a path to
        your JSONL or CSV file (see :func:`kit.chat_data.load_examples`);
      profile: "smoke", "cpu", "gpu", a Profile, or None (picked for this machine);
      base: the model to fine-tune; default the base of ``init_adapter`` if given, else the
        profile's ``generator`` (see :func:`kit.models.pick_generator`: the bundled model
        offline);
      output_dir: where the adapter (``<output_dir>/adapter``) and checkpoints
        (``<output_dir>/checkpoints``) go; default ``<kit cache>/adapters/<data>-<profile>``;
      resume: False (start over: old checkpoints there are removed), True (continue from the last
        checkpoint in output_dir, if any), ``"auto"`` (continue a run with these settings that
        stopped before its last step, else start over; what ``python -m kit run`` uses, so that
        running it again after a stop continues), or the path of one checkpoint;
      callbacks: extra transformers TrainerCallbacks (e.g. ``StopAfterStep(6)``);
      live_plot: redraw a loss curve in the notebook as training goes;
      seed: the data sample, held-out split, batch order and LoRA start (default 42, or
        ``args.seed``);
      reuse: if output_dir already holds a finished adapter trained with exactly these
        settings (base, data, profile, seed; e.g. prebuilt by ``python -m kit workshop
        prepare``), return it instead of training again (see :func:`reusable_run`);
      init_adapter: an adapter folder to start from instead of a fresh LoRA (e.g. the style
        adapter, so that RAFT training adds retrieval skills on top of the house style); its
        LoRA shape (rank, alpha, dropout, targets) is kept, and ``lora_*`` overrides are refused;
      lora_config: a peft LoraConfig to train instead of the profile's (start from
        :func:`lora_config`); its rank, alpha, dropout and targets replace the profile's;
      args: transformers TrainingArguments to train with instead of the profile's (start from
        :func:`training_arguments`). Theirs: learning rate, batch size, gradient accumulation,
        max_steps (or num_train_epochs when it is -1), warm-up, scheduler, optimizer and weight
        decay, eval_steps, save_steps, seed and any other field that shapes the result; all of
        it enters the run's settings, so reuse and resume tell runs apart. The kit's: the
        checkpoint folder, save / evaluation / logging strategy, data order, device, precision
        and report_to (a different value is refused, with the reason); shares of the run
        (``warmup_steps=0.05``) become steps once the data fixes the number of steps;
      **overrides: any Profile field, e.g. ``learning_rate=1e-3, max_steps=30, lora_r=4``.
    Raises DataError (bad data), FinetuneError (NaN loss, out of memory, mismatched resume,
    settings that contradict each other), AdapterError (the adapter could not be saved;
    ``init_adapter`` is incomplete or was trained on another base model).
    """
    if init_adapter is not None:  # "~/adapters/style": the user's folder, as load_adapter reads
        init_adapter = Path(init_adapter).expanduser()
    knobs = _settle_knobs(profile, overrides, seed, lora_config, init_adapter, args)
    if base is None and init_adapter is not None:  # continue on the model it was trained on
        base = read_adapter_info(init_adapter)["base"].get("name")
    base = base or pick_generator(knobs.prof.generator)[0]
    train_set, held_out = sample_and_split(
        examples, knobs.prof.train_examples, knobs.prof.eval_examples, knobs.seed
    )
    out = out_dir_for(output_dir, examples, knobs.prof)
    refuse_foreign(out / "adapter")  # what the end of the run would refuse to replace: now
    ckpt_dir = out / "checkpoints"
    # a resume keeps the precision it started with; "auto" picks afresh (a run recorded in
    # another precision then differs in its settings, and starts over)
    recorded = None if resume == "auto" else _recorded_settings(ckpt_dir, resume)
    dtype, fp16 = _precision(knobs.prof, recorded)
    if knobs.args is not None:
        _check_kit_fields(knobs.args, knobs.prof, ckpt_dir, knobs.seed, fp16)
    with training_lock(out):  # a second training into the same folder is refused, not mixed in
        model, tokenizer = _load_base(base, knobs.prof, dtype)
        batches = _plan_batches(tokenizer, train_set, held_out, knobs.prof, knobs.seed, system)
        prof, settings, train_args = _build_config_and_args(
            knobs, batches, base, dtype, fp16, ckpt_dir
        )
        if reuse and resume in (False, "auto"):
            previous = reusable_run(out / "adapter", settings, base_fingerprint(model, base))
            if previous is not None:
                if is_main_process():
                    print(f"Reusing the adapter in {previous.adapter_dir}: same settings.")
                return previous
        if output_dir is None and is_main_process():
            _say_what_is_replaced(out / "adapter", settings)
        resume_from = main_decides(lambda: _prepare_checkpoints(ckpt_dir, resume, settings))
        model = _attach_lora(model, knobs, init_adapter, base)
        trainer, seconds, stopped = _run_trainer(
            model, tokenizer, train_args, batches, prof, callbacks, live_plot, resume_from, out
        )
        result = _collect_result(
            trainer, seconds, batches, settings, resume_from, out, base, system
        )
        if stopped is not None:  # a signal during the last step: the adapter is saved, then stop
            raise SystemExit(128 + stopped)
        return result


@contextmanager
def training_lock(out: Path) -> Iterator[None]:
    """Hold ``<out>/.training.lock`` while a training writes into ``out``.

    A second training into the same folder (another notebook, a second terminal, two
    notebooks with the default folder) gets FinetuneError at once, instead of deleting the
    first one's checkpoints and mixing their adapters. The operating system releases the lock
    when the process ends, also when it is killed (:func:`kit.runtime.lock_file`). Of the
    processes of one launched training (torchrun), the main one holds it for all. A folder that
    cannot be made or written is a FinetuneError (the first thing a run writes is this lock)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only place, or a file where a folder should be
        raise _unwritable(out, err) from None
    held: list[IO[str]] = []
    main_decides(lambda: held.append(_take_lock(out)))  # a refusal stops every process
    try:
        yield
    finally:
        for handle in held:
            handle.close()  # the lock goes with the file's closing


def _unwritable(out: Path, err: OSError) -> FinetuneError:
    """The error for an output folder a run cannot make or write to."""
    return FinetuneError(
        f"{out}: cannot write to this output_dir ({err.strerror or err}); pass another"
    )


def _take_lock(out: Path) -> IO[str]:
    """The open ``<out>/.training.lock``, locked by this process; FinetuneError if another
    process holds it."""
    try:
        handle = (out / ".training.lock").open("a+", encoding="utf-8")
    except OSError as err:  # a folder this user may not write to
        raise _unwritable(out, err) from None
    if not lock_file(handle, wait=False):
        handle.seek(0)
        who = handle.read().strip() or "another process"
        handle.close()
        raise FinetuneError(
            f"Another training is writing into {out} ({who}): wait until it ends, or give "
            "this one another output_dir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()}")
    handle.flush()
    return handle


def _settle_knobs(
    profile: str | Profile | None,
    overrides: dict[str, Any],
    seed: int | None,
    lora_config: Any,
    init_adapter: str | Path | None,
    args: Any,
) -> _Knobs:
    """The profile with the overrides, the LoRA config and the learner's arguments applied, and
    the seed. FinetuneError when they contradict each other or the learning rate is not usable."""
    prof = resolve_profile(profile).with_(**overrides) if overrides else resolve_profile(profile)
    shape = [k for k in overrides if k.startswith("lora_")]
    knobs = _Knobs(prof, SEED if seed is None else seed, None)
    if lora_config is not None:
        if init_adapter:
            raise FinetuneError(
                "init_adapter continues the LoRA of the adapter it starts from: pass lora_config "
                "or init_adapter, not both."
            )
        if shape:
            raise FinetuneError(
                f"lora_config sets the LoRA shape: change {shape} on the config instead "
                "(e.g. config.r = 4), not as keyword arguments."
            )
        knobs.lora, knobs.prof, knobs.lora_extras = _adopt_lora(lora_config, knobs.prof)
    if init_adapter:
        if shape:
            raise FinetuneError(
                f"init_adapter keeps the LoRA shape of the adapter it starts from; drop {shape} "
                "(or leave init_adapter out to train a new LoRA with them)."
            )
        knobs.prof, knobs.init_id = _continue_from(init_adapter, knobs.prof)
    elif knobs.lora is None:
        knobs.lora = _lora_for(knobs.prof)
    if args is not None:
        knobs.args, knobs.prof, knobs.seed = _adopt_args(args, knobs.prof, seed, overrides)
    rate = knobs.prof.learning_rate
    if not (rate > 0 and math.isfinite(rate)):
        raise FinetuneError(f"learning_rate must be a positive number, not {rate}.")
    if knobs.prof.max_steps == 0 and knobs.prof.epochs <= 0:
        raise FinetuneError("Nothing to train: give max_steps > 0 or epochs > 0.")
    size, processes = knobs.prof.batch_size, world_size()
    if size % processes:
        raise FinetuneError(
            f"batch_size={size} cannot be split between {processes} training processes: pass a "
            f"multiple of {processes} (e.g. batch_size={math.ceil(size / processes) * processes})."
        )
    return knobs


def sample_and_split(
    examples: Any, train_examples: int, eval_examples: int, seed: int
) -> tuple[list[ChatExample], list[ChatExample]]:
    """Load and check the examples (None: the bundled style set), sample ``train_examples`` of
    them (0: all), hold at most ``eval_examples`` out (:func:`split_examples`; none when no group
    of examples fits): (train, held out). The training and ``kit.finetune_bench`` split this
    way. DataError if the examples are not usable."""
    data = load_examples(examples)
    if train_examples and len(data) > train_examples:
        data = random.Random(seed).sample(data, train_examples)
    return split_examples(data, eval_examples, seed)


def _precision(prof: Profile, recorded: dict | None) -> tuple[str, bool]:
    """(weights dtype, fp16 autocast): a resumed run keeps the precision it started with."""
    if recorded:
        return recorded["dtype"], recorded.get("fp16", False)
    return _train_dtype(prof, best_device())


def _load_base(base: str, prof: Profile, dtype: str) -> tuple[Any, Any]:
    """The base model in the training precision, and its tokenizer."""
    # The bundled model's bf16 folder upcast to float32 is exact: no second conversion needed.
    model, tokenizer = load_generator(base, dtype=prof.dtype, device=best_device())
    if str(model.dtype).replace("torch.", "") != dtype:
        model = model.to(getattr(torch, dtype))
    return model, tokenizer


def _held_out_features(
    tokenizer: Any, held_out: Sequence[ChatExample], max_len: int, system: str
) -> list[dict[str, list[int]]]:
    """The held-out examples formatted; none (with a warning) when none fits ``max_len``: the
    run then trains without a held-out loss rather than not at all."""
    if not held_out:
        return []
    try:
        return format_examples(tokenizer, held_out, max_len, system, what="held-out")[0]
    except DataError as err:
        warnings.warn(f"{err} This run has no held-out loss.", stacklevel=3)
        return []


def _plan_batches(
    tokenizer: Any,
    train_set: Sequence[ChatExample],
    held_out: Sequence[ChatExample],
    prof: Profile,
    seed: int,
    system: str,
) -> _Batches:
    """Format the examples and fix the order of length-grouped batches, so every run (and
    resume) sees the same batches; the number of steps follows from the data and the profile."""
    features, report = format_examples(tokenizer, train_set, prof.max_seq_len, system)
    eval_features = _held_out_features(tokenizer, held_out, prof.max_seq_len, system)
    if len(features) < prof.batch_size:
        raise DataError(
            f"Only {len(features)} training example(s) for a batch size of {prof.batch_size}: "
            "give more examples or pass a smaller batch_size."
        )
    full_batches = len(features) // prof.batch_size
    steps_per_epoch = max(1, full_batches // prof.grad_accum)
    if prof.max_steps > 0:
        max_steps = prof.max_steps
    else:
        max_steps = max(1, round(prof.epochs * steps_per_epoch))
    epochs = math.ceil(max_steps / steps_per_epoch)
    lengths = [len(f["input_ids"]) for f in features]
    batches = [
        b
        for e in range(epochs)
        for b in length_grouped_batches(lengths, prof.batch_size, 1, seed + e)
        if len(b) == prof.batch_size
    ][: max_steps * prof.grad_accum]
    step_tokens = [
        sum(lengths[i] for b in batches[s * prof.grad_accum : (s + 1) * prof.grad_accum] for i in b)
        for s in range(max_steps)
    ]
    ordered = [features[i] for b in batches for i in b]
    return _Batches(features, eval_features, report, ordered, step_tokens, max_steps)


def _build_config_and_args(
    knobs: _Knobs, batches: _Batches, base: str, dtype: str, fp16: bool, ckpt_dir: Path
) -> tuple[Profile, dict[str, Any], TrainingArguments]:
    """The Trainer's arguments (the profile's, or the learner's with the kit's fields) and the
    run's settings: what reuse and resume compare. Out: (profile, settings, arguments)."""
    prof, evaluate = knobs.prof, bool(batches.eval_features)
    args = training_arguments(prof, ckpt_dir, batches.max_steps, evaluate, knobs.seed, fp16)
    training: dict[str, str] = {}
    if knobs.args is not None:
        args, prof, training = _learner_args(knobs.args, prof, args)
    settings = {
        "base": base,
        "profile": prof.as_dict(),
        "seed": knobs.seed,
        "dtype": dtype,
        "fp16": fp16,
        "max_steps": batches.max_steps,
        "train_examples": len(batches.features),
        "data": _data_hash(batches.ordered),
    }
    if knobs.init_id:
        settings["init_adapter"] = knobs.init_id
    if knobs.lora_extras:
        settings["lora"] = knobs.lora_extras
    if training:
        settings["training"] = training
    return prof, settings, args


def _attach_lora(model: Any, knobs: _Knobs, init_adapter: str | Path | None, base: str) -> Any:
    """The model with trainable LoRA matrices: a fresh LoRA (the same random start every run of
    a seed) or the adapter ``init_adapter`` continues."""
    set_seed(knobs.seed)
    model.config.use_cache = False
    try:
        if init_adapter:
            return attach_adapter(model, init_adapter, base, trainable=True)
        return get_peft_model(model, knobs.lora)
    except ValueError as err:
        raise FinetuneError(f"LoRA could not be attached: {err}") from err


def _run_trainer(
    model: Any,
    tokenizer: Any,
    args: TrainingArguments,
    batches: _Batches,
    prof: Profile,
    callbacks: Sequence[TrainerCallback] | None,
    live_plot: bool,
    resume_from: Path | None,
    out: Path,
) -> tuple[Any, float, int | None]:
    """Train; return (the trainer, seconds, the stop signal when one came during the last step:
    the run is complete, so its adapter is saved before the process stops). The one place where
    a failure becomes a kit error or hint: out of memory and a full disk -> FinetuneError saying
    what to change; Ctrl-C -> the last checkpoint and how to resume, then KeyboardInterrupt;
    SIGTERM before the last step -> a checkpoint at the end of the step, how to resume, then
    SystemExit(128 + SIGTERM)."""
    guard, stopper = _LossGuard(prof.learning_rate), StopOnSignal()
    all_callbacks = [guard, *(callbacks or []), stopper]  # last: sees a signal sent at this step
    if live_plot:
        all_callbacks.append(LiveLossPlot(every=max(1, batches.max_steps // 25)))
    trainer = _KitTrainer(
        model=model,
        args=args,
        train_dataset=batches.ordered,
        eval_dataset=batches.eval_features or None,
        data_collator=PadToLongest(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=all_callbacks,
    )
    ckpt_dir = Path(args.output_dir)
    start = time.perf_counter()
    try:
        with stopper.listening():
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            # several processes: a signal after the last step's check stops all of them or none
            stopper.received = largest(stopper.received or 0) or None
    except torch.OutOfMemoryError as err:
        raise FinetuneError(_oom_message(prof)) from err
    except RuntimeError as err:
        if "out of memory" in str(err).lower() or "can't allocate memory" in str(err).lower():
            raise FinetuneError(_oom_message(prof)) from err
        raise
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise FinetuneError(
            f"The disk is full: a checkpoint could not be written to {ckpt_dir}. Free some space "
            "(or pass another output_dir) and run again with resume=True to continue from the "
            "last complete checkpoint."
        ) from err
    except KeyboardInterrupt:
        if not is_main_process():
            raise  # the main process says it, once
        last = _latest_checkpoint(ckpt_dir)
        print(
            f"\nInterrupted at step {trainer.state.global_step}. "
            + (
                f"The last checkpoint is {last.name}: call train_adapter(..., resume=True) with "
                f"the same settings and output_dir={str(out)!r} to continue from there "
                "(python -m kit run or train: run the same command again)."
                if last
                else "No checkpoint was written yet: training would start over."
            )
        )
        raise
    seconds = time.perf_counter() - start
    if stopper.received is not None and trainer.state.global_step >= args.max_steps:
        return trainer, seconds, stopper.received  # finished: saved, then stopped
    if stopper.received is not None:
        name = signal.Signals(stopper.received).name
        if is_main_process():  # said once
            print(
                f"\n{name} received: stopped at step {trainer.state.global_step} and wrote a "
                "checkpoint. Call train_adapter(..., resume=True) with the same settings and "
                f"output_dir={str(out)!r} to continue from there (python -m kit run or train: "
                "run the same command again).",
                flush=True,
            )
        raise SystemExit(128 + stopper.received)  # the exit status of a process ended by it
    return trainer, seconds, None


def _collect_result(
    trainer: Any,
    seconds: float,
    batches: _Batches,
    settings: dict[str, Any],
    resume_from: Path | None,
    out: Path,
    base: str,
    system: str,
) -> TrainResult:
    """The TrainResult of a run; a run that reached its last step also gets its final held-out
    loss and its adapter saved (with the settings and figures, for reuse)."""
    state, max_steps = trainer.state, batches.max_steps
    start_step = int(resume_from.name.split("-")[-1]) if resume_from else 0
    losses = [(h["step"], h["loss"]) for h in state.log_history if "loss" in h]
    evals = [(h["step"], h["eval_loss"]) for h in state.log_history if "eval_loss" in h]
    done = state.global_step
    session_tokens = sum(batches.step_tokens[start_step:done])
    compute_s = max(seconds - trainer.eval_seconds, 1e-9)
    result = TrainResult(
        adapter_dir=None,
        output_dir=out,
        profile=settings["profile"]["name"],
        losses=losses,
        eval_losses=evals,
        steps=done,
        max_steps=max_steps,
        train_seconds=seconds,
        tokens_seen=sum(batches.step_tokens[:done]),
        useful_tokens_per_s=session_tokens / compute_s,
        peak_mem_mb=peak_memory_mb(best_device()),
        train_examples=len(batches.features),
        eval_examples=len(batches.eval_features),
        format_report=batches.report,
        resumed_from_step=start_step,
        settings=settings,
    )
    if done >= max_steps:
        if batches.eval_features and (not evals or evals[-1][0] != done):
            evals.append((done, trainer.evaluate()["eval_loss"]))
        info = {
            "settings": settings,
            "final_loss": losses[-1][1] if losses else None,
            "final_eval_loss": evals[-1][1] if evals else None,
            "system": system,
            "result": _result_record(result),
        }
        model, tokenizer = trainer.model, trainer.processing_class
        result.adapter_dir = main_decides(  # one adapter, written once, by the main process
            lambda: save_adapter(
                model, tokenizer, out / "adapter", base_fingerprint(model, base), info
            )
        )
    return result


# --------------------------------------------------------------------------- reuse and resume


_MACHINE_SETTINGS = ("dtype", "fp16")  # how this machine computes, not what is trained


def adapter_identity(adapter_dir: str | Path) -> str:
    """What an adapter *is*, for the settings of a run that starts from it (``init_adapter``).

    A kit adapter is named by the settings it was trained with (base, data, profile, seed,
    steps, its own starting adapter), not by its bytes: the same training computed in bfloat16
    on one machine and float32 on another counts as the same adapter, as :func:`reusable_run`
    treats it. An adapter trained elsewhere (no recorded settings) is named by a hash of its
    weights. Raises AdapterError if the folder is not a complete adapter.
    """
    settings = read_adapter_info(adapter_dir).get("info", {}).get("settings")
    if not settings:
        return f"weights:{adapter_weights_hash(adapter_dir)}"
    trained = {k: v for k, v in settings.items() if k not in _MACHINE_SETTINGS}
    digest = hashlib.sha256(json.dumps(trained, sort_keys=True, default=str).encode())
    return f"settings:{digest.hexdigest()[:16]}"


def _continue_from(init_adapter: str | Path, prof: Profile) -> tuple[Profile, str]:
    """The profile with the LoRA shape of ``init_adapter`` (what training will really use), and
    the adapter's identity (:func:`adapter_identity`)."""
    identity = adapter_identity(init_adapter)
    config = json.loads((Path(init_adapter) / "adapter_config.json").read_text())
    targets = config.get("target_modules") or list(prof.lora_targets)
    shape = {
        "lora_r": int(config.get("r", prof.lora_r)),
        "lora_alpha": int(config.get("lora_alpha", prof.lora_alpha)),
        "lora_dropout": float(config.get("lora_dropout", prof.lora_dropout)),
        "lora_targets": tuple([targets] if isinstance(targets, str) else sorted(targets)),
    }
    return prof.with_(**shape), identity


def _result_record(result: TrainResult) -> dict[str, Any]:
    """The measured fields of a TrainResult, for the adapter's marker file."""
    keep = ("losses", "eval_losses", "steps", "max_steps", "train_seconds", "tokens_seen")
    more = ("useful_tokens_per_s", "peak_mem_mb", "train_examples", "eval_examples")
    return {k: getattr(result, k) for k in keep + more}


def _say_what_is_replaced(adapter_dir: Path, settings: dict[str, Any]) -> None:
    """Print which settings differ when a run replaces the adapter the notebooks share (the
    default folder of its profile): they will train it again with theirs."""
    if check_adapter(adapter_dir) is not None:
        return  # nothing finished there to lose
    saved = read_adapter_info(adapter_dir).get("info", {}).get("settings", {})
    now = _as_recorded(settings)
    changed = [c for c in _changed_settings(saved, now) if c.split(".")[0] not in _MACHINE_SETTINGS]
    if changed:  # the same settings train the same adapter again: nothing is lost
        print(
            f"This run replaces the adapter in {adapter_dir}, trained with other settings "
            f"({', '.join(changed[:4])}): the notebooks that reuse it will train it again "
            "with theirs. Pass output_dir=... to keep both."
        )


def reusable_run(
    adapter_dir: str | Path, settings: dict[str, Any], fingerprint: dict[str, Any] | None = None
) -> TrainResult | None:
    """The finished run saved at ``adapter_dir`` if it was trained with ``settings`` (and, when
    ``fingerprint`` is given, on a base model with those weights), else None.

    Same base model, data (token for token), profile, seed and steps: then training again would
    produce the same adapter, so a prebuilt one (``python -m kit workshop prepare``) can stand in.
    The precision it was computed in may differ (a bf16 machine prepared it, say). A base
    model folder of yours saved again with other weights under the same name is another base.
    """
    if check_adapter(adapter_dir) is not None:
        return None
    saved_info = read_adapter_info(adapter_dir)
    if fingerprint is not None and fingerprint_mismatch(saved_info["base"], fingerprint):
        return None
    info = saved_info.get("info", {})
    saved, record = info.get("settings", {}), info.get("result")
    same = {k: v for k, v in saved.items() if k not in _MACHINE_SETTINGS} == {
        k: v for k, v in _as_recorded(settings).items() if k not in _MACHINE_SETTINGS
    }
    if not same or not record:
        return None
    record = {
        **record,
        "losses": [tuple(x) for x in record["losses"]],
        "eval_losses": [tuple(x) for x in record["eval_losses"]],
    }
    return TrainResult(
        adapter_dir=Path(adapter_dir),
        output_dir=Path(adapter_dir).parent,
        profile=str(saved.get("profile", {}).get("name", "")),
        settings=saved,
        **record,
    )


def out_dir_for(output_dir: str | Path | None, examples: Any, prof: Profile) -> Path:
    """Where a run writes: ``output_dir``, else ``<cache>/adapters/<style|custom>-<profile>``."""
    if output_dir:
        out = user_path(output_dir, "output_dir", must="any", error=FinetuneError)
        if out.exists() and not out.is_dir():
            raise FinetuneError(f"{out}: output_dir is a file; give a folder for the adapter")
        return out
    return style_dir(prof) if examples is None else adapters_dir() / f"custom-{prof.name}"


def _recorded_settings(ckpt_dir: Path, resume: bool | str | Path) -> dict | None:
    """The settings of the run a resume continues (None when not resuming or none recorded)."""
    run_file = ckpt_dir / RUN_FILE
    if resume is False or resume is None or not run_file.is_file():
        return None
    return _read_run_file(run_file)


def _read_run_file(run_file: Path) -> dict | None:
    """The settings recorded in ``run_file`` (None if there is none); FinetuneError if damaged."""
    if not run_file.is_file():
        return None
    try:
        recorded = json.loads(run_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        recorded = None
    if not isinstance(recorded, dict):
        raise FinetuneError(
            f"{run_file} is damaged (it should hold the first run's settings as JSON), so the "
            "checkpoints beside it cannot be resumed safely: start over with resume=False, "
            f"which clears {run_file.parent}."
        )
    return recorded


def _as_recorded(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as a run record or an adapter's info holds them (through JSON: tuples become
    lists, a Path its text), so they compare with what was saved."""
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def _changed_settings(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The names of the settings that differ: plain ones first, then those inside the profile,
    the LoRA config or the TrainingArguments as ``profile.learning_rate`` (the description
    aside)."""
    keys = sorted(set(before) | set(now))
    nested = [k for k in keys if isinstance(before.get(k, now.get(k)), dict)]
    changed = [k for k in keys if k not in nested and before.get(k) != now.get(k)]
    for key in nested:
        a, b = before.get(key) or {}, now.get(key) or {}
        changed += [
            f"{key}.{k}"
            for k in sorted(set(a) | set(b))
            if k != "description" and a.get(k) != b.get(k)
        ]
    return changed


def _prepare_checkpoints(ckpt_dir: Path, resume: bool | str | Path, settings: dict) -> Path | None:
    """Decide where training starts; check a resume matches the first run's settings."""
    run_file = ckpt_dir / RUN_FILE
    if resume == "auto":
        resume = _stopped_run_to_continue(ckpt_dir, settings)
    if resume is False or resume is None:
        _refuse_foreign_files(ckpt_dir)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps(settings, indent=2, sort_keys=True))
        return None
    target = _latest_checkpoint(ckpt_dir) if resume is True else Path(resume).expanduser()
    if target is None:
        print(f"No checkpoint in {ckpt_dir}: starting from step 0.")
        return _prepare_checkpoints(ckpt_dir, False, settings)
    if not _complete_checkpoint(target):
        raise FinetuneError(f"{target} is not a complete training checkpoint.")
    record = target.parent / RUN_FILE  # the run that wrote this checkpoint, wherever it is
    if not record.is_file() and target.parent.resolve() != ckpt_dir.resolve():
        raise FinetuneError(
            f"Cannot resume from {target}: no {RUN_FILE} beside it says which data and settings "
            "wrote it. Resume from a checkpoint of a kit run, or start over with resume=False."
        )
    _remove_broken_after(target)
    if record.is_file():
        before = _read_run_file(record)
        now = _as_recorded(settings)
        changed = _changed_settings(before, now)
        if changed:
            raise FinetuneError(
                f"Cannot resume from {target}: these settings differ from the run that wrote it: "
                f"{', '.join(changed)}. Resume with the same data and settings, or start over "
                "with resume=False."
            )
    return target


def _remove_broken_after(target: Path) -> None:
    """Delete the incomplete checkpoints (saves cut short) after ``target``: left there, they
    would take a place of the kept checkpoints, and a complete one could be rotated out."""
    step = int(target.name.split("-")[-1])
    for later in target.parent.glob("checkpoint-*"):
        number = later.name.split("-")[-1]
        if number.isdigit() and int(number) > step and not _complete_checkpoint(later):
            shutil.rmtree(later, ignore_errors=True)


def _stopped_run_to_continue(ckpt_dir: Path, settings: dict) -> bool:
    """For ``resume="auto"``: True when ``ckpt_dir`` holds a checkpoint of a run with these
    settings that stopped before its last step (a finished run is not continued: its adapter
    was removed or is not wanted, so it trains again)."""
    recorded = None
    with contextlib.suppress(FinetuneError):  # a damaged record only means starting over
        recorded = _read_run_file(ckpt_dir / RUN_FILE)
    now = _as_recorded(settings)
    last = _latest_checkpoint(ckpt_dir)
    if recorded is None or _changed_settings(recorded, now) or last is None:
        return False
    if int(last.name.split("-")[-1]) >= int(settings["max_steps"]):
        return False
    print(f"Continuing the stopped training in {ckpt_dir} from {last.name}.")
    return True


def _refuse_foreign_files(ckpt_dir: Path) -> None:
    """A fresh run clears its checkpoint folder: only if everything in it is the kit's own
    (its run record and ``checkpoint-N`` folders beside it: the kit writes the record first),
    never a file of the user's, nor checkpoints of another Trainer run."""
    if ckpt_dir.exists() and not ckpt_dir.is_dir():
        raise FinetuneError(f"{ckpt_dir} is a file; pass another output_dir")
    if not ckpt_dir.is_dir():
        return
    ours = (ckpt_dir / RUN_FILE).is_file()
    foreign = [
        p.name
        for p in ckpt_dir.iterdir()
        if p.name != RUN_FILE and not (ours and p.is_dir() and p.name.startswith("checkpoint-"))
    ]
    if foreign:
        raise FinetuneError(
            f"{ckpt_dir} holds files the kit did not write ({', '.join(sorted(foreign)[:5])}); "
            "a new run clears that folder, so pass an output_dir of its own"
        )


def _oom_message(prof: Profile) -> str:
    smaller = {"gpu": "cpu", "cpu": "smoke"}.get(prof.name)
    tip = f"use the smaller profile {smaller!r}, or " if smaller else ""
    return (
        f"Out of memory while training with the {prof.name!r} profile (batch_size="
        f"{prof.batch_size}, max_seq_len={prof.max_seq_len}): {tip}pass a smaller batch_size "
        f"(e.g. batch_size={max(1, prof.batch_size // 2)}, grad_accum={prof.grad_accum * 2}) or "
        "max_seq_len, and close other programs."
    )


class _KitTrainer(Trainer):
    """Trainer with the reply-only loss of :func:`reply_loss` and timed evaluations."""

    loss_is_scaled_for_ga = True
    eval_seconds = 0.0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = reply_loss(model, inputs, num_items_in_batch)
        if num_items_in_batch is None and model.training:
            loss = loss / self.current_gradient_accumulation_steps
        elif num_items_in_batch is not None and self.args.average_tokens_across_devices:
            # num_items counts the label tokens of every process, and the processes' gradients
            # (and held-out losses) are averaged: scaled back, a step or an evaluation is the
            # one-process one (as transformers' own compute_loss does)
            loss = loss * self.accelerator.num_processes
        return (loss, {"loss": loss}) if return_outputs else loss

    def evaluate(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.eval_seconds += time.perf_counter() - start


def trainer_class() -> type[Trainer]:
    """The transformers ``Trainer`` subclass :func:`train_adapter` uses: the loss is computed on
    the reply tokens only (:func:`reply_loss`), and evaluation time is counted apart."""
    return _KitTrainer


# --------------------------------------------------------------------------- answering


def answer_questions(
    model: Any,
    tokenizer: Any,
    records: Sequence[QARecord | str],
    profile: str | Profile | None = None,
    max_new_tokens: int | None = None,
    system_name: str = "finetuned",
    system: str = DEFAULT_SYSTEM,
    batch_size: int = BATCH_SIZE,
) -> list[Answer]:
    """Answer each question with ``model`` alone (no retrieval); return kit Answers, in order.

    Questions go through the model ``batch_size`` at a time (``kit.generate.generate_batch``);
    each answer's time is its share of its batch. ``cited_ids`` are the document ids in the
    reply's ``Source: ... [kb-001]`` line, if any.
    """
    plan = answer_plan(model, tokenizer, records, profile, max_new_tokens, system_name, system)
    return run_plans([plan], batch_size)[0]


def answer_plan(
    model: Any,
    tokenizer: Any,
    records: Sequence[QARecord | str],
    profile: str | Profile | None = None,
    max_new_tokens: int | None = None,
    system_name: str = "finetuned",
    system: str = DEFAULT_SYSTEM,
) -> Plan:
    """:func:`answer_questions` up to the generation: the chat prompts, and a ``finish`` that
    turns the generations into Answers (:class:`kit.generate.Plan`, run by ``run_plans``)."""
    limit = max_new_tokens or resolve_profile(profile).max_new_tokens
    questions = [rec if isinstance(rec, str) else rec.question for rec in records]
    prompts = [chat_messages(q, system) for q in questions]

    def finish(gens: list[Generation]) -> list[Answer]:
        return [_plain_answer(q, gen, system_name) for q, gen in zip(questions, gens, strict=True)]

    return Plan(prompts, model, tokenizer, limit, finish)


def _plain_answer(question: str, gen: Generation, system_name: str) -> Answer:
    """A generation without retrieval -> an Answer; its citations from a ``Source:`` line."""
    source = re.search(r"^Source:(.*)$", gen.text, flags=re.MULTILINE)
    cited = bracketed_ids(source.group(1)) if source else []
    return Answer(
        question=question,
        text=gen.text,
        cited_ids=list(dict.fromkeys(cited)),
        timings={"generate": gen.seconds, "total": gen.seconds},
        prompt_tokens=gen.prompt_tokens,
        new_tokens=gen.new_tokens,
        system=system_name,
    )


def side_by_side(before: Sequence[Answer], after: Sequence[Answer]) -> pd.DataFrame:
    """A table: each question, the answer before and after fine-tuning, and their style."""
    import pandas as pd  # slow to import: only for this table

    return pd.DataFrame(
        {
            "question": [a.question for a in before],
            "before": [a.text for a in before],
            "after": [a.text for a in after],
            "style before": [style_compliant(a.text) for a in before],
            "style after": [style_compliant(a.text) for a in after],
        }
    )
