"""kit.hybrid: RAFT examples built with the kit's own retriever and prompt, and the run sizes."""

from __future__ import annotations

import re

import pytest

from kit.data import load_documents, load_style, style_compliant
from kit.finetune import SEED, split_examples
from kit.hybrid import RAFT_ABSTAIN, raft_examples, raft_plan, raft_training_set
from kit.rag import build_rag


@pytest.fixture(scope="module")
def rag(index):
    return build_rag(index, profile="smoke")  # the default layout: picked sentences


@pytest.fixture(scope="module")
def chunks_rag(index):
    return build_rag(index, profile="smoke", layout="chunks")  # whole chunks, one per source


TITLE_TO_ID = {d.meta["title"]: d.id for d in load_documents("v1")}


def _shown_ids(example) -> list[str]:
    """Document ids of the numbered sources in a RAFT example's user message (by title)."""
    user = next(m["content"] for m in example.messages if m["role"] == "user")
    titles = re.findall(r"^\[\d+\] (.*?): ", user, flags=re.MULTILINE)
    return [TITLE_TO_ID[t] for t in titles]


def _cited_numbers(reply: str) -> list[int]:
    line = next(x for x in reply.splitlines() if x.startswith("Source:"))
    return [int(n) for n in re.findall(r"\[(\d+)\]", line)]


def test_raft_examples_hold_the_oracle_and_distractors_and_cite_by_number(chunks_rag):
    style = [ex for ex in load_style() if ex.source_doc_ids][:8]
    always = raft_examples(chunks_rag, style, n_sources=3, p_oracle=1.0)
    assert len(always) == len(style)
    for ex, raft in zip(style, always, strict=True):
        shown = _shown_ids(raft)
        assert len(shown) == 3, raft.messages
        assert set(ex.source_doc_ids) & set(shown), (ex.id, shown)  # the oracle is there
        assert set(shown) - set(ex.source_doc_ids), shown  # and at least one distractor
        reply = raft.messages[-1]["content"]
        assert reply.splitlines()[0] == ex.assistant.splitlines()[0]  # the same answer
        cited = [shown[n - 1] for n in _cited_numbers(reply)]
        assert cited and set(cited) <= set(ex.source_doc_ids), (reply, shown)
        assert "kb-" not in reply  # numbers the model can read, not ids it must remember
        assert style_compliant(reply), reply  # still the house style: "Source: Title [n]"
        assert raft.source_doc_ids == ex.source_doc_ids
    never = raft_examples(chunks_rag, style, n_sources=3, p_oracle=0.0)
    for ex, raft in zip(style, never, strict=True):
        assert not set(ex.source_doc_ids) & set(_shown_ids(raft)), ex.id  # distractors only
        assert raft.messages[-1]["content"] == RAFT_ABSTAIN  # so: "I don't know"
        assert raft.source_doc_ids == []


def test_raft_answers_only_when_every_document_it_needs_is_shown(chunks_rag, rag):
    # "How much does the hub that supports 64 sensors cost?": the hub in one document, its
    # price in another. Both are shown, or the reply is "I don't know".
    multi = [ex for ex in load_style() if len(ex.source_doc_ids) > 1]
    assert len(multi) >= 10
    for raft_rag in (chunks_rag, rag):
        answered = 0
        rafts = raft_examples(raft_rag, multi, n_sources=3, p_oracle=1.0)
        for ex, raft in zip(multi, rafts, strict=True):
            reply = raft.messages[-1]["content"]
            if reply == RAFT_ABSTAIN:
                continue
            answered += 1
            shown = _shown_ids(raft)
            assert set(ex.source_doc_ids) <= set(shown), (ex.id, shown)
            cited = {shown[n - 1] for n in _cited_numbers(reply)}
            assert cited == set(ex.source_doc_ids), (ex.id, reply, shown)
        assert answered >= len(multi) // 2  # the check does not just decline them all
    one_slot = raft_examples(chunks_rag, multi, n_sources=1, p_oracle=1.0)  # room for one
    assert all(r.messages[-1]["content"] == RAFT_ABSTAIN for r in one_slot)


def test_raft_prompt_is_the_rag_prompt_itself(rag):
    ex = next(e for e in load_style() if e.source_doc_ids)
    raft = raft_examples(rag, [ex], n_sources=2, p_oracle=1.0)[0]
    assert rag.layout.reply_start  # the default layout starts the reply; RAFT's reply replaces it
    assert [m["role"] for m in raft.messages] == ["system", "user", "assistant"]
    assert raft.messages[-1]["content"].startswith("Answer: ")  # the house style, whole
    system, user = raft.messages[0], raft.messages[1]
    assert system["content"] == rag.prompt(ex.user, [])[0].text  # the same rules
    sources = user["content"].split("\n\nQuestion: ")[0]
    assert len(re.findall(r"^\[\d+\] ", sources, flags=re.MULTILINE)) <= rag.layout.sentences
    assert user["content"].endswith(f"Question: {ex.user}")
    with pytest.raises(ValueError, match="p_oracle"):
        raft_examples(rag, [ex], p_oracle=1.5)
    with pytest.raises(ValueError, match="No examples"):
        raft_examples(rag, [])


