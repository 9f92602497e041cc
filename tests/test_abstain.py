"""kit.abstain: the learned "I don't know" decision (pure parts, then the real models)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kit import abstain, rag
from kit.data import load_qa, sample_questions

# --------------------------------------------------------------------------- pure parts


def test_decision_curve_counts_declines_and_correct_answers():
    p = [0.9, 0.2, 0.6, 0.1]
    unanswerable = [True, False, False, True]
    correct = [0.0, 1.0, 1.0, 0.0]  # as answered, before any decline
    already = [False, False, False, False]
    curve = abstain.decision_curve(p, unanswerable, correct, already, thresholds=[0.5, 0.95])
    at_half, at_top = curve.iloc[0], curve.iloc[1]
    # at 0.5: declines q1 (right: unanswerable) and q3 (wrong: answerable, was correct)
    assert at_half["wrongly_declined"] == 0.5
    assert at_half["unanswerable_declined"] == 0.5
    assert at_half["correct"] == 0.5  # q1 declined right, q2 answered right
    assert at_top["wrongly_declined"] == 0.0 and at_top["correct"] == 0.5  # q2, q3 right
    declined_anyway = abstain.decision_curve(p, unanswerable, correct, [False] * 3 + [True], [0.95])
    assert declined_anyway["unanswerable_declined"].iloc[0] == 0.5


def test_threshold_maximises_correct_within_the_false_decline_cap():
    curve = abstain.decision_curve(
        [0.9, 0.2, 0.6, 0.1, 0.7], [True, False, False, True, True], [0, 1, 1, 0, 0], [False] * 5
    )
    chosen = abstain.choose_threshold(curve, max_false_decline=0.0)
    row = curve[curve["threshold"] == chosen].iloc[0]
    assert row["wrongly_declined"] == 0.0
    assert row["correct"] == curve[curve["wrongly_declined"] == 0.0]["correct"].max()
    assert 0.6 < chosen <= 0.7  # declines 0.9 and 0.7, keeps the answerable 0.6
    never = curve.assign(wrongly_declined=1.0)
    assert abstain.choose_threshold(never) == 1.0  # nothing qualifies: never decline


# --------------------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def plain(index) -> rag.RAG:
    return rag.build_rag(index, profile="smoke", max_new_tokens=24)


def test_reply_logprobs_are_the_models_own_probabilities_and_ignore_padding():
    """In float32: in bfloat16 (the kit's choice where this CPU computes it faster) a padded
    row's activations round differently, which moves the mean by a few hundredths."""
    import torch

    from kit.generate import chat_prompt_ids, reply_logprobs
    from kit.models import load_generator

    model, tokenizer = load_generator(dtype="float32")
    short = [{"role": "user", "content": "Who painted the Mona Lisa?"}]
    long = [{"role": "user", "content": "Sources: [1] The S2 weighs 1.35 kg.\n\nQuestion: " * 3}]
    batched = reply_logprobs(model, tokenizer, [short, long], batch_size=2)
    alone = reply_logprobs(model, tokenizer, [short], batch_size=1)
    target = tokenizer("I don't know", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([chat_prompt_ids(tokenizer, short) + target])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.float()[0], dim=-1)
    by_hand = np.mean(
        [float(logp[ids.shape[1] - len(target) - 1 + i, t]) for i, t in enumerate(target)]
    )
    assert alone[0] == pytest.approx(by_hand, abs=1e-3)

    class AllLogits:  # a model that cannot keep only the last logits: every position's come back
        device = model.device

        def __call__(self, **inputs):
            assert "logits_to_keep" not in inputs
            return model(**inputs)

    assert reply_logprobs(AllLogits(), tokenizer, [short])[0] == pytest.approx(alone[0], abs=1e-5)
    assert batched[0] == pytest.approx(alone[0], abs=1e-4)  # left padding does not move it

    class Numbered:  # records the position ids each row gets
        device, seen = model.device, []

        def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kw):
            self.seen.append((attention_mask, position_ids))
            return model(input_ids=input_ids, attention_mask=attention_mask, **kw)

        __call__ = forward

    numbered = Numbered()
    reply_logprobs(numbered, tokenizer, [short, long], batch_size=2)
    ((mask, positions),) = numbered.seen
    first = int((mask[0] == 0).sum())  # the short prompt is left-padded: counted from 0 there
    assert first > 0 and positions[0, first] == 0 and positions[1, 0] == 0
    assert positions[0, -1] == mask[0].sum() - 1  # as generate() numbers them
    assert all(v < 0 for v in batched)


