"""Generate: one chat answer from a causal language model, with its token counts and timing.

Also how likely the model finds a given reply (:func:`reply_logprobs`), without generating: the
model's own doubt, one of the signals a learned "I don't know" reads (:mod:`kit.abstain`).

The same chat formatting is used everywhere in the kit (base model, fine-tuning, RAG prompts),
so a model is always asked in the shape it was trained on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kit.citations import ABSTAIN
from kit.decode import end_tokens, greedy_rows, last_logits, position_kwargs
from kit.inputs import InputError, number, text

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Without a system message SmolLM2's chat template inserts its own ("You are a helpful AI
# assistant named SmolLM ..."). The kit always sends this one instead, in training and inference.
DEFAULT_SYSTEM = "You are a helpful assistant. Answer briefly and accurately."
# Questions generated together. A decoding step costs a fixed part (Python, reading the weights)
# plus a part per row: about 40 ms + 4 ms a row for the bundled model on 2 cores in float32.
# Batching shares the fixed part; each answer leaves its batch when it ends (kit.decode). 48
# questions, 2 cores, AVX2, float32: the base model's answers in 20.1 s in batches of 16, 16.9 s
# of 24, 13.4 s of 48; RAG prompts (~230 tokens) 39.5 s, 34.6 s, 41.4 s (longer padding at 48).
# `python -m kit bench grid --batch-size N` measures it.
# Tried for the slow kind, not kept (2026-12): torch dynamic int8 on every Linear but lm_head,
# 48 train questions, AVX2 float32 emulated: plain RAG's answers 23-32 s instead of 40-43 s,
# but 0-1 of 48 texts the same and most of them broken ("The answer to this question is:", the
# system prompt repeated): a 135M model does not survive 8-bit activations.
BATCH_SIZE = 24


@dataclass
class Answer:
    """What every system of the kit returns for one question, so they can be scored alike.

    text: the answer; cited_ids: document ids the answer cites (RAG and hybrid);
    attributed_ids: the cited ids, else the shown source the answer's words come from
    (:mod:`kit.attribution`; empty for a declined answer or one no source supports);
    documents: the sources the model was shown, as Haystack Documents: the retrieved chunks,
    best first, or a sentence layout's picked sentences in text order, without retrieval scores
    (empty without retrieval);
    timings: seconds per stage, e.g. {"retrieve": 0.02, "generate": 1.3, "total": 1.32};
    prompt_tokens / new_tokens: tokens read and written by the generator;
    signals: what a learned "I don't know" decision reads (:mod:`kit.abstain`), if computed;
    withheld: the reply the learned decision replaced with "I don't know" (else empty).
    """

    question: str
    text: str
    cited_ids: list[str] = field(default_factory=list)
    attributed_ids: list[str] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    new_tokens: int = 0
    system: str = ""  # which system answered: "base", "rag", "finetuned", "hybrid", ...
    signals: dict[str, float] = field(default_factory=dict)  # for "I don't know" (kit.abstain)
    withheld: str = ""  # what the model said before a learned decision declined for it


@dataclass
class Generation:
    """One generated answer: the text, how many tokens went in and came out, and the time taken."""

    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of wall time."""
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def decode_reply(tokenizer: Any, token_ids: Any, start: str = "") -> str:
    """The text of generated tokens after the reply's ``start`` (see :func:`reply_start`),
    stripped, without special tokens and without the half character a token limit can leave
    (a UTF-8 character cut after its first bytes decodes to U+FFFD, the replacement character).
    A model that wrote nothing after the start gives '' (no reply), not the start alone."""
    return started_reply(start, tokenizer.decode(token_ids, skip_special_tokens=True))


def started_reply(start: str, written: str) -> str:
    """The reply a prompt ``start``-ed and the model went on with ``written``, stripped, without
    a trailing half character (U+FFFD); '' when the model wrote nothing after the start."""
    written = written.rstrip("\ufffd")
    return (start + written).strip().rstrip("\ufffd").strip() if written.strip() else ""


# A chat template's own text, wrapped so that a prompt whose last message is the assistant's
# ends *inside* that message: the model continues the reply the prompt started (transformers'
# ``continue_final_message``, in a form a Haystack chat generator can be given as its
# ``chat_template``). Top-level ``set`` in Jinja shadows the variables the template reads.
_CONTINUE_HEAD = (
    "{%- set reply_start = '' -%}"
    "{%- if messages and messages[-1]['role'] == 'assistant' -%}"
    "{%- set reply_start = messages[-1]['content'] -%}"
    "{%- set messages = messages[:-1] -%}"
    "{%- set add_generation_prompt = true -%}"
    "{%- endif -%}"
)
_CONTINUE_TAIL = "{{- reply_start -}}"


def reply_start(messages: Sequence[dict[str, str]]) -> str:
    """The words a prompt starts the reply with: the text of a last message from the assistant
    (a layout's ``reply_start``, :mod:`kit.prompts`), else ''."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[-1]["content"]
    return ""


def without_reply_start(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The messages without a started reply at the end: the prompt the model reads before it
    replies (what a training example or the "I don't know" likelihood puts a reply after)."""
    return list(messages[:-1] if reply_start(messages) else messages)


