"""kit.hybrid: RAFT examples built with the kit's own retriever and prompt, and the run sizes."""

from __future__ import annotations

import re

import pytest

from kit.data import load_style
from kit.hybrid import raft_examples, raft_plan, raft_training_set
from kit.rag import build_index, build_rag


@pytest.fixture(scope="module")
def rag():
    return build_rag(build_index("v1"), profile="smoke")


def _shown_ids(example) -> list[str]:
    """Document ids of the numbered sources in a RAFT example's user message."""
    user = next(m["content"] for m in example.messages if m["role"] == "user")
    return re.findall(r"^\[\d+\] .*?\((kb-\d+)\):", user, flags=re.MULTILINE)


def test_raft_examples_hold_the_oracle_and_distractors(rag):
    style = [ex for ex in load_style() if ex.source_doc_ids][:8]
    always = raft_examples(rag, style, n_sources=3, p_oracle=1.0)
    assert len(always) == len(style)
    for ex, raft in zip(style, always, strict=True):
        shown = _shown_ids(raft)
        assert len(shown) == 3, raft.messages
        assert set(ex.source_doc_ids) & set(shown), (ex.id, shown)  # the oracle is there
        assert set(shown) - set(ex.source_doc_ids), shown  # and at least one distractor
        assert raft.messages[-1] == {"role": "assistant", "content": ex.assistant}
        assert raft.source_doc_ids == ex.source_doc_ids
    never = raft_examples(rag, style, n_sources=3, p_oracle=0.0)
    for ex, raft in zip(style, never, strict=True):
        assert not set(ex.source_doc_ids) & set(_shown_ids(raft)), ex.id  # distractors only


def test_raft_prompt_is_the_rag_prompt_itself(rag):
    ex = next(e for e in load_style() if e.source_doc_ids)
    raft = raft_examples(rag, [ex], n_sources=2, p_oracle=1.0)[0]
    system, user = raft.messages[0], raft.messages[1]
    prompt = rag.prompt(ex.user, rag.retrieve(ex.user).documents[:2])
    assert system["content"] == prompt[0].text  # same instructions as at answer time
    assert user["content"].endswith(ex.user) or ex.user in user["content"]
    with pytest.raises(ValueError, match="p_oracle"):
        raft_examples(rag, [ex], p_oracle=1.5)
    with pytest.raises(ValueError, match="No examples"):
        raft_examples(rag, [])


def test_raft_plan_fits_each_profile(rag):
    smoke, cpu, gpu = raft_plan("smoke"), raft_plan("cpu"), raft_plan("gpu")
    assert smoke["examples"] < cpu["examples"] and gpu["examples"] == 0  # 0 = all
    assert smoke["overrides"]["max_steps"] > 0
    data = raft_training_set(rag, "smoke")
    assert len(data) == smoke["examples"]
    assert all(len(_shown_ids(ex)) <= smoke["n_sources"] for ex in data)
    assert data == raft_training_set(rag, "smoke")  # the same examples every time (reusable)
