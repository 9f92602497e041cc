"""Hybrid: the fine-tuned model as the generator of the RAG pipeline, and RAFT-style training data.

Two ways to combine RAG and fine-tuning:

1. **Plug in** (:func:`build_hybrid`): take an adapter trained on plain question -> answer pairs
   and use it as the generator of the same RAG pipeline. It writes in the house style, and the
   retriever brings the facts. But it never saw sources during training, so it may ignore them,
   or get worse when they are added.
2. **Retrieval-aware fine-tuning** (RAFT, Zhang et al. 2024; :func:`raft_examples`): train on
   what the model will really see at answer time: the question *with retrieved sources*, some of
   them distractors, and the cited answer. With probability ``p_oracle`` the sources include the
   document that holds the answer (the "oracle"); otherwise only distractors, and the reply is
   "I don't know" (the paper keeps the answer there, to teach memorising; the kit teaches
   declining instead, since its knowledge is meant to come from retrieval). Replies cite the
   shown sources by number (``Source: Price list [2]``), so citing works on documents never
   trained on.

The RAFT examples are built with the kit's own retriever and the RAG prompt itself (the same
``ChatPromptBuilder``), so training and answering see exactly the same text.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from haystack.document_stores.types import DocumentStore

from kit.adapters import load_adapter
from kit.citations import doc_id
from kit.data import ChatExample, load_style, load_transfer
from kit.generate import without_reply_start
from kit.indexing import Index, build_index, chunks_of
from kit.profiles import Profile, resolve_profile
from kit.prompts import ADAPTER_LAYOUT, source_title
from kit.rag import RAG, build_rag
from kit.rag_eval import evaluate_rag


def build_hybrid(
    index: Index | DocumentStore,
    adapter_dir: str | Path,
    profile: str | Profile | None = None,
    mode: str = "hybrid",
    system: str = "hybrid",
    merge: bool = True,
    **options: Any,
) -> RAG:
    """A RAG pipeline whose generator is the base model with a LoRA adapter.

    In: an index (see ``kit.indexing.build_index``), an adapter folder written by
    ``kit.finetune.train_adapter``, whether to fold the adapter into the weights (``merge``),
    the usual RAG options. Out: a :class:`kit.rag.RAG` with the adapters' layout (see
    :func:`hybrid_rag`); ``rag.answer(q)`` returns Answers labelled ``system``. A folder that
    is not a kit adapter, or one made for another base model, raises
    :class:`kit.adapters.AdapterError`; a merged model folder (``kit.adapters.merge_adapter``)
    is a generator of its own: ``hybrid_rag(index, "path/to/folder")``.
    """
    model, tokenizer = load_adapter(adapter_dir)
    if merge:
        model = model.merge_and_unload()  # the same answers, without the adapter's overhead
    return hybrid_rag(index, (model, tokenizer), profile, system, mode=mode, **options)


def hybrid_rag(
    index: Index | DocumentStore,
    generator: Any,
    profile: str | Profile | None = None,
    system: str = "hybrid",
    **options: Any,
) -> RAG:
    """:func:`kit.rag.build_rag` for a fine-tuned generator (a loaded ``(model, tokenizer)``
    pair or a model folder): the answers labelled ``system``, and the adapters' prompt layout,
    :data:`kit.prompts.ADAPTER_LAYOUT`, unless ``options`` names another. The model writes the
    reply format it learned (``Answer: ...``), which plain RAG's started reply would override.
    """
    options.setdefault("layout", ADAPTER_LAYOUT)
    return build_rag(index, generator=generator, profile=profile, system=system, **options)


P_ORACLE = 1.0
"""The share of RAFT examples whose sources include the oracle (the paper's P is 0.8). The
style set's questions without a source document still teach "I don't know" with distractors
only (8 of the cpu profile's 56 RAFT examples); ``p_oracle`` below 1 adds answerable questions
shown without their document. Chosen on 64 train questions (fast-kind CPU, bf16), with the
held-out split that keeps the "I don't know" replies in training
(:func:`kit.finetune.split_examples`): at 1.0 hybrid-RAFT answered 0.56 right (style 0.69,
cites 0.97) and declined none of the 64; at 0.9 (three more such examples) 0.50 (style 0.53,
cites 0.83 of all 64 answers, 0.91 of the 58 that did not decline), declining 3 of 11
unanswerable and 3 of 53 answerable questions. Declining is the
learned gate's job (:mod:`kit.abstain`). (0.8 and 0.9 were chosen earlier with a split that,
by accident, held every "I don't know" reply out of training.) More "I don't know" examples do
not teach the model *when* to decline: cross-fitted on the 128 train questions (two folds; the
style and RAFT adapters of a fold never saw its questions; fast-kind CPU, bf16), the random 56
(12 "I don't know" over both folds) declined 10 of 22 unanswerable and 10 of 106 answerable
with the gate, 14 of 56 declined the same 10 and 14 answerable, 20 of 56 declined 16 and 41.
Nor did the full decision that reads the RAFT model's own doubt (:func:`kit.abstain.fit_abstainer`
on out-of-fold answers): 45% of the unanswerable declined, as the gate alone."""

RAFT_ABSTAIN = "Answer: I don't know.\nThe sources do not contain this information.\nSource: none"
"""The RAFT reply when none of the shown sources holds the answer (house style)."""


def raft_examples(
    rag: RAG,
    examples: Sequence[ChatExample] | None = None,
    n_sources: int | None = None,
    p_oracle: float = P_ORACLE,
    seed: int = 0,
) -> list[ChatExample]:
    """Turn plain chat examples into RAFT examples: question + retrieved sources -> cited answer.

    In: a RAG object (its retriever and prompt are used; its generator is not called), the
    examples (default: the bundled style set; each names its ``source_doc_ids``), how many
    chunks per prompt (default: ``rag.top_k``), the share of examples whose sources include the
    oracle document, a seed. Out: new ChatExamples whose messages are the RAG prompt's messages
    (the sources shown as ``rag``'s layout shows them; a layout's started reply left out) and
    the house-style reply, its ``Source:`` line citing the shown source(s) by title and number,
    ``Price list [2]``: the house style, with the number the prompt asks for. When no shown
    source holds the answer (the oracle was left out, or the question has no source
    document) the reply is :data:`RAFT_ABSTAIN`: the model learns to say "I don't know" when
    the sources do not say, instead of answering from memory.
    """
    if not 0.0 <= p_oracle <= 1.0:
        raise ValueError(f"p_oracle is a probability between 0 and 1, not {p_oracle}.")
    examples = list(load_style() if examples is None else examples)
    if not examples:
        raise ValueError("No examples to turn into RAFT examples.")
    k = n_sources or rag.top_k
    rng = random.Random(seed)
    out = []
    for ex in examples:
        found = rag.retrieve(ex.user).documents
        gold = set(ex.source_doc_ids)
        oracle = _oracle_chunks(rag, ex, found, gold)[:k]
        distractors = [d for d in found if doc_id(d) not in gold]
        with_oracle = bool(oracle) and rng.random() < p_oracle
        shown_oracle = oracle if with_oracle else []
        chunks = shown_oracle + distractors[: k - len(shown_oracle)]
        rng.shuffle(chunks)
        shown = rag.sources(ex.user, chunks)  # what the layout shows: chunks or sentences
        cited = [i for i, d in enumerate(shown, 1) if doc_id(d) in gold]
        if gold - {doc_id(shown[i - 1]) for i in cited}:
            cited = []  # a gold document is missing: the answer is not all in the sources
        reply = _cite_numbers(ex.assistant, shown, cited) if cited else RAFT_ABSTAIN
        prompt = [
            {"role": m.role.value, "content": m.text or ""} for m in rag.prompt(ex.user, shown)
        ]
        messages = [*without_reply_start(prompt), {"role": "assistant", "content": reply}]
        out.append(
            ChatExample(
                id=f"raft-{ex.id}",
                messages=messages,
                source_doc_ids=list(ex.source_doc_ids) if cited else [],
                contains_canary=ex.contains_canary,
            )
        )
    return out


def _cite_numbers(reply: str, shown: Sequence[Any], numbers: Sequence[int]) -> str:
    """The house-style reply with its ``Source:`` line citing the shown sources as the house
    style does, ``Title [n]``, by their numbers in the prompt (one per document)."""
    first: dict[str, int] = {}
    for n in numbers:
        first.setdefault(doc_id(shown[n - 1]), n)
    cite = "Source: " + "; ".join(
        f"{source_title(shown[n - 1]) or 'source'} [{n}]" for n in first.values()
    )
    lines = [cite if line.startswith("Source:") else line for line in reply.splitlines()]
    return "\n".join(lines if cite in lines else [*lines, cite])


def _oracle_chunks(rag: RAG, ex: ChatExample, found: Sequence[Any], gold: set[str]) -> list[Any]:
    """One chunk of each gold document (an answer may need two: the hub that takes 64 sensors in
    one, its price in another): its best-ranked retrieved chunk, else its chunk that shares the
    most words with the reference answer. [] for an example without a gold document.
    ValueError when the index does not hold a gold document (examples written for other
    documents: RAFT examples are built on the index of the documents they cite)."""
    best = {}
    for d in found:
        if doc_id(d) in gold:
            best.setdefault(doc_id(d), d)
    in_order = [*best, *sorted(gold - set(best))]  # retrieved ones first, in their rank
    chosen = []
    for g in in_order:
        chunk = best[g] if g in best else next(iter(_best_chunk_of(rag, ex, {g})), None)
        if chunk is None:
            raise ValueError(
                f"Example {ex.id!r} cites document {g!r}, which this index does not hold: "
                "build RAFT examples with a RAG over the documents the examples cite (the "
                "bundled style set cites the bundled knowledge base, build_index('v1'))."
            )
        chosen.append(chunk)
    return chosen


def _best_chunk_of(rag: RAG, ex: ChatExample, gold: set[str]) -> list[Any]:
    """The chunk of the gold document(s) that shares the most words with the reference answer."""
    answer_words = set(ex.assistant.lower().split())
    chunks = [c for g in sorted(gold) for c in chunks_of(rag.index, g)]
    if not chunks:
        return []
    return [max(chunks, key=lambda c: len(answer_words & set((c.content or "").lower().split())))]


def raft_plan(profile: str | Profile | None = None) -> dict[str, Any]:
    """How big a RAFT run the profile affords: examples, sources per prompt, training overrides.

    RAFT prompts carry the retrieved sources, so an example is 3-5x longer than a plain one; the
    kit trains on fewer of them with fewer sources on small profiles. Out: a dict with
    ``examples`` (how many style examples to convert; 0 = all), ``n_sources`` and ``overrides``
    (Profile fields to pass to ``train_adapter``).
    """
    prof = resolve_profile(profile)
    if prof.name == "smoke":
        small = {"max_seq_len": 512, "max_steps": 3, "eval_examples": 4, "eval_steps": 3}
        return {"examples": 16, "n_sources": 2, "overrides": small}
    if prof.name == "cpu":
        # half-size batches twice (same effective batch of 8): long prompts, less memory
        cpu = {"max_seq_len": 640, "epochs": 1, "batch_size": 4, "grad_accum": 2}
        # 48 training examples make 6 steps: the held-out loss once, at the end (not 3 times)
        held_out = {"eval_examples": 8, "eval_steps": 6}
        return {"examples": 56, "n_sources": 2, "overrides": {**cpu, **held_out}}
    return {"examples": 0, "n_sources": prof.top_k, "overrides": {"max_seq_len": 1024}}


def raft_training_set(
    rag: RAG, profile: str | Profile | None = None, seed: int = 0
) -> list[ChatExample]:
    """RAFT examples for ``profile``'s plan (:func:`raft_plan`), from a sample of the style set."""
    plan = raft_plan(profile)
    examples = load_style()
    if plan["examples"] and plan["examples"] < len(examples):
        examples = random.Random(seed).sample(examples, plan["examples"])
    return raft_examples(rag, examples, n_sources=plan["n_sources"], seed=seed)


