"""Chat data for fine-tuning: load examples, format them with a loss mask, batch them tightly.

Three steps turn chat examples into what a trainer eats:

1. :func:`load_examples` reads the bundled style set, a list of examples, or *your own* file
   (JSONL or CSV of ``prompt``/``response`` pairs, or JSONL of chat ``messages``), validated
   with errors that name the file and line.
2. :func:`format_example` renders one conversation with the model's chat template and builds
   ``labels`` that are ``-100`` (ignored by the loss) everywhere except on the assistant's reply
   and its end-of-turn token: the model learns to *answer*, not to repeat questions.
3. :func:`length_grouped_batches` orders the examples so each batch holds similar lengths, and
   :class:`PadToLongest` pads a batch only up to its longest example: little compute is spent
   on padding.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.data import (
    ChatExample,
    DataError,
    load_style,
    read_csv_rows,
    read_jsonl,
    read_text_file,
    unique_keys,
)
from kit.generate import DEFAULT_SYSTEM
from kit.inputs import user_path

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
"""Label value the loss skips (PyTorch's ``cross_entropy`` default ``ignore_index``)."""

ROLES = ("system", "user", "assistant")
PROMPT_KEYS = ("prompt", "question", "instruction", "input")
RESPONSE_KEYS = ("response", "completion", "answer", "output")


# --------------------------------------------------------------------------- loading


def load_examples(source: Any = None) -> list[ChatExample]:
    """Training examples from ``source``, validated.

    In: ``None`` (the bundled house-style set), a list of :class:`ChatExample` or of dicts
    (``{"messages": [...]}`` or ``{"prompt": ..., "response": ...}``), or a path to a ``.jsonl``
    / ``.json`` / ``.csv`` file with the same fields (CSV: ``prompt`` and ``response`` columns).
    Out: a list of ChatExample. Raises :class:`kit.data.DataError` naming the file and line for
    an empty set, a missing or empty field, an unknown role, or a conversation that does not end
    with an assistant reply.
    """
    if source is None:
        return load_style()
    if isinstance(source, (str, Path, bytes)):
        return _load_file(user_path(source, "training file", must="file", error=DataError))
    if isinstance(source, dict):
        raise DataError(
            "Training data is a list of examples: wrap the one example in a list, [example]."
        )
    if isinstance(source, ChatExample):
        source = [source]
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        source = source.to_dict("records")  # one dict per row: prompt / response columns
    if not isinstance(source, Iterable):
        raise DataError(
            f"Training data must be a file path or a list of examples, not {type(source).__name__}."
        )
    rows = list(source)
    if not rows:
        raise DataError("The training set is empty: give at least one example.")
    out = []
    for i, row in enumerate(rows, start=1):
        if isinstance(row, ChatExample):
            _check_messages(row.messages, f"example {i} ({row.id})")
            out.append(row)
        elif isinstance(row, dict):
            out.append(_example_from(row, f"example {i}", f"ex-{i:04d}"))
        else:
            raise DataError(
                f"example {i}: expected a ChatExample or a dict, got {type(row).__name__}."
            )
    return out


def _refuse_repeated_ids(examples: Sequence[ChatExample], path: Path) -> None:
    """DataError naming an id two examples of a file share (a question file refuses the same)."""
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise DataError(f"{path}: two examples have the id {ex.id!r}; give each its own id")
        seen.add(ex.id)


def _load_file(path: Path) -> list[ChatExample]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        text = read_text_file(path, "training file") if suffix == ".json" else ""
        if text.lstrip().startswith("["):
            try:
                rows = json.loads(text, object_pairs_hook=unique_keys)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path} line {err.lineno}, column {err.colno}: invalid JSON "
                    f"({err.msg.removesuffix(' at')})"
                ) from None
            except RecursionError:
                raise DataError(f"{path}: the JSON is nested too deeply to be examples") from None
            except ValueError as err:  # a key set twice in one example
                raise DataError(f"{path}: {err}") from None
            if not isinstance(rows, list) or not rows:
                raise DataError(f"{path}: the JSON array is empty; add at least one example")
            numbered = list(enumerate(rows, start=1))
            what = "item"
        else:
            numbered = read_jsonl(path)
            what = "line"
        examples = []
        for n, row in numbered:
            if not isinstance(row, dict):
                raise DataError(f"{path} {what} {n}: expected a JSON object")
            examples.append(_example_from(row, f"{path} {what} {n}", f"{path.stem}-{n:04d}"))
        _refuse_repeated_ids(examples, path)
        return examples
    if suffix == ".csv":
        return _load_csv(path)
    raise DataError(
        f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl (one JSON object per line "
        "with prompt/response or messages) or .csv (columns prompt,response)"
    )


def _load_csv(path: Path) -> list[ChatExample]:
    """A CSV file with a prompt and a response column (see :data:`PROMPT_KEYS`,
    :data:`RESPONSE_KEYS`) -> ChatExamples; DataError naming the line for anything malformed."""
    rows = read_csv_rows(path, (), "training file", strip=False)  # a reply's indents stay
    header = list(rows[0][1]) if rows else []
    prompt = next((k for k in PROMPT_KEYS if k in header), None)
    response = next((k for k in RESPONSE_KEYS if k in header), None)
    if prompt is None or response is None:
        raise DataError(
            f"{path} line 1: header {header} lacks a prompt and a response column; name them "
            "'prompt' and 'response'"
        )
    examples = [
        _example_from(
            {"prompt": _prompt_of(row) or "", "response": row.get(response) or ""}
            | _csv_extras(row),
            f"{path} line {n}",
            f"{path.stem}-{n:04d}",
        )
        for n, row in rows
    ]
    _refuse_repeated_ids(examples, path)
    return examples


def _csv_extras(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row's optional ``id`` and ``source_doc_ids`` (several separated by ';'), read as
    a JSONL line's would be; empty cells left out."""
    extras: dict[str, Any] = {}
    if (row.get("id") or "").strip():
        extras["id"] = row["id"].strip()
    docs = [d.strip() for d in (row.get("source_doc_ids") or "").split(";") if d.strip()]
    if docs:
        extras["source_doc_ids"] = docs
    return extras


def _prompt_of(row: dict[str, Any]) -> Any:
    """The user's turn of a prompt/response row: its first :data:`PROMPT_KEYS` field; an
    Alpaca-style ``instruction`` with an ``input`` reads both, as Alpaca's prompt does (the
    input is the text the instruction is about, never dropped). None when there is none."""
    key = next((k for k in PROMPT_KEYS if k in row), None)
    prompt, extra = (row[key] if key else None), row.get("input")
    alpaca = key == "instruction" and isinstance(prompt, str) and isinstance(extra, str)
    if alpaca and extra.strip():
        return f"{prompt}\n\n{extra}"
    return prompt


def _example_from(row: dict[str, Any], where: str, default_id: str) -> ChatExample:
    """One dict (``messages`` or a prompt/response pair) -> ChatExample, or DataError."""
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list):
            raise DataError(f"{where}: 'messages' must be a list of {{role, content}} objects")
        _check_messages(messages, where)
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    else:
        prompt = _prompt_of(row)
        response = next((row[k] for k in RESPONSE_KEYS if k in row), None)
        if prompt is None or response is None:
            raise DataError(
                f"{where}: needs either 'messages' or a 'prompt' and a 'response' field; "
                f"found {sorted(row)}"
            )
        for name, value in (("prompt", prompt), ("response", response)):
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{where}: {name} is empty or not text ({value!r})")
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    docs = row.get("source_doc_ids", [])
    if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
        raise DataError(f"{where}: 'source_doc_ids' must be a list of document ids, not {docs!r}")
    canary = row.get("contains_canary", False)
    if not isinstance(canary, bool):  # "false" would be True in Python
        raise DataError(f"{where}: 'contains_canary' must be true or false, not {canary!r}")
    ident = row.get("id")
    nan = isinstance(ident, float) and math.isnan(ident)  # a DataFrame's empty cell
    blank = ident is None or nan or not str(ident).strip()  # null, NaN or "": the line's id
    return ChatExample(
        id=default_id if blank else str(ident).strip(),
        messages=messages,
        source_doc_ids=list(docs),
        contains_canary=canary,
    )


def _check_messages(messages: Sequence[Any], where: str) -> None:
    if not messages:
        raise DataError(f"{where}: 'messages' is empty")
    for j, m in enumerate(messages, start=1):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(f"{where}: message {j} must be an object with 'role' and 'content'")
        if m["role"] not in ROLES:
            raise DataError(f"{where}: message {j} has role {m['role']!r}; use one of {ROLES}")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise DataError(f"{where}: message {j} ({m['role']}) has empty or non-text content")
    if not any(m["role"] == "user" for m in messages):
        raise DataError(f"{where}: no user message")
    if messages[-1]["role"] != "assistant":
        raise DataError(
            f"{where}: the last message must be the assistant's reply (the text to learn), "
            f"not {messages[-1]['role']!r}"
        )


# --------------------------------------------------------------------------- formatting


def with_system(messages: Sequence[dict[str, str]], system: str = DEFAULT_SYSTEM) -> list[dict]:
    """The messages with the kit's system message first (unless they bring their own)."""
    messages = list(messages)
    if messages and messages[0]["role"] == "system":
        return messages
    return [{"role": "system", "content": system}, *messages]


def _render_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict], prompt: bool) -> list:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=prompt)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _reply_end(ids: list[int], start: int, stop: int, eos_id: int | None) -> int:
    """Index just after the reply's end-of-turn token within ids[start:stop] (or stop if none)."""
    if eos_id is not None:
        for i in range(start, stop):
            if ids[i] == eos_id:
                return i + 1
    return stop


