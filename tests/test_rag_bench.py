"""kit.rag_bench: the benchmark's code path on a tiny run (figures are printed, not asserted)."""

from __future__ import annotations

import re

from kit import rag_bench


def test_quick_benchmark_prints_every_figure(capsys):
    """The quick run, with PostgreSQL + pgvector beside the in-memory store (a throwaway server
    on a loopback port, removed afterwards)."""
    assert rag_bench.main(["--quick", "--store", "pgvector"]) == 0
    out = capsys.readouterr().out
    assert "load average" in out
    throughput = r"index: throughput\s+[\d.]+ docs/s, [\d.]+ chunks/s \(embedding \d+ at a time\)"
    assert re.search(throughput, out)
    v2 = re.search(r"the updated documents \(v2\)\s+[\d.]+ s: (\d+) of (\d+) chunks embedded", out)
    assert v2 and 0 < int(v2[1]) < int(v2[2])  # only the changed text embedded again
    for mode in ("bm25", "dense", "hybrid"):
        figure = rf"^retrieve {mode}: p50 / p95, recall@5\s+[\d.]+ / [\d.]+ ms, [\d.]+"
        assert re.search(figure, out, re.M)  # the in-memory store's own line
    assert re.search(r"pgvector: index time\s+[\d.]+ s \(a throwaway local server\)", out)
    for mode in ("bm25", "dense", "hybrid"):
        figure = rf"pgvector retrieve {mode}: p50 / p95, recall@5\s+[\d.]+ / [\d.]+ ms"
        assert re.search(figure, out)
    assert re.search(r"Haystack.s copy of the query\s+[\d.]+ ms of every dense", out)
    assert re.search(r"answer \(hybrid\): p50 / max latency\s+[\d.]+ / [\d.]+ s", out)
    assert re.search(r"answer: generation speed\s+[\d.]+ tok/s", out)
    for layout in ("chunks", "sentences", "question-first"):
        figures = r"\s+[\d.]+ / ([\d.]+|–) / \d+"  # cites: "–" when every answer declined
        assert re.search(rf"layout {layout}: correct / cites / tokens{figures}", out)
    assert re.search(r"abstain: learned threshold\s+[\d.]+ \{'similarity'", out)
    assert re.search(r"abstain \(test\): declined unanswerable / wrongly\s+[\d.]+ / [\d.]+", out)
    assert re.search(r"abstain, gate: threshold, fit\s+[\d.]+ \{'similarity'.*\}, [\d.]+ s", out)
    assert re.search(
        r"abstain, gate \(test\): declined unanswerable / wrongly\s+[\d.]+ / [\d.]+", out
    )
    assert re.search(r"peak memory \(RSS\)\s+\d+ MB", out)


def test_bad_settings_exit_with_a_message(capsys):
    assert rag_bench.main(["--quick", "--split-length", "50", "--split-overlap", "80"]) == 2
    assert "split_overlap" in capsys.readouterr().err
    bad_url = ["--quick", "--store", "pgvector", "--pg-url", "me:secret@localhost:5432"]
    assert rag_bench.main(bad_url) == 2
    err = capsys.readouterr().err
    assert "postgresql://" in err and "secret" not in err  # the password is not printed
    assert rag_bench.main(["--quick", "--pg-url", "postgresql://x@127.0.0.1/db"]) == 2
    assert "--pg-url goes with --store pgvector" in capsys.readouterr().err
