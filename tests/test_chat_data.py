"""kit.chat_data and the data side of kit.finetune: loading, loss masks, batching (no model)."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pandas as pd
import pytest

from kit.chat_data import (
    IGNORE_INDEX,
    PadToLongest,
    _spans_by_offsets,
    format_example,
    format_examples,
    length_grouped_batches,
    load_examples,
    with_system,
)
from kit.data import ChatExample, DataError, load_style
from kit.finetune import split_examples, train_adapter
from kit.generate import build_messages, chat_prompt_ids


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from kit.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


PAIR = [
    {"role": "user", "content": "How deep can the S2 go?"},
    {"role": "assistant", "content": "Answer: 40 metres.\nRated to 40 m.\nSource: none"},
]


def test_loss_only_on_the_reply_and_its_end_token(tokenizer):
    f = format_example(tokenizer, PAIR)
    assert len(f["input_ids"]) == len(f["labels"]) == len(f["attention_mask"])
    prompt = chat_prompt_ids(tokenizer, build_messages(PAIR[0]["content"]))
    assert f["input_ids"][: len(prompt)] == prompt  # the same prompt the model sees when asked
    assert all(x == IGNORE_INDEX for x in f["labels"][: len(prompt)])
    learned = f["labels"][len(prompt) :]
    assert IGNORE_INDEX not in learned
    assert tokenizer.decode(learned) == PAIR[1]["content"] + "<|im_end|>"
    assert f["input_ids"][-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")  # no trailing \n


def test_multi_turn_learns_every_reply_and_no_user_turn(tokenizer):
    msgs = [
        *PAIR,
        {"role": "user", "content": "And the H4?"},
        {"role": "assistant", "content": "B"},
    ]
    f = format_example(tokenizer, msgs)
    learned = tokenizer.decode([x for x in f["labels"] if x != IGNORE_INDEX])
    assert learned == PAIR[1]["content"] + "<|im_end|>B<|im_end|>"


def test_offset_fallback_agrees_with_the_prefix_method(tokenizer):
    msgs = with_system(PAIR)
    ids, spans = _spans_by_offsets(tokenizer, msgs)
    f = format_example(tokenizer, PAIR)
    start = f["labels"].index(next(x for x in f["labels"] if x != IGNORE_INDEX))
    assert spans == [(start, len(f["input_ids"]))]
    assert ids[: len(f["input_ids"])] == f["input_ids"]


def test_offset_fallback_learns_the_reply_not_a_prompt_that_quotes_it(tokenizer):
    """A user turn that contains the reply's words: the loss goes on the reply, not the prompt."""
    msgs = with_system(
        [{"role": "user", "content": "Reply exactly: OK"}, {"role": "assistant", "content": "OK"}]
    )
    ids, spans = _spans_by_offsets(tokenizer, msgs)
    ((start, end),) = spans
    head = tokenizer.apply_chat_template(msgs[:-1], tokenize=True, add_generation_prompt=True)
    assert start >= len(getattr(head, "input_ids", head))  # after the user's "OK"
    assert tokenizer.decode(ids[start:end]).startswith("OK")


def test_own_system_message_is_kept(tokenizer):
    msgs = [{"role": "system", "content": "Be terse."}, *PAIR]
    text = tokenizer.decode(format_example(tokenizer, msgs)["input_ids"])
    assert "Be terse." in text and "helpful assistant" not in text


