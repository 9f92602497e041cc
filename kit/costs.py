"""Costs: what RAG, fine-tuning and the hybrid cost per month, and when "RAG is cheaper" is true.

The model counts the real cost drivers of each system, per month:

- **inference**: every query pays for its prompt and its answer. RAG's prompt carries the
  retrieved passages (hundreds of tokens), the fine-tuned model's prompt is only the question, the
  hybrid's carries ``hybrid_context_share`` of RAG's passages (the kit's hybrid reads the RAG
  prompt itself: about 1 when seeded from its own grid). With an API you pay per token;
  self-hosted you pay for the machine-hours the answers take (prompt tokens / prefill speed +
  answer tokens / decode speed).
- **indexing**: when documents change, the changed ones are embedded again (RAG and hybrid).
- **vector store**: a flat monthly fee for the store that holds the embeddings (RAG and hybrid).
- **training**: machine-hours of each training run. Fine-tuning must retrain after every
  knowledge update to stay fresh (and at least ``training_runs_per_year``); the hybrid gets its
  knowledge from retrieval, so it only retrains on its own schedule (style and format).
- **people**: someone refreshes the training set and checks each new model before it ships.

In: a :class:`CostInputs` (every slider of the cost calculator), usually seeded from the kit's
own measurements with :meth:`CostInputs.from_measured`. Out: DataFrames (:func:`monthly_costs`,
:func:`cost_curves`, :func:`claim_regions`), fractions (:func:`rag_savings`) and a sentence
(:func:`claim_verdict`). One-off costs (building the first index, the first training run) and the
model's own licence are left out: the model compares running costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from kit.inputs import number

SYSTEMS: tuple[str, ...] = ("rag", "finetuned", "hybrid")
PRICING: tuple[str, ...] = ("api", "self-hosted")
CLAIM_LOW, CLAIM_HIGH = 0.60, 0.80
"""The common claim: "RAG is 60-80% cheaper than fine-tuning"."""

DEFAULT_MEASURED: dict[str, Any] = {
    "prompt_tokens": {"rag": 700.0, "finetuned": 39.0, "hybrid": 400.0},
    "new_tokens": {"rag": 40.0, "finetuned": 40.0, "hybrid": 40.0},
    "seconds_per_answer": {"rag": 3.0, "finetuned": 1.7, "hybrid": 2.4},
    "prefill_tokens_per_s": 500.0,
    "decode_tokens_per_s": 25.0,
    "training_seconds": 149.0,
    "training_documents": 44,
    "indexing_seconds_per_doc": 0.05,
}
"""The kit's own numbers, measured on its 2-core CPU (SmolLM2-135M, bf16; MiniLM embedder).

- prompt_tokens: the fine-tuned model reads the question in the chat template (39 tokens on
  average over the test questions); RAG adds 4 retrieved chunks of 100 words (~150 tokens each,
  1.48 tokens per word in the bundled documents) and its instructions (~700 tokens); the hybrid,
  when first measured, read 2 chunks (~400 tokens); today's hybrid reads the RAG prompt, so
  seed from your own run (:func:`measured_from_summary`) for its real length.
