"""Decode: greedy answers for a left-padded batch of prompts, as fast as a CPU allows.

transformers' ``model.generate`` keeps every finished answer of a batch in the forward pass until
the longest one is done, and reads a start that all prompts share (the system message,
"Sources:") once per prompt. On a CPU a decoding step costs a fixed part plus a part per row, so
:func:`greedy_rows` drops each row once it has ended, and reads the shared start once for the
whole batch (:func:`_shared_prefix_once`). The tokens are ``generate``'s (greedy, the same
``DynamicCache``); a model whose settings this loop cannot reproduce (a repetition penalty,
beams, a non-standard cache: :func:`rows_can_leave`) is answered by ``generate`` itself.
:mod:`kit.generate` builds the prompts and calls it.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def end_tokens(model: Any, tokenizer: Any) -> set[int]:
    """The ids that end an answer, as ``generate`` stops: the model's end token(s)
    (``generation_config.eos_token_id``, an id or a list), else the tokenizer's end token."""
    ends = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ends = [t for t in (ends if isinstance(ends, list) else [ends]) if t is not None]
    return set(ends) or {tokenizer.eos_token_id}


# generation_config fields with which generate() changes greedy scores (logits processors) or
# searches (beams): a model whose config sets one of them is answered by generate() itself.
_PROCESSORS = (
    "repetition_penalty",
    "encoder_repetition_penalty",
    "no_repeat_ngram_size",
    "bad_words_ids",
    "min_length",
    "min_new_tokens",
    "suppress_tokens",
    "begin_suppress_tokens",
    "sequence_bias",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "exponential_decay_length_penalty",
    "num_beams",
)


def rows_can_leave(model: Any) -> bool:
    """True when :func:`greedy_rows`' own loop gives ``generate``'s greedy tokens for ``model``:
    its ``generation_config`` adds no logits processor or beams (the bundled SmolLM2 adds none)
    and it decodes with transformers' ``DynamicCache`` and position ids (not mamba, rwkv, ...)."""
    from transformers import GenerationConfig

    config, plain = getattr(model, "generation_config", None), GenerationConfig()
    if config is None or any(getattr(config, f, None) != getattr(plain, f) for f in _PROCESSORS):
        return False
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    dynamic = getattr(base, "_supports_default_dynamic_cache", lambda: False)()
    return dynamic and "position_ids" in inspect.signature(base.forward).parameters


def last_logits(model: Any, n: int) -> dict[str, int]:
    """``{"logits_to_keep": n}`` if the model can compute only its last ``n`` positions' logits
    (most transformers models; a peft model answers for its base), else ``{}``: all of them."""
    supports = getattr(model, "_supports_logits_to_keep", None)
    return {"logits_to_keep": n} if callable(supports) and supports() else {}


def greedy_rows(
    model: PreTrainedModel, input_ids: Any, mask: Any, max_new_tokens: int, stop: set[int]
) -> list[list[int]]:
    """Greedy decoding of a left-padded batch, each row leaving the batch once it has stopped.

    In: the model, prompt ids and attention mask (``[rows, width]`` tensors, left-padded), the
    token limit and the ids that end an answer. Out: per row its new token ids, up to and
    including the end token. The same tokens as ``model.generate(do_sample=False)``, which keeps
    a finished row in the batch until the longest answer ends: a step's cost grows with its
    rows, so a batch whose answers are mostly short finishes sooner here. The KV cache
    (transformers' ``DynamicCache``) drops the finished rows too. A model this loop cannot
    reproduce (:func:`rows_can_leave`) is answered by ``generate`` itself.
    """
    import torch  # heavy: loaded only when a model answers
    from transformers import DynamicCache

    if not rows_can_leave(model):
        return _generate_rows(model, input_ids, mask, max_new_tokens, stop)
    cache = DynamicCache(config=model.config)
    last = last_logits(model, 1)  # only the next token's logits, as generate() asks
    live = list(range(input_ids.shape[0]))  # the row of the batch each live row came from
    replies: list[list[int]] = [[] for _ in live]
    with torch.inference_mode():
        step_ids, mask, positions = _shared_prefix_once(model, input_ids, mask, cache, min(stop))
        for _ in range(max_new_tokens):
            out = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                **last,
            )
            chosen = out.logits[:, -1].argmax(-1)
            keep = []
            for j, token in enumerate(chosen.tolist()):
                replies[live[j]].append(token)
                if token not in stop:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(live):
                rows = torch.tensor(keep, device=input_ids.device)
                cache.reorder_cache(rows)  # every cache layer type selects rows this way
                chosen, mask, positions = chosen[rows], mask[rows], positions[rows]
                live = [live[j] for j in keep]
            step_ids = chosen[:, None]
            positions = positions[:, -1:] + 1
            mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
    return replies


