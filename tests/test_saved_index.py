"""Saved indexes: reuse when nothing changed, rebuild when the folder or settings did."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.data import load_documents, load_folder
from kit.embeddings import MEMORY
from kit.rag import RagError
from kit.retrieval import retrieval_pipeline, retrieve
from kit.saved_index import (
    RECORD_FILE,
    bundled_index,
    default_location,
    documents_fingerprint,
    folder_fingerprint,
    folder_state,
    index_folder,
    load_index,
    read_record,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    f = tmp_path / "my-docs"
    f.mkdir()
    (f / "pump.md").write_text("# Pump\n\nThe pump runs at 40 rpm.\n", encoding="utf-8")
    (f / "tank.txt").write_text("The tank holds 800 litres of water.\n", encoding="utf-8")
    return f


def test_a_saved_index_is_reused_and_answers_the_same(folder: Path):
    said: list[str] = []
    MEMORY.clear()  # the same texts as other tests of this worker: embedded here, not reused
    first = index_folder(folder, log=said.append)
    where = default_location(folder)
    assert where.parent == folder.parent and (where / RECORD_FILE).is_file()
    assert sorted(p.name for p in folder.iterdir()) == ["pump.md", "tank.txt"]  # untouched
    MEMORY.clear()  # as after a restart
    again = index_folder(folder, log=said.append)
    assert "Reusing the saved index" in said[-1]
    assert len(MEMORY) == again.chunks == 2  # its vectors serve the next index built (v2 of it)
    assert read_record(default_location(folder))["reused"] == 0  # the first build reused none
    assert (again.documents, again.chunks, again.embedder) == (
        first.documents,
        first.chunks,
        first.embedder,
    )
    question = "How many litres does the tank hold?"
    found = [
        [(d.id, round(d.score, 5)) for d in retrieve(retrieval_pipeline(i), question).documents]
        for i in (first, again)
    ]
    assert found[0] == found[1] and found[0]


def test_a_changed_file_or_setting_rebuilds(folder: Path):
    said: list[str] = []
    index_folder(folder, log=said.append)
    fingerprint = folder_fingerprint(folder)
    (folder / "tank.txt").write_text("The tank holds 900 litres of water.\n", encoding="utf-8")
    assert folder_fingerprint(folder) != fingerprint
    MEMORY.clear()  # as after a restart: the saved index is what remembers the vectors
    rebuilt = index_folder(folder, log=said.append)
    assert "changed since" in said[-3] and "saved" in said[-1]
    assert said[-2] == "Kept the 2 vectors of the saved index: only changed text is embedded again"
    assert rebuilt.reused == 1  # pump.md's chunk; the changed tank.txt is embedded again
    assert any("900" in (d.content or "") for d in rebuilt.store.filter_documents())
    fresh = index_folder(folder, rebuild=True, log=said.append)  # every chunk embedded again
    assert fresh.reused == 0 and not any(m.startswith("Kept") for m in said[-2:])
    vectors = [{d.id: d.embedding for d in i.store.filter_documents()} for i in (rebuilt, fresh)]
    assert vectors[0].keys() == vectors[1].keys()
    for key, vector in vectors[0].items():  # equal within float32 rounding
        assert vector == pytest.approx(vectors[1][key], abs=1e-6)
    index_folder(folder, split_length=50, split_overlap=10, log=said.append)
    assert "changed since" in said[-3]  # other settings: rebuilt, not reused
    (folder / ".notes.md").write_text("hidden", encoding="utf-8")  # ignored, like load_folder
    index_folder(folder, split_length=50, split_overlap=10, log=said.append)
    assert "Reusing" in said[-1]


def test_load_index_refuses_other_settings_and_a_half_save(folder: Path, tmp_path: Path):
    index_folder(folder, log=lambda _m: None)
    where = default_location(folder)
    assert load_index(where, split_length=100).chunks >= 2
    with pytest.raises(RagError, match=r"split_length was 100, you asked for 50"):
        load_index(where, split_length=50)
    with pytest.raises(RagError, match="no saved index here"):
        load_index(tmp_path / "nowhere")
    (where / "store.json").write_text("{ cut short", encoding="utf-8")
    with pytest.raises(RagError, match="cannot be read"):
        load_index(where)
    said: list[str] = []
    index_folder(folder, log=said.append)  # a damaged save is rebuilt, not half-loaded
    assert "rebuilding" in said[0] and "saved" in said[-1]


def test_new_access_rules_change_the_fingerprint_so_an_older_index_is_rebuilt(folder, monkeypatch):
    from kit import saved_index

    before = folder_fingerprint(folder)
    monkeypatch.setattr(saved_index, "ACCESS_RULES", saved_index.ACCESS_RULES + 1)
    assert folder_fingerprint(folder) != before  # a saved index's record no longer matches


def test_an_index_saved_under_other_access_rules_is_never_served(folder, monkeypatch):
    from kit import saved_index

    index_folder(folder, log=lambda _m: None)
    where = default_location(folder)
    assert load_index(where).chunks >= 2
    monkeypatch.setattr(saved_index, "ACCESS_RULES", saved_index.ACCESS_RULES + 1)
    with pytest.raises(RagError, match="read access levels by other rules"):
        load_index(where)  # what `python -m kit serve --index DIR` calls


def test_documents_read_before_an_edit_are_read_again(folder: Path):
    state = folder_state(folder, None, False)  # as load_your_data takes it, then reads
    documents = load_folder(folder)
    (folder / "pump.md").write_text("# Pump\n\nThe pump runs at 55 rpm.\n", encoding="utf-8")
    index = index_folder(folder, documents=documents, read_as=state, log=lambda _m: None)
    texts = " ".join(d.content or "" for d in index.store.filter_documents())
    assert "55 rpm" in texts and "40 rpm" not in texts  # saved under the state it holds


def test_an_unknown_users_home_and_a_linked_folder(folder: Path, tmp_path: Path):
    with pytest.raises(RagError, match="no such user's home folder"):
        load_index("~no-such-user-of-the-kit/idx")
    with pytest.raises(RagError, match="no such user's home folder"):
        index_folder(folder, location="~no-such-user-of-the-kit/idx", log=lambda _m: None)
    link = tmp_path / "linked-docs"
    link.symlink_to(folder)
    assert default_location(link) == tmp_path / "linked-docs.kit-index"  # beside the name given
    one = folder / next(p.name for p in sorted(folder.iterdir()) if p.is_file())
    assert default_location(one) == folder / f"{one.name}.kit-index"  # beside the file ...
    index_folder(one, log=lambda _m: None)
    sources = [d.meta["source"] for d in load_folder(folder)]  # ... and never read as a file
    assert not any(".kit-index" in s for s in sources)


def test_the_bundled_index_is_saved_in_the_cache_and_reused(tmp_path, monkeypatch):
    """A restarted notebook loads the bundled index instead of embedding it again; other
    settings or other documents build it again; the same chunks and vectors either way."""
    from kit import indexing, saved_index

    monkeypatch.setenv("KIT_CACHE", str(tmp_path))
    said: list[str] = []
    built = bundled_index(log=said.append)
    where = tmp_path / "indexes" / "kb-v1"
    assert said == [f"Index saved to {where}"] and (where / RECORD_FILE).is_file()
    fresh = indexing.build_index("v1", reuse=False)  # embedded again, not the vectors just built
    assert built.chunks == fresh.chunks
    # notebook 01's path: the index it built, saved; after a restart bundled_index loads it
    elsewhere = tmp_path / "saved-by-hand"
    saved_index.save_index(fresh, elsewhere, documents_fingerprint(load_documents("v1")))
    bundled_index(location=elsewhere, log=said.append)
    assert said[-1].startswith(f"Reusing the saved index in {elsewhere}")
    loaded = bundled_index(log=said.append)
    assert "Reusing the saved index" in said[-1]
    chunks = [
        sorted((d.id, d.content) for d in i.store.filter_documents()) for i in (fresh, loaded)
    ]
    assert chunks[0] == chunks[1]
    question = "How many sensors can one H4 hub pair?"
    found = [
        [
            (d.id, round(d.score, 5))
            for d in retrieve(retrieval_pipeline(i, "dense"), question).documents
        ]
        for i in (fresh, loaded)
    ]
    assert found[0] == found[1] and found[0]  # the same vectors
    bundled_index(split_length=60, split_overlap=10, log=said.append)
    assert "changed since" in said[-3] and said[-2].startswith("Kept") and "saved" in said[-1]
    real = saved_index.load_source
    monkeypatch.setattr(
        saved_index, "load_source", lambda v: [d for d in real(v) if d.id != "kb-001"]
    )
    smaller = bundled_index(split_length=60, split_overlap=10, log=said.append)
    assert "changed since" in said[-3] and smaller.documents == fresh.documents - 1
    with pytest.raises(RagError, match="v1 or v2, not 'data/kb'.*index_folder"):
        bundled_index("data/kb")


def test_an_embedder_given_as_a_path_is_saved_and_reused(folder: Path):
    """``embedder=Path(...)`` (a model folder of yours): saved (the record is JSON), and the same
    folder given again reuses the index instead of rebuilding it every time."""
    from kit.models import resolve_model

    model = Path(resolve_model("all-minilm-l6-v2"))
    said: list[str] = []
    index_folder(folder, embedder=model, log=said.append)
    assert read_record(default_location(folder))["embedder"] == str(model)
    index_folder(folder, embedder=model, log=said.append)
    assert "Reusing the saved index" in said[-1]
    index_folder(folder, embedder=str(model), log=said.append)  # its text names the same model
    assert "Reusing the saved index" in said[-1]
