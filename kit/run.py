"""Run: the kit's main job, headless, ending in a report (``make demo`` / ``python -m kit run``).

Stage by stage it checks the machine, loads the bundled models and shows a first answer and a
first embedding. Later stages (RAG, fine-tuning, hybrid, comparison) add their sections here.
"""

from __future__ import annotations

import time
from pathlib import Path

from kit.profiles import resolve_profile
from kit.report import Report


def run_all(profile: str | None = None, out_dir: str | Path = "outputs") -> Path:
    """Run every stage with ``profile`` (None = picked by the doctor); return the report's path."""
    from kit.doctor import run_doctor

    prof = resolve_profile(profile)
    report = Report(title="rag-ft-kit: the walk-through", profile=prof.name)

    print("== 1/2 doctor", flush=True)
    doc = run_doctor(prof.name)
    print(doc.to_text(), flush=True)
    report.add_text("Machine check", doc.to_text())

    print("== 2/2 first answer and first embedding from the bundled models", flush=True)
    report.add_table(
        "First contact with the bundled models", first_contact(prof.dtype, prof.max_new_tokens)
    )

    path = report.write(Path(out_dir) / "report.html")
    return path


def first_contact(dtype: str = "bfloat16", max_new_tokens: int = 48) -> list[dict[str, object]]:
    """Load each bundled model, generate one answer and one embedding; return rows for a table."""
    from kit.generate import generate
    from kit.models import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, load_embedder, load_generator

    rows: list[dict[str, object]] = []
    start = time.perf_counter()
    model, tokenizer = load_generator(DEFAULT_GENERATOR, dtype=dtype)
    load_s = time.perf_counter() - start
    question = "In one sentence, what is retrieval-augmented generation?"
    answer = generate(model, tokenizer, question, max_new_tokens=max_new_tokens)
    print(f"   {DEFAULT_GENERATOR}: {answer.text!r} ({answer.tokens_per_second:.1f} tok/s)")
    rows.append(
        {
            "model": DEFAULT_GENERATOR,
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
