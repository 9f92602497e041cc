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
    tok.pad_token = None  # a tokenizer of yours may have none (Llama 3's): padding is masked
    try:
        padless = generate_batch(model, tok, questions, max_new_tokens=10, batch_size=2)
    finally:
        tok.pad_token = tok.eos_token
    assert [b.text for b in padless] == [a.text for a in alone]
    with pytest.raises(ValueError, match="empty"):
        generate_batch(model, tok, ["ok", " "])


def test_a_started_reply_is_continued_on_both_paths(converted: Path):
    """A prompt ending with the assistant's words ends inside its turn, as transformers'
    ``continue_final_message`` renders it; the wrapped template renders every other prompt as
    the plain one; the text includes the started words; the "I don't know" likelihood reads
    the prompt without them."""
    from kit.generate import (
        chat_prompt_ids,
        continuing_template,
        generate,
        generate_batch,
        reply_logprobs,
    )

    model, tok = models.load_generator("smollm2-135m-instruct", dtype="float32")
    asked = [{"role": "user", "content": "What is the capital of France?"}]
    started = [*asked, {"role": "assistant", "content": "The capital of France is"}]
    ends_inside = tok.apply_chat_template(started, continue_final_message=True, tokenize=True)
    assert chat_prompt_ids(tok, started) == list(ends_inside["input_ids"])
    assert tok.decode(chat_prompt_ids(tok, started)).endswith("assistant\nThe capital of France is")
    template = continuing_template(tok)
    for plain in (asked, [{"role": "system", "content": "Be brief."}, *asked]):
        assert tok.apply_chat_template(
            plain, add_generation_prompt=True, tokenize=False, chat_template=template
        ) == tok.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
    alone = generate(model, tok, started, max_new_tokens=4, system=None)
    assert alone.text.startswith("The capital of France is ") and "Paris" in alone.text
    batched = generate_batch(model, tok, [started, asked], max_new_tokens=4, system=None)
    assert batched[0].text == alone.text
    assert batched[1].text == generate(model, tok, asked, max_new_tokens=4, system=None).text
    assert batched[0].prompt_tokens > batched[1].prompt_tokens  # the started words are read
    assert reply_logprobs(model, tok, [started]) == reply_logprobs(model, tok, [asked])


def test_a_started_reply_with_nothing_written_after_it_is_no_reply(converted: Path):
    """A model that ends its turn at once wrote nothing: '' (the kit's "I don't know"), not the
    started words alone. A tokenizer whose chat templates are named (a dict) is continued by
    transformers' own ``continue_final_message``, with the same ids."""
    from transformers import AutoTokenizer

    from kit.generate import chat_prompt_ids, continuing_template, decode_reply

    tok = AutoTokenizer.from_pretrained(converted)
    assert decode_reply(tok, [], "According to source [") == ""
    assert decode_reply(tok, [tok.eos_token_id], "According to source [") == ""
    one = tok("1", add_special_tokens=False)["input_ids"]
    assert decode_reply(tok, one, "According to source [") == "According to source [1"
    started = [
        {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": "According to source ["},
    ]
    plain = chat_prompt_ids(tok, started)
    tok.chat_template = {"default": tok.chat_template}
    assert continuing_template(tok) is None and chat_prompt_ids(tok, started) == plain
