"""The one row reader: local formats, field mapping, difficulty, bad input, and one offline rule.

Bad input goes through the CLI too (``rlmath eval --dataset``, ``rlmath synth --decontaminate-against``):
a message naming the file or field, a non-zero exit, no traceback, nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from typer.testing import CliRunner

from rlmath.cli import app
from rlmath.errors import RLMathError
from rlmath.sources import Fields, hub_reachable, load, parse_difficulty, question_texts, read_rows

ROWS = [{"problem": "What is 1 + 1?", "answer": "2", "level": "Level 3"},
        {"problem": "Solve 2x = 4.", "answer": "2", "level": "Level ?"}]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_every_local_format_reads_the_same_rows(tmp_path: Path) -> None:
    _jsonl(tmp_path / "e.jsonl", ROWS)
    (tmp_path / "e.json").write_text(json.dumps(ROWS))
    table = datasets.Dataset.from_list(ROWS)
    table.to_parquet(str(tmp_path / "e.parquet"))
    table.to_csv(str(tmp_path / "e.csv"), index=False)
    table.save_to_disk(str(tmp_path / "folder"))
    datasets.DatasetDict({"test": table}).save_to_disk(str(tmp_path / "dd"))
    for name in ("e.jsonl", "e.json", "e.parquet", "e.csv", "folder", "dd"):
        loaded = load(str(tmp_path / name))
        assert [(p.question, p.answer, p.difficulty) for p in loaded.problems] == [
            ("What is 1 + 1?", "2", 3), ("Solve 2x = 4.", "2", 0)], name
        assert question_texts(str(tmp_path / name)) == ["What is 1 + 1?", "Solve 2x = 4."]


@pytest.mark.parametrize("value, level", [("Level 3", 3), (4, 4), ("2", 2), (None, 0), ("Level ?", 0)])
def test_difficulty_parsing(value, level) -> None:
    assert parse_difficulty(value) == level


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RLMathError, match=r"dataset file not found: .*nope\.jsonl"):
        load(str(tmp_path / "nope.jsonl"))


def test_missing_question_or_answer_field_lists_the_fields(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", [{"q": "Q", "gold": "3"}])
    with pytest.raises(RLMathError, match=r"d\.jsonl: no question field .*fields are \['gold', 'q'\]"):
        load(str(path))
    with pytest.raises(RLMathError, match=r"d\.jsonl: no answer field .*fields are \['gold', 'q'\]"):
        load(str(path), fields=Fields(question="q"))
    with pytest.raises(RLMathError, match=r"no field 'answer'; fields are"):
        load(str(path), fields=Fields("q", "answer"))


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file_says_empty_not_offline(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    with pytest.raises(RLMathError, match=r"empty\.jsonl: the dataset is empty") as caught:
        load(str(path))
    assert "offline" not in str(caught.value).lower()


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n{"question": "b", "answer": \n')
    with pytest.raises(RLMathError, match=r"bad\.jsonl, line 2: not valid JSON") as caught:
        load(str(path))
    assert "offline" not in str(caught.value).lower()


def test_unparseable_golds_are_counted_and_skipped(tmp_path: Path, caplog) -> None:
    rows = [{"question": "q1", "answer": "5"}, {"question": "q2", "answer": "@@ ??"}, {"question": "q3", "answer": "7"}]
    loaded = load(str(_jsonl(tmp_path / "g.jsonl", rows)))
    assert [p.question for p in loaded.problems] == ["q1", "q3"] and loaded.skipped_golds == 1
    assert "skipped 1 of 3 rows whose gold answer does not parse" in caplog.text
    with pytest.raises(RLMathError, match="none of the 1 gold answers parses"):
        load(str(_jsonl(tmp_path / "h.jsonl", rows[1:2])))


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"])
def test_one_offline_rule_honours_both_variables(monkeypatch, variable: str) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv(variable, "1")
    assert hub_reachable() is False


def _offline(monkeypatch, tmp_path: Path) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", datasets.config.HF_HUB_OFFLINE)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", huggingface_hub.constants.HF_HUB_OFFLINE)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "no-cache"))


def test_offline_preset_fails_the_same_for_eval_sets_and_decontamination(monkeypatch, tmp_path: Path) -> None:
    """`synth --decontaminate-against gsm8k` resolves the preset like `eval --dataset gsm8k` does."""
    _offline(monkeypatch, tmp_path)
    messages = []
    for read in (lambda: load("gsm8k"), lambda: question_texts("gsm8k")):
        with pytest.raises(RLMathError, match=r"cannot load 'gsm8k'.*Offline, pass a local file") as caught:
            read()
        messages.append(str(caught.value).split(" (")[0])
    assert messages[0] == messages[1]


def _cli(args: list[str]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    return " ".join(result.output.split())


@pytest.mark.parametrize("name, text, message", [
    ("missing.jsonl", None, "dataset file not found"),
    ("empty.jsonl", "", "the dataset is empty"),
    ("bad.jsonl", '{"question": "a", "answer": "1"}\nnot json\n', "line 2: not valid JSON"),
    ("fields.jsonl", '{"q": "a", "gold": "1"}\n', "no question field"),
])
def test_bad_datasets_through_the_cli(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    out = tmp_path / "synth-out"
    for args in (["eval", "--dataset", str(path)],
                 ["synth", "--n", "5", "--out", str(out), "--decontaminate-against", str(path)]):
        output = _cli(args)
        assert name in output and message in output, output
    assert not out.exists()


def test_offline_preset_through_both_commands(monkeypatch, tmp_path: Path) -> None:
    _offline(monkeypatch, tmp_path)
    out = tmp_path / "synth-out"
    for args in (["eval", "--dataset", "gsm8k"],
                 ["synth", "--n", "5", "--out", str(out), "--decontaminate-against", "gsm8k"]):
        assert "cannot load 'gsm8k' from the Hugging Face Hub" in _cli(args)
    assert not out.exists()


def test_read_rows_reports_the_preset(tmp_path: Path) -> None:
    rows, found = read_rows(str(_jsonl(tmp_path / "gsm8k.jsonl", ROWS)))
    assert found is None and len(rows) == 2