def test_raft_plan_fits_each_profile(rag):
    smoke, cpu, gpu = raft_plan("smoke"), raft_plan("cpu"), raft_plan("gpu")
    assert smoke["examples"] < cpu["examples"] and gpu["examples"] == 0  # 0 = all
    assert smoke["overrides"]["max_steps"] > 0
    o = cpu["overrides"]  # the cpu run measures its held-out loss once, at its last step
    steps = (cpu["examples"] - o["eval_examples"]) // (o["batch_size"] * o["grad_accum"])
    assert o["epochs"] == 1 and o["eval_steps"] == steps
    data = raft_training_set(rag, "smoke")
    assert len(data) == smoke["examples"]
    assert all(len(_shown_ids(ex)) <= rag.layout.sentences for ex in data)
    assert data == raft_training_set(rag, "smoke")  # the same examples every time (reusable)


def test_context_effect_sets_each_adapter_without_sources_beside_with_sources():
    import pandas as pd

    from kit.hybrid import context_effect, describe_context_effect

    summary = pd.DataFrame(
        {
            "system": ["finetuned", "hybrid", "hybrid-raft", "rag"],
            "style": [1.0, 0.125, 0.8125, 0.0],
            "correct": [0.0, 0.1875, 0.375, 0.125],
        }
    )
    effect = context_effect(summary, metrics=("style", "correct"))
    style = effect[effect.metric == "style"].set_index("model")
    plug_in = style.loc["style adapter (trained without sources)"]
    assert (plug_in["without sources"], plug_in["with sources"]) == (1.0, 0.125)
    assert plug_in["change"] == pytest.approx(-0.875)
    raft = style.loc["RAFT adapter (trained with sources)"]
    assert pd.isna(raft["without sources"]) and raft["with sources"] == 0.8125
    text = describe_context_effect(effect)
    assert "style 1.00 without sources, 0.12 with them" in text
    assert "style 0.81 with sources" in text
    only_plain = context_effect(summary[summary.system == "finetuned"], metrics=("style",))
    assert describe_context_effect(only_plain) == (
        "style adapter (trained without sources): style 1.00 without sources."
    )
    with pytest.raises(KeyError, match="'f1' is not a column"):
        context_effect(summary, metrics=("f1",))
    with pytest.raises(ValueError, match="none of the systems"):
        context_effect(summary[summary.system == "rag"])


def test_about_one_cpu_raft_reply_in_seven_is_i_dont_know_and_all_are_trained_on(rag):
    """The share that decides whether the RAFT adapter answers or declines: with p_oracle 1.0
    only the style set's questions without a source document are "I don't know" (8 of 56);
    three more, at 0.9, made the adapter decline answerable train questions and answer fewer
    right. The held-out split keeps every one of them in training."""
    data = raft_training_set(rag, "cpu")
    declined = [ex for ex in data if ex.messages[-1]["content"] == RAFT_ABSTAIN]
    assert len(data) == raft_plan("cpu")["examples"]
    assert 0.10 <= len(declined) / len(data) <= 0.18, (len(declined), len(data))  # 8 of 56
    train, held = split_examples(data, raft_plan("cpu")["overrides"]["eval_examples"], SEED)
    assert held and all(any(ex is t for t in train) for ex in declined)


def test_an_example_citing_a_document_the_index_lacks_is_refused_by_name(rag):
    """The bundled style set over another folder's index: said, not an IndexError."""
    import dataclasses

    stray = dataclasses.replace(load_style()[0], source_doc_ids=["kb-999"])
    with pytest.raises(ValueError, match="'kb-999', which this index does not hold"):
        raft_examples(rag, [stray])


def test_a_fine_tuned_generator_writes_its_own_reply_format(index, lm):
    """The hybrids read plain RAG's sources but not its started reply: their adapters learned
    a reply format of their own (the house style), which "According to source [" overrides."""
    from kit.hybrid import hybrid_rag
    from kit.prompts import ADAPTER_LAYOUT, DEFAULT_LAYOUT

    plain = build_rag(index, generator=lm, profile="smoke")
    tuned = hybrid_rag(index, lm, "smoke", "hybrid-raft", top_k=2)
    assert plain.layout.name == DEFAULT_LAYOUT and plain.layout.reply_start
    assert tuned.layout.name == ADAPTER_LAYOUT and not tuned.layout.reply_start
    assert tuned.system == "hybrid-raft" and tuned.top_k == 2
    question = "How many paired sensors can one H4 gateway take at most?"
    shown = tuned.sources(question, tuned.retrieve(question).documents)
    assert [m.role.value for m in tuned.prompt(question, shown)] == ["system", "user"]
    assert hybrid_rag(index, lm, "smoke", layout="cite-first").layout.name == "cite-first"
