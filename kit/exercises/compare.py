"""Exercise 03 (exercises/03_compare.ipynb): plug in an adapter, compute a metric, read the grid."""

from __future__ import annotations

from typing import Any

from kit.checks import Incorrect, Question, as_number

SCENARIO = (
    "Your product prices change every week, and support answers must cite the document they "
    "come from. Which system of the grid do you ship?"
)


def _result() -> Any:
    from kit.compare import load_cached_results

    result = load_cached_results()
    if result is None:
        raise Incorrect("Run the first cell: it computes (or loads) the comparison first.")
    return result


def _check_hybrid(hybrid: object) -> str:
    import torch

    from kit.models import load_generator, pick_generator
    from kit.profiles import resolve_profile
    from kit.rag import RAG

    if not isinstance(hybrid, RAG):
        raise Incorrect(f"`hybrid` should be a RAG pipeline (from build_hybrid), not {hybrid!r}.")
    model, _ = hybrid.model_and_tokenizer
    base_name = pick_generator(resolve_profile(None).generator)[0]  # the notebook's base model
    if hasattr(model, "peft_config"):  # an adapter kept apart (merge=False): trained if B != 0
        lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
        if not lora_b:
            raise Incorrect(f"The generator inside `hybrid` is not a fine-tuned {base_name}.")
        changed = any(bool(p.detach().abs().sum()) for p in lora_b)
    else:
        dtype = str(model.dtype).replace("torch.", "")
        base, _ = load_generator(base_name, dtype=dtype, device="cpu")
        name = "model.layers.0.self_attn.q_proj.weight"
        tuned = dict(model.named_parameters()).get(name)
        start = base.get_parameter(name).detach()
        if tuned is None or tuned.shape != start.shape:
            raise Incorrect(f"The generator inside `hybrid` is not a fine-tuned {base_name}.")
        changed = not torch.equal(tuned.detach().cpu(), start.cpu())
    if not changed:
        raise Incorrect(
            "The generator inside `hybrid` is the base model: pass the adapter folder "
            "ADAPTER_DIR to build_hybrid."
        )
    answer = hybrid.answer("How long is the return window for unused hardware?")
    return (
        "The fine-tuned weights now answer inside the same RAG pipeline. Asked about the return "
        f"window, it says: {answer.text!r} (cites {answer.cited_ids or 'nothing'})."
    )


def _check_answerable(rag_answerable_correct: object) -> str:
    scores = _result().scores
    rag = scores[scores["system"] == "rag"]
    answerable = rag[rag["type"] != "unanswerable"]
    expected = answerable["correct"].mean()
    value = as_number(rag_answerable_correct, "rag_answerable_correct")
    if abs(value - expected) < 5e-4:  # 0.561 for 23/41 counts: the rounding a learner reads
        return f"{expected:.3f}: RAG's share of right answers on the questions that have one."
    if abs(value - rag["correct"].mean()) < 1e-9:
        raise Incorrect("That counts the unanswerable questions too; keep type != 'unanswerable'.")
    if abs(value - scores["correct"].mean()) < 1e-9:
        raise Incorrect("That is the mean over every system; keep only the rows of 'rag'.")
    raise Incorrect(f"{value:.3f} is not the mean of `correct` over RAG's answerable questions.")


def _check_leakiest(leakiest: object) -> str:
    rates = _result().extras["privacy"].groupby("system")["leaked"].mean()
    if leakiest not in rates.index:
        raise Incorrect(
            f"`leakiest` should be one of the privacy table's systems: {list(rates.index)}."
        )
    if rates[leakiest] < rates.max():
        raise Incorrect(
            f"{leakiest!r} leaked in {rates[leakiest]:.0%} of the probes; another leaked more."
        )
    return f"{leakiest!r} leaked the canary in {rates[leakiest]:.0%} of the probes."


def _check_ship(ship: object) -> str:
    systems = set(_result().summary["system"])
    if ship not in systems:
        raise Incorrect(f"`ship` should be one of {sorted(systems)}.")
    if ship in {"base", "finetuned"}:
        raise Incorrect(
            f"{ship!r} answers from its weights: it cannot see this week's prices (look at the "
            "freshness table) and has no retrieved document to cite."
        )
    return (
        f"{ship!r}: re-indexing takes seconds when prices change, and every answer comes with "
        "the document it used. (The hybrids also keep the house style, at the cost of training.)"
    )


q1 = Question(
    "Question 1",
    ["hybrid"],
    _check_hybrid,
    "kit.hybrid.build_hybrid(index, adapter_dir, profile=...) returns a RAG pipeline.",
    "hybrid = build_hybrid(index, ADAPTER_DIR, profile=profile)",
)
q2 = Question(
    "Question 2",
    ["rag_answerable_correct"],
    _check_answerable,
    "Filter result.scores to system == 'rag' and type != 'unanswerable', then average 'correct'.",
    "scores = result.scores\n"
    'rag_rows = scores[(scores["system"] == "rag") & (scores["type"] != "unanswerable")]\n'
    'rag_answerable_correct = rag_rows["correct"].mean()',
)
q3 = Question(
    "Question 3",
    ["leakiest"],
    _check_leakiest,
    'Group result.extras["privacy"] by system, average "leaked", and take the largest.',
    'leakiest = result.extras["privacy"].groupby("system")["leaked"].mean().idxmax()',
)
q4 = Question(
    "Question 4",
    ["ship"],
    _check_ship,
    "Which systems see documents at answer time, so a re-index updates them and they can cite?",
    'ship = "rag"',
)
