"""kit.prompts: how sources are shown to the model (labels, layouts, sentence picking)."""

from __future__ import annotations

import pytest
from haystack import Document

from kit import prompts
from kit.generate import DEFAULT_SYSTEM


def _chunk(ident: str, title: str, text: str, **meta: str) -> Document:
    return Document(content=text, meta={"doc_id": ident, "title": title, **meta})


def test_sources_are_numbered_titled_and_flattened_without_ids():
    docs = [
        _chunk("kb-012", "Returns and refunds", "# Returns and refunds\n\nReturn it\n in 30 days."),
        _chunk("kb-004", "Price list 2025", "S2: €420."),
    ]
    text = prompts.format_sources(docs)
    assert text.split("\n\n") == [
        "[1] Returns and refunds: Return it in 30 days.",
        "[2] Price list 2025: S2: €420.",
    ]
    assert "kb-" not in text
    assert prompts.format_sources(docs, titles=False).startswith("[1] Return it in 30 days.")


def test_an_indexed_chunk_keeps_the_paragraph_its_heading_runs_into():
    # indexing collapses blank lines: the heading, the first paragraph and the next heading
    # arrive on one line, which a "drop the heading line" rule would show as nothing at all
    text = "# Hub Guide The hub is the gateway. ## Capacity One hub supports 64 sensors.\nMore."
    shown = prompts.format_sources([_chunk("kb-002", "Hub Guide", text)])
    assert shown == (
        "[1] Hub Guide: The hub is the gateway. Capacity One hub supports 64 sensors. More."
    )
    untitled = prompts.format_sources([_chunk("kb-002", "Hub Guide", text)], titles=False)
    assert untitled.startswith("[1] The hub is the gateway.")  # the title stays hidden
    assert "Issue #5 in C# code" in prompts.format_sources([_chunk("x", "", "Issue #5 in C# code")])


@pytest.mark.parametrize(
    "meta",
    [
        {"title": "12_Animalia_is_an", "source": "12_Animalia_is_an.txt"},  # load_folder fallback
        {"title": "notes/kettle.md", "source": "notes/kettle.md"},
        {"title": "report.pdf"},
        {"title": "", "source": "a.txt"},
    ],
)
def test_file_names_paths_and_ids_are_never_shown_as_titles(meta):
    doc = Document(
        content="The kettle boils in 3 minutes.", meta={"doc_id": meta.get("source", "x"), **meta}
    )
    assert prompts.source_title(doc) is None
    assert prompts.format_sources([doc]) == "[1] The kettle boils in 3 minutes."


def test_a_real_title_from_front_matter_is_shown():
    doc = Document(content="text", meta={"title": "Kettle manual", "source": "kettle.md"})
    assert prompts.source_title(doc) == "Kettle manual"


def test_every_layout_has_the_question_and_sources_slots_and_a_name_lookup():
    for name, layout in prompts.LAYOUTS.items():
        assert prompts.get_layout(name) is layout
        roles = [role for role, _ in layout.messages()]
        assert roles[0] == "system" and roles[-1] == ("assistant" if layout.reply_start else "user")
        assert "{{ sources }}" in layout.user and "{{ question }}" in layout.user
        assert layout.system.startswith(DEFAULT_SYSTEM)
    assert prompts.DEFAULT_LAYOUT in prompts.LAYOUTS
    assert len(prompts.LAYOUTS) >= 3
    example = prompts.get_layout("worked-example").messages()
    assert [r for r, _ in example] == ["system", "user", "assistant", "user"]
    started = prompts.get_layout(prompts.DEFAULT_LAYOUT).messages()
    assert started[-1] == ("assistant", prompts.REPLY_START)  # the reply the model continues
    assert not prompts.get_layout(prompts.ADAPTER_LAYOUT).reply_start  # the adapters' own format
    with pytest.raises(ValueError, match="Unknown prompt layout 'nope'"):
        prompts.get_layout("nope")


def test_sentences_split_on_ends_and_list_items_and_keep_table_rows_whole():
    text = (
        "# Manual\n\nThe S2 weighs 1.35 kg. It floats.\n- Rated to 40 metres depth\n"
        "## Errors - E31: oxygen cell not responding.\n\n"
        "| Item | Price |\n|---|---|\n| H4 Hub | €1,150 |"
    )
    assert prompts.split_sentences(text) == [
        "The S2 weighs 1.35 kg.",
        "Rated to 40 metres depth",
        "E31: oxygen cell not responding.",
        "H4 Hub | €1,150",
    ]
    assert "It floats." in prompts.split_sentences(text, min_words=1)


