"""kit.citations: cited document ids and declines out of what a model wrote (no model)."""

from __future__ import annotations

import pytest
from haystack import Document

from kit.citations import bracketed_ids, doc_id, is_abstention, parse_citations


def _chunk(ident: str, title: str, text: str = "Some text.") -> Document:
    return Document(content=text, meta={"doc_id": ident, "title": title})


SOURCES = [
    _chunk("kb-012", "Returns and refunds", "Customers may return an unused sensor in 30 days."),
    _chunk("kb-004", "Price list 2025"),
    _chunk("kb-012", "Returns and refunds", "A restocking fee of 15% applies."),
]


def test_doc_id_prefers_meta_doc_id_then_meta_id_then_id():
    both = Document(id="x", content="a", meta={"doc_id": "kb-001", "id": "kb-9"})
    assert doc_id(both) == "kb-001"
    assert doc_id(Document(id="x", content="a", meta={"id": "notes/a.md"})) == "notes/a.md"
    assert doc_id(Document(id="kb-003", content="a")) == "kb-003"


def test_numbers_map_to_the_shown_sources():
    assert parse_citations("The fee is 15% [3].", SOURCES) == ["kb-012"]
    assert parse_citations("Costs €120 [2] and can be returned [1].", SOURCES) == [
        "kb-004",
        "kb-012",
    ]
    assert parse_citations("See [1, 2].", SOURCES) == ["kb-012", "kb-004"]
    assert parse_citations("See [2][1]", SOURCES) == ["kb-004", "kb-012"]
    assert parse_citations("According to Source 2, it costs €120.", SOURCES) == ["kb-004"]


def test_source_n_copied_from_a_sources_text_is_not_a_citation():
    wiring = [
        Document(content="Connect power source 2 to the left terminal.", meta={"doc_id": "kb-1"}),
        Document(content="The pump runs on 12 V.", meta={"doc_id": "kb-2"}),
    ]
    assert parse_citations("Connect power source 2 to the left terminal.", wiring) == []
    assert parse_citations("Connect power source 2 to the left terminal [1].", wiring) == ["kb-1"]
    reordered = wiring[1:] + wiring[:1]  # a citation is one, whatever the sources say
    assert parse_citations("It runs on 12 V (Source 1).", reordered) == ["kb-2"]
    assert parse_citations("It is serviced in May (Source 2).", reordered) == ["kb-1"]
    assert parse_citations("As Source 2 says, it is serviced in May.", reordered) == ["kb-1"]


def test_numbers_outside_the_sources_are_ignored():
    assert parse_citations("It is 15% [7].", SOURCES) == []
    assert parse_citations("It is [0].", SOURCES) == []


def test_doc_ids_in_brackets_as_in_the_house_style():
    reply = (
        "Answer: 15%.\nA restocking fee of 15% applies.\n"
        "Source: Returns and refunds [kb-012]; Price list 2025 [kb-004]"
    )
    assert parse_citations(reply, SOURCES) == ["kb-012", "kb-004"]
    # Ids shaped like the bundled ones count even if not shown (precision will judge them).
    assert parse_citations("Source: Leave policy [kb-031]", SOURCES) == ["kb-031"]
    assert parse_citations("[kb-031; kb-004]") == ["kb-031", "kb-004"]


def test_bare_ids_of_shown_sources_and_custom_ids():
    assert parse_citations("As kb-004 says, it costs €120.", SOURCES) == ["kb-004"]
    mine = [_chunk("notes/setup.md", "setup")]
    assert parse_citations("See [notes/setup.md].", mine) == ["notes/setup.md"]
    assert parse_citations("See [1].", mine) == ["notes/setup.md"]


def test_no_citation_means_none_is_invented():
    assert parse_citations("A restocking fee of 15% applies.", SOURCES) == []
    assert parse_citations("I don't know.", SOURCES) == []
    assert parse_citations("Answer: I don't know.\nSource: none", SOURCES) == []
    # Brackets that are not citations.
    assert parse_citations("Use the [OK] button, [see manual].", SOURCES) == []


def test_repeats_are_collapsed_in_order_of_first_mention():
    assert parse_citations("[2] then [kb-004] then [1] and [3]", SOURCES) == ["kb-004", "kb-012"]


