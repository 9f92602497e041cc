"""Benchmark of the RAG stage: ``python -m kit bench rag [--quick] [options]``.

Prints figures, never pass/fail: index throughput (documents and chunks per second), retrieval
latency p50 / p95 and recall@5 per mode on the test split, end-to-end answer latency with
generated tokens per second, the answer scores of each prompt layout (train split), the learned
abstention on the test split, and the process's peak memory. ``--store pgvector`` indexes into
PostgreSQL with pgvector as well (a throwaway local server, or ``--pg-url``) and prints its
retrieval figures next to the in-memory store's (:mod:`kit.postgres`). The machine's load average is
printed too: on a shared 2-core CPU other work inflates every latency.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kit.profiles import Profile, resolve_profile
from kit.runtime import peak_memory_mb, timed

if TYPE_CHECKING:
    from kit.data import QARecord
    from kit.indexing import Index
    from kit.rag import RAG

Show = Callable[[str, str], None]  # prints one figure: its name and its value
BENCH_TABLE = "kit_bench_chunks"  # the table --store pgvector writes and drops


class BenchError(RuntimeError):
    """The benchmark cannot run as asked; the message says why."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit bench rag", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few queries and one answer (seconds)")
    p.add_argument("--queries", type=int, default=0, help="test questions per mode (0 = all)")
    p.add_argument("--answers", type=int, default=8, help="end-to-end answers to time")
    p.add_argument("--repeat", type=int, default=3, help="timed passes over the queries")
    p.add_argument("--split-length", type=int, default=None, help="words per chunk")
    p.add_argument("--split-overlap", type=int, default=None, help="words shared by chunks")
    p.add_argument("--top-k", type=int, default=None, help="chunks in the prompt")
    p.add_argument("--profile", default=None, help="smoke, cpu or gpu (default: picked)")
    p.add_argument(
        "--store",
        choices=("memory", "pgvector"),
        default="memory",
        help="pgvector: also index into PostgreSQL + pgvector and compare its retrieval",
    )
    p.add_argument(
        "--pg-url",
        default=None,
        help="with --store pgvector: your server's postgresql:// URL (it writes and then drops "
        f"a table {BENCH_TABLE}; default: a throwaway local server, removed afterwards)",
    )
    p.add_argument(
        "--layout-questions",
        type=int,
        default=None,
        help="train questions per prompt layout (0 = all; default: the profile's "
        "eval_questions; --quick: 4); the abstention learns from the profile's abstain_questions "
        "(--quick: 16)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures; return 0 (2 on bad input)."""
    args = _parser().parse_args(argv)
    # heavy: Haystack and torch load once the arguments parse, so --help answers at once
    from kit import indexing, rag
    from kit.data import load_documents, load_qa
    from kit.embeddings import MEMORY

    if args.pg_url is not None:
        if args.store != "pgvector":
            print("error: --pg-url goes with --store pgvector", file=sys.stderr)
            return 2
        from kit.postgres import PostgresError, check_url  # heavy: psycopg, the integration

        try:
            check_url(args.pg_url)
        except PostgresError as err:
            print(f"error: --pg-url: {err}", file=sys.stderr)
            return 2
    profile = resolve_profile(args.profile)
    queries = 8 if args.quick and not args.queries else args.queries
    answers = 1 if args.quick else args.answers
    repeat = 1 if args.quick else max(1, args.repeat)
    chunking = {
        "split_length": args.split_length or indexing.DEFAULT_SPLIT_LENGTH,
        "split_overlap": (
            args.split_overlap if args.split_overlap is not None else indexing.DEFAULT_SPLIT_OVERLAP
        ),
    }
    rows: list[tuple[str, str]] = []

    def show(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"{name:<38} {value}", flush=True)

    try:
        print(f"RAG benchmark (profile {profile.name}, load average {_load()})")
        documents = load_documents()
        # load the embedder once, outside the timing
        indexing.build_index(documents[:2], **chunking)
        MEMORY.clear()  # every chunk embedded in the timing; the v2 line reuses v1's vectors only
        index = indexing.build_index(documents, **chunking)
        show("index: documents / chunks", f"{index.documents} / {index.chunks}")
        show("index: time", f"{index.seconds:.2f} s")
        show(
            "index: throughput",
            f"{index.docs_per_second:.1f} docs/s, {index.chunks / index.seconds:.1f} chunks/s "
            f"(embedding {indexing.embed_batch_size()} at a time)",
        )
        again = indexing.build_index(load_documents("v2"), **chunking)
        show(
            "index: the updated documents (v2)",
            f"{again.seconds:.2f} s: {again.chunks - again.reused} of {again.chunks} chunks "
            "embedded, the others' vectors reused",
        )
        records = [r for r in load_qa("test") if r.answerable]
        records = records[:queries] if queries else records
        _retrieval_latency(index, records, repeat, show)
        if args.store == "pgvector":
            _pgvector_retrieval(documents, chunking, args.pg_url, records, repeat, show)
        copy_ms = _query_vector_copy_ms(index, records[0].question)
        show(
            "retrieve: Haystack's copy of the query",
            f"{copy_ms:.1f} ms of every dense / hybrid query (Python {sys.version.split()[0]})",
        )
        if answers > 0:
            top_k = args.top_k or profile.top_k
            qa = _answer_latency(index, profile, records, answers, top_k, show)
        n_train = args.layout_questions
        if n_train is None:
            n_train = 4 if args.quick else profile.eval_questions
        if answers > 0:
            n_abstain = 16 if args.quick else profile.abstain_questions
            _answer_quality(index, profile, n_train, n_abstain, qa.model_and_tokenizer, show)
        show("peak memory (RSS)", f"{peak_memory_mb():.0f} MB")
    except (rag.RagError, BenchError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _pgvector_retrieval(
    documents: list,
    chunking: dict,
    url: str | None,
    records: Sequence[QARecord],
    repeat: int,
    show: Show,
) -> None:
    """The same documents indexed into PostgreSQL + pgvector (``url``, else a throwaway local
    server), then :func:`_retrieval_latency` on it, each figure labelled ``pgvector``."""
    from kit import indexing  # heavy: see main
    from kit.postgres import LocalPostgres, PostgresError, pgvector_store

    server = LocalPostgres() if url is None else None
    store = None
    try:
        if server is not None:
            server.start()
        # a table of its own, dropped afterwards: never the kit_chunks of your index
        store = pgvector_store(url or server.url, table=BENCH_TABLE)  # type: ignore[union-attr]
        index = indexing.build_index(documents, store=store, reuse=False, **chunking)
        where = "a throwaway local server" if server else "your server"
        show("pgvector: index time", f"{index.seconds:.2f} s ({where})")
        _retrieval_latency(index, records, repeat, show, label="pgvector ")
    except PostgresError as err:
        raise BenchError(str(err)) from err
    finally:
        if store is not None and server is None:
            store.delete_table()
        if server is not None:
            server.stop()


def _retrieval_latency(
    index: Index, records: Sequence[QARecord], repeat: int, show: Show, label: str = ""
) -> None:
    """Retrieval p50 / p95 latency and recall@5 of each mode, ``repeat`` timed passes each;
    ``label`` starts each figure's name."""
    from kit import rag_eval, retrieval  # heavy: see main
    from kit.evaluate import retrieval_scores

    for mode in retrieval.MODES:
        pipeline = retrieval.retrieval_pipeline(index, mode)
        for r in records[:3]:
            retrieval.retrieve(pipeline, r.question)  # warm-up
        seconds, found = [], []
        for _ in range(repeat):
            found = [retrieval.retrieve(pipeline, r.question) for r in records]
            seconds += [f.seconds for f in found]
        recall = retrieval_scores(records, [f.doc_ids for f in found], 5)["recall@5"].mean()
        ms = sorted(1000 * s for s in seconds)
        show(
            f"{label}retrieve {mode}: p50 / p95, recall@5",
            f"{statistics.median(ms):.1f} / {rag_eval.percentile(ms, 95):.1f} ms, {recall:.3f}"
            f"  ({len(ms)} queries)",
        )


def _answer_latency(
    index: Index,
    profile: Profile,
    records: Sequence[QARecord],
    answers: int,
    top_k: int,
    show: Show,
) -> RAG:
    """End-to-end hybrid answers: latency p50 / max, tokens, generation speed; return the RAG."""
    from kit import rag  # heavy: see main

    qa = rag.build_rag(index, "hybrid", profile=profile, top_k=top_k)
    qa.answer(records[0].question)  # warm-up: builds the transformers pipeline
    done = [qa.answer(r.question) for r in (records * answers)[:answers]]
    total = sorted(a.timings["total"] for a in done)
    generate = sum(a.timings["generate"] for a in done)
    new_tokens = sum(a.new_tokens for a in done)
    show(
        "answer (hybrid): p50 / max latency",
        f"{statistics.median(total):.2f} / {total[-1]:.2f} s  ({len(done)} answers)",
    )
    show(
        "answer: prompt / new tokens (mean)",
        f"{statistics.mean(a.prompt_tokens for a in done):.0f} / "
        f"{statistics.mean(a.new_tokens for a in done):.1f}  (top_k {top_k})",
    )
    show(
        "answer: generation speed",
        f"{new_tokens / generate:.1f} tok/s" if generate else "n/a",
    )
    return qa


def _answer_quality(index, profile, n_train: int, n_abstain: int, generator, show) -> None:
    """Answer scores per prompt layout (train split), then the learned abstention (the
    five-signal decision and the retrieval gate) on the test split: how many unanswerable
    questions each declines and answerable ones it wrongly declines."""
    from kit import rag, rag_eval  # heavy: see main
    from kit.abstain import fit_abstainer, fit_gate
    from kit.evaluate import summarise
    from kit.prompts import forget_shared_sentences

    layouts = rag_eval.summarise_layouts(  # compare_layouts reads 0 as all, as the option does
        rag_eval.compare_layouts(index, generator=generator, profile=profile, limit=n_train)
    )
    for name, row in layouts.iterrows():
        show(
            f"layout {name}: correct / cites / tokens",
            f"{row['correct']:.3f} / {_rate(row['cites'])} / {row['prompt_tokens']:.0f}"
            f"  ({row['questions']} train questions)",
        )
    qa = rag.build_rag(index, generator=generator, profile=profile)
    forget_shared_sentences()  # the fit's time includes embedding the sentences it reads
    gate, gate_s = timed(lambda: fit_gate(qa, limit=n_abstain or None))  # nothing generated
    abstainer = fit_abstainer(qa, limit=n_abstain or None)
    show("abstain: learned threshold", f"{abstainer.threshold:.2f} {abstainer.coefficients}")
    show(
        "abstain, gate: threshold, fit", f"{gate.threshold:.2f} {gate.coefficients}, {gate_s:.1f} s"
    )
    for label, decision in (("abstain", abstainer), ("abstain, gate", gate)):
        qa.abstainer = decision
        test = rag_eval.evaluate_rag(qa, "test", limit=n_train or None)
        row = summarise(test).iloc[0]
        show(
            f"{label} (test): declined unanswerable / wrongly",
            f"{row['abstain_ok']:.3f} / {row['false_abstain']:.3f}, correct {row['correct']:.3f}"
            f"  ({len(test)} test questions)",
        )


def _rate(value: float) -> str:
    """A share as "0.375", or "–" when nothing counted (every answer declined)."""
    return "–" if math.isnan(value) else f"{value:.3f}"


def _query_vector_copy_ms(index, question: str, repeat: int = 20) -> float:
    """Time Haystack's deep copy of the dense retriever's inputs (the 384-number query vector).

    ``Pipeline.run`` deep-copies every component's inputs; on Python 3.11 each number of the
    vector also goes through a slow runtime ``Protocol`` check: 4-11 ms per query measured on
    the 2-core reference machine, 3 ms with Python 3.12. With the query embedding (~7 ms) it
    is most of the dense and hybrid latency.
    """
    # heavy: see main
    from haystack.core.pipeline.utils import _deepcopy_with_exceptions

    from kit import retrieval

    embedder = retrieval.retrieval_pipeline(index, "dense").get_component("embed_query")
    embedder.warm_up()
    inputs = {"query_embedding": embedder.run(text=question)["embedding"], "filters": None}
    start = time.perf_counter()
    for _ in range(repeat):
        _deepcopy_with_exceptions(inputs)
    return 1000 * (time.perf_counter() - start) / repeat


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t0:.0f} s)")
    sys.exit(code)
