"""kit.generate on the real bundled model: one answer, batched answers, whole characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit import models


def test_generate_answers_a_question(converted: Path):
    from kit.generate import generate

    model, tok = models.load_generator("smollm2-135m-instruct")
    out = generate(model, tok, "What is the capital of France? One word.", max_new_tokens=12)
    assert "Paris" in out.text
    assert 0 < out.new_tokens <= 12 and out.prompt_tokens > 5 and out.seconds > 0
    with pytest.raises(ValueError, match="empty"):
        generate(model, tok, "   ")


def test_a_reply_cut_inside_a_character_loses_the_half_character(converted: Path):
    from transformers import AutoTokenizer

    from kit.generate import decode_reply

    tok = AutoTokenizer.from_pretrained(converted)
    ids = tok("東京の天気 🙂🙂", add_special_tokens=False)["input_ids"]
    cuts = [ids[:k] for k in range(1, len(ids) + 1)]  # a token limit at every position
    half = [cut for cut in cuts if tok.decode(cut).endswith("\ufffd")]
    assert len(half) >= 3  # a plain decode shows a half character at several of them
    for cut in cuts:
        text = decode_reply(tok, cut)
        assert "\ufffd" not in text and tok.decode(cut).startswith(text)
    assert decode_reply(tok, ids) == "東京の天気 🙂🙂"


def test_generate_batch_matches_one_at_a_time(converted: Path):
    from kit.generate import generate, generate_batch

    model, tok = models.load_generator("smollm2-135m-instruct", dtype="float32")
    questions = [
        "What is the capital of France? One word.",
        "Name a primary colour.",
        "What is two plus two? Answer with a number and then explain the arithmetic slowly.",
    ]
    alone = [generate(model, tok, q, max_new_tokens=10) for q in questions]
    batched = generate_batch(model, tok, questions, max_new_tokens=10, batch_size=2)
    assert [b.text for b in batched] == [a.text for a in alone]  # same order, same greedy text
    assert [b.new_tokens for b in batched] == [a.new_tokens for a in alone]
    assert [b.prompt_tokens for b in batched] == [a.prompt_tokens for a in alone]
    with pytest.raises(ValueError, match="empty"):
        generate_batch(model, tok, ["ok", " "])


def test_rows_that_stop_leave_the_batch_with_the_tokens_generate_gives(converted: Path):
    import torch

    from kit.generate import chat_prompt_ids, end_tokens, greedy_rows

    model, tok = models.load_generator("smollm2-135m-instruct", dtype="float32")
    questions = [
        "What is the capital of France? One word.",
        "Write three sentences about the sea.",
        "Say yes or no: is ice cold?",
        "List the days of the week, then explain where their names come from.",
    ]
    prompts = [chat_prompt_ids(tok, [{"role": "user", "content": q}]) for q in questions]
    width, pad = max(map(len, prompts)), tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    stop = end_tokens(model, tok)
    ours = greedy_rows(model, ids, mask, 40, stop)
    with torch.inference_mode():
        out = model.generate(
            ids, attention_mask=mask, max_new_tokens=40, do_sample=False, pad_token_id=pad
        )
    theirs = []
    for row in out[:, width:].tolist():  # generate pads a finished row to the longest one
        end = next((i for i, t in enumerate(row) if t in stop), None)
        theirs.append(row if end is None else row[: end + 1])
    assert ours == theirs
    lengths = sorted(len(r) for r in ours)
    assert lengths[0] < 10 and lengths[-1] == 40  # rows left the batch at different steps
    assert all(r[-1] in stop for r in ours if len(r) < 40)
