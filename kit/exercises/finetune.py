"""Exercise 02 (exercises/02_finetune.ipynb): LoRA targets, a loss mask by hand, a learning rate.

q1: attach LoRA to the attention's query and value projections and count what it trains;
q2: build the labels of one training example: -100 on the prompt, the reply's ids after it;
q3: pick a learning rate and a number of steps that bring the held-out loss under a bar.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import cache
from numbers import Integral
from pathlib import Path

from kit.checks import Incorrect, Question, as_number
from kit.generate import chat_prompt_ids
from kit.models import resolve_model

# transformers, kit.data, kit.chat_data and kit.finetune take seconds to import (torch, haystack):
# they are imported inside the checks that need them, so importing this module stays quick.

EXAMPLE_ID = "sty-001"
LOSS_BAR = 2.9  # q3: held-out reply loss to reach in a smoke run
BASE_LOSS = 3.3  # about the held-out loss of the untrained model on the smoke slice
MAX_STEPS_ALLOWED = 12  # q3 keeps the run short


@cache
def _tokenizer():
    from transformers import AutoTokenizer  # slow to import: see the note at the top

    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


def _config() -> dict:
    return json.loads((Path(resolve_model("smollm2-135m-instruct")) / "config.json").read_text())


def example():
    """The training example of q2 (a ChatExample from the bundled style set)."""
    from kit.data import load_style  # slow to import: see the note at the top

    return next(e for e in load_style() if e.id == EXAMPLE_ID)


# --------------------------------------------------------------------------- q1


def expected_trainable(r: int = 8) -> int:
    """Trainable parameters of rank-r LoRA on each layer's q_proj and v_proj."""
    c = _config()
    hidden, layers = c["hidden_size"], c["num_hidden_layers"]
    head = c.get("head_dim") or hidden // c["num_attention_heads"]
    q_out, v_out = c["num_attention_heads"] * head, c["num_key_value_heads"] * head
    return layers * r * ((hidden + q_out) + (hidden + v_out))


def _check_lora(lora_targets: object, n_trainable: object) -> str:
    if isinstance(lora_targets, str):
        lora_targets = [lora_targets]
    if not isinstance(lora_targets, (list, tuple, set)) or not all(
        isinstance(t, str) for t in lora_targets
    ):
        raise Incorrect("`lora_targets` should be a list of module names, e.g. ['a_proj', ...].")
    names = set(lora_targets)
    if any("." in n for n in names):
        raise Incorrect(
            "Use the short module names (the last part, like 'q_proj'): peft matches them in "
            "every layer."
        )
    if names == {"all-linear"}:
        raise Incorrect("'all-linear' targets every projection; this task wants query and value.")
    if names != {"q_proj", "v_proj"}:
        extra, missing = names - {"q_proj", "v_proj"}, {"q_proj", "v_proj"} - names
        what = f"remove {sorted(extra)}" if extra else f"add {sorted(missing)}"
        raise Incorrect(f"Query and value projections only: {what}.")
    expected = expected_trainable(8)
    n_trainable = int(as_number(n_trainable, "n_trainable", whole=True))
    if n_trainable > 100_000_000:
        raise Incorrect(
            "That counts every parameter. Count only those with requires_grad=True: the LoRA "
            "matrices (peft's print_trainable_parameters() shows them)."
        )
    if n_trainable == expected * 2:
        raise Incorrect("That is rank 16; this task uses r=8.")
    if n_trainable != expected:
        raise Incorrect(f"{n_trainable:,} is not the number of trainable parameters with r=8.")
    return (
        f"{expected:,} trainable parameters: {expected / 134_515_008:.2%} of the model. Each "
        "layer's q_proj gets A (8 x 576) and B (576 x 8); v_proj gets A (8 x 576) and B (192 x 8)."
    )


# --------------------------------------------------------------------------- q2