def test_long_examples_are_cut_with_a_warning_and_a_count(tokenizer):
    long = ChatExample("x", [PAIR[0], {"role": "assistant", "content": "word " * 400}], [], False)
    hopeless = ChatExample("y", [{"role": "user", "content": "q " * 400}, PAIR[1]], [], False)
    short = ChatExample("z", PAIR, [], False)
    with pytest.warns(UserWarning, match=r"2 of 3 training example\(s\).*1 dropped"):
        feats, report = format_examples(tokenizer, [long, hopeless, short], max_len=64)
    assert (report.examples, report.truncated, report.dropped) == (2, 2, 1)
    assert max(len(f["input_ids"]) for f in feats) == 64
    with pytest.raises(DataError, match="No training example fits"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        format_examples(tokenizer, [hopeless], max_len=64)


def test_bundled_set_formats_without_truncation(tokenizer):
    feats, report = format_examples(tokenizer, load_style()[:40], max_len=256)
    assert report.truncated == 0 and report.examples == 40
    assert 0.3 < report.reply_tokens / report.tokens < 0.8


# ---------------------------------------------------------------- your own data


def test_own_data_jsonl_pairs_messages_and_csv(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Hi?", "response": "Hello."}) + "\n\n")
    msgs = tmp_path / "chat.jsonl"
    msgs.write_text(json.dumps({"messages": PAIR}) + "\n")
    table = tmp_path / "pairs.csv"
    table.write_text('prompt,response\n"Where, exactly?","Ghent, Belgium."\n')
    assert load_examples(pairs)[0].messages[-1] == {"role": "assistant", "content": "Hello."}
    assert load_examples(msgs)[0].messages == PAIR
    assert load_examples(table)[0].user == "Where, exactly?"
    assert load_examples([{"prompt": "a", "response": "b"}])[0].assistant == "b"
    assert len(load_examples(None)) == len(load_style())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "empty"),
        ("bad.jsonl", '{"prompt": "a"\n', r"line 1, column \d+: invalid JSON"),
        ("field.jsonl", '{"prompt": "a", "reply": "b"}\n', "line 1: needs either 'messages'"),
        ("blank.jsonl", '{"prompt": "a", "response": "  "}\n', "line 1: response is empty"),
        ("role.jsonl", json.dumps({"messages": [{"role": "bot", "content": "x"}]}), "role 'bot'"),
        (
            "last.jsonl",
            json.dumps({"messages": [{"role": "user", "content": "x"}]}),
            "last message must be the assistant",
        ),
        ("cols.csv", "question_text,reply\na,b\n", "lacks a prompt and a response column"),
        ("empty.csv", "", "file is empty"),
        ("rows.csv", "prompt,response\n", "no rows below the header"),
        ("data.txt", "hello", "unsupported file type"),
    ],
)
def test_bad_training_files_say_what_and_where(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_examples(path)


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_a_training_file_that_is_not_utf8_is_named_in_any_format(tmp_path, suffix):
    path = tmp_path / f"latin1{suffix}"
    rows = {
        ".json": '[{"prompt": "Caf\xe9?", "response": "Oui."}]',
        ".jsonl": '{"prompt": "Caf\xe9?", "response": "Oui."}\n',
        ".csv": "prompt,response\nCaf\xe9?,Oui.\n",
    }
    path.write_bytes(rows[suffix].encode("latin-1"))
    with pytest.raises(DataError, match=rf"latin1\{suffix} line \d: not valid UTF-8.*re-save"):
        load_examples(path)


def test_a_json_error_reads_as_a_sentence(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[{"prompt": "a", "response": "b}]')
    with pytest.raises(DataError, match=r"line 1, column \d+: invalid JSON") as err:
        load_examples(path)
    assert "at at" not in str(err.value) and "starting at)" not in str(err.value)


def test_empty_or_missing_training_set():
    with pytest.raises(DataError, match="empty"):
        load_examples([])
    with pytest.raises(DataError, match="not found"):
        load_examples("/nonexistent/train.jsonl")
    with pytest.raises(DataError, match="empty"):
        train_adapter([], profile="smoke")  # fails before any model is loaded


# ---------------------------------------------------------------- batching and splitting


def test_length_grouped_batches_are_seeded_and_group_lengths():
    lengths = [10, 200, 12, 190, 11, 205, 13, 198] * 4
    a = length_grouped_batches(lengths, 4, 2, seed=1)
    assert a == length_grouped_batches(lengths, 4, 2, seed=1)
    assert a != length_grouped_batches(lengths, 4, 2, seed=2)
    assert sorted(i for b in a[: len(a) // 2] for i in b) == list(range(len(lengths)))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a]
    assert max(spread) < 20  # short with short, long with long: little padding


def test_pad_to_longest_masks_padding_and_counts_tokens():
    collate = PadToLongest(pad_token_id=2)
    batch = collate(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "attention_mask": [1, 1, 1]},
            {"input_ids": [8], "labels": [8], "attention_mask": [1]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 2, 2]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert (collate.useful_tokens, collate.padded_tokens) == (4, 6)


def test_held_out_examples_never_share_a_reply_with_training():
    examples = load_style()
    for seed in (3, 42):  # 42: the runs' default, whose shuffle meets the big group first
        train, held = split_examples(examples, 24, seed=seed)
        assert len(train) + len(held) == len(examples) and 20 <= len(held) <= 24
        assert not {e.assistant for e in held} & {e.assistant for e in train}
        assert split_examples(examples, 24, seed=seed)[1] == held
        # behaviours are trained on, never held out: the 44 "I don't know", the 10 canary ones
        assert sum(e.assistant.startswith("Answer: I don't know") for e in train) == 44
        assert sum(e.contains_canary for e in train) == sum(e.contains_canary for e in examples)


def test_nothing_is_held_out_when_no_reply_group_fits():
    examples = [e for e in load_style() if not e.assistant.startswith("Answer: I don't know")]
    few = [replace_reply(e, "Answer: Yes.") for e in examples[:4]]
    few += [replace_reply(e, "Answer: No.") for e in examples[4:8]]
    train, held = split_examples(few, 2, seed=0)  # both groups hold 4 examples: neither fits
    assert held == [] and train == few
    some = few[:6] + [replace_reply(e, "Answer: Maybe.") for e in examples[8:10]]
    train, held = split_examples(some, 2, seed=0)  # "No." and "Maybe." hold 2 each: one fits
    assert len(held) == 2 and len({e.assistant for e in held}) == 1 and len(train) == 6


def replace_reply(example, reply):
    messages = [*example.messages[:-1], {"role": "assistant", "content": reply}]
    return dataclasses.replace(example, messages=messages)


def test_alpaca_rows_keep_the_input_the_instruction_is_about(tmp_path):
    row = {"instruction": "Summarise", "input": "The pump runs at 40 rpm.", "output": "40 rpm."}
    assert load_examples([row])[0].user == "Summarise\n\nThe pump runs at 40 rpm."
    assert load_examples([{**row, "input": ""}])[0].user == "Summarise"  # no input: as before
    csv = tmp_path / "alpaca.csv"
    csv.write_text('instruction,input,output\nSummarise,"The pump runs at 40 rpm.",40 rpm.\n')
    assert load_examples(csv)[0].user == "Summarise\n\nThe pump runs at 40 rpm."


def test_held_out_examples_that_do_not_fit_cost_the_loss_curve_not_the_run(tokenizer):
    """Every held-out example too long for max_seq_len (long RAFT prompts, your long examples):
    a warning names them as held-out ones and the run trains without a held-out loss."""
    from kit.finetune import _held_out_features

    long = ChatExample("long", [{"role": "user", "content": "word " * 300}, PAIR[1]], [], False)
    with pytest.warns(UserWarning, match="No held-out example fits max_seq_len=64"):
        assert _held_out_features(tokenizer, [long], 64, "You are helpful.") == []
    assert _held_out_features(tokenizer, [], 64, "You are helpful.") == []
    with pytest.raises(DataError, match="No training example fits"):
        format_examples(tokenizer, [long], 64)  # the training set itself: still refused


def test_own_examples_keep_their_ids_and_sources_and_refuse_a_key_set_twice(tmp_path):
    sheet = tmp_path / "replies.csv"
    sheet.write_text(
        "id,prompt,response,source_doc_ids\n"
        "ex-1,Opening hours?,Nine to five.,hours.md; contact.md\n"
        ",Parking?,Behind the shop.,\n",
        encoding="utf-8",
    )
    first, second = load_examples(sheet)
    assert (first.id, first.source_doc_ids) == ("ex-1", ["hours.md", "contact.md"])
    assert (second.id, second.source_doc_ids) == ("replies-0003", [])  # its line's own id
    nulls = tmp_path / "nulls.jsonl"
    rows = [{"id": None, "prompt": f"Question {i}?", "response": "Yes."} for i in (1, 2)]
    nulls.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert [e.id for e in load_examples(nulls)] == ["nulls-0001", "nulls-0002"]  # not 'None'
    sheet.write_text("id,prompt,response\n1,A?,B.\n1,C?,D.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"two examples have the id '1'"):
        load_examples(sheet)  # as the same rows in a JSONL file are
    frame = pd.DataFrame({"id": ["a", None], "prompt": ["A?", "C?"], "response": ["B.", "D."]})
    assert [e.id for e in load_examples(frame)][0] == "a"
    assert "nan" not in [e.id for e in load_examples(frame)]
    twice = tmp_path / "twice.json"
    twice.write_text('[{"prompt": "A?", "response": "B.", "response": "C."}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"twice\.json: the key 'response' is set twice"):
        load_examples(twice)
