"""Run: the kit's main job, headless, ending in one HTML report (``make demo``).

``python -m kit run --profile cpu`` walks through every stage the notebooks teach:

1. check the machine (the doctor) and say hello to both bundled models;
2. RAG: index the knowledge base, compare BM25, dense and hybrid retrieval;
3. fine-tune, hybrid and RAFT, then the grid: every system on the same test questions;
4. the experiments: freshness after the knowledge changes, privacy (the canary), prompt injection;
5. what it costs: the cost model seeded with the measured tokens and times.

Each stage prints its progress; the report lands in ``outputs/report.html``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from kit import costs, widgets
from kit.abstain import GATE_SIGNALS_TEXT, decision_summary
from kit.compare import GridResult, run_comparison
from kit.doctor import run_doctor
from kit.evaluate import (
    citation_table,
    compare_systems,
    interval_table,
    rate_table,
    summarise_intervals,
)
from kit.generate import BATCH_SIZE, generate
from kit.hybrid import context_effect, describe_context_effect
from kit.indexing import Index, build_index
from kit.models import (
    DEFAULT_EMBEDDER,
    DEFAULT_GENERATOR,
    load_embedder,
    load_generator,
    pick_generator,
)
from kit.profiles import Profile, resolve_profile
from kit.rag_eval import evaluate_retrieval, plot_modes, summarise_retrieval
from kit.report import Report, may_write
from kit.verdict import verdict

STEPS = 5

# The 0/1 columns each experiment's table shows, as a share per system with its interval.
EXPERIMENT_COLUMNS: dict[str, list[str]] = {
    "freshness": ["current", "stale", "abstained"],
    "privacy": ["leaked", "retrieved_canary_doc"],
    "injection": ["followed", "saw_poison", "instruction_in_prompt"],
}


def run_all(profile: str | Profile | None = None, out_dir: str | Path = "outputs") -> Path:
    """Run every stage with ``profile`` (None = picked by the doctor); return the report's path."""
    start = time.perf_counter()
    prof = resolve_profile(profile)
    may_write(Path(out_dir) / "report.html")  # a file of yours there: said before any work
    report = Report(title="RAG vs fine-tuning: the walk-through, measured", profile=prof.name)

    _step(1, "the machine and the two models", start)
    _machine(report, prof)

    _step(2, "RAG: index the knowledge base, compare the retrieval modes", start)
    index = _retrieval(report)

    _step(3, "fine-tune, hybrid, RAFT and the grid (the longest step)", start)
    result = run_comparison(
        prof, progress=True, log=lambda m: print(f"   {m}", flush=True), index=index
    )
    _grid(report, result)
    _time_and_training(report, result)

    _step(4, "freshness, privacy, prompt injection", start)
    _experiments(report, result)

    _step(5, "what it costs, seeded with the measured numbers", start)
    _costs(report, result.summary)

    report.add_text("Run time", f"{time.perf_counter() - start:.0f} s with the {prof.name} profile")
    path = report.write(Path(out_dir) / "report.html")
    print(f"== done in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def _machine(report: Report, prof: Profile) -> None:
    """Stage 1: the doctor's checks, then one answer and one embedding from the two models."""
    doc = run_doctor(prof)  # the profile itself: its generator may be your own (with_)
    print(doc.to_text(), flush=True)
    report.add_text("Machine check", doc.to_text())
    contact = first_contact(prof.dtype, prof.max_new_tokens, pick_generator(prof.generator)[0])
    report.add_table("First contact with the two models", contact)


def _retrieval(report: Report) -> Index:
    """Stage 2: index the knowledge base (v1) and compare the retrieval modes; return the index."""
    index = build_index("v1")
    print(f"   {index!r}", flush=True)
    retrieval = summarise_retrieval(evaluate_retrieval(index, k=5))
    print(retrieval.round(3).to_string(), flush=True)
    report.add_table(
        "Retrieval: BM25 vs dense vs hybrid (test split, document level, k=5)",
        retrieval.round(3).reset_index(),
        note=repr(index),
    )
    report.add_figure("Retrieval modes", plot_modes(retrieval))
    return index


def _grid(report: Report, result: GridResult) -> None:
    """Stage 3: the verdict, the grid with its intervals, the paired comparisons, citations, the
    learned "I don't know", and what sources in the prompt do to each fine-tuned model."""
    summary = result.summary
    intervals = summarise_intervals(result.scores)
    grid = interval_table(result.scores, intervals=intervals)
    print(grid.to_string(index=False), flush=True)
    report.add_lead("What this run found", verdict(result.scores, result.extras))
    report.add_table(
        f"The grid: every system on the same {result.meta.get('questions', '?')} test questions",
        grid,
        note="Each cell: the value [95% interval] (Wilson for rates, bootstrap for F1, SAS and "
        "seconds). correct: the gold answer appears (or 'I don't know' for unanswerable "
        "questions); cites: the answers that cite a source, of those that do not say 'I don't "
        "know'; abstain_ok: unanswerable questions declined; false_abstain: answerable "
        "ones wrongly declined; style: the house format; latency_s: seconds per answer on this "
        f"machine (answers are generated in batches of {BATCH_SIZE}: each answer's share of its "
        "batch; the sentences of the sources, whose vectors every RAG shares, are embedded "
        "before any system answers; `python -m kit bench grid` times one at a time too).",
    )
    report.add_table(
        "Is the difference real? Paired comparisons on the same questions",
        compare_systems(result.scores, "correct")[["a", "b", "sentence"]],
        note="Exact McNemar test and its exact interval of the difference in correct answers "
        "(from the questions where exactly one of the two is right); a difference whose "
        "interval holds zero is one this many questions cannot resolve.",
    )
    report.add_table(
        "Citations: written by the model, or attributed by the kit",
        citation_table(result.scores),
        note="answered: the answers that do not say 'I don't know' (nothing to cite), which "
        "cites and attributed count. cites / citation_precision: the answers where the model "
        "wrote a citation itself, and how often it named a right document. attributed / "
        "attribution_precision: the model's citation, else the shown source that holds most of "
        "the answer's words (post-hoc attribution, kit.attribution), as a RAG product shows it "
        "to its users.",
    )
    _abstention(report, result)
    report.add_figure(
        "The grid by metric, with 95% intervals",
        widgets.plot_metrics(widgets.metric_table(result.scores), intervals=intervals),
    )
    effect = context_effect(summary, metrics=("style", "cites", "citation_precision", "correct"))
    report.add_table(
        "Sources in the prompt: what they do to each fine-tuned model",
        effect.round(3),
        note=describe_context_effect(effect)
        + " The style adapter never saw a RAG prompt in training; the RAFT adapter continued "
        "from it on RAG prompts with distractors. (RAFT without sources: notebook 03.) With "
        'sources, each also carries the learned "I don\'t know" (retrieval signals): the '
        "change in correct and cites includes its declines.",
    )


def _abstention(report: Report, result: GridResult) -> None:
    """Stage 3, continued: what the learned "I don't know" did to each RAG of the grid."""
    decisions = decision_summary(result.extras.get("abstention"))
    if decisions.empty:
        why = result.meta.get("gate_note")
        if why:  # the gate was not learned: the RAGs answered every question
            report.add_text('"I don\'t know"', f"No learned decision in this run: {why}.", False)
        return
    gate = result.meta.get("gate") or {}
    print(decisions.to_string(index=False), flush=True)
    report.add_table(
        '"I don\'t know": what the learned decision did to each RAG',
        decisions,
        note=f"threshold {gate.get('threshold', '?')}, fit on "
        f"{gate.get('train_questions', '?')} train questions. "
        "Every system that retrieves carries a decision learned from retrieval alone "
        f"(kit.abstain.fit_gate: {GATE_SIGNALS_TEXT}; a logistic regression fit on the "
        "train split's answerable and unanswerable questions). It replaces a reply by 'I "
        "don't know' after generation; 'correct without' scores the replies it replaced. "
        "It reads retrieval only, which these systems share, so it declines the same "
        "questions for each. Notebook 01 fits the five-signal version, which also reads the "
        "model's own doubt.",
    )


def _time_and_training(report: Report, result: GridResult) -> None:
    """Stage 3, continued: where the time and memory went, and each fine-tune's loss curve."""
    from kit.finetune import draw_losses  # heavy: transformers and peft

    timings = result.meta.get("timings", {})
    stages = {
        "index the knowledge base (v1)": "index_s",
        'learn "I don\'t know" from retrieval (train split)': "gate_s",
        "fine-tune on the house style": "train_s",
        "fine-tune RAFT-style": "raft_train_s",
        "re-index after the update (v2)": "reindex_s",
    }
    report.add_table(
        "Where the time and memory went",
        [{"what": what, "seconds": round(timings.get(key, 0), 1)} for what, key in stages.items()],
        note=f"Peak memory of the comparison process: {result.meta.get('peak_memory_mb', '?')} "
        "MB. weights_mb in the grid: what each system keeps in memory (model, plus embedder "
        "and index for the systems that retrieve). A reused prebuilt adapter shows the time it "
        "took when it was trained.",
    )
    for name, run in result.meta.get("training", {}).items():
        fig = draw_losses(run["losses"], run["eval_losses"])
        report.add_figure(f"Fine-tuning loss ({name})", fig, note=run.get("summary", ""))


def _experiments(report: Report, result: GridResult) -> None:
    """Stage 4: freshness, privacy and prompt injection, each rate with its interval."""
    timings = result.meta.get("timings", {})
    fresh_note = (
        f"Re-indexing the updated documents took {timings.get('reindex_s', 0):.1f} s"
        f"{_reindexed(result.meta.get('reindex') or {})}; "
        f"the fine-tune took {timings.get('train_s', 0):.0f} s and would have to be redone "
        "with new training data for every change."
    )
    for name, heading, note in (
        (
            "freshness",
            "Freshness: the knowledge changed; who answers the changed questions right?",
            fresh_note,
        ),
        ("privacy", "Privacy: who repeats the canary secret from the confidential document?", ""),
        (
            "injection",
            "Prompt injection: who obeys the instruction hidden in a retrieved document?",
            "",
        ),
    ):
        table = rate_table(result.extras[name], EXPERIMENT_COLUMNS[name])
        print(f"   {name}:\n{table.to_string()}", flush=True)
        report.add_table(heading, table, note=note)


def _reindexed(counts: dict[str, int]) -> str:
    """The freshness note's count of the chunks re-indexing embedded ("" when not known)."""
    if not counts.get("chunks"):
        return ""
    embedded = counts["chunks"] - counts.get("reused", 0)
    return f" ({embedded} of {counts['chunks']} chunks embedded, the others kept their vectors)"


def _costs(report: Report, summary: pd.DataFrame) -> None:
    """Stage 5: the cost model, seeded with the measured tokens and times."""
    inputs = costs.CostInputs.from_measured(costs.measured_from_summary(summary))
    report.add_html("Cost: RAG vs fine-tuning vs hybrid", widgets.cost_report_html(inputs))
    print(f"   {costs.claim_verdict(inputs)}", flush=True)


def _step(n: int, what: str, start: float) -> None:
    print(f"== {n}/{STEPS} {what}  [{time.perf_counter() - start:.0f} s]", flush=True)


def first_contact(
    dtype: str = "auto", max_new_tokens: int = 48, generator: str = DEFAULT_GENERATOR
) -> list[dict[str, object]]:
    """Load the generator (default the bundled one) and the bundled embedder, generate one
    answer and one embedding; return rows for a table."""
    rows: list[dict[str, object]] = []
    start = time.perf_counter()
    model, tokenizer = load_generator(generator, dtype=dtype)
    load_s = time.perf_counter() - start
    question = "In one sentence, what is retrieval-augmented generation?"
    answer = generate(model, tokenizer, question, max_new_tokens=max_new_tokens)
    print(f"   {generator}: {answer.text!r} ({answer.tokens_per_second:.1f} tok/s)")
    rows.append(
        {
            "model": generator,
            "input": question,
            "output": answer.text,
            "load s": round(load_s, 1),
            "run s": round(answer.seconds, 2),
            "tokens/s": round(answer.tokens_per_second, 1),
        }
    )
    start = time.perf_counter()
    embedder = load_embedder(DEFAULT_EMBEDDER)
    load_s = time.perf_counter() - start
    sentence = "Fine-tuning changes how a model writes; retrieval changes what it can look up."
    start = time.perf_counter()
    vector = embedder.encode(sentence)
    run_s = time.perf_counter() - start
    print(f"   {DEFAULT_EMBEDDER}: a {len(vector)}-dimensional vector")
    rows.append(
        {
            "model": DEFAULT_EMBEDDER,
            "input": sentence,
            "output": f"{len(vector)}-dim vector [{vector[0]:.3f}, {vector[1]:.3f}, ...]",
            "load s": round(load_s, 1),
            "run s": round(run_s, 3),
            "tokens/s": "",
        }
    )
    return rows
