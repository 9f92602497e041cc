"""RAG: answer a question from the chunks retrieval finds, citing them as sources.

Every step is a Haystack 3 component wired into a Haystack ``Pipeline``, so you can print any
pipeline and see its graph:

1. **Index** (:mod:`kit.indexing`: :func:`~kit.indexing.build_index`): documents loaded, split
   into chunks, embedded and written into a document store (any Haystack store plugs in).
2. **Retrieve** (:mod:`kit.retrieval`: :func:`~kit.retrieval.retrieval_pipeline`): ``bm25``,
   ``dense`` or ``hybrid``, with metadata filters such as a role's access levels.
3. **Answer** (:class:`RAG`, :func:`build_rag`): the retrieved chunks become numbered sources in
   the prompt (``ChatPromptBuilder``; the default layout also starts the reply, "According to
   source [", so the model names a source first), the generator
   (``TransformersChatGenerator`` around the bundled SmolLM2, or any model you pass) answers
   and cites them, and the citations are parsed back to document ids (:mod:`kit.citations`).
   When retrieval finds nothing similar enough (``min_score``), or the question reads as
   another language than the sources (:func:`kit.prompts.reads_as_foreign`), the answer is "I
   don't know" without asking the model.

How well it works is measured one layer up, in :mod:`kit.rag_eval` (recall@k, MRR and nDCG with
Haystack's evaluators, answers scored by :mod:`kit.evaluate`, latency per stage, each mode and
prompt layout compared).

Every answer is a :class:`kit.generate.Answer` (text, cited ids, the sources the model was shown,
timings, token counts), like every other system of the kit. Bad input (an empty question, an
empty index, a filter on a field no document has, a question too long for the model's context
even without sources) raises :class:`RagError` with one sentence saying what to do; sources too
long for the context are dropped, the last one left cut to fit.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from haystack import Document, Pipeline, component
from haystack.components.builders import AnswerBuilder, ChatPromptBuilder
from haystack.dataclasses import ChatMessage, GeneratedAnswer
from haystack.document_stores.types import DocumentStore

from kit.attribution import attribute, support
from kit.citations import ABSTAIN, doc_id, is_abstention, parse_citations, source_label
from kit.generate import (
    BATCH_SIZE,
    DEFAULT_SYSTEM,
    Answer,
    Generation,
    Plan,
    chat_prompt_ids,
    continuing_template,
    reply_logprobs,
    run_plans,
    started_reply,
)
from kit.indexing import Index, RagError, embedder_of, store_of
from kit.inputs import InputError, number
from kit.inputs import text as text_arg
from kit.models import (
    DEFAULT_GENERATOR,
    load_generator,
    pick_generator,
)
from kit.profiles import Profile, resolve_profile
from kit.prompts import (
    ADAPTER_LAYOUT,
    DEFAULT_LAYOUT,
    Layout,
    SentencePicker,
    best_sentence_similarity,
    format_sources,
    get_layout,
    keyword_overlap,
    nothing_to_look_up,
    reads_as_foreign,
)
from kit.retrieval import (
    DEFAULT_CANDIDATES,
    Retrieval,
    check_filters,
    check_question,
    combine_filters,
    retrieval_pipeline,
    retrieve,
    role_filter,
)

DEFAULT_MIN_SCORE = 0.3  # best-hit cosine below which nothing counts as relevant

# The "I don't know" signals (kit.abstain) a RAG measures for each answer. The first three come
# from retrieval alone; the last two need the generator (a forward pass, the generated reply).
RETRIEVAL_SIGNALS: tuple[str, ...] = ("similarity", "sentence_similarity", "coverage")
SIGNALS: tuple[str, ...] = (*RETRIEVAL_SIGNALS, "idk_logprob", "support")


def _check_options(
    top_k: Any, candidates: Any, max_new_tokens: Any, min_score: Any, instructions: Any
) -> tuple[int, int, int, float | None]:
    """The RAG's numbers, checked before any pipeline is built (NumPy numbers accepted):
    whole ``top_k``, ``candidates`` and ``max_new_tokens``; ``min_score`` None or a cosine
    between -1 and 1; ``instructions`` None or text. RagError says what is wrong."""
    try:
        top_k = int(number(top_k, "top_k", 1, 100, whole=True))
        candidates = int(number(candidates, "candidates", 1, 1000, whole=True))
        max_new_tokens = int(number(max_new_tokens, "max_new_tokens", 1, 4096, whole=True))
        if min_score is not None:
            min_score = float(number(min_score, "min_score (a cosine similarity)", -1, 1))
        if instructions is not None:
            text_arg(instructions, "instructions")
    except InputError as err:
        raise RagError(f"{err}.") from None
    return top_k, candidates, max_new_tokens, min_score


# --------------------------------------------------------------------------- 3. answer


def prompt_builder(layout: str | Layout = DEFAULT_LAYOUT) -> Any:
    """Haystack ChatPromptBuilder for a prompt layout (:mod:`kit.prompts`): its chat messages,
    with ``sources`` and ``question`` to fill in."""
    make = {
        "system": ChatMessage.from_system,
        "user": ChatMessage.from_user,
        "assistant": ChatMessage.from_assistant,
    }
    template = [make[role](text) for role, text in get_layout(layout).messages()]
    return ChatPromptBuilder(template=template, required_variables=["sources", "question"])


class _NoOutOfRange(logging.Filter):
    """Drops the AnswerBuilder's warning about a reference to a source that was not shown
    (``[5]`` with four sources): the kit ignores such numbers, as its own parser does, and a
    small model writes them often enough to flood a notebook. Every other message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "out of range" not in record.getMessage()


