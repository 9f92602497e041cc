"""kit.indexing: documents in, chunks with their source ids and embeddings out, in a Haystack
pipeline; bad sources and settings refused with what to do."""

from __future__ import annotations

import warnings

import pytest
from haystack import Document

from kit import indexing
from kit.indexing import RagError
from kit.models import best_device
from kit.retrieval import retrieval_pipeline, retrieve
from kit.store import new_store


def _words(chunk: Document) -> list[str]:
    """The splitter's units: text between single spaces (a newline does not split a unit)."""
    return chunk.content.rstrip(" ").split(" ")


def test_index_chunks_the_whole_corpus_and_keeps_source_ids(index):
    assert index.documents == 44
    assert index.chunks == index.store.count_documents() > 100
    chunks = list(index.store.storage.values())
    assert {c.meta["doc_id"] for c in chunks} == {f"kb-{i:03d}" for i in range(1, 45)}
    assert all(c.embedding is not None and len(c.embedding) == 384 for c in chunks)
    assert all(len(_words(c)) <= indexing.DEFAULT_SPLIT_LENGTH for c in chunks)
    assert "44 documents" in repr(index) and index.docs_per_second > 0


def test_neighbouring_chunks_share_the_overlap(index):
    chunks = indexing.chunks_of(index, "kb-001")
    assert len(chunks) >= 2 and len(chunks[0].embedding) == 384
    first, second = _words(chunks[0]), _words(chunks[1])
    assert first[-indexing.DEFAULT_SPLIT_OVERLAP :] == second[: indexing.DEFAULT_SPLIT_OVERLAP]


def test_indexing_pipeline_is_a_haystack_graph():
    pipeline = indexing.indexing_pipeline(new_store())
    assert list(pipeline.graph.nodes) == ["tag", "clean", "split", "cut", "embed", "write"]
    assert list(pipeline.graph.edges()) == [
        ("tag", "clean"),
        ("clean", "split"),
        ("split", "cut"),
        ("cut", "embed"),
        ("embed", "write"),
    ]
    lines = indexing.indexing_pipeline(
        new_store(), split_by="line", split_length=5, split_overlap=1
    )
    assert "cut" not in lines.graph.nodes  # lines and passages are cut where the text says
    # on a CPU, 8 chunks at a time (faster than Haystack's 32 there; a GPU keeps 32)
    expected = indexing.CPU_EMBED_BATCH if best_device() == "cpu" else 32
    assert pipeline.get_component("embed").batch_size == indexing.embed_batch_size() == expected


def test_index_your_own_folder_skips_files_that_cannot_be_converted(tmp_path):
    (tmp_path / "kettle.md").write_text(
        "---\ntitle: Kettle manual\n---\n# Kettle manual\n\nDescale the Zorbo kettle every "
        "six weeks with citric acid.\n"
    )
    (tmp_path / "notes.txt").write_text("The office plant is watered on Fridays.\n")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = indexing.build_index(tmp_path, split_length=50, split_overlap=5)
    assert any("broken.pdf" in str(w.message) for w in caught)
    assert index.documents == 2
    ids = {d.meta["doc_id"] for d in index.store.filter_documents()}
    assert ids == {"kettle.md", "notes.txt"}
    found = retrieve(retrieval_pipeline(index, "hybrid"), "How often to descale?")
    assert found.doc_ids[0] == "kettle.md"


def test_bad_sources_raise_clear_errors(tmp_path):
    with pytest.raises(RagError, match="'.*nope' is not a folder or file that exists"):
        indexing.build_index(tmp_path / "nope")
    with pytest.raises(RagError, match=r"'The pump runs at 40 rpm\.' is not a folder.*Document"):
        indexing.build_index("The pump runs at 40 rpm.")  # text, not a path
    with pytest.raises(RagError, match="is not a folder or file that exists"):
        indexing.build_index(
            "The pump runs at forty revolutions a minute. " * 20
        )  # too long a name
    assert indexing.load_source(Document(content="One document.")) == [
        Document(content="One document.")
    ]
    (tmp_path / "only.pdf").write_bytes(b"not a pdf")
    with pytest.raises(RagError, match="no loadable documents"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        indexing.build_index(tmp_path)
    with pytest.raises(RagError, match="No documents"):
        indexing.build_index([])
    with pytest.raises(RagError, match="empty"):
        indexing.build_index([Document(content="   ")])
    headings = Document(content="# Returns policy\n\n## Details")  # a title, no text
    with pytest.warns(UserWarning, match="Skipped 1 document"):
        kept = indexing.load_source([headings, Document(content="# Pay\n\nPaid monthly.")])
    assert [d.content for d in kept] == ["# Pay\n\nPaid monthly."]
    with pytest.raises(RagError, match="Haystack Documents"):
        indexing.build_index(["just a string"])


@pytest.mark.parametrize(
    ("length", "overlap", "unit", "message"),
    [
        (0, 0, "word", "split_length"),
        (50, 50, "word", "split_overlap"),
        (50, 5, "token", "split_by"),
    ],
)
def test_bad_split_settings(length, overlap, unit, message):
    with pytest.raises(RagError, match=message):
        indexing.indexing_pipeline(new_store(), length, overlap, unit)


# --------------------------------------------------------------------------- retrieve


def test_a_folder_named_like_a_bundled_version_is_pointed_out(tmp_path, monkeypatch):
    """build_index("v2") means the bundled v2; a folder of yours called v2 gets a warning that
    says how to index it, and a path to it indexes it."""
    mine = tmp_path / "v2"
    mine.mkdir()
    (mine / "notes.md").write_text("# Notes\n\nThe boiler is serviced in May.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"pass './v2' or Path\('v2'\)"):
        bundled = indexing.load_source("v2")
    assert {d.meta["version"] for d in bundled} == {"v2"}
    assert [d.meta["source"] for d in indexing.load_source(tmp_path / "v2")] == ["notes.md"]


def index_tokenizer(index):
    """The embedder's tokenizer, as a function of text -> token ids (no truncation)."""
    from transformers import AutoTokenizer

    from kit.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(index.embedder))
    return lambda text: tok(text, add_special_tokens=False, truncation=False)["input_ids"]


def test_a_spreadsheet_without_spaces_is_cut_into_chunks_the_embedder_reads(tmp_path):
    """Haystack splits words at spaces: 3,000 rows of "Widget7,4.50,12" were one chunk of 45,000
    characters, embedded by its first few hundred. Cut at row ends into pieces the size of an
    ordinary chunk, every row lands in a piece the embedder reads (most of)."""
    folder = tmp_path / "sheets"
    folder.mkdir()
    rows = "\n".join(f"Widget{i},4.{i % 100:02d},{i}" for i in range(3000))
    (folder / "stock.csv").write_text("name,price,count\n" + rows + "\n", encoding="utf-8")
    index = indexing.build_index(folder, split_length=100)
    chunks = index.store.filter_documents()
    limit = indexing.PIECE_CHARS_PER_WORD * 100  # about an ordinary chunk of 100 words
    assert len(chunks) > 60 and max(len(c.content) for c in chunks) <= limit
    tokens = index_tokenizer(index)
    assert max(len(tokens(c.content)) for c in chunks) <= 2 * 256  # MiniLM reads 256
    text = "\n".join(c.content for c in chunks)
    assert "Widget2999,4.99,2999" in text and "Widget0,4.00,0" in text  # no row lost, none cut
    assert all(line.startswith(("Widget", "name")) for line in text.splitlines())
    assert {c.meta["doc_id"] for c in chunks} == {"stock.csv"}