def test_keyword_overlap_counts_the_questions_content_words():
    assert prompts.content_words("What is the price of the H4 Hub?") == ["price", "h4", "hub"]
    assert prompts.keyword_overlap("the price of the H4 hub", "H4 Hub | €1,150") == 2 / 3
    assert prompts.keyword_overlap("the of", "anything") == 0.0


def test_sentence_picker_keeps_the_most_similar_sentences_with_their_meta():
    from kit.models import DEFAULT_EMBEDDER, resolve_model

    picker = prompts.SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=1)
    chunks = [
        _chunk(
            "kb-001",
            "S2 manual",
            "The office canteen serves lunch at noon. The sensor is rated to a depth of 40 metres.",
        ),
        _chunk("kb-002", "Travel policy", "Hotels in London cost at most 210 euros per night."),
    ]
    picked = picker.run(question="How deep can the sensor go under water?", documents=chunks)[
        "documents"
    ]
    assert [d.content for d in picked] == ["The sensor is rated to a depth of 40 metres."]
    assert picked[0].meta["doc_id"] == "kb-001" and picked[0].meta["title"] == "S2 manual"
    few = picker.run(question="anything", documents=chunks[1:])["documents"]
    assert len(few) == 1  # as many sentences as asked for: all of them, unscored
    with pytest.raises(ValueError, match="sentences must be >= 1"):
        prompts.SentencePicker("x", sentences=0)


def test_best_sentence_similarity_is_the_closest_sentence_of_the_sources():
    """The signal the learned "I don't know" reads: the best sentence, not the chunk."""
    import numpy as np

    from kit.models import DEFAULT_EMBEDDER, load_embedder, resolve_model

    picker = prompts.SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=1, shared=False)
    sentences = [
        "The office canteen serves lunch at noon.",
        "The sensor is rated to a depth of 40 metres.",
    ]
    chunk = _chunk("kb-001", "S2 manual", " ".join(sentences))
    question = "How deep can the sensor go under water?"
    best = prompts.best_sentence_similarity(question, [chunk], picker)
    vectors = load_embedder().encode([question, *sentences], normalize_embeddings=True)
    by_hand = vectors[1:] @ vectors[0]
    assert best == pytest.approx(float(by_hand.max()), abs=1e-5)
    assert np.argmax(by_hand) == 1 and by_hand[1] > by_hand[0] + 0.2
    assert len(picker._vectors) == 2  # kept for the next question over the same sources
    fresh = prompts.SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=1, shared=False)
    assert prompts.best_sentence_similarity(question, [chunk], fresh) == best
    short = prompts.best_sentence_similarity(question, [_chunk("x", "t", "Depth 40m")], picker)
    assert 0 < short < 1  # no sentence of 3 words: the source counts whole
    assert np.isnan(prompts.best_sentence_similarity(question, [_chunk("x", "t", " ")], picker))


def test_a_question_reads_as_foreign_only_with_another_language_and_few_shared_words():
    from kit.data import load_documents, load_qa
    from kit.prompts import reads_as_foreign

    corpus = " ".join(d.content for d in load_documents("v1"))
    assert not any(reads_as_foreign(r.question, corpus) for r in load_qa())  # all 192 English
    for question in (
        "Quel est le prix du capteur Fennick S2 ?",
        "Wie lange ist die Garantie für Fennick-Sensoren?",
        "¿Cuánto pesa el Fennick S2?",
        "Qual é o preço do sensor Fennick S2?",
        "Hoeveel kost de Fennick S2 sensor?",
        "Πόσο κοστίζει ο αισθητήρας Fennick S2;",
        "风暴浮标的电池能用多久？",
    ):
        assert reads_as_foreign(question, corpus), question
    # terse English, typos and codes share nothing with an empty text and still pass
    for query in ("Buoy dimensions?", "Max depth?", "S2 specs", "Fennik S2 wieght", "ERR_42?"):
        assert not reads_as_foreign(query, ""), query
    french = "Le capteur Fennick S2 coûte 480 euros. La garantie est de deux ans."
    assert not reads_as_foreign("Quel est le prix du capteur Fennick S2 ?", french)


