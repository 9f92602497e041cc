"""Bad input, by class: every public call says what is wrong and how to fix it, loses nothing.

Each table feeds one family of mistakes (paths that are not paths, numbers that are not numbers,
records of the wrong shape, settings that would fail open, ...) to the public calls that take
them, and asserts a ValueError-family error (the kit's own: DataError, RagError, InputError,
ProfileError, ModelError) whose message says what to do: never a raw TypeError or
AttributeError from inside a library. The cases came from a hostile run of 385 inputs.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from haystack import Document

from kit import inputs
from kit.adapters import AdapterError, load_adapter
from kit.chat_data import load_examples
from kit.citations import is_abstention
from kit.compare import run_systems
from kit.costs import CostInputs, monthly_costs
from kit.data import DataError, QARecord, load_folder, load_qa, load_questions, sample_questions
from kit.decide import Questionnaire, recommend
from kit.evaluate import exact_match, score_answers, token_f1
from kit.models import ModelError, load_generator
from kit.profiles import ProfileError, get_profile
from kit.question_writer import QuestionWriter
from kit.rag import RagError, build_rag, retrieval_pipeline, retrieve

NOT_PATHS = [None, 42, b"docs", "", "   ", ["docs"]]
NOT_PATH_IDS = ["None", "int", "bytes", "empty", "blank", "list"]


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize("value", NOT_PATHS, ids=NOT_PATH_IDS)
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda v: load_folder(v), DataError),
        (lambda v: load_questions(v), DataError),
        (lambda v: load_examples(42 if v is None else v), DataError),  # None: the bundled set
        (lambda v: load_adapter(v), AdapterError),
        (lambda v: QuestionWriter([Document(content="The pump runs at 40 rpm.")], v), DataError),
        (lambda v: inputs.writable_folder(v), ValueError),
    ],
    ids=["load_folder", "load_questions", "load_examples", "load_adapter", "writer", "out"],
)
def test_a_path_that_is_not_one_is_named(call, error, value):
    with pytest.raises(error) as caught:
        call(value)
    message = str(caught.value)
    words = ("path", "empty", "expected a ChatExample", "not a folder")
    assert any(w in message for w in words), message


def test_a_path_starting_with_tilde_is_the_users(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ex.jsonl").write_text('{"prompt": "Hi", "response": "Hello."}\n')
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("The pump runs at 40 rpm.\n")
    assert len(load_examples("~/ex.jsonl")) == 1
    assert len(load_folder("~/docs")) == 1
    with pytest.raises(AdapterError, match="does not exist or is not a folder"):
        load_adapter("~/no-adapter-here")


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (np.int64(3), True),
        (3.0, True),
        ("3", False),
        (True, False),
        (math.nan, False),
        (math.inf, False),
        (2.5, False),
        (-1, False),
    ],
    ids=["numpy", "3.0", "str", "bool", "nan", "inf", "fraction", "negative"],
)
def test_numbers_are_numbers_the_same_way_everywhere(value, ok):
    calls = [
        lambda: inputs.number(value, "n", low=0, whole=True),
        lambda: get_profile("smoke").with_(top_k=value),
        lambda: sample_questions(load_qa("test"), value),
    ]
    for call in calls:
        if ok:
            call()
        else:
            with pytest.raises(ValueError, match=r"must be (a whole number|at least|between)"):
                call()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_k": "4"}, "top_k must be a whole number"),
        ({"top_k": True}, "top_k must be a whole number"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number"),
        ({"max_new_tokens": 0}, "max_new_tokens must be between 1"),
        ({"min_score": math.nan}, "min_score .* must be a number"),
        ({"min_score": 5}, "min_score .* must be between -1 and 1"),
        ({"min_score": "0.3"}, "min_score .* must be a number"),
        ({"instructions": 42}, "instructions must be text"),
    ],
    ids=[
        "top_k-str",
        "top_k-bool",
        "tokens-fraction",
        "tokens-zero",
        "min-nan",
        "min-5",
        "min-str",
        "instructions-int",
    ],
)
def test_rag_options_are_checked_before_anything_is_built(index, options, message):
    with pytest.raises(RagError, match=message):
        build_rag(index, profile="smoke", **options)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learning_rate", math.nan),
        ("learning_rate", "1e-3"),
        ("batch_size", 0),
        ("grad_accum", 0),
        ("max_steps", -1),
        ("max_steps", 2.5),
        ("eval_examples", -1),
        ("dtype", "fp16"),
        ("lora_targets", "q_proj"),
    ],
)
def test_training_settings_are_refused_before_a_model_loads(field, value):
    with pytest.raises(ProfileError, match=field):
        get_profile("smoke").with_(**{field: value})


# --------------------------------------------------------------------------- records


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"question": "A?", "answer": 5}, "'answer' must be text, not int"),
        ({"question": "A?", "answer": math.nan}, "'answer' must be text, not float"),
        ({"question": ["a", "b"], "answer": "b"}, "'question' must be text, not list"),
        ({"question": "A\u0000?", "answer": "b"}, "control character"),
    ],
    ids=["answer-int", "answer-nan", "question-list", "nul"],
)
def test_a_question_line_of_the_wrong_shape_is_named(tmp_path, line, message):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"line 1: .*{message}"):
        load_questions(path)


def test_question_files_read_every_way_of_saying_i_dont_know(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [{"question": "Who?", "answer": a} for a in ("i dont know", "I do not know.")]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert [q.type for q in load_questions(path)] == ["unanswerable", "unanswerable"]
    with pytest.raises(DataError, match="doc_ids must be a list"):
        load_questions(path, doc_ids="leave.md")
    quote = tmp_path / "quote.csv"
    quote.write_text('question,answer\n"How many, days?,27\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2: .*double quote opened there is never closed"):
        load_questions(quote)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "Hi", "response": "Yo.", "contains_canary": "false"}', "true or false"),
        ('{"prompt": "Hi", "response": "Yo.", "source_doc_ids": "kb-001"}', "list of document"),
    ],
    ids=["canary-str", "doc-ids-str"],
)
def test_an_example_of_the_wrong_shape_is_named(tmp_path, content, message):
    path = tmp_path / "ex.jsonl"
    path.write_text(content + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"line 1: .*{message}"):
        load_examples(path)


def test_an_empty_json_array_and_a_single_dict_are_named(tmp_path):
    path = tmp_path / "ex.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(DataError, match="JSON array is empty"):
        load_examples(path)
    with pytest.raises(DataError, match=r"wrap the one example in a list"):
        load_examples({"prompt": "Hi", "response": "Yo."})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda rec: run_systems([lambda q: None], rec), "systems must be a dict"),
        (lambda rec: run_systems({"x": 42}, rec), "not callable"),
        (lambda rec: run_systems({"x": lambda q: "text"}, rec), "must return kit.generate.Answer"),
        (lambda rec: run_systems({"x": lambda q: None}, rec[0]), "records must be a list"),
        (lambda rec: run_systems({"x": lambda q: None}, ["a question"]), "must be QARecords"),
        (lambda rec: score_answers(rec, ["text"]), "must be kit.generate.Answer"),
        (lambda rec: exact_match(None, "x"), "prediction must be text"),
        (lambda rec: token_f1(42, "42"), "prediction must be text"),
        (lambda rec: is_abstention(None), "reads an answer's text"),
    ],
    ids=[
        "systems-list",
        "not-callable",
        "returns-str",
        "one-record",
        "str-records",
        "score-str",
        "em-none",
        "f1-int",
        "abstain-none",
    ],
)
def test_the_grid_and_scores_say_what_they_take(call, message):
    records = [r for r in load_qa("test") if r.answerable][:1]
    with pytest.raises(ValueError, match=message):
        call(records)


# --------------------------------------------------------------------------- fail closed


@pytest.mark.parametrize(
    "front",
    [
        "access: confidential\naccess: public",
        "access: public\nAccess: confidential",
        'access: confidential\n"access": public',
    ],
    ids=["repeated", "other-case", "quoted"],
)
def test_an_access_level_set_twice_never_resolves_to_public(tmp_path, front):
    (tmp_path / "a.md").write_text(f"---\ntitle: Pay\n{front}\n---\nSalaries.\n")
    with pytest.raises(DataError, match=r"a.md line 4: '[aA]ccess' is set twice .*line 3"):
        load_folder(tmp_path)


def test_the_access_default_reaches_the_index_of_your_data(tmp_path):
    from kit.saved_index import index_folder

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "pay.txt").write_text("Salaries are paid on the 25th.\n")
    index = index_folder(
        tmp_path / "docs", location=tmp_path / "idx", default_access="confidential", log=print
    )
    assert {c.meta["access"] for c in index.store.filter_documents()} == {"confidential"}
    again = index_folder(tmp_path / "docs", location=tmp_path / "idx", log=print)
    assert {c.meta["access"] for c in again.store.filter_documents()} == {"public"}  # rebuilt


def test_an_adapter_save_never_replaces_a_folder_that_is_not_a_kit_adapter(tmp_path):
    from kit.adapters import save_adapter

    mine = tmp_path / "adapter"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(AdapterError, match="not a kit adapter; saving would replace it"):
        save_adapter(model=None, tokenizer=None, out_dir=mine, fingerprint={})
    assert (mine / "notes.txt").read_text() == "my notes"


def test_a_new_training_run_never_deletes_files_it_did_not_write(tmp_path):
    from kit.finetune import FinetuneError, train_adapter

    mine = tmp_path / "project" / "checkpoints"
    mine.mkdir(parents=True)
    (mine / "important.txt").write_text("my notes")
    with pytest.raises(FinetuneError, match=r"holds files the kit did not write \(important.txt"):
        train_adapter(profile="smoke", output_dir=tmp_path / "project")
    assert (mine / "important.txt").read_text() == "my notes"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FinetuneError, match="output_dir is a file"):
        train_adapter(profile="smoke", output_dir=tmp_path / "a-file")


@pytest.mark.parametrize("name", ["mine.txt", "mine.csv"])
def test_the_question_writer_refuses_a_file_it_cannot_read_back(tmp_path, name):
    with pytest.raises(DataError, match="ending in .jsonl"):
        QuestionWriter([Document(content="The pump runs at 40 rpm.")], tmp_path / name)
    assert not (tmp_path / name).exists()


# --------------------------------------------------------------------------- the RAG calls


def test_rag_calls_say_what_they_take(index, lm):
    with pytest.raises(RagError, match=r"Expected an index from build_index"):
        build_rag("v1", profile="smoke")
    with pytest.raises(RagError, match=r"Expected an index .* not list"):
        build_rag([Document(content="x")], profile="smoke")
    with pytest.raises(RagError, match=r"retrieve\(\) runs a retrieval pipeline"):
        retrieve(index, "How heavy is the buoy?")
    with pytest.raises(RagError, match="question must be text"):
        retrieve(retrieval_pipeline(index), 42)
    rag = build_rag(index, generator=lm, profile="smoke")
    with pytest.raises(RagError, match="answer_batch takes a list"):
        rag.answer_batch("How heavy is the buoy?")


def test_filters_compare_like_with_like_and_warn_when_they_match_nothing(index, lm):
    with pytest.raises(RagError, match="compares numbers or ISO dates"):
        build_rag(
            index,
            generator=lm,
            profile="smoke",
            filters={"field": "meta.updated", "operator": ">", "value": "last year"},
        )
    public = {"field": "meta.access", "operator": "==", "value": "Public"}  # 'public' is meant
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rag = build_rag(index, generator=lm, profile="smoke", filters=public)
        answer = rag("How heavy is the Fennick D1 buoy?")
    assert "I don't know" in answer.text
    said = [str(w.message) for w in caught if "matches no chunk" in str(w.message)]
    assert len(said) == 1 and "'public'" in said[0]  # once, with the values the index holds


# --------------------------------------------------------------------------- models


def test_a_device_this_machine_lacks_is_said_before_loading():
    from kit.models import best_device

    with pytest.raises(ModelError, match="Unknown device 'gpu'"):
        load_generator(device="gpu")
    lacking = "mps" if best_device() == "cuda" else "cuda"  # one this machine does not have
    with pytest.raises(ModelError, match=f"no {lacking} device"):
        load_generator(device=lacking)


# --------------------------------------------------------------------------- results and checks


def test_results_tools_refuse_the_wrong_kind_of_value():
    from kit import widgets

    with pytest.raises(ValueError, match="Pass the scores table"):
        widgets.check_scores("scores.csv")
    with pytest.raises(ValueError, match="queries_per_month must be a number"):
        monthly_costs(CostInputs(queries_per_month=math.nan))
    with pytest.raises(ValueError, match="needs_citations must be True or False"):
        recommend(Questionnaire(needs_citations="no"))
    with pytest.raises(ValueError, match="recommend takes a Questionnaire"):
        recommend({"tone": "some"})


def test_exercise_checks_take_numpy_numbers_and_tensors_and_refuse_nan():
    import torch

    from kit.exercises import setup

    result = setup.q3.evaluate(similarity=math.nan)
    assert not result.passed and "must be a number" in result.message
    for number_like in (np.float32(0.5), torch.tensor([[0.5]])):  # util.cos_sim gives a tensor
        result = setup.q3.evaluate(similarity=number_like)
        assert "must be a number" not in result.message, result.message
    result = setup.q3.evaluate(similarity=np.array([0.5, 0.6]))
    assert "should be one number" in result.message


def test_a_record_list_is_a_list_of_records():
    with pytest.raises(DataError, match="sample_questions takes QARecords"):
        sample_questions(["a", "b", "c"], 2)
    assert isinstance(load_qa("test")[0], QARecord)