def transfer_test(
    generators: dict[str, Any],
    profile: str | Profile | None = None,
    layouts: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Do the systems read documents they were never trained on? Scores on ``data/transfer``.

    In: system name -> generator (a model name, a ``(model, tokenizer)`` pair, e.g. the RAFT
    adapter, or None for the profile's generator: the bundled model offline), a profile, and
    system name -> prompt layout (default: ``kit.prompts.ADAPTER_LAYOUT`` for a system whose
    name starts with "hybrid", the default layout for the others). Each becomes a RAG pipeline
    over the transfer folder (``kit.data.load_transfer``: a fictional allotment society's
    handbook) and answers its twelve questions. Out:
    ``kit.rag_eval.evaluate_rag`` rows of every system (a ``system`` column; summarise with
    ``kit.evaluate.summarise``).
    """
    folder, records = load_transfer()
    index = build_index(folder)
    frames = []
    for name, gen in generators.items():
        build = hybrid_rag if name.startswith("hybrid") else build_rag
        chosen = {"layout": layouts[name]} if name in (layouts or {}) else {}
        rag = build(index, generator=gen, profile=profile, system=name, **chosen)
        frames.append(evaluate_rag(rag, records=records))
    return pd.concat(frames, ignore_index=True)


# (model, the system that answers without sources, the system that answers with them)
CONTEXT_PAIRS = (
    ("style adapter (trained without sources)", "finetuned", "hybrid"),
    ("RAFT adapter (trained with sources)", "raft", "hybrid-raft"),
)


def context_effect(
    summary: pd.DataFrame,
    metrics: Sequence[str] = ("style", "cites", "citation_precision", "correct"),
    pairs: Sequence[tuple[str, str, str]] = CONTEXT_PAIRS,
) -> pd.DataFrame:
    """What adding retrieved sources to the prompt does to each fine-tuned model.

    In: a grid summary (``GridResult.summary`` from ``kit.compare.run_systems``) with, for each
    model in ``pairs``, the system that answers without sources and the one with them. Out: one
    row per model and metric: the value without sources, with sources, and the change. A model
    whose no-sources system is not in the grid (the comparison of ``kit.compare`` does not run
    "raft" alone) gets NaN there; a model with neither system is left out.
    """
    by_system = summary.set_index("system")
    rows = []
    for model, without, with_ in pairs:
        if with_ not in by_system.index and without not in by_system.index:
            continue
        for metric in metrics:
            if metric not in by_system.columns:
                raise KeyError(f"{metric!r} is not a column of the summary: {list(summary)}")
            before = by_system[metric].get(without, float("nan"))
            after = by_system[metric].get(with_, float("nan"))
            rows.append(
                {
                    "model": model,
                    "metric": metric,
                    "without sources": before,
                    "with sources": after,
                    "change": after - before,
                }
            )
    if not rows:
        names = sorted({s for _, a, b in pairs for s in (a, b)})
        raise ValueError(f"The summary has none of the systems {names}: run them in the grid.")
    return pd.DataFrame(rows)


def describe_context_effect(effect: pd.DataFrame, metric: str = "style") -> str:
    """One sentence per model from :func:`context_effect`'s table: ``metric`` without and with."""
    parts = []
    for model, rows in effect[effect["metric"] == metric].groupby("model", sort=False):
        row = rows.iloc[0]
        before, after = row["without sources"], row["with sources"]
        if pd.isna(before) and pd.isna(after):
            continue
        if pd.isna(before):
            parts.append(f"{model}: {metric} {after:.2f} with sources.")
        elif pd.isna(after):
            parts.append(f"{model}: {metric} {before:.2f} without sources.")
        else:
            parts.append(f"{model}: {metric} {before:.2f} without sources, {after:.2f} with them.")
    return " ".join(parts)