- new_tokens: a short answer with its citation line (~40 tokens).
- prefill / decode speed: ~25 tokens/s generated (bf16); prompt tokens are read in parallel,
  ~500 tokens/s (about a third of the CPU's bf16 matmul ceiling); seconds_per_answer follow.
- training_seconds: one LoRA run (all-linear r=16, 100 examples x 4 epochs, bf16) took 149 s on
  the kit's data (44 documents).
- indexing_seconds_per_doc: embedding one ~330-word document in 100-word chunks with MiniLM.

Pass the numbers of your own run instead (:func:`measured_from_summary` reads them from the
comparison's summary table).
"""


@dataclass(frozen=True)
class CostInputs:
    """Everything the cost model reads: one field per slider of the cost calculator.

    Token counts are per query; prices in US dollars. ``pricing`` is "api" (pay per token) or
    "self-hosted" (pay per machine-hour for serving). Training is always priced in
    machine-hours at ``hour_price`` on the machine the speeds were measured on; indexing per
    embedded token (``embed_price_per_m``) with "api", in machine-hours when self-hosted.
    """

    queries_per_month: float = 10_000
    question_tokens: float = 39.0  # prompt without retrieved passages: what the fine-tuned reads
    context_tokens: float = 661.0  # retrieved passages + instructions RAG adds to every prompt
    hybrid_context_share: float = 0.55  # share of RAG's extra prompt the hybrid adds
    new_tokens: float = 40.0  # generated tokens per answer
    documents: int = 1_000
    changed_share: float = 0.10  # share of documents that change in one knowledge update
    updates_per_month: float = 1.0  # knowledge updates (each one makes a fine-tuned model stale)
    pricing: str = "api"
    input_price_per_m: float = 0.20  # $ per 1M prompt tokens (API)
    output_price_per_m: float = 0.60  # $ per 1M generated tokens (API)
    embed_price_per_m: float = 0.02  # $ per 1M embedded tokens (API)
    hour_price: float = 0.10  # $ per machine-hour (a 2-vCPU VM like the kit's; a GPU costs more)
    prefill_tokens_per_s: float = 500.0
    decode_tokens_per_s: float = 25.0
    doc_tokens: float = 495.0  # tokens per document (the bundled ones average 495)
    indexing_seconds_per_doc: float = 0.05
    vector_store_per_month: float = 10.0  # $ flat for the store (a small managed instance)
    training_runs_per_year: float = (
        4.0  # scheduled retrains (style, format), with or without updates
    )
    hours_per_run: float = 0.94  # machine-hours per training run (scales with the documents)
    people_hours_per_run: float = 4.0  # refresh the training set, check the new model, ship it
    people_hour_price: float = 60.0

    def with_(self, **changes: Any) -> CostInputs:
        """A copy with some fields changed (unknown names raise ValueError)."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ValueError(f"CostInputs has no field(s) {sorted(unknown)}.")
        return replace(self, **changes)

    @classmethod
    def from_measured(cls, measured: dict[str, Any] | None = None, **overrides: Any) -> CostInputs:
        """Inputs seeded from measured numbers (see :data:`DEFAULT_MEASURED`), then ``overrides``.

        Missing keys of ``measured`` keep their defaults. The training hours per run scale the
        measured training time from the kit's documents to ``documents``.
        """
        m = merge_measured(measured)
        prompt, new = m["prompt_tokens"], m["new_tokens"]
        question = float(prompt["finetuned"])
        context = max(float(prompt["rag"]) - question, 0.0)
        hybrid_share = (float(prompt["hybrid"]) - question) / context if context else 1.0
        documents = int(overrides.get("documents", cls.documents))
        hours = m["training_seconds"] / 3600 * documents / max(m["training_documents"], 1)
        seeded = cls(
            question_tokens=round(question, 1),
            context_tokens=round(context, 1),
            hybrid_context_share=round(min(max(hybrid_share, 0.0), 1.0), 2),
            new_tokens=round(float(np.mean([new[s] for s in SYSTEMS])), 1),
            prefill_tokens_per_s=float(m["prefill_tokens_per_s"]),
            decode_tokens_per_s=float(m["decode_tokens_per_s"]),
            indexing_seconds_per_doc=float(m["indexing_seconds_per_doc"]),
            hours_per_run=round(hours, 2),
        )
        return seeded.with_(**overrides)


def merge_measured(measured: dict[str, Any] | None) -> dict[str, Any]:
    """:data:`DEFAULT_MEASURED` updated with ``measured`` (per-system dicts merged key by key)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_MEASURED.items()}
    if measured is not None and not isinstance(measured, dict):
        raise ValueError(
            "measured must be a dict of measured numbers (see kit.costs.DEFAULT_MEASURED), not "
            f"{type(measured).__name__} {str(measured)[:40]!r}."
        )
    for key, value in (measured or {}).items():
        if key not in out:
            raise ValueError(f"Unknown measured number {key!r}; known: {sorted(out)}.")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"measured[{key!r}] must be a dict of system -> number.")
            out[key].update({k: float(number(v, f"{key}[{k!r}]")) for k, v in value.items()})
        else:
            out[key] = value
    return out


def measured_from_summary(summary: pd.DataFrame) -> dict[str, Any]:
    """Measured numbers from a summary table (:func:`kit.evaluate.summarise`).

    In: one row per system with columns system, prompt_tokens, new_tokens, latency_p50_s; rows
    named "rag", "finetuned" and "hybrid" are costed, others ignored. Out: a partial ``measured``
    dict for :meth:`CostInputs.from_measured`. The decode speed is estimated from the system with
    the shortest prompt (its time is nearly all decoding; "base" when the costed systems share
    one prompt length), the prefill speed from the extra time the longest prompt takes; when
    there is one prompt length only, or an estimate is not positive, the defaults are kept.
    """
    needed = {"system", "prompt_tokens", "new_tokens", "latency_p50_s"}
    if summary is None or summary.empty or not needed <= set(summary.columns):
        raise ValueError(f"The summary table needs rows and the columns {sorted(needed)}.")
    rows = summary[summary["system"].isin(SYSTEMS)].set_index("system")
    if rows.empty:
        raise ValueError(f"The summary has none of the systems {list(SYSTEMS)}.")
    out: dict[str, Any] = {
        "prompt_tokens": rows["prompt_tokens"].astype(float).to_dict(),
        "new_tokens": rows["new_tokens"].astype(float).to_dict(),
        "seconds_per_answer": rows["latency_p50_s"].astype(float).to_dict(),
    }
    timed = rows  # with one prompt length among them (no fine-tuned system), base's too
    if rows["prompt_tokens"].nunique() < 2:
        timed = summary[summary["system"].isin((*SYSTEMS, "base"))].set_index("system")
    short, long = timed["prompt_tokens"].idxmin(), timed["prompt_tokens"].idxmax()
    if short == long:  # one prompt length: its time mixes reading the prompt and decoding
        return out
    decode = timed.at[short, "new_tokens"] / timed.at[short, "latency_p50_s"]
    if math.isfinite(decode) and decode > 0:
        out["decode_tokens_per_s"] = float(decode)
        extra_time = timed.at[long, "latency_p50_s"] - timed.at[long, "new_tokens"] / decode
        extra_tokens = timed.at[long, "prompt_tokens"] - timed.at[short, "prompt_tokens"]
        if extra_time > 0 and extra_tokens > 0:
            out["prefill_tokens_per_s"] = float(extra_tokens / extra_time)
    return out


def _check(inputs: CostInputs) -> None:
    """ValueError naming the field: pricing not a known choice, a number that is text, NaN,
    infinite or negative, or a speed of zero."""
    if inputs.pricing not in PRICING:
        raise ValueError(f"pricing must be one of {PRICING}, not {inputs.pricing!r}.")
    values = asdict(inputs)
    for name, value in values.items():
        if name != "pricing":
            number(value, name)  # InputError (a ValueError) for '1000', nan, True ...
            values[name] = float(value)  # NumPy numbers compare like the rest below
    negative = [k for k, v in values.items() if isinstance(v, int | float) and v < 0]
    if negative:
        raise ValueError(f"Costs and counts cannot be negative: {', '.join(negative)}.")
    if inputs.prefill_tokens_per_s <= 0 or inputs.decode_tokens_per_s <= 0:
        raise ValueError("Prefill and decode speeds must be above zero tokens per second.")


def prompt_tokens(inputs: CostInputs) -> dict[str, float]:
    """Prompt tokens per query for each system."""
    return {
        "rag": inputs.question_tokens + inputs.context_tokens,
        "finetuned": inputs.question_tokens,
        "hybrid": inputs.question_tokens + inputs.hybrid_context_share * inputs.context_tokens,
    }


def seconds_per_answer(inputs: CostInputs) -> dict[str, float]:
    """Machine-seconds per answer for each system: prompt / prefill speed + answer / decode."""
    decode = inputs.new_tokens / inputs.decode_tokens_per_s
    return {s: p / inputs.prefill_tokens_per_s + decode for s, p in prompt_tokens(inputs).items()}


def monthly_costs(inputs: CostInputs) -> pd.DataFrame:
    """The monthly bill of each system, by cost driver.

    Out: one row per system (rag, finetuned, hybrid) with columns inference, indexing,
    vector_store, training, people, total (US dollars per month), plus prompt_tokens,
    seconds_per_answer and retrains_per_month, so the drivers can be read next to the bill.
    """
    _check(inputs)
    q = inputs.queries_per_month
    prompts, seconds = prompt_tokens(inputs), seconds_per_answer(inputs)
    changed_docs = inputs.updates_per_month * inputs.changed_share * inputs.documents
    if inputs.pricing == "api":
        indexing = changed_docs * inputs.doc_tokens * inputs.embed_price_per_m / 1e6
    else:
        indexing = changed_docs * inputs.indexing_seconds_per_doc / 3600 * inputs.hour_price
    scheduled = inputs.training_runs_per_year / 12
    retrains = {
        "rag": 0.0,
        "finetuned": max(scheduled, inputs.updates_per_month),
        "hybrid": scheduled,
    }
    rows = []
    for system in SYSTEMS:
        if inputs.pricing == "api":
            per_query = (
                prompts[system] * inputs.input_price_per_m
                + inputs.new_tokens * inputs.output_price_per_m
            ) / 1e6
        else:
            per_query = seconds[system] / 3600 * inputs.hour_price
        retrieves = system != "finetuned"
        row = {
            "system": system,
            "inference": q * per_query,
            "indexing": indexing if retrieves else 0.0,
            "vector_store": inputs.vector_store_per_month if retrieves else 0.0,
            "training": retrains[system] * inputs.hours_per_run * inputs.hour_price,
            "people": retrains[system] * inputs.people_hours_per_run * inputs.people_hour_price,
        }
        row["total"] = sum(row[k] for k in ("inference", "indexing", "vector_store", "training"))
        row["total"] += row["people"]
        row.update(
            prompt_tokens=prompts[system],
            seconds_per_answer=seconds[system],
            retrains_per_month=retrains[system],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def rag_savings(inputs: CostInputs) -> float:
    """How much cheaper RAG is than fine-tuning: 1 - cost(RAG) / cost(fine-tuned).

    0.7 means RAG costs 70% less; a negative value means fine-tuning is cheaper.
    """
    totals = monthly_costs(inputs).set_index("system")["total"]
    if totals["finetuned"] <= 0:
        return 0.0 if totals["rag"] <= 0 else -math.inf
    return float(1 - totals["rag"] / totals["finetuned"])


def savings_sentence(table: pd.DataFrame) -> str:
    """Which of RAG and fine-tuning costs less in ``table`` (a :func:`monthly_costs` table), and
    by how much, said the right way round: "RAG saves 70% compared with the other", "fine-tuning
    saves 79% ..." (never "RAG saves -380%"), "fine-tuning costs nothing at these inputs"."""
    totals = table.set_index("system")["total"]
    rag, ft = float(totals["rag"]), float(totals["finetuned"])
    if rag == ft:
        return "RAG and fine-tuning cost the same"
    if min(rag, ft) <= 0:
        return f"{'RAG' if rag <= 0 else 'fine-tuning'} costs nothing at these inputs"
    cheap, dear, saves = ("RAG", ft, rag) if rag < ft else ("fine-tuning", rag, ft)
    share = 1 - saves / dear
    shown = "over 99%" if share > 0.995 else "under 1%" if share < 0.005 else f"{share:.0%}"
    return f"{cheap} saves {shown} compared with the other"


def _linear_parts(inputs: CostInputs) -> tuple[pd.Series, pd.Series]:
    """Each system's bill as fixed + per_query x queries: (fixed, per_query), indexed by system.
    The per-query part is read at a million queries, so the rounding of the bills' difference
    is a millionth of a cent, not a cent's worth of noise that two equal systems would differ
    by."""
    at0 = monthly_costs(inputs.with_(queries_per_month=0)).set_index("system")["total"]
    many = 1e6
    at_many = monthly_costs(inputs.with_(queries_per_month=many)).set_index("system")["total"]
    return at0, (at_many - at0) / many


def _same(a: float, b: float) -> bool:
    """Two per-query costs equal up to floating-point rounding."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


def queries_at_savings(inputs: CostInputs, share: float) -> float | None:
    """The query volume per month at which RAG is exactly ``share`` cheaper than fine-tuning.

    Both bills are a fixed part plus a cost per query, so RAG's saving moves steadily with the
    volume and this is where it passes ``share``: solve
    fixed_rag + q per_rag = (1 - share) (fixed_ft + q per_ft) for q. None if it never does.
    """
    fixed, per = _linear_parts(inputs)
    denominator = per["rag"] - (1 - share) * per["finetuned"]
    numerator = (1 - share) * fixed["finetuned"] - fixed["rag"]
    if _same(per["rag"], (1 - share) * per["finetuned"]):
        return None
    q = numerator / denominator
    return float(q) if q > 0 else None


def break_even_queries(inputs: CostInputs) -> float | None:
    """Queries per month above which fine-tuning is cheaper than RAG; None if it never is.

    The crossing point is (fixed_ft - fixed_rag) / (per_query_rag - per_query_ft).
    """
    fixed, per = _linear_parts(inputs)
    if per["rag"] <= per["finetuned"] or _same(per["rag"], per["finetuned"]):
        return None if fixed["rag"] <= fixed["finetuned"] else 0.0
    return float(max(fixed["finetuned"] - fixed["rag"], 0.0) / (per["rag"] - per["finetuned"]))


def cost_curves(
    inputs: CostInputs, queries: Sequence[float] | None = None, yearly: bool = False
) -> pd.DataFrame:
    """Total cost of each system over a range of query volumes (the calculator's curves).

    Out: long format, columns queries_per_month, system, cost (per month, or per year with
    ``yearly``). ``queries`` defaults to 50 volumes from 100 to 10 million per month.
    """
    grid = list(queries) if queries is not None else list(np.geomspace(1e2, 1e7, 50))
    if not grid:
        raise ValueError("No query volumes to draw: pass at least one.")
    fixed, per_query = _linear_parts(inputs)  # every bill is fixed + per_query x queries
    factor = 12 if yearly else 1
    rows = [
        {
            "queries_per_month": float(q),
            "system": system,
            "cost": factor * (fixed[system] + per_query[system] * float(q)),
        }
        for q in grid
        for system in SYSTEMS
    ]
    return pd.DataFrame(rows)


def claim_label(savings: float) -> str:
    """Name the region a savings fraction falls in (see :func:`claim_regions`)."""
    if savings > CLAIM_HIGH:
        return "RAG >80% cheaper"
    if savings >= CLAIM_LOW:
        return "RAG 60-80% cheaper"
    if savings > 0:
        return "RAG <60% cheaper"
    return "fine-tuning cheaper"


def claim_regions(
    inputs: CostInputs,
    queries: Sequence[float] | None = None,
    updates: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Where the "RAG is 60-80% cheaper" claim holds, over query volumes x update frequencies.

    Out: one row per (queries_per_month, updates_per_month) with rag_cost, finetuned_cost,
    savings (see :func:`rag_savings`) and region (see :func:`claim_label`).
    """
    queries = list(queries) if queries is not None else list(np.geomspace(1e2, 1e8, 61))
    updates = list(updates) if updates is not None else [1 / 12, 1 / 3, 1.0, 4.0, 30.0]
    rows = []
    for u in updates:
        for q in queries:
            costs = monthly_costs(inputs.with_(queries_per_month=float(q), updates_per_month=u))
            totals = costs.set_index("system")["total"]
            savings = 1 - totals["rag"] / totals["finetuned"] if totals["finetuned"] else 0.0
            rows.append(
                {
                    "queries_per_month": float(q),
                    "updates_per_month": float(u),
                    "rag_cost": totals["rag"],
                    "finetuned_cost": totals["finetuned"],
                    "savings": float(savings),
                    "region": claim_label(savings),
                }
            )
    return pd.DataFrame(rows)


def format_count(value: float) -> str:
    """A count for a sentence: 950, 12.3k, 1.2M, 3.4bn, "over a trillion" (rounded to 3 digits
    first, so 999,600 reads 1M, not 1e+03k)."""
    value = float(f"{value:.3g}")
    if value >= 1e12:
        return "over a trillion"
    for size, unit in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def claim_verdict(inputs: CostInputs) -> str:
    """One paragraph: for which query volumes RAG is 60-80% cheaper, and where fine-tuning wins.

    It reads the volumes where RAG's saving crosses 80%, 60% and 0% (:func:`queries_at_savings`)
    at the inputs' own update frequency, then the break-even volume with rare (once a year) and
    frequent (weekly) updates.
    """
    cuts = sorted(
        q for q in (queries_at_savings(inputs, s) for s in (CLAIM_HIGH, CLAIM_LOW, 0.0)) if q
    )
    edges = [0.0, *cuts, math.inf]
    parts = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if math.isinf(hi):
            probe = max(lo * 2, 1.0)
        else:
            probe = hi / 2 if lo == 0 else math.sqrt(lo * hi)
        label = claim_label(rag_savings(inputs.with_(queries_per_month=probe)))
        if lo == 0 and math.isinf(hi):
            parts.append(f"{label} at every volume")
        elif lo == 0:
            parts.append(f"{label} below {format_count(hi)} queries/month")
        elif math.isinf(hi):
            parts.append(f"{label} above {format_count(lo)}")
        else:
            parts.append(f"{label} from {format_count(lo)} to {format_count(hi)}")
    text = (
        f"At {inputs.updates_per_month:g} knowledge update(s) per month and these prices: "
        + "; ".join(parts)
        + "."
    )
    for label, u in (("rare updates (once a year)", 1 / 12), ("weekly updates", 52 / 12)):
        q = break_even_queries(inputs.with_(updates_per_month=u))
        if q is None:
            text += f" With {label} RAG stays cheaper at every volume."
        elif q == 0:
            text += f" With {label} fine-tuning is cheaper at every volume."
        else:
            text += f" With {label} fine-tuning is cheaper above {format_count(q)} queries/month."
    text += (
        " Where fine-tuning wins, the long RAG prompts dominate: every query pays for the "
        "retrieved passages, while a retrain is paid once per update."
    )
    return text