logging.getLogger("haystack.components.builders.answer_builder").addFilter(_NoOutOfRange())


REFERENCES = r"\[(\d+(?:-\d+)?(?:,\s*\d+(?:-\d+)?)*)\]"
"""Numbered references the AnswerBuilder reads: ``[2]``, ``[1,3]``, ``[1, 3]``, ``[1-2]``."""


@component
class ReplyStart:
    """Puts a layout's reply start back in front of the generator's replies.

    A layout with a ``reply_start`` (:mod:`kit.prompts`) ends the prompt inside the assistant's
    turn, and the generator returns only the words the model added: "1], the hub takes 64
    sensors." This component makes that "According to source [1], the hub takes 64 sensors."
    again: the reply the AnswerBuilder then reads its ``[1]`` from.
    """

    def __init__(self, start: str) -> None:
        self.start = start

    @component.output_types(replies=list[ChatMessage])
    def run(self, replies: list[ChatMessage]) -> dict[str, list[ChatMessage]]:
        """In: the generator's replies. Out: the same replies, each after the reply start."""
        return {  # a model that wrote nothing after the start gave no reply
            "replies": [
                ChatMessage.from_assistant(started_reply(self.start, r.text or ""), meta=r.meta)
                for r in replies
            ]
        }


def answer_builder() -> AnswerBuilder:
    """Haystack's AnswerBuilder, the last component of a RAG generation pipeline: it turns the
    model's reply into a ``GeneratedAnswer`` whose ``documents`` are the numbered sources the
    reply refers to (``[2]`` -> the second source shown, with ``meta["source_index"]``;
    ``[1,3]`` and ``[1-2]`` too). Only well-formed lists and ranges are read: Haystack's own
    range pattern also takes ``[000-000-000]`` (a phone number in a reply) and then fails."""
    return AnswerBuilder(reference_pattern=REFERENCES, expand_reference_ranges=True)


def chat_generator(
    generator: Any = None,
    max_new_tokens: int = 64,
    dtype: str = "auto",
    continue_reply: bool = False,
) -> tuple[Any, Any]:
    """A Haystack chat generator and the tokenizer it uses (``None`` if unknown).

    ``generator`` may be ``None`` (the bundled SmolLM2), a model name, folder or hub id (see
    ``kit.models``), an already-loaded ``(model, tokenizer)`` pair (e.g. a peft-wrapped fine-tuned
    model), or any Haystack chat generator component, used as it is. Decoding is greedy.
    ``continue_reply``: a prompt that ends with the assistant's words is continued from them
    (:func:`kit.generate.continuing_template`), for layouts with a ``reply_start``.
    """
    # heavy: transformers loads only when a generator is built
    from haystack_integrations.components.generators.transformers import (
        TransformersChatGenerator,
    )

    if generator is not None and not isinstance(generator, str | Path | tuple | list):
        if not hasattr(generator, "run"):
            raise RagError(
                f"generator must be a model name, a (model, tokenizer) pair or a Haystack chat "
                f"generator, not {type(generator).__name__}."
            )
        return generator, getattr(getattr(generator, "pipeline", None), "tokenizer", None)
    if isinstance(generator, tuple | list):
        if len(generator) != 2:
            raise RagError("Pass the generator as a (model, tokenizer) pair.")
        model, tokenizer = generator
    else:
        model, tokenizer = load_generator(str(generator or DEFAULT_GENERATOR), dtype=dtype)
    component = TransformersChatGenerator(
        model=str(getattr(model, "name_or_path", "model")),
        task="text-generation",
        chat_template=continuing_template(tokenizer) if continue_reply else None,
        huggingface_pipeline_kwargs={
            "model": model,
            "tokenizer": tokenizer,
            "task": "text-generation",
            "device": model.device,
        },
        generation_kwargs={
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        },
    )
    return component, tokenizer