def format_example(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[dict[str, str]],
    max_len: int | None = None,
    system: str = DEFAULT_SYSTEM,
) -> dict[str, list[int]]:
    """Tokenize one conversation for training, with the loss on the assistant's replies only.

    In: a tokenizer with a chat template, the messages (the kit's system message is added unless
    they start with one), an optional maximum length in tokens (longer examples are cut at the
    end). Out: ``{"input_ids", "labels", "attention_mask"}`` (lists of equal length), where
    ``labels`` is ``-100`` on the system message, the user turns and the role markers, and equals
    ``input_ids`` on each assistant reply and its end-of-turn token. Text after the last reply's
    end-of-turn token (the template's trailing newline) is dropped: nothing is learned from it.

    The prompt part is found by rendering the conversation up to each reply with
    ``add_generation_prompt=True`` and checking that those tokens are a prefix of the whole
    rendering. If a template breaks that property, character offsets are used instead.
    """
    msgs = with_system(messages, system)
    full = _render_ids(tokenizer, msgs, prompt=False)
    eos_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token) if tokenizer.eos_token else None
    spans = []  # (start, end) token spans to learn
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        head = _render_ids(tokenizer, msgs[:i], prompt=True)
        upto = _render_ids(tokenizer, msgs[: i + 1], prompt=False)
        if full[: len(head)] != head or full[: len(upto)] != upto:
            spans = None
            break
        spans.append((len(head), _reply_end(full, len(head), len(upto), eos_id)))
    if spans is None:
        full, spans = _spans_by_offsets(tokenizer, msgs)
    end = spans[-1][1]
    input_ids = full[:end]
    labels = [IGNORE_INDEX] * end
    for a, b in spans:
        labels[a:b] = input_ids[a:b]
    if max_len is not None and len(input_ids) > max_len:
        input_ids, labels = input_ids[:max_len], labels[:max_len]
    return {"input_ids": input_ids, "labels": labels, "attention_mask": [1] * len(input_ids)}


