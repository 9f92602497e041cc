"""Your own question set: the question file format and the one-chunk-at-a-time writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from haystack import Document

from kit.data import IDK, DataError, load_questions
from kit.question_writer import QuestionWriter


def _chunks() -> list[Document]:
    texts = {
        "leave.md": ["Staff get 27 days of paid leave per year.", "Leave is booked in the portal."],
        "pump.md": ["The pump runs at 40 rpm."],
        "tank.pdf": ["The tank holds 800 litres."],
    }
    return [
        Document(content=text, meta={"id": name, "title": name.split(".")[0]})
        for name, parts in texts.items()
        for text in parts
    ]


# --------------------------------------------------------------------------- the file format


def test_a_csv_with_question_and_answer_only_is_enough(tmp_path: Path):
    path = tmp_path / "qa.csv"
    path.write_text(
        "Question,Answer\nHow fast is the pump?,40 rpm\nWho is the CEO?,I don't know\n",
        encoding="utf-8",
    )
    first, second = load_questions(path)
    assert (first.question, first.answer, first.type, first.split) == (
        "How fast is the pump?",
        "40 rpm",
        "user",
        "test",
    )
    assert first.answerable and first.gold_doc_ids == [] and first.id == "qa-002"
    assert second.type == "unanswerable" and not second.answerable and second.answer == IDK


def test_jsonl_keeps_the_optional_fields_and_checks_gold_ids(tmp_path: Path):
    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": "p1", "question": "How fast?", "answer": "40 rpm", "gold_doc_ids": ["pump.md"]},
        {"question": "Leave?", "answer": "27 days", "split": "train"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    p1, leave = load_questions(path, doc_ids=["pump.md", "leave.md"])
    assert p1.id == "p1" and p1.gold_doc_ids == ["pump.md"] and leave.split == "train"
    with pytest.raises(DataError, match=r"line 1: gold document id\(s\) 'pump.md' are not in"):
        load_questions(path, doc_ids=["leave.md"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("question,reply\nA?,b\n", r"line 1: the header needs the column\(s\) question, answer"),
        ("", r"the file is empty|file is empty"),
        ("question,answer\nA?,\n", r"line 2: 'answer' is empty"),
        ("question,answer\n,b\n", r"line 2: 'question' is empty"),
        ("question,answer\nA?,b,c\n", r"line 2: more cells than header columns"),
        ("question,answer,split\nA?,b,dev\n", r"line 2: split 'dev' is not one of"),
        ("question,answer,type\nA?,b,unanswerable\n", r"line 2: type 'unanswerable' does not fit"),
        ("id,question,answer\nx,A?,b\nx,C?,d\n", r"line 3: id 'x' is used on line 2"),
    ],
    ids=[
        "no-answer-column",
        "empty",
        "empty-answer",
        "empty-question",
        "extra-cell",
        "bad-split",
        "type-vs-answer",
        "repeated-id",
    ],
)
def test_bad_question_files_name_the_line(tmp_path: Path, content: str, message: str):
    path = tmp_path / "qa.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_questions(path)
    assert path.read_text(encoding="utf-8") == content  # the user's file is never modified


def test_a_question_file_of_another_type_is_refused(tmp_path: Path):
    path = tmp_path / "qa.txt"
    path.write_text("How fast? 40 rpm", encoding="utf-8")
    with pytest.raises(DataError, match=r"\.jsonl or \.csv"):
        load_questions(path)


# --------------------------------------------------------------------------- the writer


def test_the_writer_covers_every_document_before_repeating_one(tmp_path: Path):
    writer = QuestionWriter(_chunks(), tmp_path / "mine.jsonl")
    shown = []
    while writer.current is not None:
        shown.append(writer.current.meta["id"])
        writer.skip()
    assert len(shown) == 4 and set(shown[:3]) == {"leave.md", "pump.md", "tank.pdf"}


def test_the_writer_saves_each_question_at_once_and_reads_back(tmp_path: Path):
    path = tmp_path / "mine.jsonl"
    writer = QuestionWriter(_chunks(), path, seed=1)
    chunk = writer.current
    answer = (chunk.content or "").split()[-2]  # a word copied from the chunk
    saved = writer.add("What does it say?", answer)
    assert saved.gold_doc_ids == [chunk.meta["id"]] and saved.answer == answer
    writer.not_answerable("Who founded the company?")
    assert [r.type for r in load_questions(path)] == ["user", "unanswerable"]  # on disk already
    again = QuestionWriter(_chunks(), path, seed=1)  # a new kernel: continue the same file
    assert again.count == 2
    assert again.current.meta["id"] != chunk.meta["id"]  # fresh documents first
    again.add("Anything else?", (again.current.content or "").split()[0])
    assert [r.id for r in load_questions(path)] == ["mine-001", "mine-002", "mine-003"]


def test_the_writer_refuses_an_answer_that_is_not_in_the_chunk(tmp_path: Path):
    path = tmp_path / "mine.jsonl"
    writer = QuestionWriter(_chunks(), path)
    before = writer.current
    with pytest.raises(DataError, match="not in the chunk"):
        writer.add("How big is the moon?", "3474 km")
    with pytest.raises(DataError, match="write a question"):
        writer.not_answerable("   ")
    assert writer.current is before and not path.exists()  # nothing written, same chunk
    cause = [Document(content="Cause unknown. I don't know who left.", meta={"id": "log.md"})]
    writer = QuestionWriter(cause, path)
    for answer in ("unknown", "i don't know"):  # in the chunk, but the kit reads "unanswerable"
        with pytest.raises(DataError, match='reads as "I don\'t know".*not_answerable'):
            writer.add("What caused it?", answer)
    assert not path.exists()
    assert writer.add("What caused it?", "Cause unknown").answer == "Cause unknown"


def test_the_writer_saves_train_questions_for_the_learned_decline(tmp_path: Path):
    path = tmp_path / "mine.jsonl"
    writer = QuestionWriter(_chunks(), path, seed=1)
    assert writer.train_counts == (0, 0)
    writer.add("What does it say?", (writer.current.content or "").split()[0], split="train")
    writer.not_answerable("Who founded the company?", split="train")
    writer.not_answerable("Who pays the rent?")  # test, the default
    assert [(r.split, r.answerable) for r in load_questions(path)] == [
        ("train", True),
        ("train", False),
        ("test", False),
    ]
    assert writer.train_counts == (1, 1) and QuestionWriter(_chunks(), path).train_counts == (1, 1)
    before = writer.current
    with pytest.raises(DataError, match="split 'validation' is not one of train, test"):
        writer.not_answerable("Who cleans the tank?", split="validation")
    with pytest.raises(DataError, match="split 'Train' is not one of train, test"):
        writer.add("What does it say?", (before.content or "").split()[0], split="Train")
    assert writer.current is before and len(load_questions(path)) == 3  # nothing written


def test_the_writer_widget_saves_through_its_buttons(tmp_path: Path):
    from kit.widgets import question_writer

    path = tmp_path / "mine.jsonl"
    box = question_writer(_chunks(), path)
    chunk = box.writer.current
    box.fields["question"].value = "What does it say?"
    box.fields["answer"].value = "nowhere in the text"
    box.buttons["save"].click()
    assert not path.exists() and "not in the chunk" in box.children[0].value
    assert box.fields["question"].value == "What does it say?"  # what was typed is kept
    box.fields["answer"].value = (chunk.content or "").split()[0]
    box.buttons["save"].click()
    box.fields["question"].value = "Who founded the company?"
    box.fields["split"].value = "train"  # teaches the RAG to decline
    box.buttons["none"].click()
    box.buttons["skip"].click()
    saved = [(r.type, r.split) for r in load_questions(path)]
    assert saved == [("user", "test"), ("unanswerable", "train")]
    assert "<b>2</b> question(s) saved" in box.children[0].value
    assert "train: 0 answerable, 1 not answerable" in box.children[0].value


def test_the_writer_checks_a_line_before_writing_it_and_skips_used_ids(tmp_path: Path):
    path = tmp_path / "mine.jsonl"
    writer = QuestionWriter(_chunks(), path, seed=1)
    for who in ("founded", "owns", "runs"):
        writer.not_answerable(f"Who {who} the company?")
    with pytest.raises(DataError, match="mine-001 already asks this question"):
        writer.not_answerable("who founded the company")  # once per file: nothing written
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    path.write_text("\n".join([lines[0], lines[2]]) + "\n", encoding="utf-8")  # line 2 deleted
    again = QuestionWriter(_chunks(), path, seed=1)
    again.not_answerable("Who pays the rent?")
    assert [r.id for r in load_questions(path)] == ["mine-001", "mine-003", "mine-004"]
    chunk = again.current
    saved = again.add("What is said?", (chunk.content or "").split()[0])
    assert saved.type == "user"


def test_a_question_with_a_line_separator_character_reads_back_as_written(tmp_path: Path):
    """U+2028 and U+0085 (pasted from a PDF or Word) are legal inside a JSON string and are
    written as they are: the file still holds one question per line."""
    path = tmp_path / "mine.jsonl"
    writer = QuestionWriter(_chunks(), path, seed=1)
    answer = (writer.current.content or "").split()[-2]
    writer.add("What does it\u2028say\u0085here?", answer)
    (only,) = load_questions(path)
    assert only.question == "What does it\u2028say\u0085here?" and only.answer == answer


@pytest.mark.parametrize(
    "content", [b"\n", b"\xef\xbb\xbf", b"  \r\n\n"], ids=["newline", "bom", "blank"]
)
def test_the_writer_starts_on_a_file_that_holds_nothing_but_blanks(tmp_path: Path, content):
    path = tmp_path / "mine.jsonl"
    path.write_bytes(content)  # what "new file" in an editor or Notepad leaves
    writer = QuestionWriter(_chunks(), path, seed=1)
    assert writer.count == 0
    writer.not_answerable("Who founded the company?")
    assert [r.id for r in load_questions(path)] == ["mine-001"]