def continuing_template(tokenizer: Any) -> str | None:
    """The tokenizer's chat template, wrapped so a prompt ending with an assistant message ends
    inside it (the model continues that reply); the same output as the plain template for any
    other prompt. ``None`` when the tokenizer has no chat template of its own, or several. (A
    template whose generation prompt opens a thinking block puts the started words inside it.)"""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):  # none, or several named ones
        return None
    return _CONTINUE_HEAD + template + _CONTINUE_TAIL


def build_messages(question: str, system: str | None = DEFAULT_SYSTEM) -> list[dict[str, str]]:
    """Wrap a question as chat messages: ``[{"role": "system", ...}, {"role": "user", ...}]``."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    return messages


def chat_prompt_ids(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]
) -> list[int]:
    """Token ids of the chat prompt for ``messages``, ending where the assistant starts to speak,
    or, when the last message is the assistant's (a started reply), after its words."""
    started = bool(reply_start(messages))
    template = continuing_template(tokenizer) if started else None
    if started and template is None:  # transformers' own way, for any template
        encoded = tokenizer.apply_chat_template(
            messages, continue_final_message=True, tokenize=True
        )
    else:
        encoded = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, chat_template=template
        )
    # transformers 5 returns a BatchEncoding (a dict) by default; older versions a list of ids.
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def chat_messages(question: Any, system: Any) -> list[dict[str, str]]:
    """The chat messages for a question (text) or the messages given; InputError otherwise."""
    if system is not None:
        text(system, "system", empty_ok=True)
    if isinstance(question, str):
        if not question.strip():
            raise InputError("The question is empty: pass some text to answer.")
        return build_messages(question, system)
    if not isinstance(question, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in question
    ):
        raise InputError(
            "The question must be text, or a list of chat messages like "
            f"[{{'role': 'user', 'content': '...'}}], not {type(question).__name__} "
            f"{str(question)[:40]!r}"
        )
    return question


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    question: str | list[dict[str, str]],
    max_new_tokens: int = 64,
    system: str | None = DEFAULT_SYSTEM,
) -> Generation:
    """Answer one question (a string, or a full list of chat messages) with greedy decoding.

    Out: a :class:`Generation` with the answer text (special tokens removed), token counts and
    wall time. Greedy decoding keeps results reproducible run to run. Messages that end with the
    assistant's words (a started reply) are continued, and the text includes those words.
    """
    import torch  # heavy: loaded only when a model answers

    messages = chat_messages(question, system)
    max_new_tokens = int(number(max_new_tokens, "max_new_tokens", 1, 4096, whole=True))
    ids = chat_prompt_ids(tokenizer, messages)
    limit = tokenizer.model_max_length - max_new_tokens
    if len(ids) > limit:
        raise ValueError(
            f"The prompt has {len(ids)} tokens but the model takes at most {limit} before its "
            f"{max_new_tokens} new tokens: shorten the question or the context."
        )
    input_ids = torch.tensor([ids], device=model.device)
    start = time.perf_counter()
    new = greedy_rows(
        model, input_ids, torch.ones_like(input_ids), max_new_tokens, end_tokens(model, tokenizer)
    )[0]
    seconds = time.perf_counter() - start
    text = decode_reply(tokenizer, new, reply_start(messages))
    return Generation(text, len(ids), len(new), seconds)


def generate_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: list[str] | list[list[dict[str, str]]],
    max_new_tokens: int = 64,
    system: str | None = DEFAULT_SYSTEM,
    batch_size: int = BATCH_SIZE,
) -> list[Generation]:
    """Answer several questions (strings or chat-message lists) in batches; results in order.

    Greedy decoding like :func:`generate`, with the prompts left-padded into batches of
    ``batch_size`` (sorted by length, so little is padded). On a CPU this is several times faster
    than one at a time: a decoding step has a fixed cost (Python, reading the weights) that a
    batch pays once for all its questions, and each answer leaves its batch when it ends
    (:func:`kit.decode.greedy_rows`). Each Generation's ``seconds`` is its share of its batch's
    wall time (batch time / batch size), not the time it would take alone.
    """
    import torch  # heavy: loaded only when a model answers

    batch_size = int(number(batch_size, "batch_size", low=1, whole=True))
    max_new_tokens = int(number(max_new_tokens, "max_new_tokens", 1, 4096, whole=True))
    if isinstance(questions, str):
        raise InputError("generate_batch takes a list of questions; for one, call generate().")
    prompts, starts = [], []
    for q in questions:
        if isinstance(q, str) and not q.strip():
            raise InputError("A question is empty: pass some text to answer.")
        messages = chat_messages(q, system)
        prompts.append(chat_prompt_ids(tokenizer, messages))
        starts.append(reply_start(messages))
    limit = tokenizer.model_max_length - max_new_tokens
    for ids in prompts:
        if len(ids) > limit:
            raise ValueError(
                f"A prompt has {len(ids)} tokens but the model takes at most {limit} before its "
                f"{max_new_tokens} new tokens: shorten the question or the context."
            )
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    stop = end_tokens(model, tokenizer)
    results: list[Generation | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in chunk)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop)
        input_ids = torch.tensor(
            [[pad] * (width - len(prompts[i])) + prompts[i] for i in chunk], device=model.device
        )
        mask = torch.tensor(
            [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in chunk],
            device=model.device,
        )
        began = time.perf_counter()
        replies = greedy_rows(model, input_ids, mask, max_new_tokens, stop)
        share = (time.perf_counter() - began) / len(chunk)
        for i, new in zip(chunk, replies, strict=True):
            produced = len(new)  # the end token counts, as generate() counts it
            while new and new[-1] in stop:
                new.pop()
            text = decode_reply(tokenizer, new, starts[i])
            results[i] = Generation(text, len(prompts[i]), produced, share)
    return [r for r in results if r is not None]


