"""Profiles: the sizes every stage reads (model precision, sequence length, steps, batch, ...).

Three profiles ship with the kit:

- ``smoke``: seconds per stage, for CI and for checking that everything is wired;
- ``cpu``: a laptop or this 2-core machine, a few minutes per stage;
- ``gpu``: Colab or a workstation GPU, the same notebooks with bigger numbers.

:func:`pick_profile` chooses one for this machine (``KIT_PROFILE`` wins if set); the doctor shows
which and why.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

from kit.inputs import InputError, number, text
from kit.models import DEFAULT_GENERATOR


class ProfileError(ValueError):
    """An unknown profile name or a bad override."""


@dataclass(frozen=True)
class Profile:
    """The knobs every stage reads. Change one with ``p.with_(max_steps=20)``."""

    name: str
    description: str
    dtype: str  # "auto" (the faster one here, see kit.models.pick_dtype), "bfloat16" or "float32"
    max_new_tokens: int  # generation length for answers
    max_seq_len: int  # training sequence length (tokens)
    batch_size: int  # training batch size
    grad_accum: int  # gradient accumulation steps
    epochs: float  # training epochs (ignored when max_steps > 0)
    max_steps: int  # training steps; 0 = use epochs
    learning_rate: float
    lora_r: int
    lora_alpha: int
    train_examples: int  # style examples used for training; 0 = all
    eval_questions: int  # questions of the test split evaluated per system; 0 = all
    top_k: int  # documents retrieved per question
    # fine-tuning extras (kit.finetune); defaults keep older call sites working
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # or ("all-linear",)
    lora_dropout: float = 0.0  # 0 = deterministic and a little faster; LoRA rarely needs it
    warmup_ratio: float = 0.05  # share of the steps with a rising learning rate
    eval_examples: int = 24  # style examples held out (whole answer groups) for the eval loss
    eval_steps: int = 0  # evaluate the held-out loss every N steps; 0 = about 4 times per run
    save_steps: int = 0  # checkpoint every N steps (for resume); 0 = about 4 times per run
    abstain_questions: int = 0  # train questions the "I don't know" decision learns from; 0 = all
    # the generator every stage loads: a bundled name, a local folder or a hub id (online; see
    # kit.models.pick_generator for what an offline machine loads instead)
    generator: str = DEFAULT_GENERATOR

    def with_(self, **changes: object) -> Profile:
        """Return a copy with some fields changed. Unknown field names, and values of the wrong
        kind or out of range (``top_k="4"``, ``learning_rate=nan``, ``eval_questions=-3``), raise
        ProfileError before any stage uses them."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ProfileError(
                f"Profile has no field(s) {sorted(unknown)}; fields are: {sorted(asdict(self))}"
            )
        clean = {name: check_field(name, value) for name, value in changes.items()}
        return replace(self, **clean)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """The profile as a plain dict (for reports and cache keys)."""
        return asdict(self)


DTYPE_CHOICES = ("auto", "bfloat16", "float32")

# A GPU (Colab, a workstation) online gets a larger chat model of the same family: 360M
# parameters fine-tune with LoRA in minutes on a T4. Offline, the bundled 135M model stays.
GPU_GENERATOR = "HuggingFaceTB/SmolLM2-360M-Instruct"

# What each numeric field may hold: (whole number?, lowest, highest).
FIELD_RANGES: dict[str, tuple[bool, float, float | None]] = {
    "max_new_tokens": (True, 1, 4096),
    "max_seq_len": (True, 16, 32768),
    "batch_size": (True, 1, None),
    "grad_accum": (True, 1, None),
    "epochs": (False, 0, None),
    "max_steps": (True, 0, None),
    "learning_rate": (False, 0, None),  # > 0: checked by train_adapter, with its own message
    "lora_r": (True, 1, 1024),
    "lora_alpha": (True, 1, None),
    "train_examples": (True, 0, None),
    "eval_questions": (True, 0, None),
    "top_k": (True, 1, 100),
    "lora_dropout": (False, 0, 0.9),
    "warmup_ratio": (False, 0, 1),
    "eval_examples": (True, 0, None),
    "eval_steps": (True, 0, None),
    "save_steps": (True, 0, None),
    "abstain_questions": (True, 0, None),
}


