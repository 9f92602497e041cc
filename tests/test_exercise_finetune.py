"""kit.exercises.finetune: a right answer written another way passes its check."""

from __future__ import annotations

import numpy as np

from kit.exercises import finetune as ex_finetune


def _solution_labels() -> list[int]:
    from kit.chat_data import with_system
    from kit.generate import chat_prompt_ids

    tok = ex_finetune._tokenizer()
    messages = with_system(ex_finetune.example().messages)
    prompt_ids = chat_prompt_ids(tok, messages[:-1])
    full_ids = tok.apply_chat_template(messages)["input_ids"]
    return [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]


def test_finetune_q2_takes_the_labels_as_a_list_a_tuple_or_numpy_ints():
    labels = _solution_labels()
    for given in (labels, tuple(labels), list(np.array(labels)), np.array(labels)):
        result = ex_finetune.q2.evaluate(labels=given)
        assert result.passed, (type(given), result.message)
    for wrong in ([float(x) for x in labels], [True, *labels[1:]], "labels"):
        result = ex_finetune.q2.evaluate(labels=wrong)
        assert not result.passed and "list of integers" in result.message