@dataclass
class Plan:
    """What a system will ask its model for some questions, before anything is generated.

    ``prompts``: chat messages, one per generation needed (a question the system declines
    before asking the model needs none); ``model`` / ``tokenizer`` / ``max_new_tokens``: the
    generator (model and tokenizer None when there is nothing to generate) and its token
    limit; ``finish``: turns the generations, in the order of ``prompts``, into the system's
    Answers, one per question. Made by a system's ``plan_batch`` (the kit's RAG pipelines,
    ``PlainSystem``), run by :func:`run_plans`.
    """

    prompts: list[list[dict[str, str]]]
    model: Any
    tokenizer: Any
    max_new_tokens: int
    finish: Callable[[list[Generation]], list[Answer]]


def run_plans(plans: Sequence[Plan], batch_size: int = BATCH_SIZE) -> list[list[Answer]]:
    """Each plan's Answers, in the order of ``plans``.

    Plans that share a model (and token limit) and together fit in one batch are generated in
    one pass: a few questions to each of nine systems that share two models make two batches,
    not nine, and a decoding step's fixed cost is paid once per batch (the main job's privacy
    and injection probes: 23 answers, 51 -> 29 s on 2 cores). Larger plans are generated one
    by one, each in its own batches: mixing short plain prompts with long RAG prompts in full
    batches pads the short ones and loses the prompts' shared start (``kit.decode``), which
    measured slower (the freshness probe's 80 answers: 81 s apart, 94 s mixed).
    """
    gens: list[list[Generation]] = [[] for _ in plans]
    for members in _plan_groups(plans, batch_size):
        first = plans[members[0]]
        prompts = [p for i in members for p in plans[i].prompts]
        out = generate_batch(
            first.model, first.tokenizer, prompts, first.max_new_tokens, batch_size=batch_size
        )
        for i in members:
            n = len(plans[i].prompts)
            gens[i], out = out[:n], out[n:]
    return [plan.finish(g) for plan, g in zip(plans, gens, strict=True)]


def _plan_groups(plans: Sequence[Plan], batch_size: int) -> list[list[int]]:
    """Indices of the plans to generate together (see :func:`run_plans`)."""
    by_model: dict[tuple[int, int, int], list[int]] = {}
    for i, plan in enumerate(plans):
        if plan.prompts and (plan.model is None or plan.tokenizer is None):
            raise ValueError(f"Plan {i} has {len(plan.prompts)} prompt(s) but no model to ask.")
        if plan.prompts:
            key = (id(plan.model), id(plan.tokenizer), plan.max_new_tokens)
            by_model.setdefault(key, []).append(i)
    groups: list[list[int]] = []
    for members in by_model.values():
        fits = sum(len(plans[i].prompts) for i in members) <= batch_size
        groups += [members] if fits else [[i] for i in members]
    return groups


def reply_logprobs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[dict[str, str]]],
    reply: str = ABSTAIN,
    batch_size: int = 8,
) -> list[float]:
    """Mean log-probability per token of ``reply`` as the assistant's answer to each prompt.

    In: a causal LM and its tokenizer, chat prompts (role/content dicts; a started reply at the
    end is left out: ``reply`` is the whole reply). Out: one float per prompt (closer to 0: the
    model finds the reply likely). One forward pass per batch, no
    generation: the prompt's tokens, then the reply's, left-padded.
    """
    import torch  # heavy: only when a model is already loaded

    target = tokenizer(reply, add_special_tokens=False)["input_ids"]
    rows = [chat_prompt_ids(tokenizer, without_reply_start(p)) + target for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[float] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in chunk], device=model.device)
        mask = torch.tensor(
            [[0] * (width - len(r)) + [1] * len(r) for r in chunk], device=model.device
        )
        with torch.inference_mode():
            # only the logits that predict the reply's tokens: at position i, token i + 1
            keep = len(target) + 1
            numbered = position_kwargs(model, mask)  # a prompt's numbers do not hang on padding
            logits = model(
                input_ids=ids, attention_mask=mask, **numbered, **last_logits(model, keep)
            ).logits
        logp = torch.log_softmax(logits[:, -keep:-1].float(), dim=-1)
        want = ids[:, -len(target) :].unsqueeze(-1)
        out += logp.gather(-1, want).squeeze(-1).mean(dim=1).tolist()
    return out