def check_field(name: str, value: object) -> object:
    """``value`` checked for the profile field ``name`` (NumPy numbers accepted); ProfileError
    says what is wrong. The tables above say what each field may hold."""
    try:
        if name in FIELD_RANGES:
            whole, low, high = FIELD_RANGES[name]
            return number(value, name, low, high, whole=whole)
        if name == "dtype":
            if value not in DTYPE_CHOICES:
                raise InputError(f"dtype must be one of {DTYPE_CHOICES}, not {value!r}")
        elif name == "lora_targets":
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):  # type: ignore[attr-defined]
                raise InputError(
                    f"lora_targets must be a tuple of module names, e.g. ('q_proj', 'v_proj') "
                    f"or ('all-linear',), not {value!r}"
                )
            return tuple(value)  # type: ignore[arg-type]
        elif name in ("name", "description", "generator"):
            return text(value, name)
    except (InputError, TypeError) as err:
        raise ProfileError(str(err)) from None
    return value


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI and quick wiring checks: every stage in seconds, one question per type",
        dtype="auto",
        max_new_tokens=32,
        max_seq_len=256,
        batch_size=4,
        grad_accum=1,
        epochs=1,
        max_steps=6,
        learning_rate=2e-3,
        lora_r=8,
        lora_alpha=16,
        train_examples=48,
        eval_questions=4,
        top_k=4,
        eval_examples=8,
        eval_steps=3,
        abstain_questions=16,
    ),
    "cpu": Profile(
        name="cpu",
        description="a laptop CPU: each stage in a few minutes",
        dtype="auto",
        max_new_tokens=80,
        max_seq_len=384,
        batch_size=8,
        grad_accum=1,
        # one epoch at 2e-3 (RAFT inherits the rate), chosen on 64 train questions against 1.5
        # epochs at 1e-3: 30% less training, house style 0.97 vs 0.95 without sources and 0.95
        # vs 0.84 for hybrid-RAFT, hybrid-RAFT correct 0.56 vs 0.55 (bf16); 1 epoch at 1e-3
        # lost style (0.89); so did 0.75 epoch at 2e-3 or 3e-3 and 0.6 at 3e-3 (hybrid-RAFT's
        # style -12 to -33 points). Measured before the held-out split kept the "I don't know"
        # and canary examples in training (kit.finetune.split_examples)
        # LoRA on the top 15 of 30 layers only (backward stops there): ~30% less training, but
        # on two cross-fitted train folds the style adapter alone kept the house style in
        # 0.73 / 0.36 of its answers (all layers: 0.88 / 0.84) and hybrid-RAFT answered 0.48 /
        # 0.48 correctly (0.55 / 0.47): not kept (peft LoraConfig.layers_to_transform, 2026-12)
        epochs=1.0,
        max_steps=0,
        learning_rate=2e-3,
        lora_r=16,
        lora_alpha=32,
        train_examples=0,
        eval_questions=48,  # 3/4 of the test split: a rate's 95% interval about +-13 points
        top_k=4,
        eval_examples=24,
    ),
    "gpu": Profile(
        name="gpu",
        description="Colab or a workstation GPU: full data, more epochs",
        dtype="auto",
        max_new_tokens=160,
        max_seq_len=1024,
        batch_size=16,
        grad_accum=1,
        epochs=4,
        max_steps=0,
        learning_rate=3e-4,
        lora_r=16,
        lora_alpha=32,
        train_examples=0,
        eval_questions=0,
        top_k=5,
        lora_targets=("all-linear",),
        eval_examples=32,
        generator=GPU_GENERATOR,
    ),
}


def get_profile(name: str | Profile) -> Profile:
    """Return the profile called ``name`` (a Profile passes through); unknown names raise."""
    if isinstance(name, Profile):
        return name
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise ProfileError(
            f"Unknown profile {name!r}. Choose one of: {', '.join(PROFILES)} "
            "(or leave it out and let kit.doctor() pick one for this machine)."
        )
    return PROFILES[key]


def pick_profile() -> tuple[Profile, str]:
    """Choose a profile for this machine; return it with the reason, in words.

    Order: the ``KIT_PROFILE`` environment variable; ``smoke`` under CI (``CI`` set to 1, true
    or yes); ``gpu`` when CUDA is available; ``cpu`` otherwise.
    """
    forced = os.environ.get("KIT_PROFILE", "").strip()
    if forced:
        return get_profile(forced), f"KIT_PROFILE={forced} is set"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return PROFILES["smoke"], "running under CI (CI is set)"
    import torch

    if torch.cuda.is_available():
        return PROFILES["gpu"], f"CUDA GPU found: {torch.cuda.get_device_name(0)}"
    return PROFILES["cpu"], "no CUDA GPU: CPU settings"


def resolve_profile(profile: str | Profile | None) -> Profile:
    """``None`` -> the picked profile for this machine; a name or Profile -> that profile."""
    if profile is None:
        return pick_profile()[0]
    return get_profile(profile)
