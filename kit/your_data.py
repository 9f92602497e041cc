"""Your data: the comparison on your documents, your questions and your examples.

The walk-through runs on the bundled data; this module runs the same systems on yours, from
notebook 06 or ``python -m kit run --docs DIR [--questions FILE] [--examples FILE]``:

1. load the folder (access levels fail closed, :func:`kit.data.load_folder`) and index it;
2. your questions (:func:`kit.data.load_questions`: ``question`` and ``answer`` per line, JSONL
   or CSV); none yet? write some with :class:`kit.question_writer.QuestionWriter`;
3. your examples (the chat JSONL / CSV :func:`kit.chat_data.load_examples` reads), or
   ``examples="auto"``: house-style examples built from your documents and your *train*
   questions (:func:`house_style_examples`), labelled as such; none: no fine-tuned systems;
4. base, RAG and, with examples, fine-tuned and hybrid, on your test questions, each figure
   with its 95% interval and every pair compared on the same questions; with enough *train*
   questions, answerable and not, the RAG systems learn when to say "I don't know"
   (:func:`fit_your_gate`);
5. one HTML report that says which parts ran and why the others did not.

The freshness, privacy and injection experiments need the bundled data's two versions, its
canary and its poisoned document: they run in the walk-through, not here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from haystack import Document

from kit import costs
from kit.abstain import (
    GATE_SIGNALS_TEXT,
    NO_THRESHOLD_TEXT,
    Abstainer,
    TooFewQuestions,
    decision_summary,
    fit_gate,
)
from kit.adapters import load_adapter
from kit.chat_data import load_examples
from kit.citations import doc_id
from kit.compare import GridResult, gate_meta, grid_decisions, plain_system, run_systems
from kit.data import (
    IDK,
    MIN_PER_CLASS,
    ChatExample,
    DataError,
    QARecord,
    load_folder,
    load_questions,
    normalise,
    sample_questions,
    supports,
    train_counts,
)
from kit.evaluate import citation_table, compare_systems, interval_table, summarise_intervals
from kit.finetune import TrainResult, train_adapter
from kit.hybrid import hybrid_rag
from kit.indexing import Index
from kit.inputs import user_path, writable_folder
from kit.models import load_generator, pick_generator
from kit.profiles import Profile, resolve_profile
from kit.prompts import source_title, split_sentences
from kit.rag import RAG, build_rag
from kit.report import Report, may_write
from kit.saved_index import folder_state, index_folder
from kit.verdict import verdict
from kit.widgets import cost_report_html

AUTO = "auto"
"""``examples=AUTO``: build house-style examples from your documents and train questions."""

USER_TEMPLATES = ("{q}", "Quick question: {q}", "Hi! {q}", "According to our docs, {ql}")
"""How a question is re-asked in the examples (the bundled style set uses the same idea)."""


@dataclass
class YourData:
    """Your inputs, checked. ``examples_origin`` says where the examples came from."""

    folder: Path
    documents: list[Document]
    questions: list[QARecord] = field(default_factory=list)
    examples: list[ChatExample] = field(default_factory=list)
    examples_origin: str = "none"
    default_access: str | None = None  # as load_folder: for files that declare no level
    skip_bad: bool = False  # as load_folder: leave out files whose access cannot be read
    read_as: str | None = None  # kit.saved_index.folder_state before the documents were read

    @property
    def test_questions(self) -> list[QARecord]:
        """The questions the systems are scored on (your ``test`` split)."""
        return [q for q in self.questions if q.split == "test"]


def load_your_data(
    docs: str | Path,
    questions: str | Path | None = None,
    examples: str | Path | None = None,
    default_access: str | None = None,
    skip_bad: bool = False,
) -> YourData:
    """Load and check a folder, a question file and an example file (each optional but the
    folder). ``examples="auto"`` builds house-style examples from the train questions; when no
    question is marked ``train``, half of them (stratified by type) become train questions and
    the report says so. Raises DataError naming the file for every problem; no file is changed.
    """
    folder = user_path(docs, "--docs folder", error=DataError)
    for path, what in ((questions, "--questions"), (examples, "--examples")):
        if path is not None and str(path).lower() != AUTO:
            outside_of(folder, path, what)
    state = folder_state(folder, default_access, skip_bad)  # before reading: an edit since shows
    documents = load_folder(folder, default_access=default_access, skip_bad=skip_bad)
    data = YourData(folder, documents, default_access=default_access, skip_bad=skip_bad)
    data.read_as = state
    if questions is not None:
        data.questions = load_questions(questions, doc_ids=[doc_id(d) for d in documents])
    if examples is None:
        return data
    if str(examples).lower() != AUTO:
        data.examples, data.examples_origin = load_examples(Path(examples)), f"your file {examples}"
        refuse_test_questions_in(data.examples, data.test_questions, examples)
        return data
    if not data.questions:
        raise DataError(
            "examples='auto' builds examples from your questions: give a question file too"
        )
    data.questions = split_for_training(data.questions)
    train = [q for q in data.questions if q.split == "train"]
    data.examples = house_style_examples(train, documents)
    used = len({e.id.rsplit("-", 1)[0] for e in data.examples})
    left_out = (
        ""
        if used == len(train)
        else f", {len(train) - used} left out: no such sentence holds the answer"
    )
    data.examples_origin = (
        f"built by the kit from your {'/'.join(TRAINABLE_ACCESS)} documents and {used} of "
        f"{len(train)} train questions{left_out} (not written by you: house style 'Answer: / "
        "detail / Source:')"
    )
    return data


def refuse_test_questions_in(
    examples: Sequence[ChatExample], tests: Sequence[QARecord], path: str | Path
) -> None:
    """DataError when an example asks a test question word for word in any of its user turns
    (or holds it whole, when it has four words or more): the fine-tuned systems would be scored
    on what they were taught."""
    wanted = {normalise(q.question): q for q in tests}
    for example in examples:
        turns = [normalise(m["content"]) for m in example.messages if m["role"] == "user"]
        for (text, rec), asked in ((w, t) for w in wanted.items() for t in turns):
            if asked == text or (len(text.split()) >= 4 and f" {text} " in f" {asked} "):
                raise DataError(
                    f"--examples {path}: example {example.id!r} asks test question {rec.id} "
                    f"({rec.question!r}) word for word, so the fine-tuned systems would be scored "
                    "on what they were trained on; remove that example, or mark the question "
                    "train in your question file (a split column)"
                )


def outside_of(folder: Path, path: str | Path, what: str) -> None:
    """DataError when ``path`` lies inside the documents ``folder``: it would be indexed as a
    document (a question file's gold answers, a previous report) and leak into the answers."""
    try:
        inner = Path(path).expanduser().resolve()
    except RuntimeError:  # "~someone/..." for a user this machine does not have
        raise DataError(f"{what} {path}: no such user's home folder; write the full path") from None
    if inner.is_relative_to(folder.resolve()):
        raise DataError(
            f"{what} {path} is inside the documents folder {folder}: it would be indexed with "
            "your documents; keep it outside"
        )


def split_for_training(records: Sequence[QARecord], seed: int = 0) -> list[QARecord]:
    """``records`` as they are when some are marked ``train``; else half of them (stratified by
    type, the kit's sampler) become train questions, the rest stay test questions."""
    if any(r.split == "train" for r in records):
        return list(records)
    if len(records) < 4:
        raise DataError(
            f"examples='auto' splits your questions into train and test halves: {len(records)} "
            "question(s) are too few; write at least 4 (notebook 06's writer), or bring examples"
        )
    train = {r.id for r in sample_questions(records, len(records) // 2, seed=seed)}
    return [replace(r, split="train" if r.id in train else "test") for r in records]


TRAINABLE_ACCESS = ("public",)
"""Access levels whose text may go into built training examples: what a model is trained on
cannot be filtered by role afterwards (the privacy experiment shows it leak)."""


def house_style_examples(
    records: Sequence[QARecord],
    documents: Sequence[Document],
    variants: int = 2,
    levels: Sequence[str] = TRAINABLE_ACCESS,
) -> list[ChatExample]:
    """House-style chat examples from questions and the documents that answer them.

    Each reply reads ``Answer: <gold answer>.`` / the sentence of a document that holds the
    answer / ``Source: <title> [<doc id>]`` (``Source: none`` and "I don't know" for an
    unanswerable question), as the bundled style set does; each question is asked in
    ``variants`` wordings. Only documents of the access ``levels`` are read (default: public),
    and a question whose answer no such sentence holds is left out.
    """
    documents = [d for d in documents if str((d.meta or {}).get("access", "public")) in levels]
    if not documents:
        raise DataError(
            f"no example could be built: none of your documents is {' or '.join(levels)}, and only "
            "those are used for training; mark some public (front matter access: public, or "
            "--default-access public) or bring an examples file"
        )
    out: list[ChatExample] = []
    for i, rec in enumerate(records):
        reply, sources = _styled_reply(rec, documents)
        if reply is None:
            continue
        for k in range(variants):
            template = USER_TEMPLATES[(i + k) % len(USER_TEMPLATES)]
            user = template.format(q=rec.question, ql=rec.question[:1].lower() + rec.question[1:])
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
            example = ChatExample(
                id=f"{rec.id}-{k + 1}",
                messages=messages,
                source_doc_ids=sources,
                contains_canary=False,
            )
            out.append(example)
    if not any(e.source_doc_ids for e in out):  # "I don't know" alone teaches to decline all
        raise DataError(
            "no example could be built from an answerable train question: no sentence of your "
            f"{' or '.join(levels)} documents holds one of their answers; mark the documents "
            "that hold them public, make the gold answers phrases the documents contain, or "
            "bring an examples file"
        )
    return out


def _styled_reply(rec: QARecord, documents: Sequence[Document]) -> tuple[str | None, list[str]]:
    """The house-style reply to ``rec`` and the ids of its source, or (None, []) if no
    sentence of the gold documents (all documents when it names none) holds the answer."""
    if not rec.answerable:
        return f"Answer: {IDK}.\nThe documents do not contain this information.\nSource: none", []
    pool = [d for d in documents if not rec.gold_doc_ids or doc_id(d) in rec.gold_doc_ids]
    for doc in pool:
        for sentence in split_sentences(doc.content or ""):
            if supports(rec.answer, sentence):
                answer = rec.answer.rstrip(".") + "."
                title = _plain(source_title(doc) or Path(doc_id(doc)).stem)
                detail = sentence if sentence.endswith((".", "!", "?")) else sentence + "."
                return f"Answer: {answer}\n{detail}\nSource: {title} [{doc_id(doc)}]", [doc_id(doc)]
    return None, []


def _plain(text: str) -> str:
    """A title without brackets or line breaks (the Source line's own syntax)."""
    return re.sub(r"[\[\]\n]+", " ", text).strip()


GATE_MIN = MIN_PER_CLASS
"""Answerable and unanswerable train questions, each, that the learned "I don't know" needs."""


@dataclass
class YourGate:
    """The learned "I don't know" of your RAG systems (:func:`fit_your_gate`): the gate (None
    when it was not learned) and, in words, what it learned from or why not and what to do."""

    gate: Abstainer | None
    note: str


def fit_your_gate(rag: RAG, data: YourData) -> YourGate:
    """Learn when your RAG systems say "I don't know" from your *train* questions, with
    :func:`kit.abstain.fit_gate` (retrieval alone: seconds, nothing generated). It needs
    :data:`GATE_MIN` answerable and unanswerable train questions each; your test questions
    only score it. Out: a :class:`YourGate`, whose note the report prints."""
    train = [q for q in data.questions if q.split == "train"]
    answerable, unanswerable = train_counts(train)
    how = (
        "mark more of your questions `split: train` (in the question file, or the writer's "
        "'Save as: train'), some of them not answerable from your documents (gold answer "
        '"I don\'t know")'
    )
    if not train:
        how += "; --examples auto makes half of them train questions (and fine-tunes on them)"
    if min(answerable, unanswerable) < GATE_MIN:
        return YourGate(
            None,
            f"your train questions hold {answerable} answerable and {unanswerable} unanswerable "
            f"one(s); it learns from at least {GATE_MIN} of each: {how}",
        )
    try:
        gate = fit_gate(rag, train)
    except TooFewQuestions:  # retrieval itself declined some: too few measured questions are left
        return YourGate(
            None,
            f"not learned: retrieval itself declined some of your {len(train)} train questions "
            f"(nothing relevant found), leaving fewer than {GATE_MIN} answerable and "
            f"{GATE_MIN} unanswerable ones to learn from; {how}",
        )
    if not gate.declines_any:
        return YourGate(
            None,
            f"not learned from your {len(train)} train questions: {NO_THRESHOLD_TEXT}; {how}",
        )
    return YourGate(
        gate,
        f"learned from your {len(train)} train questions ({unanswerable} unanswerable; "
        f"kit.abstain.fit_gate): declines when P(unanswerable) >= {gate.threshold:.2f}. A few "
        "questions make a rough decision: its table shows what it did to your test questions",
    )


@dataclass
class YourSystems:
    """What :func:`build_systems` built: the systems by name, the index, the fine-tune (None
    without examples or without test questions) and the learned "I don't know" the RAG systems
    carry."""

    systems: dict[str, Any]
    index: Index
    run: TrainResult | None = None
    gate: YourGate = field(default_factory=lambda: YourGate(None, "no test questions to use it on"))


def build_systems(
    data: YourData,
    prof: Profile,
    out_dir: Path,
    log: Callable[[str], None] = print,
    index_location: str | Path | None = None,
) -> YourSystems:
    """Index the folder (or reuse its saved index, :func:`kit.saved_index.index_folder`) and
    build the systems: base and RAG; with examples and test questions, fine-tuned and hybrid
    too (without test questions there is nothing to score, so nothing is trained). With test
    questions, the RAG systems carry the "I don't know" learned from your train questions
    (:func:`fit_your_gate`), when they allow one."""
    log(f"index {len(data.documents)} documents from {data.folder}")
    index = index_folder(
        data.folder,
        location=index_location,
        default_access=data.default_access,  # the same access decisions as load_your_data
        skip_bad=data.skip_bad,
        log=log,
        documents=data.documents,  # read once, by load_your_data
        read_as=data.read_as,  # unless the folder changed since
    )
    model, tokenizer = load_generator(pick_generator(prof.generator)[0], dtype=prof.dtype)
    rag = build_rag(index, generator=(model, tokenizer), profile=prof)
    built = YourSystems({"base": plain_system(model, tokenizer, "base", prof), "rag": rag}, index)
    if not data.test_questions:  # nothing to score: no gate, no fine-tune
        return built
    built.gate = fit_your_gate(rag, data)
    log(f'"I don\'t know": {built.gate.note}')
    gate = built.gate.gate
    if gate is not None:
        built.systems["rag"] = build_rag(
            index, generator=(model, tokenizer), profile=prof, abstainer=gate
        )
    if not data.examples:
        return built
    log(f"fine-tune on {len(data.examples)} examples ({data.examples_origin})")
    sized = fit_to_examples(prof, len(data.examples))
    # resume="auto": after a stop (Ctrl-C) running the command again continues the training
    built.run = train_adapter(
        data.examples, profile=sized, output_dir=out_dir / "adapter", reuse=True, resume="auto"
    )
    ft_model, ft_tok = load_adapter(built.run.adapter_dir, dtype=prof.dtype)
    ft_model = ft_model.merge_and_unload()
    built.systems["finetuned"] = plain_system(ft_model, ft_tok, "finetuned", prof)
    built.systems["hybrid"] = hybrid_rag(index, (ft_model, ft_tok), prof, abstainer=gate)
    return built


def fit_to_examples(prof: Profile, n: int) -> Profile:
    """``prof`` with a held-out share and a batch that fit ``n`` examples: a quarter held out
    at most, and a batch no larger than what is left (the gpu profile's batch of 16 does not fit
    a dozen examples). Profiles that fit are returned as they are."""
    held_out = min(prof.eval_examples, n // 4)
    batch = max(1, min(prof.batch_size, n - held_out))
    if (held_out, batch) == (prof.eval_examples, prof.batch_size):
        return prof
    return prof.with_(eval_examples=held_out, batch_size=batch)


def parts_table(
    data: YourData, ran_grid: bool, n_asked: int = 0, gate: YourGate | None = None
) -> list[dict[str, str]]:
    """Which parts of the comparison ran on your data, and why the others did not
    (``n_asked``: how many test questions the profile asks, 0 = all; ``gate``: the learned
    "I don't know", None when it was not tried)."""
    n_test = len(data.test_questions)
    n_asked = n_asked or n_test
    no_test = (
        f"your {len(data.questions)} questions are all marked train: mark some split test (or "
        "leave split out: test is the default)"
        if data.questions
        else "no test questions: pass --questions FILE (write some with notebook 06)"
    )
    rows = [
        {"part": "index your folder", "ran": "yes", "why": f"{len(data.documents)} documents"},
        {
            "part": "the grid (base, RAG)",
            "ran": "yes" if ran_grid else "no",
            "why": f"{n_test} test questions (the profile asks up to {n_asked})"
            if ran_grid
            else no_test,
        },
        {
            "part": "fine-tuned and hybrid systems",
            "ran": "yes" if data.examples and ran_grid else "no",
            "why": f"{len(data.examples)} examples, {data.examples_origin}"
            if data.examples and ran_grid
            else f"{no_test}, to compare them on"
            if data.examples
            else "no examples: pass --examples FILE, or --examples auto to build house-style "
            "examples from your documents and questions",
        },
    ]
    gate_why = "not tried" if gate is None else gate.note
    rows.append(
        {
            "part": 'learned "I don\'t know" (RAG systems)',
            "ran": "yes" if gate is not None and gate.gate is not None else "no",
            "why": gate_why if ran_grid else "no test questions to use it on",
        }
    )
    rows.append(
        {
            "part": "freshness, privacy, prompt injection",
            "ran": "no",
            "why": "they need the bundled data's two versions, canary and poisoned document: "
            "`python -m kit run` runs them",
        }
    )
    return rows


def run_your_data(
    docs: str | Path,
    questions: str | Path | None = None,
    examples: str | Path | None = None,
    profile: str | Profile | None = None,
    out_dir: str | Path = "outputs/your_data",
    log: Callable[[str], None] = print,
    index_location: str | Path | None = None,
    default_access: str | None = None,
    skip_bad: bool = False,
) -> tuple[Path, GridResult | None]:
    """The comparison on your data, ending in ``<out_dir>/report.html``.

    In: your folder, question file, example file (or ``"auto"``), the profile, and where the
    index is saved (default: beside your folder, ``<folder>.kit-index``; reused while the folder
    and the settings are unchanged). Out: the report's path and the grid (None when there
    were no test questions). ``default_access`` / ``skip_bad``: as
    :func:`kit.data.load_folder`.
    """
    prof = resolve_profile(profile)
    outside_of(user_path(docs, "--docs folder", error=DataError), out_dir, "--out")
    out = writable_folder(out_dir, "--out folder", error=DataError)  # before any work
    may_write(out / "report.html")
    data = load_your_data(docs, questions, examples, default_access, skip_bad)
    built = build_systems(data, prof, out, log, index_location)
    records = sample_questions(data.test_questions, prof.eval_questions)
    result = None
    if records:
        log(f"the grid: {len(built.systems)} systems x {len(records)} of your questions")
        result = run_systems(built.systems, records, progress=True)
        result.extras["abstention"] = grid_decisions(records, built.systems, result.answers)
        result.meta["gate_note"] = built.gate.note  # learned from what, or why not
        if built.gate.gate is not None:
            result.meta["gate"] = gate_meta(built.gate.gate)
    report = _report(data, result, prof, built)
    path = report.write(out / "report.html")
    log(f"report: {path}")
    return path, result


def _report(data: YourData, result: GridResult | None, prof: Profile, built: YourSystems) -> Report:
    """The report of a run on your data: the verdict, what ran, the grid, the comparisons."""
    report = Report(title=f"RAG vs fine-tuning on {data.folder.name}", profile=prof.name)
    if result is not None:
        report.add_lead("What this run found", verdict(result.scores, result.extras))
    ran = parts_table(data, result is not None, prof.eval_questions, built.gate)
    generator, why = pick_generator(prof.generator)
    report.add_table(
        "Which parts ran", ran, note=f"{built.index!r}; generator: {generator} ({why})"
    )
    if result is None:
        return report
    intervals = summarise_intervals(result.scores)
    report.add_table(
        f"Every system on the same {result.scores['id'].nunique()} questions of yours",
        interval_table(result.scores, intervals=intervals),
        note="Each cell: the value [95% interval]. cites: the answers that cite a source, of "
        "those that do not say 'I don't know'; questions without gold document ids are left "
        "out of citation_precision.",
    )
    report.add_table(
        "Is the difference real? Paired comparisons on the same questions",
        compare_systems(result.scores, "correct")[["a", "b", "sentence"]],
    )
    decisions = decision_summary(result.extras.get("abstention"))
    if not decisions.empty:
        report.add_table(
            '"I don\'t know": what the decision learned from your train questions did',
            decisions,
            note=f"{built.gate.note}. It reads retrieval only ({GATE_SIGNALS_TEXT}); "
            "'correct without' scores the replies it replaced.",
        )
    report.add_table(
        "Citations",
        citation_table(result.scores),
        note="answered: the answers that do not say 'I don't know', which cites and attributed "
        "count.",
    )
    inputs = costs.CostInputs.from_measured(costs.measured_from_summary(result.summary))
    report.add_html(
        "Cost: RAG vs fine-tuning vs hybrid, seeded with this run's tokens and times",
        cost_report_html(inputs),
        note="Systems this run did not build keep the kit's documented defaults.",
    )
    if built.run is not None:
        report.add_text("Fine-tuning", built.run.summary())
    return report