def test_the_picked_sentences_do_not_depend_on_what_was_asked_before(index):
    """A picker that remembers sentence vectors picks what a new one picks, question after
    question over the bundled index (the vectors are the model's own float32 numbers)."""
    from kit import retrieval
    from kit.data import load_qa, sample_questions
    from kit.models import DEFAULT_EMBEDDER, resolve_model

    hybrid = retrieval.retrieval_pipeline(index, "hybrid", 4)
    warm = prompts.SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=4, shared=False)
    for record in sample_questions(load_qa("train"), 12):
        chunks = retrieval.retrieve(hybrid, record.question).documents[:4]
        cold = prompts.SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=4, shared=False)
        picked = [warm.run(question=record.question, documents=chunks)["documents"]]
        picked.append(cold.run(question=record.question, documents=chunks)["documents"])
        assert [d.content for d in picked[0]] == [d.content for d in picked[1]], record.id
    assert len(warm._vectors) > 12 * 4  # sentences were kept and reused


def test_hard_wrapped_lines_are_read_as_whole_sentences():
    """A PDF's printed lines or a .txt wrapped at 72 characters: the sentences layout must not
    show the model half-sentences, nor drop a short tail ("replaced yearly.")."""
    from kit.prompts import split_sentences, unwrap_lines

    wrapped = (
        "The pump must be serviced by a certified technician every\n500 hours of running. "
        "The intake filters of the pump are\nreplaced yearly.\n"
        "## Parts\n- O-ring kit, part 4411\n"
        "| Part | Price |\n|---|---|\n| Filter | 12 euros |\n"
        "**Can it run dry?**\nNo, never run it dry.\n<!-- note -->\nKeep the manual."
    )
    sentences = split_sentences(wrapped)
    assert (
        "The pump must be serviced by a certified technician every 500 hours of running."
        in sentences
    )
    assert "The intake filters of the pump are replaced yearly." in sentences
    assert "O-ring kit, part 4411" in sentences and "Filter | 12 euros" in sentences
    assert "**Can it run dry?**" in unwrap_lines(wrapped)  # a question line ends its sentence
    assert "<!-- note -->" in unwrap_lines(wrapped)


def test_lines_that_do_not_run_on_stay_apart():
    """What a converter leaves of a list (markers stripped), headings, rules, bullets, curly
    quotes: each line stands alone, as before unwrapping existed."""
    from kit.prompts import unwrap_lines

    stripped_list = "Check the seals every month\nclean the filter\nrecord the pressure"
    assert unwrap_lines(stripped_list) == stripped_list.splitlines()  # short lines: not wraps
    notes = "--------\nMeeting notes from the pump maintenance team in Ghent\n--------\n"
    assert unwrap_lines(notes) == notes.splitlines()
    bullets = "• the intake filters of the pump and the outlet valves\n• the seals"
    assert unwrap_lines(bullets) == bullets.splitlines()
    quoted = "The manual says: “Never run the pump dry, not even for a minute.”\nafter that"
    assert unwrap_lines(quoted) == quoted.splitlines()


def test_csv_rows_are_read_one_row_at_a_time():
    """A spreadsheet's rows have no spaces and no full stops: each is a unit of its own (three
    cells count as three words), never joined to the next row."""
    from kit.prompts import split_sentences

    rows = "name,price,count\nWidget7,4.50,12\nPump S2,129,In stock\n"
    assert split_sentences(rows) == ["name,price,count", "Widget7,4.50,12", "Pump S2,129,In stock"]
    assert split_sentences("Widget7,4.50") == []  # two cells: too short to be a unit


def test_a_sheet_is_labelled_by_its_own_name_not_its_files():
    from haystack import Document

    from kit.prompts import source_title

    meta = {"source": "finance/prices.xlsx", "title": "prices (Rates 2025)", "sheet": "Rates 2025"}
    assert source_title(Document(content="a,b,c", meta=meta)) == "Rates 2025"
    titled = {**meta, "title": "Price book (Rates 2025)"}  # a real title stays whole
    assert source_title(Document(content="a,b,c", meta=titled)) == "Price book (Rates 2025)"
    default = {**meta, "title": "prices (Sheet1)", "sheet": "Sheet1"}  # says nothing: no title
    assert source_title(Document(content="a,b,c", meta=default)) is None
    from kit.citations import parse_citations

    rates = Document(content="a,b,c", meta={**meta, "doc_id": "finance/prices.xlsx"})
    assert parse_citations("Answer: 4.50.\nSource: Rates 2025", [rates]) == ["finance/prices.xlsx"]