def _spans_by_offsets(
    tokenizer: PreTrainedTokenizerBase, msgs: list[dict]
) -> tuple[list[int], list[tuple[int, int]]]:
    """Fallback for templates whose prompt tokens are not a prefix: map text spans to tokens."""
    text = tokenizer.apply_chat_template(msgs, tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    eos = tokenizer.eos_token or ""
    char_spans, pos = [], 0
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        # search after the prompt up to this reply: a user turn may quote the reply's words
        head = tokenizer.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True)
        if text.startswith(head):
            pos = max(pos, len(head))
        start = text.find(m["content"], pos)
        if start < 0:
            raise DataError("The chat template changes the assistant's text; cannot mask the loss.")
        stop = start + len(m["content"])
        if eos and text.startswith(eos, stop):
            stop += len(eos)
        char_spans.append((start, stop))
        pos = stop
    spans = []
    for a, b in char_spans:  # every token that overlaps the reply ("▁OK" carries a space too)
        toks = [i for i, (s, e) in enumerate(offsets) if e > s and s < b and e > a]
        if not toks:
            raise DataError("No token of the assistant's reply was found; cannot mask the loss.")
        spans.append((toks[0], toks[-1] + 1))
    return list(enc["input_ids"]), spans


@dataclass
class FormatReport:
    """What happened while formatting a training set."""

    examples: int  # examples kept
    truncated: int  # examples cut at max_len (kept: their reply was partly learned)
    dropped: int  # examples whose prompt alone filled max_len (no reply tokens left)
    tokens: int  # tokens in the kept examples
    reply_tokens: int  # of which the loss sees