def test_answers_carry_signals_and_the_learned_decision_is_reproducible(plain):
    train = sample_questions(load_qa("train"), 16)
    first = abstain.fit_abstainer(plain, records=train)
    assert list(first.data.columns) == [
        "id",
        *abstain.FEATURES,
        "unanswerable",
        "correct",
        "declined",
    ]
    again = abstain.learn_abstainer(first.data)  # the same train answers: the same decision
    assert first.coefficients == again.coefficients
    assert first.threshold == again.threshold
    assert first.trained_on == [r.id for r in train]
    assert list(first.curve.columns) == [
        "threshold",
        "correct",
        "wrongly_declined",
        "unanswerable_declined",
    ]
    ok = first.curve[first.curve["threshold"] == first.threshold]
    assert ok.empty or ok["wrongly_declined"].iloc[0] <= abstain.MAX_FALSE_DECLINE

    plain.abstainer = first
    try:
        answers = plain.answer_batch([r.question for r in train[:4]])
    finally:
        plain.abstainer = None
    for answer in answers:
        if not answer.signals:  # retrieval found nothing similar: declined before the model
            assert answer.text == "I don't know" and answer.timings["generate"] == 0.0
            continue
        assert set(answer.signals) == {*abstain.FEATURES, "p_unanswerable"}
        assert not any(math.isnan(v) for v in answer.signals.values())
        assert answer.timings["decide"] > 0
        if answer.signals["p_unanswerable"] >= first.threshold:
            assert answer.text == "I don't know" and answer.cited_ids == []


def test_the_test_split_is_refused_for_fitting(plain):
    with pytest.raises(ValueError, match="train questions"):
        abstain.fit_abstainer(plain, records=load_qa("test")[:4])


class _AlwaysDeclines:
    threshold = 0.5
    features = abstain.FEATURES

    def probability(self, signals):
        return 1.0


def test_bm25_cannot_feed_the_decision_and_unmeasured_signals_keep_the_answer(plain, index):
    from haystack import Document

    from kit.generate import Answer

    with pytest.raises(rag.RagError, match="mode='hybrid'"):
        rag.build_rag(index, "bm25", profile="smoke", abstainer=_AlwaysDeclines())
    bm25 = rag.build_rag(index, "bm25", profile="smoke", generator=plain.model_and_tokenizer)
    with pytest.raises(ValueError, match="bm25"):
        abstain.train_signals(bm25, limit=4)
    blank = Answer(
        question="What is the S2 price?", text="129 EUR", documents=[Document(content=" ")]
    )
    shown = Answer(
        question="What is the S2 price?",
        text="129 EUR",
        documents=[Document(content="The Fennick S2 costs 129 EUR including VAT.")],
    )
    plain.abstainer = _AlwaysDeclines()
    try:
        kept, declined = plain._decide([blank, shown], [0.5, 0.5])
    finally:
        plain.abstainer = None
    assert math.isnan(kept.signals["sentence_similarity"]) and kept.text == "129 EUR"
    assert "p_unanswerable" not in kept.signals
    assert declined.text == "I don't know" and declined.signals["p_unanswerable"] == 1.0


# --------------------------------------------------------------------------- the retrieval gate


