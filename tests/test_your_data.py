"""Your data end to end: a folder the test writes, your questions, examples built or given."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kit.__main__ import main
from kit.data import DataError, load_folder, load_questions, style_compliant
from kit.your_data import (
    AUTO,
    house_style_examples,
    load_your_data,
    parts_table,
    split_for_training,
)

DOCS = {
    "ovens.md": "# Ovens\n\nThe stone oven is lit at 4:30 every morning. It bakes 120 loaves an "
    "hour at 250 degrees.\n",
    "members.md": "# Members\n\nThe co-op has 48 members. Each member works one Saturday shift "
    "per month.\n",
    "flour.txt": "Flour comes from the Hollow Mill. A delivery of 900 kilograms arrives every "
    "Tuesday.\n",
    "shop.md": "# Shop\n\nThe shop opens at 7:00 and closes at 13:00. Day-old bread costs half "
    "price after 12:00.\n",
}
QUESTIONS = [
    ("When is the stone oven lit?", "4:30", "ovens.md"),
    ("How many loaves does the oven bake an hour?", "120 loaves", "ovens.md"),
    ("How many members does the co-op have?", "48 members", "members.md"),
    ("How often does a member work a Saturday shift?", "one Saturday shift per month", ""),
    ("Where does the flour come from?", "the Hollow Mill", "flour.txt"),
    ("When does the flour delivery arrive?", "every Tuesday", "flour.txt"),
    ("When does the shop close?", "13:00", "shop.md"),
    ("Who founded the co-op?", "I don't know", ""),
    ("What does the co-op pay its bakers?", "I don't know", ""),
]


@pytest.fixture
def your_data(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "bakery"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    questions = tmp_path / "questions.csv"
    rows = ["question,answer,gold_doc_ids"] + [f'"{q}","{a}",{g}' for q, a, g in QUESTIONS]
    questions.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder, questions


def test_house_style_examples_follow_the_house_style(your_data):
    folder, questions = your_data
    data = load_your_data(folder, questions)
    examples = house_style_examples(data.questions, data.documents)
    assert {e.id.rsplit("-", 1)[0] for e in examples} == {q.id for q in data.questions}
    for example in examples:
        assert style_compliant(example.assistant), example.assistant
    cited = next(e for e in examples if "Hollow Mill" in e.assistant)
    assert cited.assistant.endswith("Source: flour [flour.txt]") and cited.source_doc_ids
    declined = next(e for e in examples if "founded" in e.user)
    assert declined.assistant.startswith("Answer: I don't know.") and not declined.source_doc_ids


def test_auto_examples_come_from_train_questions_only(your_data):
    folder, questions = your_data
    data = load_your_data(folder, questions, examples=AUTO)
    train = {q.question for q in data.questions if q.split == "train"}
    test = {q.question for q in data.test_questions}
    assert len(train) == len(QUESTIONS) // 2 and not train & test
    asked = {e.user for e in data.examples}
    assert not any(q in u for q in test for u in asked)  # no test question is trained on
    assert "built by the kit" in data.examples_origin
    kept = split_for_training(data.questions)  # a split already made is kept
    assert [q.split for q in kept] == [q.split for q in data.questions]


def test_bad_inputs_name_the_file_and_change_nothing(your_data, tmp_path):
    folder, questions = your_data
    before = questions.read_text(encoding="utf-8")
    questions.write_text(before.replace("flour.txt", "flour.docx", 1), encoding="utf-8")
    with pytest.raises(DataError, match=r"line \d+: gold document id\(s\) 'flour.docx'"):
        load_your_data(folder, questions)
    with pytest.raises(DataError, match="give a question file too"):
        load_your_data(folder, examples=AUTO)
    empty = tmp_path / "examples.jsonl"
    empty.write_text(json.dumps({"prompt": "Hi", "response": ""}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="examples.jsonl"):
        load_your_data(folder, examples=empty)
    assert sorted(p.name for p in folder.iterdir()) == sorted(DOCS)  # nothing written there
    assert code_of(["run", "--questions", str(questions)]) == 2  # --questions needs --docs


def test_a_question_cannot_be_both_trained_on_and_scored(your_data, tmp_path):
    folder, questions = your_data
    twice = tmp_path / "twice.csv"
    rows = questions.read_text(encoding="utf-8").splitlines()
    twice.write_text("\n".join([*rows, rows[1].replace("When", "when")]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"twice.csv line 11: the same question as line 2"):
        load_your_data(folder, twice, examples=AUTO)  # the two could land in train and test
    with pytest.raises(DataError, match=r"asks test question questions-002 .*word for word"):
        load_your_data(folder, questions, examples=questions)  # a question file as examples
    mine = tmp_path / "mine.jsonl"  # asks a train question only: fine
    mine.write_text(json.dumps({"prompt": QUESTIONS[0][0], "response": "4:30."}) + "\n")
    assert len(load_your_data(folder, with_splits(questions), examples=mine).examples) == 1


def test_auto_examples_need_an_answer_a_public_sentence_holds(your_data, tmp_path):
    folder, questions = your_data
    hidden = tmp_path / "hidden.csv"
    rows = ["question,answer,split"]
    rows += [f'"{q}","{a}",train' for q, a, _ in QUESTIONS[:3]]  # answers none of them holds
    rows = [r.replace('","', '","not ') if "I don't know" not in r else r for r in rows]
    rows += [f'"{QUESTIONS[7][0]}","I don\'t know",train', f'"{QUESTIONS[4][0]}","x",test']
    hidden.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no example could be built from an answerable train"):
        load_your_data(folder, hidden, examples=AUTO)  # "I don't know" alone would be trained
    some = tmp_path / "some.csv"
    some.write_text(
        "\n".join([rows[0], f'"{QUESTIONS[0][0]}","4:30",train', *rows[2:]]) + "\n",
        encoding="utf-8",
    )
    data = load_your_data(folder, some, examples=AUTO)
    assert "2 of 4 train questions, 2 left out" in data.examples_origin  # 1 declined


def code_of(argv: list[str]) -> int:
    return main(argv)


def test_parts_table_says_why_a_part_did_not_run(your_data):
    from dataclasses import replace

    folder, questions = your_data
    rows = {r["part"]: r for r in parts_table(load_your_data(folder), ran_grid=False)}
    assert rows["the grid (base, RAG)"]["ran"] == "no"
    assert "--questions" in rows["the grid (base, RAG)"]["why"]
    assert "--examples" in rows["fine-tuned and hybrid systems"]["why"]
    only_train = load_your_data(folder)
    only_train.questions = [replace(q, split="train") for q in load_questions(questions)]
    why = parts_table(only_train, ran_grid=False)[1]["why"]
    assert "questions are all marked train: mark some split test" in why  # not "pass --questions"


UNANSWERABLE = ("Which bank holds the co-op's account?", "What is the shop's phone number?")


def with_splits(questions: Path, train: int = 4) -> Path:
    """A copy of the fixture's question file whose first ``train`` answerable questions and
    first two unanswerable ones (two more added) are marked ``split: train``."""
    rows = [(q, a, g) for q, a, g in QUESTIONS] + [(q, "I don't know", "") for q in UNANSWERABLE]
    answerable = [r for r in rows if r[1] != "I don't know"][:train]
    unanswerable = [r for r in rows if r[1] == "I don't know"][:2]
    lines = ["question,answer,gold_doc_ids,split"]
    for q, a, g in rows:
        split = "train" if (q, a, g) in answerable + unanswerable else "test"
        lines.append(f'"{q}","{a}",{g},{split}')
    path = questions.with_name("split_questions.csv")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_rag_learns_i_dont_know_from_your_train_questions_only(your_data):
    from kit.indexing import build_index
    from kit.rag import build_rag
    from kit.your_data import GATE_MIN, fit_your_gate

    folder, questions = your_data
    rag = build_rag(build_index(folder))
    unsplit = fit_your_gate(rag, load_your_data(folder, questions))  # every question is test
    assert unsplit.gate is None
    assert "0 answerable and 0 unanswerable" in unsplit.note and "split: train" in unsplit.note
    data = load_your_data(folder, with_splits(questions))
    fit = fit_your_gate(rag, data)
    train = [q.id for q in data.questions if q.split == "train"]
    assert fit.gate is not None and fit.gate.trained_on == train  # train questions, no others
    assert sum(not q.answerable for q in data.questions if q.split == "train") == GATE_MIN
    assert f"learned from your {len(train)} train questions" in fit.note
    assert f">= {fit.gate.threshold:.2f}" in fit.note
    few = load_your_data(folder, with_splits(questions, train=1))  # 1 answerable, 2 not
    assert "1 answerable and 2 unanswerable" in fit_your_gate(rag, few).note
    foreign = questions.with_name("foreign.csv")  # retrieval declines these before any signal
    foreign.write_text(
        "question,answer,split\nWhen is the stone oven lit?,4:30,train\n"
        "When does the shop close?,13:00,train\nQui a fondé la coopérative?,I don't know,train\n"
        "Wie viel verdient der Bäcker?,I don't know,train\nWho owns it?,I don't know,test\n",
        encoding="utf-8",
    )
    declined = fit_your_gate(rag, load_your_data(folder, foreign))
    assert declined.gate is None and "retrieval itself declined some" in declined.note


def test_a_gate_that_would_never_decline_is_not_called_learned(your_data, monkeypatch):
    from kit import your_data as module
    from kit.indexing import build_index
    from kit.rag import build_rag

    folder, questions = your_data
    data = load_your_data(folder, with_splits(questions))
    real = module.fit_gate

    def no_threshold_qualifies(rag, records):  # what choose_threshold returns then
        return dataclasses.replace(real(rag, records), threshold=1.0)

    monkeypatch.setattr(module, "fit_gate", no_threshold_qualifies)
    fit = module.fit_your_gate(build_rag(build_index(folder)), data)
    assert fit.gate is None and "no threshold declines an unanswerable one" in fit.note
    rows = {r["part"]: r for r in parts_table(data, ran_grid=True, gate=fit)}
    assert rows['learned "I don\'t know" (RAG systems)']["ran"] == "no"
    assert parts_table(data, ran_grid=True)[3]["why"] == "not tried"


def test_one_command_runs_the_comparison_on_your_folder(your_data, tmp_path, capsys, monkeypatch):
    from kit import saved_index
    from kit import your_data as module

    reads = []

    def counted(*args, **kw):
        reads.append(args)
        return load_folder(*args, **kw)

    monkeypatch.setattr(module, "load_folder", counted)
    monkeypatch.setattr(saved_index, "load_folder", counted)
    trained, real_train = [], module.train_adapter
    monkeypatch.setattr(
        module, "train_adapter", lambda *a, **kw: trained.append(kw) or real_train(*a, **kw)
    )
    folder, questions = your_data
    questions = with_splits(questions)  # train questions the "I don't know" learns from
    out = tmp_path / "report"
    argv = ["run", "--docs", str(folder), "--questions", str(questions)]
    assert main([*argv, "--examples", AUTO, "--profile", "smoke", "--out", str(out)]) == 0
    assert len(reads) == 1  # the folder is read and converted once, then indexed and saved
    assert [kw.get("resume") for kw in trained] == ["auto"]  # after Ctrl-C a re-run continues
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Which parts ran" in html and "What this run found" in html
    assert "generator: smollm2-135m-instruct (bundled with the kit, works offline)" in html
    for system in ("base", "rag", "finetuned", "hybrid"):
        assert f">{system}<" in html, system
    assert "built by the kit" in html
    assert "what the decision learned from your train questions did" in html  # rag and hybrid
    assert "learned from your 6 train questions (2 unanswerable" in html  # its parts-table row
    said = capsys.readouterr().out
    assert "Report written to" in said and "Index saved to" in said  # built: read once all the same
    assert len(load_questions(questions)) == len(QUESTIONS) + 2  # the user's file is unchanged


def test_built_examples_never_hold_text_of_documents_that_are_not_public(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "shop.md").write_text("---\naccess: public\n---\nThe shop opens at 7:00.\n")
    (folder / "pay.md").write_text("---\naccess: confidential\n---\nThe baker earns 3100 euros.\n")
    questions = tmp_path / "q.csv"
    questions.write_text(
        "question,answer,split\nWhen does the shop open?,7:00,train\n"
        "What does the baker earn?,3100 euros,train\nWho owns it?,I don't know,test\n"
    )
    data = load_your_data(folder, questions, examples=AUTO)
    replies = " ".join(e.assistant for e in data.examples)
    assert "7:00" in replies and "3100" not in replies  # the confidential answer is left out
    assert "public documents" in data.examples_origin


def test_files_of_the_run_stay_outside_the_documents_folder(your_data, tmp_path):
    folder, questions = your_data
    inside = folder / "questions.csv"
    inside.write_text(questions.read_text())
    with pytest.raises(DataError, match="--questions .* is inside the documents folder"):
        load_your_data(folder, inside)
    with pytest.raises(DataError, match="no such user's home folder; write the full path"):
        load_your_data(folder, "~no-such-user-here/questions.csv")
    inside.unlink()
    from kit.your_data import run_your_data

    with pytest.raises(DataError, match="--out .* is inside the documents folder"):
        run_your_data(folder, questions, out_dir=folder / "report", profile="smoke")
    assert sorted(p.name for p in folder.iterdir()) == sorted(DOCS)  # nothing created there


def test_a_small_example_set_gets_a_batch_and_held_out_share_that_fit():
    from kit.profiles import get_profile
    from kit.your_data import fit_to_examples

    gpu = fit_to_examples(get_profile("gpu"), 12)  # 6 train questions x 2 wordings
    assert gpu.eval_examples == 3 and gpu.batch_size == 9
    assert fit_to_examples(get_profile("cpu"), 400) == get_profile("cpu")  # fits: unchanged


def test_a_test_question_in_a_later_turn_of_an_example_is_refused(tmp_path):
    """A multi-turn example (greeting first, the test question second) taught its answer too."""
    from kit.data import ChatExample, load_qa
    from kit.your_data import refuse_test_questions_in

    test = next(r for r in load_qa() if r.split == "test")
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": test.question},
        {"role": "assistant", "content": test.answer},
    ]
    example = ChatExample("chat-1", turns, [], False)
    with pytest.raises(DataError, match=rf"'chat-1' asks test question {test.id}"):
        refuse_test_questions_in([example], [test], tmp_path / "examples.jsonl")
    refuse_test_questions_in([example], [], tmp_path / "examples.jsonl")  # no test: fine