class Decider(Protocol):
    """What a :class:`RAG` needs of a learned "I don't know": a probability and a threshold.

    :class:`kit.abstain.Abstainer` is one (``fit_abstainer`` learns it from a RAG's train
    answers, ``fit_gate`` from retrieval alone). The RAG measures each answer's signals, the
    decider's ``features`` if it has that attribute (some of :data:`SIGNALS`), else all of
    them, and declines when ``probability(signals)`` is at least ``threshold``.
    """

    threshold: float

    def probability(self, signals: dict[str, float]) -> float:
        """P(unanswerable) for one answer's signals."""
        ...


def _signals_read(abstainer: Decider) -> tuple[str, ...]:
    """The :data:`SIGNALS` a decider reads: its ``features``, else all of them; RagError for a
    name the RAG does not measure."""
    features = tuple(getattr(abstainer, "features", SIGNALS))
    unknown = sorted(set(features) - set(SIGNALS))
    if unknown:
        raise RagError(
            f"The abstainer reads signal(s) {unknown} that a RAG does not measure; it measures "
            f"{list(SIGNALS)}."
        )
    return features


class RAG:
    """A retrieval-augmented generator: retrieval pipeline + prompt + generator + citations.

    Build it with :func:`build_rag`. ``rag.answer(question)`` returns an :class:`Answer`;
    ``rag.retrieval`` and ``rag.generation`` are the two Haystack pipelines (print them).
    """

    def __init__(
        self,
        index: Index | DocumentStore,
        mode: str = "hybrid",
        generator: Any = None,
        top_k: int = 4,
        candidates: int = DEFAULT_CANDIDATES,
        min_score: float | None = DEFAULT_MIN_SCORE,
        role: str | None = None,
        filters: dict[str, Any] | None = None,
        layout: str | Layout | None = None,
        instructions: str | None = None,
        max_new_tokens: int = 64,
        dtype: str = "auto",
        system: str = "rag",
        abstainer: Decider | None = None,
    ) -> None:
        top_k, candidates, max_new_tokens, min_score = _check_options(
            top_k, candidates, max_new_tokens, min_score, instructions
        )
        self.index = index
        self.store = store_of(index)
        self.mode = mode
        self.top_k = top_k
        self.candidates = max(candidates, top_k)
        self.min_score = min_score
        if layout is None:  # a Haystack component's chat template is its own: no reply start
            layout = ADAPTER_LAYOUT if is_component(generator) else DEFAULT_LAYOUT
        self.layout = get_layout(layout)
        if instructions is not None:  # your own rules replace the layout's system message
            self.layout = replace(self.layout, system=f"{DEFAULT_SYSTEM} {instructions}")
        self.picker = (
            SentencePicker(embedder_of(index), self.layout.sentences)
            if self.layout.sentences
            else None
        )
        # embeds sources' sentences for the "I don't know" signals (kit.abstain); loads when used
        self.sentence_scorer = self.picker or SentencePicker(embedder_of(index), 1)
        self.system = text_arg(system, "system")  # the name answers and tables show
        if abstainer is not None and not all(
            hasattr(abstainer, a) for a in ("probability", "threshold")
        ):
            raise RagError(
                f"abstainer must be a learned decision (kit.abstain.fit_abstainer(...) or "
                f"fit_gate(...): a probability(signals) method and a threshold), not "
                f"{type(abstainer).__name__} {str(abstainer)[:30]!r}; leave it out for none."
            )
        reads = _signals_read(abstainer) if abstainer is not None else ()
        if abstainer is not None and mode == "bm25":
            raise RagError(
                "A learned abstainer reads the dense similarity of the sources, which bm25 "
                "retrieval does not measure: use mode='hybrid' (or 'dense') with it."
            )
        self.abstainer = abstainer
        self.max_new_tokens = max_new_tokens
        self.role = role  # the access level every answer reads as (None: all documents)
        self._known_ids: list[str] | None = None  # the readable documents' ids, when first needed
        self.default_filters = combine_filters(role_filter(role), filters)
        self._matching: set[str] = set()  # filters already seen to match some chunk
        self.retrieval = retrieval_pipeline(index, mode, self.candidates)
        self._check_filters(self.default_filters)
        self._generator_arg = generator
        if "idk_logprob" in reads and is_component(generator):
            raise RagError(
                "A learned abstainer needs the generator's probabilities: pass a model name or a "
                "(model, tokenizer) pair, not a Haystack component."
            )
        start = self.layout.reply_start
        self.llm, self.tokenizer = chat_generator(generator, max_new_tokens, dtype, bool(start))
        if start and (is_component(generator) or continuing_template(self.tokenizer) is None):
            raise RagError(
                f"The {self.layout.name!r} layout starts the model's reply, which needs the "
                "model's one chat template: pass a model name or a (model, tokenizer) pair "
                "whose tokenizer has one, or use a layout without a reply_start (e.g. "
                "layout='sentences')."
            )
        self.generation = Pipeline()
        self.generation.add_component("prompt", prompt_builder(self.layout))
        self.generation.add_component("llm", self.llm)
        self.generation.add_component("answer", answer_builder())
        self.generation.connect("prompt.prompt", "llm.messages")
        if start:  # the generator returns what the model added to the started reply
            self.generation.add_component("start", ReplyStart(start))
            self.generation.connect("llm.replies", "start.replies")
            self.generation.connect("start.replies", "answer.replies")
        else:
            self.generation.connect("llm.replies", "answer.replies")

    def __repr__(self) -> str:
        return (
            f"RAG(mode={self.mode!r}, layout={self.layout.name!r}, top_k={self.top_k}, "
            f"min_score={self.min_score}, abstainer={'learned' if self.abstainer else None}, "
            f"filters={self.default_filters}, store={type(self.store).__name__})"
        )

    @property
    def model_and_tokenizer(self) -> tuple[Any, Any]:
        """The generator's (model, tokenizer), to share one loaded model between RAG objects."""
        self.llm.warm_up()
        return self.llm.pipeline.model, self.llm.pipeline.tokenizer

    @property
    def source_settings(self) -> tuple[str, ...]:
        """What decides the sentences shown for a question: the embedder, the store, the
        retrieval settings and the layout. Two RAGs with the same read the same sentences."""
        settings = (self.mode, self.top_k, self.candidates, self.min_score, self.layout.name)
        where = (embedder_of(self.index), str(id(self.store)), repr(self.default_filters))
        return tuple(map(str, where + settings))

    def warm_up_sources(self, questions: Sequence[str]) -> None:
        """Retrieve for ``questions`` and embed the sentences of their sources (what the layout
        picks from and the signals read), generating nothing. The vectors land in the memory
        every RAG of this embedder shares (:class:`kit.prompts.SentencePicker`): a comparison
        calls it first, so no system's latency pays for sentences the others then reuse."""
        for question in questions:
            self.retrieval_signals(question)

    def retrieve(
        self, question: str, role: str | None = None, filters: dict[str, Any] | None = None
    ) -> Retrieval:
        """Retrieve chunks for ``question`` (``candidates`` of them, best first)."""
        question = check_question(question)
        if self.store.count_documents() == 0:
            raise RagError("The index is empty: build it with build_index(...) before asking.")
        combined = combine_filters(self.default_filters, role_filter(role), filters)
        self._check_filters(combined)
        return retrieve(self.retrieval, question, combined, self.mode)

    def prompt(self, question: str, documents: Sequence[Document]) -> list[ChatMessage]:
        """The chat messages the model reads for ``question`` with ``documents`` as sources."""
        builder = self.generation.get_component("prompt")
        sources = format_sources(documents, self.layout.titles)
        return builder.run(sources=sources, question=question)["prompt"]

    def sources(self, question: str, documents: Sequence[Document]) -> list[Document]:
        """What the model is shown of the top ``top_k`` retrieved chunks: the chunks, or the
        sentences the layout picks from them (each a Document with its chunk's meta)."""
        chunks = list(documents[: self.top_k])
        if self.picker is None or not chunks:
            return chunks
        return self.picker.run(question=question, documents=chunks)["documents"]

    def answer(
        self, question: str, role: str | None = None, filters: dict[str, Any] | None = None
    ) -> Answer:
        """Retrieve, prompt, generate, parse citations; return an :class:`Answer` (system "rag")."""
        start = time.perf_counter()
        ready = self._prepare(question, role, filters)
        if isinstance(ready, Answer):
            return ready
        question, sources, timings, similarity = ready
        t0 = time.perf_counter()
        sources_text = format_sources(sources, self.layout.titles)
        out = self.generation.run(
            {
                "prompt": {"sources": sources_text, "question": question},
                "answer": {"query": question, "documents": sources},
            }
        )
        timings["generate"] = time.perf_counter() - t0
        built = out["answer"]["answers"][0]  # Haystack's GeneratedAnswer
        usage = built.meta.get("usage", {})
        timings["total"] = time.perf_counter() - start
        answer = self._finish(
            question,
            built.data or "",
            sources,
            timings,
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            built,
        )
        if self.abstainer is None:
            return answer
        return self._decide([answer], [similarity])[0]

    __call__ = answer  # a RAG object is a "system" (question -> Answer) for kit.compare

    def answer_many(self, questions: Sequence[str], role: str | None = None) -> list[Answer]:
        """:meth:`answer` for each question, in order (one at a time, so each latency is real)."""
        return [self.answer(q, role=role) for q in questions]

    def answer_batch(
        self,
        questions: Sequence[str],
        role: str | None = None,
        filters: dict[str, Any] | None = None,
        batch_size: int = BATCH_SIZE,
        signals: bool = False,
        abstain: bool = True,
    ) -> list[Answer]:
        """:meth:`answer` for many questions at once: the same retrieval and prompts
        (:meth:`plan_batch`), and the generation batched (:func:`kit.generate.generate_batch`:
        prompts grouped by length, left-padded, greedy), several times faster on a CPU.

        Greedy decoding gives the text the pipeline gives one at a time (padding can change a
        near-tie between two tokens; the tests measure how often). Each answer's ``generate``
        time is its share of its batch. A generator that is not a local transformers model (a
        Haystack component you passed) answers one question at a time instead.

        ``signals``: record each answer's "I don't know" signals (:mod:`kit.abstain`) even
        without an abstainer; ``abstain=False``: do not apply the abstainer (to fit one). Both
        read the generator's probabilities: with a Haystack component they raise RagError.
        """
        questions = _check_questions(questions, "answer_batch")
        batch_size = int(number(batch_size, "batch_size", low=1, whole=True))  # checked first
        if is_component(self._generator_arg):
            if signals or not abstain:
                raise RagError(
                    "signals=True and abstain=False need the generator's probabilities: build the "
                    "RAG with a model name or a (model, tokenizer) pair, not a Haystack component."
                )
            return [self.answer(q, role, filters) for q in questions]
        plan = self.plan_batch(questions, role, filters, signals, abstain)
        return run_plans([plan], batch_size)[0]

    @property
    def can_plan(self) -> bool:
        """Whether :meth:`plan_batch` works: the generator is a local transformers model."""
        return not is_component(self._generator_arg)

    def plan_batch(
        self,
        questions: Sequence[str],
        role: str | None = None,
        filters: dict[str, Any] | None = None,
        signals: bool = False,
        abstain: bool = True,
    ) -> Plan:
        """:meth:`answer_batch` up to the generation: retrieve, build the prompts, and return a
        :class:`kit.generate.Plan` whose ``finish`` turns the generations into Answers.
        :func:`kit.generate.run_plans` runs several plans that share a model in one batched
        pass (``kit.compare.ask_together``). Only for a local transformers generator."""
        questions = _check_questions(questions, "plan_batch")
        if not self.can_plan:
            raise RagError(
                "plan_batch needs a local transformers generator; this pipeline's generator is "
                "a Haystack component: ask it with answer_batch."
            )
        ready = [self._prepare(q, role, filters) for q in questions]
        todo = [(i, r) for i, r in enumerate(ready) if not isinstance(r, Answer)]
        prompts = [_hf_messages(self.prompt(q, sources)) for _, (q, sources, _, _) in todo]
        model, tokenizer = self.model_and_tokenizer if todo else (None, None)
        decide = abstain and self.abstainer is not None

        def finish(gens: list[Generation]) -> list[Answer]:
            answers: list[Answer | None] = [r if isinstance(r, Answer) else None for r in ready]
            done = [self._generated(r, gen) for (_, r), gen in zip(todo, gens, strict=True)]
            if done and (signals or decide):
                similarities = [r[3] for _, r in todo]
                done = self._decide(done, similarities, decide, prompts, measure_all=signals)
            for (i, _), answer in zip(todo, done, strict=True):
                answers[i] = answer
            return [a for a in answers if a is not None]

        return Plan(prompts, model, tokenizer, self.max_new_tokens, finish)

    def _generated(
        self, ready: tuple[str, list[Document], dict[str, float], float | None], gen: Generation
    ) -> Answer:
        """One prepared question and its generation -> an Answer, with the time of each stage."""
        question, sources, timings, _ = ready
        timings = {**timings, "generate": gen.seconds}
        timings["total"] = timings["retrieve"] + timings.get("pick", 0.0) + gen.seconds
        return self._finish(question, gen.text, sources, timings, gen.prompt_tokens, gen.new_tokens)

    def _decide(
        self,
        answers: list[Answer],
        similarities: Sequence[float | None],
        apply: bool = True,
        prompts: Sequence[list[dict[str, str]]] | None = None,
        measure_all: bool = False,
    ) -> list[Answer]:
        """Record each answer's :mod:`kit.abstain` signals (all of :data:`SIGNALS` with
        ``measure_all``, else the ones the abstainer reads); with ``apply`` and an abstainer,
        replace the answers it declines by "I don't know" (no citations; the reply is kept as
        ``withheld``). An answer with a signal that could not be measured (sources without
        text) is kept: the decision needs them all. Timed as ``decide``."""
        start = time.perf_counter()
        wanted = SIGNALS if measure_all or self.abstainer is None else _signals_read(self.abstainer)
        measured = [
            self._retrieval_measures(a.question, a.documents, s)
            for a, s in zip(answers, similarities, strict=True)
        ]
        if "idk_logprob" in wanted:
            if prompts is None:
                prompts = [_hf_messages(self.prompt(a.question, a.documents)) for a in answers]
            model, tokenizer = self.model_and_tokenizer
            logprobs = reply_logprobs(model, tokenizer, prompts)
            for signals, logprob in zip(measured, logprobs, strict=True):
                signals["idk_logprob"] = logprob
        if "support" in wanted:
            for signals, answer in zip(measured, answers, strict=True):
                signals["support"] = support(answer.text, answer.documents)
        share = (time.perf_counter() - start) / max(len(answers), 1)
        out = []
        for answer, signals in zip(answers, measured, strict=True):
            timings = {**answer.timings, "decide": share}
            timings["total"] = timings.get("total", 0.0) + share
            answer = replace(answer, signals=signals, timings=timings)
            if apply and self.abstainer is not None and all(map(math.isfinite, signals.values())):
                signals["p_unanswerable"] = self.abstainer.probability(signals)
                declines = signals["p_unanswerable"] >= self.abstainer.threshold
                if declines and not is_abstention(answer.text):
                    answer = replace(
                        answer, text=ABSTAIN, withheld=answer.text, cited_ids=[], attributed_ids=[]
                    )
            out.append(answer)
        return out

    def _retrieval_measures(
        self, question: str, documents: Sequence[Document], similarity: float | None
    ) -> dict[str, float]:
        """The :data:`RETRIEVAL_SIGNALS` of a question and the sources shown for it."""
        return {
            "similarity": math.nan if similarity is None else float(similarity),
            "sentence_similarity": best_sentence_similarity(
                question, documents, self.sentence_scorer
            ),
            "coverage": keyword_overlap(question, " ".join(d.content or "" for d in documents)),
        }

    @property
    def known_ids(self) -> list[str]:
        """The ids of the documents this RAG may read (its role and filters): what a citation
        the model writes from memory (``[kb-004]``) is checked against. Read once."""
        if self._known_ids is None:
            readable = self.store.filter_documents(filters=self.default_filters)
            self._known_ids = sorted({doc_id(d) for d in readable})
        return self._known_ids

    def retrieval_signals(
        self, question: str, role: str | None = None, filters: dict[str, Any] | None = None
    ) -> dict[str, float] | None:
        """The :data:`RETRIEVAL_SIGNALS` for ``question``, from retrieval alone (nothing is
        generated): what :func:`kit.abstain.fit_gate` learns from. None when retrieval already
        declines (nothing relevant found, a question in another language or without words to
        look up)."""
        ready = self._prepare(question, role, filters)
        if isinstance(ready, Answer):
            return None
        question, sources, _, similarity = ready
        return self._retrieval_measures(question, sources, similarity)

    def _prepare(
        self, question: str, role: str | None, filters: dict[str, Any] | None
    ) -> Answer | tuple[str, list[Document], dict[str, float], float | None]:
        """Check and retrieve; an "I don't know" Answer when nothing relevant was found, else
        (question, sources to show, timings, best dense similarity)."""
        start = time.perf_counter()
        self._check_length(check_question(question))
        if nothing_to_look_up(question):  # "???", "the of"
            timings = {"retrieve": 0.0, "generate": 0.0, "total": time.perf_counter() - start}
            return Answer(
                question=question.strip(), text=ABSTAIN, timings=timings, system=self.system
            )
        found = self.retrieve(question, role, filters)
        question = question.strip()
        timings = {"retrieve": found.seconds}
        if not found.documents or self._below_threshold(found) or self._foreign(question, found):
            timings.update(generate=0.0, total=time.perf_counter() - start)
            shown = found.documents[: self.top_k]
            return Answer(
                question=question,
                text=ABSTAIN,
                documents=shown,  # what retrieval found, below the threshold: nothing is cited
                timings=timings,
                system=self.system,
            )
        t0 = time.perf_counter()
        sources = self.sources(question, found.documents)
        if self.picker is not None:
            timings["pick"] = time.perf_counter() - t0
        return question, self._fit_to_context(question, sources), timings, found.similarity

    def _finish(
        self,
        question: str,
        text: str,
        sources: list[Document],
        timings: dict[str, float],
        prompt_tokens: int,
        new_tokens: int,
        built: GeneratedAnswer | None = None,
    ) -> Answer:
        """The generated text -> an Answer with its cited document ids: what
        :func:`kit.citations.parse_citations` reads (``[2]``, document ids, titles, ``Source
        2``) in order of first mention, then the sources only Haystack's AnswerBuilder found
        referenced (ranges like ``[1-2]``; ``built`` is its GeneratedAnswer, or the component
        runs here when the text did not come through the pipeline). A reply cut by the token
        limit inside a character (U+FFFD, from any generator) loses that half character."""
        text = text.strip().rstrip("\ufffd").strip()
        declined = not text or is_abstention(text)
        if built is None and not declined:
            builder = self.generation.get_component("answer")
            built = builder.run(query=question, replies=[text], documents=sources)["answers"][0]
        referenced = [doc_id(d) for d in built.documents] if built and not declined else []
        # in order of first mention (the kit's parser), then what only the AnswerBuilder read
        parsed = [] if declined else parse_citations(text, sources, self.known_ids)
        cited = [] if declined else list(dict.fromkeys(parsed + referenced))
        return Answer(
            question=question,
            text=text or ABSTAIN,  # never a silent empty answer
            cited_ids=cited,
            attributed_ids=cited or ([] if declined else attribute(text, sources)),
            documents=sources,
            timings=timings,
            prompt_tokens=prompt_tokens,
            new_tokens=new_tokens,
            system=self.system,
        )

    # -- helpers

    def _below_threshold(self, found: Retrieval) -> bool:
        return (
            self.min_score is not None
            and found.similarity is not None
            and found.similarity < self.min_score
        )

    @staticmethod
    def _foreign(question: str, found: Retrieval) -> bool:
        """A question in another language than the model's and the sources' (see
        :func:`kit.prompts.reads_as_foreign`): a small English model answers it with an echo."""
        return reads_as_foreign(question, " ".join(d.content or "" for d in found.documents))

    def _check_filters(self, filters: dict[str, Any] | None) -> None:
        check_filters(self.store, filters, self._matching)

    def _check_length(self, question: str) -> None:
        """Refuse a question that alone does not fit the model's context (before retrieval)."""
        if self.tokenizer is None:
            return
        limit = int(self.tokenizer.model_max_length) - self.max_new_tokens
        n = len(self.tokenizer(question, add_special_tokens=False, verbose=False)["input_ids"])
        if n > limit:
            raise RagError(
                f"The question is too long: {n} tokens, but the model reads at most {limit} "
                "(sources included) before its answer. Shorten the question."
            )

    def _fit_to_context(self, question: str, sources: list[Document]) -> list[Document]:
        """Drop the lowest-ranked sources until the prompt fits the model's context; the last
        one left, if still too long (a huge passage), is cut at its end to fit."""
        if self.tokenizer is None:
            return sources
        limit = int(self.tokenizer.model_max_length) - self.max_new_tokens
        kept = list(sources)
        while True:
            n = self._prompt_tokens(question, kept)
            if n <= limit:
                return kept
            if len(kept) == 1:
                kept = [self._cut_to_fit(question, kept[0], n - limit, limit)]
            else:
                kept.pop()

    def _prompt_tokens(self, question: str, sources: list[Document]) -> int:
        return len(chat_prompt_ids(self.tokenizer, _hf_messages(self.prompt(question, sources))))

    def _cut_to_fit(self, question: str, source: Document, over: int, limit: int) -> Document:
        """``source`` with its text cut at the end by ``over`` tokens (and a few more: text cut
        and read again may tokenise differently). RagError when the question's prompt alone,
        without any source, does not fit ``limit``: the question is what is too long."""
        alone = self._prompt_tokens(question, [])
        if alone > limit:
            raise RagError(
                f"The question is too long: its prompt has {alone} tokens without any source, "
                f"but the model reads at most {limit} before its answer. Shorten the question."
            )
        if not source.content:  # cut to nothing and still over: its label is what is too long
            raise RagError(
                f"The source {source_label(source)!r} does not fit the model's context even "
                f"without its text ({limit} tokens before the answer): shorten its title."
            )
        ids = self.tokenizer(source.content, add_special_tokens=False, verbose=False)
        keep = max(len(ids["input_ids"]) - over - 8, 0)
        return replace(source, content=self.tokenizer.decode(ids["input_ids"][:keep]))


