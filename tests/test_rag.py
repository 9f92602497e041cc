"""kit.rag on the bundled knowledge base and the real bundled models (MiniLM, SmolLM2)."""

from __future__ import annotations

import re

import pytest
from haystack import Document, component
from haystack.dataclasses import ChatMessage

from kit import rag, retrieval
from kit.attribution import attribute
from kit.citations import doc_id
from kit.evaluate import eval_records
from kit.generate import Answer
from kit.indexing import Index, build_index
from kit.prompts import REPLY_START
from kit.rag import RagError
from kit.store import new_store

# --------------------------------------------------------------------------- answer


@component
class Says:
    """A Haystack generator component that always gives the same reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        component.set_input_type(self, "messages", list[ChatMessage])

    @component.output_types(replies=list[ChatMessage])
    def run(self, **kwargs):
        return {"replies": [ChatMessage.from_assistant(self.reply)]}


def test_answer_is_an_answer_with_sources_timings_and_tokens(hybrid):
    question = "How many paired sensors can one H4 gateway take at most?"
    answer = hybrid.answer(question)
    assert isinstance(answer, Answer) and answer.system == "rag"
    assert answer.text and answer.question == question
    assert 1 <= len(answer.documents) <= hybrid.layout.sentences  # the sentences it was shown
    assert "kb-002" in retrieval.unique_doc_ids(answer.documents)
    assert set(answer.timings) == {"retrieve", "pick", "generate", "total"}
    assert answer.timings["total"] >= answer.timings["generate"] > 0
    assert answer.prompt_tokens > 100 and 0 < answer.new_tokens <= 24
    assert set(answer.cited_ids) <= {d.meta["doc_id"] for d in answer.documents} | {
        f"kb-{i:03d}" for i in range(1, 45)
    }
    # the model's citation, else at most one shown source the answer's words come from
    assert answer.attributed_ids == (answer.cited_ids or attribute(answer.text, answer.documents))
    assert len(answer.attributed_ids) <= max(1, len(answer.cited_ids))
    # Greedy decoding: the same question gives the same answer.
    assert hybrid.answer(question).text == answer.text


def _agreement(index: Index, dtype: str, n: int = 4) -> tuple[int, list[str]]:
    """How many of ``n`` test questions get the same text batched as one at a time."""
    from kit.models import load_generator

    lm = load_generator(dtype=dtype)
    qa = rag.build_rag(index, "hybrid", generator=lm, profile="smoke", max_new_tokens=20)
    questions = [r.question for r in eval_records("test", n)]
    alone = [qa.answer(q) for q in questions]
    batched = qa.answer_batch(questions, batch_size=4)
    assert [a.question for a in batched] == questions  # in order
    for a, b in zip(alone, batched, strict=True):
        assert retrieval.unique_doc_ids(a.documents) == retrieval.unique_doc_ids(b.documents)
        assert a.prompt_tokens == b.prompt_tokens  # the very same prompt
    differ = [f"{a.text!r} vs {b.text!r}" for a, b in zip(alone, batched, strict=True)]
    same = sum(a.text == b.text for a, b in zip(alone, batched, strict=True))
    return same, [d for d, a, b in zip(differ, alone, batched, strict=True) if a.text != b.text]


def test_batched_answers_are_the_pipelines_answers_one_at_a_time(index):
    """The grid's batched path (left-padded prompts) against the Haystack pipeline, one question
    at a time, greedy. In float32 (what the kit computes in on AVX2 laptops) they agree on every
    question. In bfloat16 (the kit's choice where the CPU computes it faster) padding changes
    the rounding of every activation to 8 bits of mantissa, and that flips near-ties between two
    tokens: measured 12 of 16 the same on an AVX-512 CPU; both texts are equally valid greedy
    answers of the same model, so the grid reports the batched ones and `bench grid` prints the
    agreement on your machine."""
    from kit.models import pick_dtype

    same, differ = _agreement(index, "float32")
    assert same == 4, differ
    if pick_dtype("auto") == "bfloat16":
        same, differ = _agreement(index, "bfloat16")
        assert same >= 2, differ


def test_haystacks_answer_builder_reads_the_numbered_references(index):
    """The generation pipeline ends in Haystack's AnswerBuilder: its GeneratedAnswer's
    documents are the sources a reply refers to, and the Answer cites them: on the pipeline
    path (``answer``), and through ``_finish`` without a GeneratedAnswer, which is how the
    batched path runs the same component on a generated text."""
    from haystack.components.builders import AnswerBuilder

    qa = rag.build_rag(index, generator=Says("A pH of 7 [1-2]."), profile="smoke", min_score=None)
    assert list(qa.generation.graph.nodes) == ["prompt", "llm", "answer"]
    assert isinstance(qa.generation.get_component("answer"), AnswerBuilder)
    answer = qa.answer("Which buffers does the CK-3 kit contain?")
    shown = [doc_id(d) for d in answer.documents]
    assert len(shown) >= 2 and answer.text == "A pH of 7 [1-2]."
    # "[1-2]" is a range the kit's own parser does not read: the AnswerBuilder expands it
    assert answer.cited_ids == list(dict.fromkeys(shown[:2]))
    built = qa._finish("q", "Seen in [2] and [kb-044].", answer.documents, {}, 0, 0)
    assert built.cited_ids == list(dict.fromkeys([shown[1], "kb-044"]))  # both readers
    assert qa._finish("q", "I don't know [1]", answer.documents, {}, 0, 0).cited_ids == []
    # a reply with a number Haystack's own range pattern would take and fail on
    phone = qa._finish("q", "Call +32 [000-000-000] or see [2].", answer.documents, {}, 0, 0)
    assert phone.cited_ids == [shown[1]]


def test_prompt_shows_numbered_sources_and_the_question(hybrid):
    found = hybrid.retrieve("What does the restocking fee cost?")
    messages = hybrid.prompt("What does the restocking fee cost?", found.documents[:2])
    assert [m.role.value for m in messages] == ["system", "user", "assistant"]
    assert messages[-1].text == REPLY_START  # the reply the model continues
    assert "I don't know" in messages[0].text
    user = messages[1].text
    assert user.startswith("Sources:\n[1] ") and "\n\n[2] " in user
    assert found.documents[0].meta["doc_id"] not in user  # labels: number and title only
    assert f"[1] {found.documents[0].meta['title']}: " in user
    assert user.endswith("Question: What does the restocking fee cost?")


def test_the_default_prompt_is_the_default_layout_with_picked_sentences(hybrid):
    from kit.prompts import DEFAULT_LAYOUT, LAYOUTS, format_sources

    layout = LAYOUTS[DEFAULT_LAYOUT]
    assert hybrid.layout == layout and layout.sentences
    question = "What does the restocking fee cost?"
    shown = hybrid.sources(question, hybrid.retrieve(question).documents)
    assert len(shown) == layout.sentences
    assert all(len(d.content.split()) < 80 for d in shown)  # sentences, not 100-word chunks
    assert "restocking fee of 12 percent" in " ".join(d.content for d in shown)
    user = hybrid.prompt(question, shown)[1].text
    assert format_sources(shown) in user and layout.system == hybrid.prompt(question, shown)[0].text
    answer = hybrid.answer(question)
    assert [doc_id(d) for d in answer.documents] == [doc_id(d) for d in shown]
    # the model continued the started reply: the number it wrote is its citation
    assert answer.text.startswith(REPLY_START) and answer.cited_ids, answer.text
    number = int(re.match(r"According to source \[(\d+)\]", answer.text).group(1))
    assert doc_id(shown[number - 1]) in answer.cited_ids
    assert list(hybrid.generation.graph.nodes) == ["prompt", "llm", "answer", "start"]


def test_a_started_reply_needs_a_model_the_kit_loads(index):
    """A Haystack component renders its own chat template: the kit cannot make it continue a
    started reply, so it gets a layout without one, and asking for one says why not."""
    from kit.prompts import ADAPTER_LAYOUT
    from kit.rag import ReplyStart

    stub = Says("Paris [1]")
    assert rag.build_rag(index, generator=stub, profile="smoke").layout.name == ADAPTER_LAYOUT
    with pytest.raises(rag.RagError, match="starts the model's reply.*layout='sentences'"):
        rag.build_rag(index, generator=stub, profile="smoke", layout="cite-first")
    reply = ChatMessage.from_assistant("2], the hub.", meta={"usage": {"completion_tokens": 5}})
    out = ReplyStart(REPLY_START).run(replies=[reply])["replies"][0]
    assert out.text == "According to source [2], the hub." and out.meta == reply.meta
    nothing = ChatMessage.from_assistant(" ")  # the model ended its turn at once: no reply
    assert ReplyStart(REPLY_START).run(replies=[nothing])["replies"][0].text == ""


def test_a_folder_answer_never_shows_file_names_to_the_model(tmp_path, lm):
    (tmp_path / "12_Animalia_is_an.txt").write_text(
        "Animalia is a kingdom of multicellular organisms. Animals breathe oxygen and eat "
        "organic material. Most animals can move on their own at some point of their lives.\n"
    )
    (tmp_path / "notes.md").write_text("---\ntitle: Only metadata\n---\n")
    with pytest.warns(UserWarning, match="no (extractable )?text"):
        own = build_index(tmp_path)
    qa = rag.build_rag(own, generator=lm, profile="smoke", max_new_tokens=24)
    question = "What do animals breathe?"
    prompt = " ".join(
        m.text for m in qa.prompt(question, qa.sources(question, qa.retrieve(question).documents))
    )
    assert "Animalia_is_an" not in prompt and ".txt" not in prompt
    answer = qa.answer(question)
    assert "Animalia_is_an" not in answer.text and ".txt" not in answer.text


@pytest.mark.parametrize("question", ["???", "the of and", "Wer hat die Mona Lisa gemalt?"])
def test_a_question_that_matches_nothing_gets_i_dont_know_with_no_sources(hybrid, question):
    answer = hybrid.answer(question)
    assert answer.text == "I don't know" and answer.cited_ids == []
    assert answer.new_tokens == 0


def test_a_question_in_another_language_gets_i_dont_know_without_generating(index, lm):
    no_threshold = rag.build_rag(index, "hybrid", generator=lm, profile="smoke", min_score=None)
    for question in (
        "Quel est le prix du capteur Fennick S2 ?",  # on topic, in another language
        "Сколько стоит датчик Fennick S2?",
        "Hoeveel kost de Fennick S2 sensor?",
    ):
        answer = no_threshold.answer(question)
        assert answer.text == "I don't know" and answer.cited_ids == [], question
        assert answer.new_tokens == 0
    for query in ("Buoy dimensions?", "S2 specs", "Fennik S2 wieght"):  # terse English
        assert not no_threshold._foreign(query, no_threshold.retrieve(query)), query


def test_nothing_relevant_means_i_dont_know_without_generating(index, lm):
    strict = rag.build_rag(index, "hybrid", generator=lm, profile="smoke", min_score=0.99)
    answer = strict.answer("What is the capital of France?")
    assert answer.text == "I don't know"
    assert answer.cited_ids == [] and answer.new_tokens == 0
    assert answer.timings["generate"] == 0.0
    default = rag.build_rag(index, "dense", generator=lm, profile="smoke")
    off_topic = default.retrieve("Who painted the Mona Lisa?")
    assert off_topic.similarity < rag.DEFAULT_MIN_SCORE
    assert default.answer("Who painted the Mona Lisa?").text == "I don't know"


def test_bad_questions_raise_rag_errors(hybrid):
    for question in ("", "   \n"):
        with pytest.raises(RagError, match="empty"):
            hybrid.answer(question)
    with pytest.raises(RagError, match="must be text"):
        hybrid.answer(None)
    with pytest.raises(RagError, match="too long"):
        hybrid.answer("sensor " * 9000)


def test_filter_on_a_missing_field_is_refused_before_running(hybrid, index, lm):
    with pytest.raises(RagError, match=r"\['colour'\].*access"):
        hybrid.answer(
            "What is the S2 price?",
            filters={"field": "meta.colour", "operator": "==", "value": "red"},
        )
    with pytest.raises(RagError, match="colour"):
        rag.build_rag(
            index,
            "bm25",
            generator=lm,
            profile="smoke",
            filters={"field": "meta.colour", "operator": "==", "value": "red"},
        )


def test_empty_index_is_refused(lm):
    empty = rag.build_rag(new_store(), "bm25", generator=lm, profile="smoke")
    with pytest.raises(RagError, match="index is empty"):
        empty.answer("What is the S2 price?")


def test_role_limits_what_the_answer_can_use(index, lm):
    public = rag.build_rag(index, "hybrid", generator=lm, profile="smoke", role="public")
    answer = public.answer("What are the salary bands for engineers?")
    assert {d.meta["access"] for d in answer.documents} == {"public"}


def test_generator_can_be_a_peft_wrapped_model(index, lm):
    """The hybrid stage drops a fine-tuned (peft) model into the same pipeline."""
    import copy

    from peft import LoraConfig, get_peft_model

    model, tokenizer = lm
    peft_model = get_peft_model(
        copy.deepcopy(model), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    )
    peft_model.eval()
    tuned = rag.build_rag(
        index,
        "hybrid",
        generator=(peft_model, tokenizer),
        profile="smoke",
        system="hybrid",
        max_new_tokens=8,
    )
    assert tuned.model_and_tokenizer[0] is peft_model
    answer = tuned.answer("How many paired sensors can one H4 gateway take at most?")
    assert answer.system == "hybrid" and answer.text and 0 < answer.new_tokens <= 8


def test_unknown_generator_type_is_refused(index):
    with pytest.raises(RagError, match="generator must be"):
        rag.build_rag(index, "bm25", generator=42, profile="smoke")


# --------------------------------------------------------------------------- other stores


def test_qdrant_in_memory_store_swaps_in_without_code_changes(lm):
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    store = QdrantDocumentStore(
        location=":memory:", embedding_dim=384, similarity="cosine", progress_bar=False
    )
    index = build_index(store=store)
    assert store.count_documents() == index.chunks > 100
    pipeline = retrieval.retrieval_pipeline(index, "dense")
    found = retrieval.retrieve(
        pipeline, "What is the S2 depth rating?", retrieval.role_filter("public")
    )
    assert found.doc_ids[0] == "kb-001"
    assert {d.meta["access"] for d in found.documents} == {"public"}
    with pytest.raises(RagError, match="no keyword"):
        retrieval.retrieval_pipeline(index, "hybrid")
    qa = rag.build_rag(index, "dense", generator=lm, profile="smoke", max_new_tokens=8)
    assert qa.answer("What is the S2 depth rating?").documents[0].meta["doc_id"] == "kb-001"


def test_one_source_too_long_for_the_context_is_cut_not_blamed_on_the_question(
    index, lm, monkeypatch
):
    """A huge passage (split by passage, say) left alone over the model's context: its end is
    cut so the prompt fits. Only a question too long by itself is called too long."""

    chunks = rag.build_rag(index, "hybrid", generator=lm, profile="smoke", layout="chunks")
    monkeypatch.setattr(chunks.tokenizer, "model_max_length", 400)
    limit = 400 - chunks.max_new_tokens
    huge = Document(
        content="The pump hums quietly. " * 400, meta={"doc_id": "big", "title": "Pump"}
    )
    kept = chunks._fit_to_context("How loud is the pump?", [huge])
    assert len(kept) == 1 and huge.content.startswith(kept[0].content) and kept[0].content
    assert chunks._prompt_tokens("How loud is the pump?", kept) <= limit
    with pytest.raises(rag.RagError, match="too long: its prompt has .* without any source"):
        chunks._fit_to_context("why " * 400, [huge])
    titled = Document(content="Short.", meta={"doc_id": "t", "title": "Pump " * 300})
    with pytest.raises(rag.RagError, match="even without its text"):  # not a loop forever
        chunks._fit_to_context("How loud is the pump?", [titled])


def test_names_that_moved_out_of_rag_still_import_with_a_warning():
    with pytest.warns(FutureWarning, match="write `from kit.indexing import build_index`"):
        from kit.rag import build_index as old

    assert old is build_index
    with pytest.warns(FutureWarning, match="write `from kit.store import new_store`"):
        assert rag.new_store is new_store
    with pytest.warns(FutureWarning, match="write `from kit.retrieval import RETRIEVERS`"):
        assert rag.RETRIEVERS is retrieval.RETRIEVERS
    assert rag.retrieve is retrieval.retrieve  # used by kit.rag itself: no warning
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        rag.no_such_name  # noqa: B018
