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
from kit.indexing import build_index
from kit.models import ModelError, load_generator
from kit.profiles import ProfileError, get_profile
from kit.question_writer import QuestionWriter
from kit.rag import RagError, build_rag
from kit.retrieval import retrieval_pipeline, retrieve

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
        ({"id": [1], "question": "A?", "answer": "b"}, "id must be text or a whole number"),
    ],
    ids=["answer-int", "answer-nan", "question-list", "nul", "id-list"],
)
def test_a_question_line_of_the_wrong_shape_is_named(tmp_path, line, message):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"line 1: .*{message}"):
        load_questions(path)


def test_question_files_read_every_way_of_saying_i_dont_know(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [
        {"question": q, "answer": a}
        for q, a in (("Who?", "i dont know"), ("Why?", "I do not know."))
    ]
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
    from transformers import TrainerCallback

    from kit.finetune import train_adapter

    steps = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    with pytest.raises(AdapterError, match="not a kit adapter"):  # said before the first step
        train_adapter(profile="smoke", output_dir=tmp_path, callbacks=[Steps()])
    assert steps == [] and (mine / "notes.txt").read_text() == "my notes"


def test_a_new_training_run_never_deletes_files_it_did_not_write(tmp_path):
    from kit.finetune import FinetuneError, train_adapter

    mine = tmp_path / "project" / "checkpoints"
    mine.mkdir(parents=True)
    (mine / "important.txt").write_text("my notes")
    with pytest.raises(FinetuneError, match=r"holds files the kit did not write \(important.txt"):
        train_adapter(profile="smoke", output_dir=tmp_path / "project")
    assert (mine / "important.txt").read_text() == "my notes"
    theirs = tmp_path / "trainer" / "checkpoints" / "checkpoint-500"  # another Trainer's run
    theirs.mkdir(parents=True)
    (theirs / "adapter_model.safetensors").write_text("weights")
    with pytest.raises(FinetuneError, match=r"did not write \(checkpoint-500"):
        train_adapter(profile="smoke", output_dir=tmp_path / "trainer")
    assert (theirs / "adapter_model.safetensors").read_text() == "weights"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FinetuneError, match="output_dir is a file"):
        train_adapter(profile="smoke", output_dir=tmp_path / "a-file")
    with pytest.raises(FinetuneError, match="cannot write to this output_dir"):
        train_adapter(profile="smoke", output_dir=tmp_path / "a-file" / "adapter")


def test_train_to_a_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    from kit.__main__ import main

    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "notes.txt" / "adapter"
    assert main(["train", "--profile", "smoke", "--out", str(out)]) == 2
    assert "cannot write to this output_dir" in capsys.readouterr().err


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


# --------------------------------------------------------------------------- round 3 (429 inputs)

BODY = "Salaries are paid on the 25th.\n"
HIDDEN_ACCESS = {
    "typo": "---\nacess: confidential\n---\n",
    "other-key": "---\naccess_level: confidential\n---\n",
    "classification": "---\nclassification: confidential\n---\n",
    "key-with-a-list": "---\nclassification: [hr]\n---\n",
    "restricted-word-as-key": "---\nprivate: true\n---\n",
    "nested": "---\nmeta:\n  access: confidential\n---\n",
    "look-alike-letter": "---\n\u0430ccess: confidential\n---\n",
    "level-as-a-value": "---\naudience: confidential\n---\n",
    "less-strict-beside-stricter": "---\naccess: public\nclassification: confidential\n---\n",
    "second-bom": "\ufeff\ufeff---\naccess: confidential\n---\n",
    "zero-width-space": "\u200b---\naccess: confidential\n---\n",
    "no-break-space": "\u00a0---\naccess: confidential\n---\n",
    "direction-mark": "\u200f---\naccess: confidential\n---\n",
    "spaces": "  ---\naccess: confidential\n---\n",
    "toml": '+++\naccess = "confidential"\n+++\n',
    "no-front-matter": "Access: confidential\n\n",
    "alias-to-itself": "---\na: &a [*a]\n---\n",
}
HIDDEN_IN_HTML = {
    "front-matter": "---\naccess: confidential\n---\n<p>",
    "bom-front-matter": "\ufeff\ufeff---\naccess: confidential\n---\n<p>",
    "meta-tag": '<html><head><meta name="access" content="confidential"></head><p>',
}