def test_a_shown_sources_title_on_a_source_line_is_a_citation():
    assert parse_citations("Answer: €120.\nIt costs €120.\nSource: Price list 2025", SOURCES) == [
        "kb-004"
    ]
    assert parse_citations("source: returns and refunds", SOURCES) == ["kb-012"]
    # a title in the answer's text is not a citation, nor is part of a longer word
    assert parse_citations("The Price list 2025 says €120.", SOURCES) == []
    assert parse_citations("Source: Price list 20256", SOURCES) == []
    assert parse_citations("Source: none", SOURCES) == []


@pytest.mark.parametrize(
    "text,expected",
    [
        ("I don't know.", True),
        ("I do not know the answer.", True),
        ("That is not mentioned in the sources.", True),
        ("The price is 40 euros.", False),
        ("Answer: I don\u2019t know.\nNo document covers it.\nSource: none", True),
        ("There is no information about the gym subsidy.", True),
        ("The sources contain no information.", True),
        ("No information is available on that.", True),
        ("Not enough information in the sources to say.", True),
        ("No information is shared with advertisers [1]", False),  # an answer, in its words
        ("No information will be sold to third parties.", False),
        ("There is not enough information to answer this question.", True),
        ("The documents contain no information that answers this.", True),
        ("There's no information given about that.", True),
        ("No information here.", True),
        ("No information was found in the sources.", True),
        ("No information on your account is sold [1]", False),  # a phrase, then the verb
        ("No information about the price is given in the sources.", True),
        ("There is no information in the sources about whether lunch is served.", True),
        ("No information about the Aarhus office is in the sources.", True),
        ("There is no information on who is responsible for repairs.", True),  # it asks
        ("I found no information about when the office is open.", True),
        ("No information about the Fennick S3 is currently available.", True),
        ("No information is currently shared with advertisers.", False),
    ],
)
def test_is_abstention(text, expected):
    assert is_abstention(text) is expected


def test_bracketed_ids_take_file_paths_and_names_but_not_numbers_or_words():
    text = (
        "Answer: 40 rpm.\nSource: Pump [manuals/pump.md]; [Pump Manual.pdf] [2024-prices.md] "
        "[kb-004] [1] [1, 2] [see below] [kb-004]"
    )
    assert bracketed_ids(text) == ["manuals/pump.md", "Pump Manual.pdf", "2024-prices.md", "kb-004"]


def test_error_codes_and_plain_words_are_not_citations():
    """With the index's ids known, "[E-42]" (an error code) cites nothing while "[kb-099]" still
    counts as a citation, of a document that does not exist; a document whose id is a word
    ("returns") is cited by its number or brackets, not by the word in a sentence."""
    known = ["kb-001", "kb-004", "kb-012"]
    code = "Error code [E-42] means the sensor is offline [1]."
    assert parse_citations(code, SOURCES, known) == [doc_id(SOURCES[0])]
    assert "E-42" in parse_citations(code, SOURCES)  # without the index's ids: by shape
    assert parse_citations("It costs 120 euros [kb-099].", SOURCES, known) == ["kb-099"]
    returns = Document(content="Returns within 30 days.", meta={"doc_id": "returns"})
    shipping = Document(content="Shipping takes 2 days.", meta={"doc_id": "shipping"})
    text = "Shipping takes 2 days [2]; returns are handled by the depot."
    assert parse_citations(text, [returns, shipping]) == ["shipping"]
    assert parse_citations("See [returns].", [returns, shipping]) == ["returns"]


def test_the_started_replys_lead_in_is_the_citation_not_the_answer():
    from kit.citations import without_lead_in
    from kit.prompts import REPLY_START

    assert without_lead_in(REPLY_START + "2], the hub takes 64 sensors.") == (
        "the hub takes 64 sensors."
    )
    assert without_lead_in("according to the sources [1] and [3], 40 metres") == "40 metres"
    assert without_lead_in("According to source [1], [2] 40 metres") == "40 metres"
    kept = "The source [2] says 40 metres. According to source [1], 41."
    assert without_lead_in(kept) == kept  # only a leading lead-in goes
    # the citation itself is still read from the whole answer
    shown = [Document(content="a", meta={"doc_id": "kb-001"})] * 2
    assert parse_citations(REPLY_START + "2], 40 metres.", shown) == ["kb-001"]
