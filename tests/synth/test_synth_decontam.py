"""N-gram decontamination: tables of (questions, eval texts, dropped indices)."""

from __future__ import annotations

import json

import pytest

from rlmath.errors import RLMathError
from rlmath.synth.decontam import contaminated, load_eval_texts, tokens

CASES = [
    # exact duplicate, ignoring case, punctuation and LaTeX markup
    (["Solve for $x$: $3x + 5 = 20$."], ["solve for x: 3x+5=20"], [0]),
    # a short synthetic question found inside a longer eval problem
    (["What is 12 + 30?"], ["Tom asks: what is 12 + 30? Then he adds 4 more."], [0]),
    # different numbers: not contaminated
    (["What is 12 + 31?"], ["what is 12 + 30"], []),
    # a long question sharing under half of its 8-grams is kept
    (
        ["A bag holds 3 red and 4 blue marbles and one more thing happens today here."],
        ["A bag holds 3 red and 4 blue marbles"],
        [],
    ),
    (["anything"], [], []),
]


@pytest.mark.parametrize("questions, evals, dropped", CASES)
def test_contaminated_table(questions, evals, dropped):
    assert contaminated(questions, evals) == dropped


def test_tokens_ignore_latex_commands():
    assert tokens(r"$\frac{1}{2} \times 4$") == ["1", "2", "4"]


def test_load_eval_texts_from_jsonl_json_parquet_and_datasets_folder(tmp_path):
    rows = [{"problem": "What is 1 + 1?", "answer": "2"}, {"problem": "Solve 2x = 4.", "answer": "2"}]
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "e.json").write_text(json.dumps(rows))
    import datasets

    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "e.parquet"))
    ds.save_to_disk(str(tmp_path / "folder"))
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "dd"))
    for name in ("e.jsonl", "e.json", "e.parquet", "folder", "dd"):
        assert load_eval_texts(str(tmp_path / name)) == ["What is 1 + 1?", "Solve 2x = 4."]


def test_rows_without_a_text_field_name_the_option(tmp_path):
    (tmp_path / "e.jsonl").write_text(json.dumps({"foo": "bar"}))
    with pytest.raises(RLMathError, match="decontaminate_against"):
        load_eval_texts(str(tmp_path / "e.jsonl"))


def test_missing_path_names_the_option(tmp_path):
    with pytest.raises(RLMathError, match="decontaminate_against.*not an existing file"):
        load_eval_texts(str(tmp_path / "nope.jsonl"))


def test_hub_id_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RLMathError, match="decontaminate_against.*offline"):
        load_eval_texts("openai/gsm8k")