def _refused_never_public(folder, name: str, content: str) -> None:
    """Loading stops on ``name`` (with or without an access default); skipping it keeps the
    other file only."""
    (folder / name).write_text(content, encoding="utf-8")
    (folder / "note.txt").write_text("The canteen opens at noon.\n", encoding="utf-8")
    for default in (None, "internal"):
        with pytest.raises(DataError, match=rf"{name}(:| line \d)") as caught:
            load_folder(folder, default_access=default)
        assert "access" in str(caught.value) or "nests" in str(caught.value)
    with pytest.warns(UserWarning, match="never indexed as public"):
        kept = load_folder(folder, skip_bad=True, default_access="internal")
    assert [d.meta["source"] for d in kept] == ["note.txt"]


@pytest.mark.parametrize("content", list(HIDDEN_ACCESS.values()), ids=list(HIDDEN_ACCESS))
def test_an_access_level_under_another_name_or_out_of_sight_never_becomes_public(tmp_path, content):
    _refused_never_public(tmp_path, "pay.md", content + BODY)


@pytest.mark.parametrize("content", list(HIDDEN_IN_HTML.values()), ids=list(HIDDEN_IN_HTML))
def test_an_access_level_above_or_inside_an_html_page_never_becomes_public(tmp_path, content):
    _refused_never_public(tmp_path, "pay.html", content + BODY + "</p></html>\n")


@pytest.mark.parametrize(
    "content",
    [
        "---\ntitle: Internal tools guide\ntags: [public, howto]\naudience: public\n---\n",
        "---\naccessibility: high\nsuccess: yes\naccessories: none\n---\n",
        "---\naccess: confidential\nclassification: confidential\n---\n",
        "Access: door B, from 8 am.\n\n",
    ],
    ids=["title-and-public-tags", "words-like-access", "strictest-agrees", "access-as-a-word"],
)
def test_ordinary_front_matter_and_text_still_load(tmp_path, content):
    (tmp_path / "a.md").write_text(content + BODY, encoding="utf-8")
    level = "confidential" if "access: confidential" in content else "public"
    assert [d.meta["access"] for d in load_folder(tmp_path)] == [level]


def test_documents_loaded_with_other_access_options_are_not_saved_under_these(tmp_path):
    from kit.saved_index import index_folder

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.txt").write_text("The canteen opens at noon.\n", encoding="utf-8")
    docs = load_folder(folder, default_access="public")
    with pytest.raises(DataError, match="note.txt.*'public'.*gives 'confidential'"):
        index_folder(folder, tmp_path / "idx", default_access="confidential", documents=docs)
    assert not (tmp_path / "idx").exists()  # nothing was saved


