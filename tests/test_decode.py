"""kit.decode on the real bundled model: greedy_rows gives generate()'s tokens, faster."""

from __future__ import annotations

from pathlib import Path

from kit import models


def _padded(tok, questions):
    import torch

    from kit.generate import chat_prompt_ids

    prompts = [chat_prompt_ids(tok, [{"role": "user", "content": q}]) for q in questions]
    width, pad = max(map(len, prompts)), tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def _generates(model, ids, mask, limit):
    """What model.generate gives for the batch: each row up to its first end token."""
    import torch

    ends = model.generation_config.eos_token_id
    ends = set(ends if isinstance(ends, list) else [ends])
    with torch.inference_mode():
        out = model.generate(
            ids, attention_mask=mask, max_new_tokens=limit, do_sample=False, pad_token_id=min(ends)
        )
    rows = []
    for row in out[:, ids.shape[1] :].tolist():  # generate pads a finished row to the longest
        end = next((i for i, t in enumerate(row) if t in ends), None)
        rows.append(row if end is None else row[: end + 1])
    return rows


QUESTIONS = [
    "What is the capital of France? One word.",
    "Write three sentences about the sea.",
    "Say yes or no: is ice cold?",
    "List the days of the week, then explain where their names come from.",
]


def test_rows_that_stop_leave_the_batch_with_the_tokens_generate_gives(converted: Path):
    from kit.decode import SHARED_PREFIX_MIN, end_tokens, greedy_rows, rows_can_leave

    model, tok = models.load_generator("smollm2-135m-instruct", dtype="float32")
    ids, mask = _padded(tok, QUESTIONS)
    assert rows_can_leave(model)  # the bundled model takes the kit's own loop
    shapes = []  # what each forward pass was given
    hook = model.register_forward_pre_hook(
        lambda _m, _a, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        ours = greedy_rows(model, ids, mask, 40, end_tokens(model, tok))
    finally:
        hook.remove()
    first, second = shapes[:2]  # the shared system message once, then each prompt's rest
    assert first[0] == 1 and first[1] >= SHARED_PREFIX_MIN
    assert second[0] == len(QUESTIONS) and first[1] + second[1] == ids.shape[1]
    assert ours == _generates(model, ids, mask, 40)
    lengths = sorted(len(r) for r in ours)
    assert lengths[0] < 10 and lengths[-1] == 40  # rows left the batch at different steps


def test_a_peft_model_or_a_penalty_in_the_config_gets_generates_tokens(converted: Path):
    from peft import LoraConfig, get_peft_model

    from kit.decode import end_tokens, greedy_rows, rows_can_leave

    model, tok = models.load_generator("smollm2-135m-instruct", dtype="float32")
    ids, mask = _padded(tok, QUESTIONS[:3])
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    wrapped = get_peft_model(model, lora)  # random LoRA weights: answers differ from the base
    assert rows_can_leave(wrapped)
    ours = greedy_rows(wrapped, ids, mask, 24, end_tokens(wrapped, tok))
    assert ours == _generates(wrapped, ids, mask, 24)
    base = wrapped.unload()
    plain = greedy_rows(base, ids, mask, 24, end_tokens(base, tok))
    base.generation_config.repetition_penalty = 1.3  # as some hub models ship
    assert not rows_can_leave(base)  # generate() answers it, with the penalty
    penalised = greedy_rows(base, ids, mask, 24, end_tokens(base, tok))
    assert penalised == _generates(base, ids, mask, 24) and penalised != plain