def test_a_curve_without_answers_ranks_by_unanswerable_declined():
    p, unanswerable = [0.9, 0.2, 0.6, 0.1, 0.7], [True, False, False, True, True]
    curve = abstain.decision_curve(p, unanswerable, [math.nan] * 5, [False] * 5)
    assert curve["correct"].isna().all()  # a gate generates nothing to score
    # 2 of 3 unanswerable declined from 0.25 (one answerable wrongly) up to 0.7 (none): the
    # most declined within the cap, on a tie the higher threshold (it declines less)
    assert abstain.choose_threshold(curve, max_false_decline=0.0) == 0.7
    assert abstain.choose_threshold(curve, max_false_decline=0.5) == 0.7
    assert abstain.choose_threshold(curve.assign(wrongly_declined=1.0)) == 1.0


def test_the_decision_table_scores_the_reply_before_and_after():
    from kit.generate import Answer

    test = load_qa("test")
    answerable = [r for r in test if r.answerable][:3]
    unanswerable = next(r for r in test if not r.answerable)
    records = [*answerable, unanswerable]
    measured = {"similarity": 0.5, "p_unanswerable": 0.9}
    answers = [
        Answer(answerable[0].question, "I don't know", withheld=answerable[0].answer, system="r"),
        Answer(answerable[1].question, answerable[1].answer, signals=measured, system="r"),
        Answer(answerable[2].question, "I don't know", system="r"),  # retrieval found nothing
        Answer(unanswerable.question, "I don't know", withheld="It is 42.", system="r"),
    ]
    table = abstain.decision_table(records, answers)
    assert table["by_decision"].tolist() == [True, False, False, True]
    assert table["by_retrieval"].tolist() == [False, False, True, False]
    assert not table["by_model"].any()
    assert table["correct_without"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert table["correct"].tolist() == [0.0, 1.0, 0.0, 1.0]
    row = abstain.decision_summary(table).iloc[0]
    assert row["unanswerable declined"].startswith("1 of 1 (1.00 [")
    assert row["answerable wrongly declined"].startswith("2 of 3 (0.67 [")  # whoever declined
    assert row["declined by the decision"] == "2 of 4"
    assert "cannot be told apart" in row["with vs without"]  # 4 questions decide nothing
    with pytest.raises(ValueError, match="4 questions but 2 answers"):
        abstain.decision_table(records, answers[:2])
    with pytest.raises(ValueError, match="is paired with question"):
        abstain.decision_table(records[::-1], answers)
    for nothing in (None, abstain.decision_table([], [])):
        empty = abstain.decision_summary(nothing)
        assert empty.empty and list(empty.columns) == list(abstain.SUMMARY_COLUMNS)


class _Gate:  # reads retrieval only, declines everything it can decide on
    threshold = 0.0
    features = abstain.RETRIEVAL_FEATURES

    def probability(self, signals):
        return 1.0


def test_what_a_rag_asks_of_a_decision_and_what_it_withholds(plain, index):
    from haystack import Document, component
    from haystack.dataclasses import ChatMessage

    from kit.generate import Answer

    @component
    class Says:  # a Haystack generator component: no probabilities to read
        def __init__(self) -> None:
            component.set_input_type(self, "messages", list[ChatMessage])

        @component.output_types(replies=list[ChatMessage])
        def run(self, **kwargs):
            return {"replies": [ChatMessage.from_assistant("It is 129 EUR.")]}

    gated = rag.build_rag(index, profile="smoke", generator=Says(), abstainer=_Gate())
    reply = gated.answer("How much does the Fennick S2 cost?")  # a gate needs no model
    assert reply.text == "I don't know" and reply.withheld == "It is 129 EUR."
    assert set(reply.signals) == {*abstain.RETRIEVAL_FEATURES, "p_unanswerable"}
    for asked in ({"signals": True}, {"abstain": False}):  # what fitting a decision asks for
        with pytest.raises(rag.RagError, match="need the generator's probabilities"):
            gated.answer_batch(["How much does the Fennick S2 cost?"], **asked)
    with pytest.raises(rag.RagError, match="generator's probabilities"):
        rag.build_rag(index, profile="smoke", generator=Says(), abstainer=_AlwaysDeclines())

    class Unknown(_Gate):
        features = ("similarity", "mood")

    with pytest.raises(rag.RagError, match=r"\['mood'\] that a RAG does not measure"):
        rag.build_rag(index, profile="smoke", generator=Says(), abstainer=Unknown())

    class NoFeatures:  # a decision of your own without `features`: it is shown every signal
        threshold = 2.0

        def probability(self, signals):
            assert set(signals) == set(abstain.FEATURES)
            return 0.0

    shown = [Document(content="The Fennick S2 costs 129 EUR including VAT.")]
    said = Answer("What is the S2 price?", "I don't know", documents=shown)
    plain.abstainer = _Gate()
    try:
        (kept,) = plain._decide([said], [0.5])  # the model declined itself: nothing withheld
        plain.abstainer = NoFeatures()
        (answered,) = plain._decide([replace_text(said, "129 EUR")], [0.5])
    finally:
        plain.abstainer = None
    assert kept.text == "I don't know" and kept.withheld == ""
    assert answered.text == "129 EUR" and answered.signals["p_unanswerable"] == 0.0


def replace_text(answer, text):
    from dataclasses import replace

    return replace(answer, text=text)


def test_a_gate_learns_from_retrieval_alone_and_keeps_what_it_withheld(plain, index, monkeypatch):
    from dataclasses import replace

    def no_model(*args, **kwargs):
        raise AssertionError("the gate must not run the generator")

    train = sample_questions(load_qa("train"), 16)
    monkeypatch.setattr(rag, "run_plans", no_model)
    monkeypatch.setattr(rag, "reply_logprobs", no_model)
    gate = abstain.fit_gate(plain, records=train)
    assert gate.features == abstain.RETRIEVAL_FEATURES
    columns = ["id", *abstain.RETRIEVAL_FEATURES, "unanswerable", "correct", "declined"]
    assert list(gate.data.columns) == columns and gate.data["correct"].isna().all()
    again = abstain.learn_abstainer(gate.data, features=abstain.RETRIEVAL_FEATURES)
    assert (again.coefficients, again.threshold) == (gate.coefficients, gate.threshold)
    with pytest.raises(ValueError, match="idk_logprob"):
        abstain.learn_abstainer(gate.data)  # the five-signal decision needs answers

    questions = [r.question for r in sample_questions(load_qa("test"), 6)]
    monkeypatch.undo()
    as_is = plain.answer_batch(questions)
    plain.abstainer = gate
    try:  # asked for every signal (to fit a five-signal decision), a gated RAG measures all
        every = plain.answer_batch(questions[:2], signals=True)
    finally:
        plain.abstainer = None
    assert all(set(a.signals) >= set(abstain.FEATURES) for a in every if a.signals)
    monkeypatch.setattr(rag, "reply_logprobs", no_model)  # answers, but no "I don't know" pass
    declines_all = replace(gate, threshold=0.0)  # every answer that reached the model
    gated = rag.build_rag(
        index,
        profile="smoke",
        max_new_tokens=24,
        generator=plain.model_and_tokenizer,
        abstainer=declines_all,
    )
    reached = 0
    for before, after in zip(as_is, gated.answer_batch(questions), strict=True):
        if not after.signals:  # declined by retrieval before the model: nothing withheld
            assert after.text == before.text == "I don't know" and after.withheld == ""
            continue
        reached += 1
        assert set(after.signals) == {*abstain.RETRIEVAL_FEATURES, "p_unanswerable"}
        at_fit = gated.retrieval_signals(after.question)  # what fit_gate reads: the same
        assert at_fit == pytest.approx({f: after.signals[f] for f in at_fit}, abs=1e-6)
        assert after.text == "I don't know" and after.withheld == before.text
        assert after.cited_ids == after.attributed_ids == []
    assert reached >= 3