def test_two_question_writers_on_one_file_never_write_the_same_id(tmp_path):
    chunks = [Document(content="The pump runs at 40 rpm. The Fennick pump is blue.")]
    path = tmp_path / "qs.jsonl"
    first, second = QuestionWriter(chunks, path), QuestionWriter(chunks, path)  # two tabs
    first.add("How fast does the pump run?", "40 rpm")
    second.add("What colour is the pump?", "blue")
    ids = [r.id for r in load_questions(path)]
    assert ids == ["qs-001", "qs-002"]
    assert QuestionWriter(chunks, path).count == 2  # the file still loads


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda tmp: QuestionWriter([Document(content="x y z")], "/proc/q.jsonl"), "cannot write"),
        (lambda tmp: load_folder(tmp, skip_bad="no"), "skip_bad must be True or False"),
        (lambda tmp: load_folder(tmp, skip_bad=1), "skip_bad must be True or False"),
        (lambda tmp: load_folder("~nosuchuser-kit/docs"), "cannot expand '~'"),
        (lambda tmp: load_folder(tmp / ("a" * 300)), "not a usable folder"),
        (lambda tmp: load_folder(f"{tmp}/do\x00cs"), "folder not found"),
        (lambda tmp: build_rag(42), "index"),
    ],
    ids=[
        "writer-unwritable",
        "skip-bad-text",
        "skip-bad-int",
        "tilde-user",
        "long-name",
        "nul",
        "int",
    ],
)
def test_arguments_of_the_wrong_kind_are_named_before_any_work(tmp_path, call, message):
    (tmp_path / "a.txt").write_text("Some text.\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        call(tmp_path)


def test_one_document_or_a_path_with_a_stray_space_are_what_was_meant(tmp_path):
    writer = QuestionWriter(Document(content="The pump runs at 40 rpm."), tmp_path / "q.jsonl")
    assert writer.current is not None  # one Document is a list of one
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("From docs.\n", encoding="utf-8")
    (tmp_path / "docs ").mkdir()
    (tmp_path / "docs " / "b.txt").write_text("From 'docs '.\n", encoding="utf-8")
    assert [d.meta["source"] for d in load_folder(str(tmp_path / "docs "))] == ["b.txt"]
    assert [d.meta["source"] for d in load_folder(f" {tmp_path / 'docs'} ")] == ["a.txt"]


CSV_FILES = {
    "unclosed-quote-in-header": ('"question,answer\nA?,1\n', "never closed"),
    "huge-header-cell": ("question,answer," + "x" * 140_000 + "\nA?,1,2\n", "longer than"),
}


@pytest.mark.parametrize(("content", "message"), list(CSV_FILES.values()), ids=list(CSV_FILES))
@pytest.mark.parametrize("loader", [load_questions, load_examples], ids=["questions", "examples"])
def test_a_csv_file_that_does_not_parse_is_named_with_its_line(tmp_path, loader, content, message):
    path = tmp_path / "rows.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"rows\.csv line \d+: .*{message}"):
        loader(path)


@pytest.mark.parametrize("ending", ["\r", "\r\n", "mixed"], ids=["old-mac", "windows", "mixed"])
def test_csv_files_with_any_line_ending_load(tmp_path, ending):
    lines = ["question,answer", "How fast?,40 rpm", "What colour?,blue"]
    text = "\r".join(lines[:2]) + "\n" + lines[2] if ending == "mixed" else ending.join(lines)
    (tmp_path / "q.csv").write_bytes(text.encode())
    assert [r.answer for r in load_questions(tmp_path / "q.csv")] == ["40 rpm", "blue"]
    (tmp_path / "e.csv").write_bytes(text.replace("question,answer", "prompt,response").encode())
    assert len(load_examples(tmp_path / "e.csv")) == 2


@pytest.mark.parametrize(
    "marker",
    [
        "[]",
        "null",
        '{"files": []}',
        '{"files": {"adapter_config.json": "2"}}',
        '{"files": {}}',
        '{"files": {}, "base": null}',
        '{"files": {}, "base": "smollm2-135m-instruct"}',
    ],
    ids=["list", "null", "files-list", "size-text", "no-base", "base-null", "base-text"],
)
def test_an_edited_adapter_record_is_named_not_a_traceback(tmp_path, marker):
    (tmp_path / "kit-adapter.json").write_text(marker, encoding="utf-8")
    (tmp_path / "adapter_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(AdapterError, match=r"kit-adapter\.json"):
        load_adapter(tmp_path)


@pytest.mark.parametrize(
    ("filters", "role", "message"),
    [
        ({"field": "meta.access", "operator": "=", "value": "public"}, None, "Unknown filter"),
        ({"field": "meta.access", "operator": "in", "value": "public"}, None, "list of values"),
        ("meta.access == public", None, "must be a dict"),
        ({"access": "public"}, None, "needs 'field'"),
        ({"field": "meta.access", "operator": ">", "value": 1}, None, "cannot be applied"),
        ({"operator": "AND", "conditions": [None]}, None, "non-empty list of filters"),
        ({"operator": "AND", "conditions": []}, None, "non-empty list of filters"),
        ("deep", None, "levels deep"),
        (None, ["admin"], "one role's name"),
    ],
    ids=["eq", "in-text", "text", "old-style", "gt-on-text", "none", "empty", "deep", "roles"],
)
def test_a_filter_that_cannot_work_is_named_by_every_retrieval_call(
    index, lm, filters, role, message
):
    if filters == "deep":
        filters = {"field": "meta.access", "operator": "==", "value": "public"}
        for _ in range(200):
            filters = {"operator": "AND", "conditions": [filters]}
    rag = build_rag(index, generator=lm)
    with pytest.raises(RagError, match=message):
        rag.retrieve("How often should the sensor be cleaned?", role=role, filters=filters)
    if role is None:
        with pytest.raises(RagError, match=message):
            retrieve(retrieval_pipeline(index), "How often?", filters)


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "99999"],
        ["serve", "--port", "-1"],
        ["run", "--out", ""],
        ["run", "--profile", " "],
        ["doctor", "--profile", ""],
        ["run", "--docs", ""],
    ],
    ids=["port-high", "port-negative", "out-empty", "profile-blank", "doctor-empty", "docs-empty"],
)
def test_a_blank_or_impossible_option_stops_the_command_before_any_work(capsys, argv):
    from kit.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert ("is empty" in err or "port number" in err) and "Traceback" not in err