def _check_labels(labels: object) -> str:
    from kit.chat_data import IGNORE_INDEX, format_example, with_system  # slow, see the top

    tok = _tokenizer()
    ex = example()
    expected = format_example(tok, ex.messages)["labels"]
    n_prompt = len(chat_prompt_ids(tok, with_system(ex.messages)[:-1]))
    if hasattr(labels, "tolist"):
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)) or not all(
        isinstance(x, Integral) and not isinstance(x, bool) for x in labels
    ):
        raise Incorrect("`labels` should be a list of integers (token ids and -100).")
    labels = [int(x) for x in labels]
    if IGNORE_INDEX not in labels:
        raise Incorrect(
            "No -100 in your labels: the loss would also train the model to write the system "
            "message and the question. Put -100 on every prompt token."
        )
    learned = [x for x in labels if x != IGNORE_INDEX]
    if not learned:
        raise Incorrect("Every label is -100: there is nothing left to learn.")
    n_masked = next(i for i, x in enumerate(labels) if x != IGNORE_INDEX)
    if n_masked != n_prompt:
        raise Incorrect(
            f"Your mask covers the first {n_masked} tokens; the prompt (everything up to and "
            f"including '<|im_start|>assistant\\n') has {n_prompt}."
        )
    text = tok.decode(learned)
    reply = ex.assistant + "<|im_end|>"
    if text not in (reply, reply + "\n"):
        if text.startswith(ex.assistant) and "<|im_end|>" not in text:
            raise Incorrect(
                "Learn the <|im_end|> token after the reply too: it teaches the model to stop."
            )
        raise Incorrect("After the mask, the labels should be the reply's token ids, unchanged.")
    if len(labels) not in (len(expected), len(expected) + 1):
        raise Incorrect(f"{len(labels)} labels; there should be one per input token.")
    return (
        f"{n_prompt} prompt tokens masked, {len(learned)} learned. (kit.chat_data.format_example "
        "also drops the newline the template writes after <|im_end|>.)"
    )


# --------------------------------------------------------------------------- q3


@cache
def loss_run(learning_rate: float, max_steps: int) -> tuple[float, str]:
    """Train a tiny adapter (smoke profile); return (held-out loss at the end, note)."""
    from kit.finetune import FinetuneError, train_adapter  # slow to import: see the top

    out = Path(tempfile.mkdtemp(prefix="kit-ex02-"))
    try:
        result = train_adapter(
            profile="smoke",
            output_dir=out,
            learning_rate=learning_rate,
            max_steps=max_steps,
            eval_steps=max_steps,
            save_steps=max_steps,
        )
    except FinetuneError as err:
        return float("nan"), f"diverged: {err}"
    finally:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return result.final_eval_loss, f"held-out loss {result.final_eval_loss:.2f}"


def _check_hparams(learning_rate: object, max_steps: object) -> str:
    lr = as_number(learning_rate, "learning_rate")
    max_steps = int(as_number(max_steps, "max_steps", whole=True))
    if max_steps < 1:
        raise Incorrect(f"`max_steps` should be a positive whole number, not {max_steps!r}.")
    if max_steps > MAX_STEPS_ALLOWED:
        raise Incorrect(f"Keep it short: at most {MAX_STEPS_ALLOWED} steps.")
    if not 0 < lr < 1:
        raise Incorrect("A learning rate is a small positive number, like 1e-4.")
    loss, note = loss_run(lr, max_steps)
    if note.startswith("diverged"):
        raise Incorrect(f"Training diverged with learning_rate={lr:g}: try a smaller one.")
    if loss > LOSS_BAR:
        hint = "a larger learning rate" if lr < 1e-3 else "more steps"
        raise Incorrect(f"{note}, above the bar of {LOSS_BAR}: try {hint}.")
    return f"{note} after {max_steps} steps at learning rate {lr:g} (the base model: {BASE_LOSS})."


q1 = Question(
    "Question 1",
    ["lora_targets", "n_trainable"],
    _check_lora,
    "print(model) shows each layer's modules; the attention ones are in self_attn. After "
    "get_peft_model, sum p.numel() for the parameters with p.requires_grad.",
    "lora_targets = ['q_proj', 'v_proj']\n"
    "lora_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, "
    "target_modules=lora_targets, task_type='CAUSAL_LM'))\n"
    "n_trainable = sum(p.numel() for p in lora_model.parameters() if p.requires_grad)\n"
    "lora_model.unload()  # take the LoRA layers out again",
)
q2 = Question(
    "Question 2",
    ["labels"],
    _check_labels,
    "Render the prompt (system + user, with add_generation_prompt) and the whole conversation "
    "with the chat template; the prompt's tokens are a prefix of the whole. Labels: -100 for each "
    "prompt token, then the rest of the ids as they are.",
    "messages = with_system(EXAMPLE.messages)\n"
    "prompt_ids = chat_prompt_ids(tokenizer, messages[:-1])\n"
    "full_ids = tokenizer.apply_chat_template(messages)['input_ids']\n"
    "labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]",
)
q3 = Question(
    "Question 3",
    ["learning_rate", "max_steps"],
    _check_hparams,
    "LoRA adapters start at zero and need a much larger learning rate than full fine-tuning: "
    "think 1e-3 rather than 1e-5. Eight steps are enough when the rate is right; one is not.",
    "learning_rate = 3e-3\nmax_steps = 8",
)
