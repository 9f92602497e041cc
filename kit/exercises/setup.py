"""Exercise 00 (exercises/00_setup.ipynb): find your way around the machine and the two models."""

from __future__ import annotations

from functools import cache

from kit.checks import Incorrect, Question, as_number

QUESTION = "What does a retriever add to a language model?"
SENTENCES = ["The invoice is due in 30 days.", "Payment must arrive within a month."]


def _check_profile(my_profile: object) -> str:
    from kit.profiles import pick_profile

    picked, why = pick_profile()
    if not isinstance(my_profile, str):
        raise Incorrect(f"`my_profile` should be the profile's name, a string, not {my_profile!r}.")
    if my_profile != picked.name:
        raise Incorrect(f"The doctor picked {picked.name!r} here, not {my_profile!r}.")
    return f"{picked.name!r}, because {why}."


@cache
def _tokenizer():
    from transformers import AutoTokenizer

    from kit.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


def _check_tokens(n_prompt_tokens: object) -> str:
    from kit.generate import build_messages, chat_prompt_ids

    tok = _tokenizer()
    expected = len(chat_prompt_ids(tok, build_messages(QUESTION)))
    bare = len(tok(QUESTION)["input_ids"])
    if n_prompt_tokens == bare:
        raise Incorrect(
            "That is the question alone. The model sees the whole chat prompt: the system "
            "message, the role markers and the question."
        )
    if n_prompt_tokens != expected:
        raise Incorrect(f"The chat prompt has a different number of tokens than {n_prompt_tokens}.")
    return f"{expected} tokens, of which only {bare} are the question itself."


def _check_similarity(similarity: object) -> str:
    import numpy as np

    from kit.models import load_embedder

    a, b = load_embedder().encode(SENTENCES)
    expected = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    value = as_number(similarity, "similarity")
    if abs(value - float(np.dot(a, b))) < 1e-4 and abs(expected - value) > 1e-4:
        raise Incorrect("That is the dot product; divide by both vectors' lengths.")
    if abs(value - expected) > 1e-3:
        raise Incorrect(f"{value:.4f} is not the cosine similarity of the two sentences.")
    return f"{expected:.3f}: close in meaning, though they share almost no words."


q1 = Question(
    "Question 1",
    ["my_profile"],
    _check_profile,
    "Run `kit.doctor()`: its `profile:` line, just before the verdict, names the profile. "
    "Its `.profile.name` holds it.",
    "my_profile = kit.doctor().profile.name",
)
q2 = Question(
    "Question 2",
    ["n_prompt_tokens"],
    _check_tokens,
    "Use kit.generate.build_messages(QUESTION) and kit.generate.chat_prompt_ids(tokenizer, ...).",
    "n_prompt_tokens = len(chat_prompt_ids(tokenizer, build_messages(QUESTION)))",
)
q3 = Question(
    "Question 3",
    ["similarity"],
    _check_similarity,
    "embedder.encode(SENTENCES) gives two vectors; cosine = a·b / (|a| |b|).",
    "a, b = embedder.encode(SENTENCES)\n"
    "similarity = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))",
)