@pytest.mark.parametrize(
    ("question", "sources", "foreign"),
    [
        ("Wie viel wiegt sie?", "Die Pumpe wiegt 12 kg. Sie läuft mit 40 U/min.", False),
        ("Wer macht die Wartung?", "Die Wartung macht der Kundendienst.", False),
        ("芬尼克泵的转速是多少？", "芬尼克泵的转速是每分钟40转。", False),
        ("Quel est le prix du capteur Fennick S2 ?", "The Fennick S2 sensor costs 240 EUR.", True),
        ("Wie viel wiegt die Pumpe?", "The pump weighs 12 kg and runs at 40 rpm.", True),
        ("Wie oft muss die Pumpe laufen?", "Batteries die after 2 years; replace per pack.", True),
        ("Πόσο ζυγίζει η αντλία;", "The pump weighs 12 kg; the µ-filter holds 5 µm.", True),
        ("Max rpm per pump?", "The pump runs at 40 rpm.", False),  # "per" is English too
    ],
    ids=[
        "de-over-de",
        "de-over-de-2",
        "zh-over-zh",
        "fr-over-en",
        "de-over-en",
        "de-en-die",
        "el-µ",
        "en-per",
    ],
)
def test_a_question_in_the_language_of_its_sources_is_not_foreign(question, sources, foreign):
    from kit.prompts import reads_as_foreign

    assert reads_as_foreign(question, sources) is foreign


def _generator_replying(text: str, asked: list | None = None) -> object:
    """A Haystack chat generator component that always replies ``text`` (and notes, in
    ``asked``, the messages of each call): the RAG's pipeline runs without a model."""
    from haystack import component
    from haystack.dataclasses import ChatMessage

    @component
    class Reply:
        def __init__(self) -> None:
            component.set_input_type(self, "messages", list[ChatMessage])

        @component.output_types(replies=list[ChatMessage])
        def run(self, **kwargs):
            if asked is not None:
                asked.append(kwargs["messages"])
            return {"replies": [ChatMessage.from_assistant(text)]}

    return Reply()


def test_a_reply_cut_inside_a_character_loses_it_in_the_pipeline_too(index):
    cut = _generator_replying("The pump runs at 40 rpm \ufffd")  # the token limit cut it there
    rag = build_rag(index, generator=cut, min_score=None)  # always asks the generator
    answer = rag.answer("How fast does the pump run?")
    assert answer.text == "The pump runs at 40 rpm"


def test_rag_evaluation_leaves_out_what_it_cannot_score_and_refuses_repeated_ids(index):
    from kit.data import QARecord
    from kit.rag_eval import evaluate_rag, evaluate_retrieval

    def record(ident: str, question: str, gold: list[str]) -> QARecord:
        return QARecord(ident, question, "x", gold, "user", "test", [])

    rag = build_rag(index, generator=_generator_replying("40 rpm [1]"), min_score=None)
    mixed = [record("a", "What does the S2 cost?", ["kb-004"]), record("b", "Who is Sam?", [])]
    rows = evaluate_rag(rag, records=mixed)
    assert list(rows["id"]) == ["a", "b"] and math.isnan(rows.set_index("id").at["b", "mrr"])
    assert set(evaluate_retrieval(index, records=mixed)["id"]) == {"a"}  # b has no gold docs
    with pytest.raises(RagError, match="gold documents"):
        evaluate_retrieval(index, records=mixed[1:])
    with pytest.raises(RagError, match="id\\(s\\) a are used twice"):
        evaluate_rag(rag, records=[mixed[0], mixed[0]])