def _positions(mask: Any) -> Any:
    """Each token's position id in a padded batch: padding does not count (as ``generate``)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def position_kwargs(model: Any, mask: Any) -> dict[str, Any]:
    """``{"position_ids": ...}`` for a left-padded batch when ``model`` takes them (a prompt is
    then numbered from 0 whatever its padding, as ``generate`` numbers it), else ``{}``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    forward = getattr(base, "forward", None)
    takes = forward is not None and "position_ids" in inspect.signature(forward).parameters
    return {"position_ids": _positions(mask)} if takes else {}


SHARED_PREFIX_MIN = 16  # tokens every prompt of a batch must share before they are read once


def _shared_prefix_once(
    model: Any, input_ids: Any, mask: Any, cache: Any, pad: int
) -> tuple[Any, Any, Any]:
    """Read the tokens every prompt of the batch starts with once, not once per prompt.

    The kit's prompts of one system share their start (the system message, the "Sources:"
    line: ~68 of a RAG prompt's ~230 tokens). If the batch has two rows or more sharing at
    least :data:`SHARED_PREFIX_MIN` tokens, the shared part goes through the model once for
    one row and the KV cache is copied to every row; each prompt's rest follows, left-padded
    after the shared part (the attention mask hides the padding). Only for models whose every
    layer is plain full attention: a sliding window or chunked attention counts the padding
    as positions, and a convolution or linear-attention layer (LFM2, Jamba, ...) reads it
    into its state. Out: the ids, mask and position ids of the next forward pass (the batch
    unchanged when nothing is shared); ``cache`` holds the shared part.
    """
    import torch  # heavy: loaded only when a model answers
    from transformers.cache_utils import DynamicLayer

    unchanged = input_ids, mask, _positions(mask)
    lengths = mask.sum(-1).tolist()
    full_attention = all(type(layer) is DynamicLayer for layer in cache.layers)
    if len(lengths) < 2 or min(lengths) <= SHARED_PREFIX_MIN or not full_attention:
        return unchanged
    prompts = [ids[row_mask.bool()].tolist() for ids, row_mask in zip(input_ids, mask, strict=True)]
    shared = min(lengths) - 1  # every row keeps a token to predict from
    for n, token in enumerate(prompts[0][:shared]):
        if any(p[n] != token for p in prompts):
            shared = n
            break
    if shared < SHARED_PREFIX_MIN:
        return unchanged
    device = input_ids.device
    prefix = torch.tensor([prompts[0][:shared]], device=device)
    model(
        input_ids=prefix,
        attention_mask=torch.ones_like(prefix),
        position_ids=torch.arange(shared, device=device)[None],
        past_key_values=cache,
        use_cache=True,
        **last_logits(model, 1),
    )
    cache.reorder_cache(torch.zeros(len(prompts), dtype=torch.long, device=device))  # to every row
    rests = [p[shared:] for p in prompts]
    width = max(map(len, rests))
    step_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rests], device=device)
    rest_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rests], device=device)
    mask = torch.cat([mask.new_ones(len(rests), shared), rest_mask.to(mask.dtype)], dim=1)
    positions = _positions(mask)[:, shared:]
    return step_ids, mask, positions


def _generate_rows(
    model: Any, input_ids: Any, mask: Any, max_new_tokens: int, stop: set[int]
) -> list[list[int]]:
    """:func:`greedy_rows`' result from ``model.generate``: each row up to its first end token."""
    import torch  # heavy: loaded only when a model answers

    with torch.inference_mode():
        out = model.generate(
            input_ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=min(stop),
        )
    replies = []
    for row in out[:, input_ids.shape[1] :].tolist():
        end = next((i for i, token in enumerate(row) if token in stop), None)
        replies.append(row if end is None else row[: end + 1])
    return replies
