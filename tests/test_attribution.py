"""kit.attribution: which shown source an answer's words come from (pure string functions)."""

from __future__ import annotations

from haystack import Document

from kit import attribution
from kit.data import QARecord
from kit.evaluate import score_answers
from kit.generate import Answer

MANUAL = Document(content="The S2 is rated to a depth of 40 metres.", meta={"doc_id": "kb-001"})
PRICES = Document(
    content="The S2 costs 129 euros; the S3 costs 199 euros.", meta={"doc_id": "kb-002"}
)


def test_support_is_the_share_of_answer_words_found_in_the_sources():
    sources = [MANUAL]
    assert attribution.support("40 metres [1]", sources) == 1.0
    assert (
        attribution.support("It goes down to 600 metres", sources) == 0.25
    )  # goes down 600 metres
    assert attribution.support("Answer: 40 metres.\nSource: Manual [kb-001]", sources) == 1.0
    assert attribution.support("I don't know", sources) == 0.0  # "know" is not in the sources
    assert attribution.support("", sources) == 0.0


def test_attribute_names_the_source_that_holds_the_answer():
    assert attribution.attribute("It costs 199 euros.", [MANUAL, PRICES]) == ["kb-002"]
    assert attribution.attribute("Rated to 40 metres.", [PRICES, MANUAL]) == ["kb-001"]
    # both hold "S2" only, 1 of 4 words: below the share it takes, so nothing is named
    assert attribution.attribute("The S2 is blue, light and cheap.", [MANUAL, PRICES]) == []
    for declined in ("I don't know.", "i don\u2019t know", "Not mentioned in the sources."):
        assert attribution.attribute(declined, [MANUAL, PRICES]) == [], declined
    assert attribution.attribute("40 metres", []) == []
    # a tie goes to the source shown first
    assert attribution.attribute("The S2", [PRICES, MANUAL], min_support=0.5) == ["kb-002"]


def test_a_documents_shown_sentences_count_together():
    """Two sentences of one document each hold half the answer; one sentence of another holds
    more than either alone, but less than the two together: the first document is the source."""
    first = Document(content="The H4 hub pairs 64 sensors.", meta={"doc_id": "kb-002"})
    second = Document(content="Hub firmware updates arrive monthly.", meta={"doc_id": "kb-002"})
    other = Document(
        content="The hub pairs sensors, and firmware updates arrive.", meta={"doc_id": "kb-009"}
    )
    answer = "The hub pairs 64 sensors; firmware updates arrive monthly."
    assert attribution.support(answer, [other]) > max(
        attribution.support(answer, [first]), attribution.support(answer, [second])
    )
    assert attribution.attribute(answer, [other, first, second]) == ["kb-002"]
    # equal support: the document shown first
    twin = Document(content=first.content, meta={"doc_id": "kb-003"})
    assert attribution.attribute("It pairs 64 sensors.", [twin, first]) == ["kb-003"]


def test_scores_keep_the_models_citations_apart_from_the_attributed_ones():
    rec = QARecord(
        id="q1",
        question="How deep can the S2 go?",
        answer="40 metres",
        gold_doc_ids=["kb-001"],
        type="single",
        split="test",
        evidence=[],
    )
    uncited = Answer(rec.question, "40 metres.", attributed_ids=["kb-001"], documents=[MANUAL])
    cited = Answer(rec.question, "40 metres [1].", cited_ids=["kb-002"], attributed_ids=["kb-002"])
    bare = Answer(rec.question, "40 metres.")
    rows = score_answers([rec] * 3, [uncited, cited, bare])
    assert rows["cites"].tolist() == [0.0, 1.0, 0.0]
    assert rows["attributed"].tolist() == [1.0, 1.0, 0.0]
    assert rows["attribution_precision"].tolist()[:2] == [1.0, 0.0]
    assert rows["citation_precision"].tolist()[1] == 0.0


def test_citation_table_shows_the_systems_that_retrieve():
    from kit.evaluate import citation_table

    rec = QARecord("q1", "How deep?", "40 metres", ["kb-001"], "single", "test", [])
    rows = score_answers(
        [rec, rec],
        [
            Answer(rec.question, "40 metres.", documents=[MANUAL], system="rag"),
            Answer(rec.question, "Answer: 40 metres.\nSource: Manual [kb-001]", system="ft"),
        ],
    )
    table = citation_table(rows)
    assert table["system"].tolist() == ["rag"]  # "ft" saw no sources
    assert list(table.columns)[2:] == [
        "answered",
        "cites",
        "citation_precision",
        "attributed",
        "attribution_precision",
    ]


def test_citation_table_without_a_retrieving_system_is_empty_not_an_error():
    from kit.evaluate import citation_table

    rec = QARecord("q1", "How deep?", "40 metres", ["kb-001"], "single", "test", [])
    rows = score_answers([rec], [Answer(rec.question, "40 metres.", system="base")])
    assert citation_table(rows).empty
    assert citation_table(rows.drop(columns=["sources"])).empty  # scored before the column
    assert list(citation_table(rows).columns)[:3] == ["system", "questions", "answered"]


def test_citations_count_the_answers_that_do_not_decline():
    """An "I don't know" has nothing to cite: a system that declines is not ranked below one
    that makes an answer up (``answered`` says how many answers the rates count)."""
    from kit.evaluate import citation_table

    deep = QARecord("q1", "How deep?", "40 metres", ["kb-001"], "single", "test", [])
    wide = QARecord("q2", "How wide?", "2 metres", ["kb-001"], "single", "test", [])
    answers = [
        Answer(deep.question, "40 metres [1].", cited_ids=["kb-001"], documents=[MANUAL]),
        Answer(wide.question, "I don't know.", documents=[MANUAL]),
    ]
    row = citation_table(score_answers([deep, wide], answers)).iloc[0]
    assert (row["questions"], row["answered"]) == (2, 1)
    assert row["cites"].startswith("1.00 [") and row["attributed"].startswith("1.00 [")
    silent = [Answer(q.question, "I don't know.", documents=[MANUAL]) for q in (deep, wide)]
    none = citation_table(score_answers([deep, wide], silent)).iloc[0]
    assert (none["answered"], none["cites"], none["attributed"]) == (0, "–", "–")


def test_the_started_replys_lead_in_is_not_counted_as_the_answers_words():
    """ "According to source [2]," names a source; no source holds the word "according", so
    counted it would pull every plain RAG answer's support down."""
    shown = [Document(content="The hub takes 64 sensors.", meta={"doc_id": "kb-002"})]
    assert attribution.answer_words("According to source [1], the hub takes 64 sensors.") == [
        "hub",
        "takes",
        "64",
        "sensors",
    ]
    assert attribution.support("According to source [1], the hub takes 64 sensors.", shown) == 1.0