def test_a_question_in_another_script_is_looked_up_and_answered():
    asked: list = []
    zh = build_index([Document(content="芬尼克泵的转速是每分钟40转。", meta={"doc_id": "pump"})])
    rag = build_rag(zh, generator=_generator_replying("每分钟40转 [1]", asked), min_score=None)
    answer = rag.answer("芬尼克泵的转速是多少？")  # no Latin word: still something to look up
    assert len(asked) == 1 and answer.text.startswith("每分钟40转")
    assert rag.answer("???").text == "I don't know" and len(asked) == 1  # nothing to look up


@pytest.mark.parametrize(
    ("options", "message"),
    [({"system": 42}, "system must be text"), ({"abstainer": "yes"}, "learned decision")],
    ids=["system-number", "abstainer-text"],
)
def test_rag_names_and_deciders_are_checked_when_built(index, lm, options, message):
    with pytest.raises(ValueError, match=message):
        build_rag(index, generator=lm, **options)


def test_the_chunks_of_a_document_are_asked_by_its_id(index):
    from kit.indexing import chunks_of

    with pytest.raises(ValueError, match="doc .*must be text"):
        chunks_of(index, 42)
    assert chunks_of(index, "kb-004")  # a real id still finds its chunks


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "A?", "answer": "1", "answer": "2"}\n', "'answer' is set twice"),
        ('{\n  "question": "A?",\n  "answer": "1"\n}\n', "one JSON document over several lines"),
        ("[" * 100_000 + "\n", "nested too deeply"),
    ],
    ids=["key-twice", "pretty-printed", "deep"],
)
def test_a_question_file_that_is_json_but_not_jsonl_is_named(tmp_path, content, message):
    (tmp_path / "q.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_questions(tmp_path / "q.jsonl")


def test_a_csv_column_written_twice_is_refused(tmp_path):
    (tmp_path / "q.csv").write_text("question,answer,answer\nA?,1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 1: the column\(s\) \['answer'\] appear twice"):
        load_questions(tmp_path / "q.csv")


def test_half_a_character_and_a_repeated_example_id_are_named(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"question": "A\\ud800?", "answer": "b"}\n', "utf-8")
    with pytest.raises(DataError, match="line 1: 'question' holds half of a character"):
        load_questions(tmp_path / "q.jsonl")
    pair = {"prompt": "Hi?", "response": "Hello."}
    lines = [json.dumps({"id": "ex-1", **pair}), json.dumps({"id": "ex-1", **pair})]
    (tmp_path / "e.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(DataError, match="two examples have the id 'ex-1'"):
        load_examples(tmp_path / "e.jsonl")


def test_a_table_of_examples_is_read_row_by_row():
    import pandas as pd

    table = pd.DataFrame({"prompt": ["Hi?", "Bye?"], "response": ["Hello.", "Goodbye."]})
    examples = load_examples(table)
    assert [e.messages[-1]["content"] for e in examples] == ["Hello.", "Goodbye."]


# --------------------------------------------------------------------------- round 4
# A fourth hostile run (SIGTERM, interrupted saves, concurrency, odd-but-valid input). The
# training findings are tested in tests/test_finetune.py (a second training into one folder,
# damaged checkpoints and run records, `kit run` continuing after a stop).


@pytest.mark.parametrize("last", ["", "\r"], ids=["no-final-newline", "old-mac-ending"])
def test_a_question_file_saved_without_its_last_newline_gets_a_line_of_its_own(tmp_path, last):
    path = tmp_path / "mine.jsonl"
    first = {"id": "mine-001", "question": "How fast does the pump run?", "answer": "40 rpm"}
    path.write_text(json.dumps(first) + last)  # as an editor may save it
    chunks = [Document(content="The tank holds 800 litres.", meta={"id": "tank.md"})]
    QuestionWriter(chunks, path).add("How much does the tank hold?", "800 litres")
    assert [r.id for r in load_questions(path)] == ["mine-001", "mine-002"]


def test_a_misspelt_rag_option_is_named_with_the_nearest_one(index):
    with pytest.raises(RagError, match="no option 'topk': did you mean 'top_k'"):
        build_rag(index, topk=3)


def test_questions_in_an_array_or_series_are_questions_and_batch_size_is_checked_first(index, lm):
    import pandas as pd

    qa = build_rag(index, generator=lm, profile="smoke", min_score=0.99)  # declines everything
    for questions in (np.array(["a pump?", "a tank?"]), pd.Series(["a pump?", "a tank?"])):
        assert [a.text for a in qa.answer_batch(questions)] == ["I don't know"] * 2
    with pytest.raises(inputs.InputError, match="batch_size"):
        qa.answer_batch(["a pump?"], batch_size=0)  # refused even when nothing is generated
    with pytest.raises(RagError, match="list of questions, not int"):
        qa.answer_batch(42)
    with pytest.raises(RagError, match="for one question call rag"):
        qa.answer_batch(np.array("a pump?"))  # one question in an array: not 7 letters


def test_a_front_matter_value_yaml_cannot_make_is_named(tmp_path):
    (tmp_path / "a.md").write_text("---\ndate: 2024-02-30\n---\nThe canteen opens at noon.\n")
    with pytest.raises(DataError, match=r"a\.md: a front matter value cannot be read.*quotes"):
        load_folder(tmp_path)


def test_a_file_the_kit_may_not_read_is_named_with_the_fix(tmp_path, monkeypatch):
    from pathlib import Path

    from kit.saved_index import folder_fingerprint

    (tmp_path / "a.md").write_text("The canteen opens at noon.\n")
    read = Path.read_bytes

    def refused(self):  # what chmod 000 does to a user that is not root
        if self.name == "a.md":
            raise PermissionError(13, "Permission denied")
        return read(self)

    monkeypatch.setattr(Path, "read_bytes", refused)
    for reading in (load_folder, folder_fingerprint):
        with pytest.raises(DataError, match=r"a\.md: cannot read it \(Permission denied\); fix"):
            reading(tmp_path)


def test_two_files_with_one_document_id_are_named(tmp_path):
    (tmp_path / "a.md").write_text("---\nid: pricing\n---\nThe S2 costs 129 EUR.\n")
    (tmp_path / "b.md").write_text("---\nid: pricing\n---\nThe S3 costs 149 EUR.\n")
    with pytest.raises(DataError, match=r"a\.md and b\.md both have the document id 'pricing'"):
        load_folder(tmp_path)


def test_a_hidden_file_given_itself_is_fingerprinted_by_its_text(tmp_path):
    from kit.saved_index import folder_fingerprint

    notes = tmp_path / ".notes.md"
    notes.write_text("The canteen opens at noon.\n")
    before = folder_fingerprint(notes)
    notes.write_text("The canteen opens at one.\n")
    assert folder_fingerprint(notes) != before  # an edit is seen: the saved index is rebuilt


def test_a_folder_the_kit_may_not_list_is_not_called_empty(tmp_path, monkeypatch):
    import os

    (tmp_path / "a.md").write_text("The canteen opens at noon.\n")
    listing = os.scandir

    def refused(path):  # what a folder without read permission does for a user that is not root
        if str(path) == str(tmp_path):
            raise PermissionError(13, "Permission denied")
        return listing(path)

    monkeypatch.setattr(os, "scandir", refused)
    with pytest.raises(DataError, match="cannot list this folder \\(Permission denied\\); fix"):
        load_folder(tmp_path)


def test_examples_from_a_folder_with_no_public_document_say_why():
    from kit.your_data import house_style_examples

    record = QARecord("q-1", "When does the canteen open?", "noon", ["a.md"], "user", "train", [])
    internal = [
        Document(content="The canteen opens at noon.", meta={"id": "a.md", "access": "internal"})
    ]
    with pytest.raises(DataError, match="none of your documents is public.*mark some public"):
        house_style_examples([record], internal)