def format_examples(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[ChatExample],
    max_len: int,
    system: str = DEFAULT_SYSTEM,
    what: str = "training",
) -> tuple[list[dict[str, list[int]]], FormatReport]:
    """Format many examples (see :func:`format_example`); warn with counts about cut examples.

    Examples longer than ``max_len`` are truncated (kept); examples with no reply token left
    after truncation are dropped. Raises DataError if nothing is left to learn from. ``what``
    names the examples in those messages ("training", "held-out").
    """
    features, truncated, dropped = [], 0, 0
    for ex in examples:
        f = format_example(tokenizer, ex.messages, None, system)
        if len(f["input_ids"]) > max_len:
            truncated += 1
            f = {k: v[:max_len] for k, v in f.items()}
            if all(x == IGNORE_INDEX for x in f["labels"][1:]):
                dropped += 1
                continue
        features.append(f)
    if truncated:
        warnings.warn(
            f"{truncated} of {len(examples)} {what} example(s) are longer than max_seq_len="
            f"{max_len} tokens and were cut at the end ({dropped} dropped: their prompt alone "
            "fills the limit). Raise max_seq_len or shorten them.",
            stacklevel=2,
        )
    if not features:
        raise DataError(
            f"No {what} example fits max_seq_len={max_len} tokens with any of its reply left."
        )
    report = FormatReport(
        examples=len(features),
        truncated=truncated,
        dropped=dropped,
        tokens=sum(len(f["input_ids"]) for f in features),
        reply_tokens=sum(sum(x != IGNORE_INDEX for x in f["labels"]) for f in features),
    )
    return features, report


# --------------------------------------------------------------------------- batching


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, epochs: int, seed: int, group: int = 16
) -> list[list[int]]:
    """A fixed, seeded training order: a list of batches (lists of example indices).

    Each epoch shuffles the examples, cuts them into chunks of ``group`` batches, sorts each chunk
    by length and splits it into batches of similar length, then shuffles the batches. Same
    inputs -> same order, so a resumed run sees exactly the batches the first run would have.
    """
    if batch_size < 1 or epochs < 1:
        raise ValueError("batch_size and epochs must be at least 1")
    batches: list[list[int]] = []
    for epoch in range(epochs):
        rng = random.Random(seed * 1000 + epoch)
        order = list(range(len(lengths)))
        rng.shuffle(order)
        epoch_batches = []
        chunk = batch_size * group
        for c in range(0, len(order), chunk):
            part = sorted(order[c : c + chunk], key=lambda i: -lengths[i])
            epoch_batches += [part[b : b + batch_size] for b in range(0, len(part), batch_size)]
        rng.shuffle(epoch_batches)
        batches += epoch_batches
    return batches


class PadToLongest:
    """Collate examples into tensors padded to the longest one in the batch (right padding).

    Padding gets attention 0 and label -100. Also counts the real (non-padding) tokens it has
    batched, in ``useful_tokens``, and all tokens including padding, in ``padded_tokens``.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.useful_tokens = 0
        self.padded_tokens = 0

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch  # slow to import: loading and checking data does not need it

        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids, labels, mask = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * pad)
            mask.append([1] * len(f["input_ids"]) + [0] * pad)
        self.useful_tokens += sum(len(f["input_ids"]) for f in features)
        self.padded_tokens += width * len(features)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }
