"""Benchmark of the comparison grid: ``python -m kit bench grid [--questions N] [--profile P]``.

Prints figures, never pass/fail, in one run:

- answers per second and new tokens per second, one question at a time vs batched, on the same
  prompts, for plain RAG (the Haystack pipeline) and for the base model alone, and how many of
  the batched answers are the very text the one-at-a-time path gives;
- from the cached comparison of the profile (``make demo`` / notebook 04), if there is one: the
  seconds each stage of the main job took, and how wide the 95% intervals of ``correct`` are
  on that many questions (the "±" a learner should read next to every rate).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from kit.generate import BATCH_SIZE
from kit.models import load_generator, pick_dtype, pick_generator
from kit.profiles import Profile, resolve_profile


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kit bench grid", description=__doc__.splitlines()[0]
    )
    p.add_argument("--questions", type=int, default=16, help="test questions to answer (16)")
    p.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help=f"questions per batch ({BATCH_SIZE})"
    )
    p.add_argument("--profile", default=None, help="smoke, cpu or gpu (default: picked)")
    return p


def time_answers(
    answer_one: Callable[[str], Any], answer_all: Callable[[list[str]], list[Any]], qs: list[str]
) -> dict[str, Any]:
    """Answer ``qs`` one at a time, then batched; return speeds and the share of equal texts."""
    start = time.perf_counter()
    alone = [answer_one(q) for q in qs]
    alone_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = answer_all(qs)
    batched_s = time.perf_counter() - start
    same = sum(a.text == b.text for a, b in zip(alone, batched, strict=True))
    return {
        "alone_answers_per_s": len(qs) / alone_s,
        "batched_answers_per_s": len(qs) / batched_s,
        "alone_tokens_per_s": sum(a.new_tokens for a in alone) / alone_s,
        "batched_tokens_per_s": sum(a.new_tokens for a in batched) / batched_s,
        "same_text": same,
        "questions": len(qs),
    }


def stage_lines(profile: str | Profile | None) -> list[str]:
    """The cached comparison's stage timings and interval widths, as printable lines."""
    from kit.compare import load_cached_results  # heavy: see main
    from kit.evaluate import summarise_intervals

    result = load_cached_results(profile)
    if result is None:
        name = resolve_profile(profile).name
        return [f"no cached comparison for the {name} profile: run `make demo` first"]
    lines = [f"cached comparison: {result.meta.get('questions', '?')} questions per system"]
    lines += [f"  {k:<14} {v:8.1f} s" for k, v in result.meta.get("timings", {}).items()]
    widths = summarise_intervals(result.scores, ["correct"])
    for row in widths.itertuples():
        lines.append(f"  correct {row.system:<12} {row.shown:<20} ±{(row.high - row.low) / 2:.2f}")
    return lines


def _print(name: str, figures: dict[str, Any]) -> None:
    print(
        f"{name:<6} one at a time {figures['alone_answers_per_s']:.2f} answers/s "
        f"({figures['alone_tokens_per_s']:.1f} new tok/s); batched "
        f"{figures['batched_answers_per_s']:.2f} answers/s "
        f"({figures['batched_tokens_per_s']:.1f} new tok/s), "
        f"{figures['batched_answers_per_s'] / figures['alone_answers_per_s']:.1f}x; "
        f"same text {figures['same_text']}/{figures['questions']}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures; return 0."""
    args = _parser().parse_args(argv)
    # heavy: Haystack and torch load once the arguments parse, so --help answers at once
    from kit.compare import plain_system
    from kit.evaluate import eval_records
    from kit.indexing import build_index
    from kit.rag import build_rag

    profile = resolve_profile(args.profile)
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"grid benchmark: profile {profile.name}, {pick_dtype(profile.dtype)}, "
        f"{profile.max_new_tokens} new tokens max, batch {args.batch_size}, load average {load}"
    )
    records = eval_records(profile=profile.with_(eval_questions=args.questions))
    questions = [r.question for r in records]
    model, tokenizer = load_generator(pick_generator(profile.generator)[0], dtype=profile.dtype)
    rag = build_rag(build_index("v1"), generator=(model, tokenizer), profile=profile)
    rag.answer(questions[0])  # warm-up outside the timing
    rag.warm_up_sources(questions)  # as the grid does: both passes find the sentences embedded
    figures = time_answers(
        rag.answer, lambda qs: rag.answer_batch(qs, batch_size=args.batch_size), questions
    )
    _print("rag", figures)
    base = plain_system(model, tokenizer, "base", profile)
    _print("base", time_answers(base, base.answer_batch, questions))
    for line in stage_lines(profile):
        print(line)
    return 0