def _hf_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Haystack ChatMessages as the role/content dicts a chat template reads."""
    return [{"role": m.role.value, "content": m.text or ""} for m in messages]


def build_rag(
    index: Index | DocumentStore,
    mode: str = "hybrid",
    generator: Any = None,
    profile: str | Profile | None = None,
    **options: Any,
) -> RAG:
    """A :class:`RAG` over ``index`` in ``mode`` with ``generator`` (see :func:`chat_generator`).

    ``top_k``, ``max_new_tokens`` and ``dtype`` come from the profile (``None``: the one picked
    for this machine) unless given in ``options``, and so does the generator when ``generator``
    is ``None`` (the profile's ``generator``, see :func:`kit.models.pick_generator`). Other
    options: ``layout`` (a name of ``kit.prompts.LAYOUTS`` or a ``Layout``; default the measured
    best, ``cite-first``, or ``sentences`` for a Haystack component, whose chat template the kit
    cannot make continue a started reply), ``candidates``, ``min_score``, ``role``, ``filters``,
    ``instructions`` (your own rules for the system message), ``system``.
    """
    _check_option_names(options)
    prof = resolve_profile(profile)
    options.setdefault("top_k", prof.top_k)
    options.setdefault("max_new_tokens", prof.max_new_tokens)
    options.setdefault("dtype", prof.dtype)
    if generator is None:
        generator = pick_generator(prof.generator)[0]
    return RAG(index, mode=mode, generator=generator, **options)


def _check_option_names(options: dict[str, Any]) -> None:
    """RagError naming an option :class:`RAG` does not take, and the nearest one it does."""
    known = [n for n in inspect.signature(RAG.__init__).parameters if n not in ("self", "index")]
    for name in options:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise RagError(f"build_rag has no option {name!r}: {hint}options: {', '.join(known)}.")


def _check_questions(questions: Any, call: str) -> list[str]:
    """``questions`` as a list (a list, tuple, NumPy array or pandas Series of questions);
    RagError for one text, or for something that is not a collection of questions."""
    if isinstance(questions, str) or getattr(questions, "ndim", 1) == 0:  # "...", np.array("...")
        raise RagError(f"{call} takes a list of questions; for one question call rag(question).")
    if isinstance(questions, Sequence):
        return list(questions)
    if hasattr(questions, "tolist"):  # NumPy arrays, pandas Series
        return list(questions.tolist())
    raise RagError(
        f"{call} takes a list of questions, not {type(questions).__name__}; "
        "for one question call rag(question)."
    )


def is_component(generator: Any) -> bool:
    """Whether ``generator`` is a Haystack component used as it is (not ``None``, a model name,
    folder or hub id, or a ``(model, tokenizer)`` pair the kit loads and can batch)."""
    return generator is not None and not isinstance(generator, str | Path | tuple | list)


_MOVED = dict.fromkeys(
    ("build_index", "chunks_of", "indexing_pipeline", "document_embedder", "load_source")
    + ("DEFAULT_SPLIT_LENGTH", "DEFAULT_SPLIT_OVERLAP", "SPLIT_UNITS", "CPU_EMBED_BATCH")
    + ("embed_batch_size", "SourceTagger", "LongChunkCutter", "PIECE_CHARS_PER_WORD"),
    "kit.indexing",
)
_MOVED |= dict.fromkeys(
    ("MODES", "RETRIEVERS", "INTEGRATION_PACKAGES", "filter_fields", "store_fields")
    + ("unique_doc_ids", "retrieval_inputs"),
    "kit.retrieval",
)
_MOVED["new_store"] = "kit.store"


def __getattr__(name: str) -> Any:
    """``from kit.rag import build_index`` (before indexing and retrieval had their own
    modules) still works, with a warning that says where the name lives now."""
    if name in _MOVED:
        where = _MOVED[name]
        warnings.warn(
            f"kit.rag.{name} moved to {where}: write `from {where} import {name}`.",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(where), name)
    raise AttributeError(f"module 'kit.rag' has no attribute {name!r}")


__all__ = [
    "RAG",
    "Decider",
    "RagError",
    "build_rag",
    "chat_generator",
]
