"""Eval datasets: GSM8K/MATH gold extraction, local files in benchmark shapes, a clear offline error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rewards.extract import last_boxed
from rlmath.errors import RLMathError
from rlmath.eval_data import load_eval_set
from rlmath.sources import PRESETS, gold_answer


@pytest.mark.parametrize("solution, gold", [
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
    ("... = 1,800 dollars\n#### 1,800", "1800"),
    (r"So the answer is $\boxed{\frac{14}{3}}$.", r"\frac{14}{3}"),
    (r"first \boxed{1}, then $\boxed{\left( 3, \frac{\pi}{2} \right)}$", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"\fbox{5}", "5"),
    ("7", "7"),
])
def test_gold_answer(solution: str, gold: str) -> None:
    assert gold_answer(solution) == gold


def test_unbalanced_box_is_not_an_answer() -> None:
    assert last_boxed(r"\boxed{\frac{1}{2}") is None


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def test_local_gsm8k_shaped_file(tmp_path: Path) -> None:
    rows = [{"question": "Q1", "answer": "work\n#### 10"}, {"question": "Q2", "answer": "work\n#### 2,000"}]
    data = load_eval_set(str(_write(tmp_path / "gsm8k.jsonl", rows)))
    assert [(p.question, p.answer) for p in data.problems] == [("Q1", "10"), ("Q2", "2000")]
    assert data.category_field is None


def test_local_math_shaped_file_uses_problem_solution_subject_and_level(tmp_path: Path) -> None:
    rows = [{"problem": "P", "solution": r"so $\boxed{\frac{1}{2}}$", "subject": "Algebra", "level": 3},
            {"problem": "R", "solution": r"\boxed{4}", "subject": "Geometry", "level": "Level 5"}]
    data = load_eval_set(str(_write(tmp_path / "math500.jsonl", rows)), limit=2)
    assert [(p.question, p.answer, p.family, p.difficulty) for p in data.problems] == [
        ("P", r"\frac{1}{2}", "Algebra", 3), ("R", "4", "Geometry", 5)]
    assert data.category_field == "subject"


def test_named_fields_and_missing_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [{"q": "Q", "a": "3", "topic": "t"}])
    data = load_eval_set(str(path), question_field="q", answer_field="a", category_field="topic")
    assert data.problems[0].answer == "3" and data.problems[0].family == "t"
    with pytest.raises(RLMathError, match="no field 'question_text'.*fields are"):
        load_eval_set(str(path), question_field="question_text")
    with pytest.raises(RLMathError, match="no question field.*--question-field"):
        load_eval_set(str(path))


def test_presets_cover_the_benchmarks() -> None:
    assert {"gsm8k", "math", "math500"} <= set(PRESETS)
    assert PRESETS["math500"].hub_id == "HuggingFaceH4/MATH-500"


def test_offline_hub_id_fails_fast_and_says_how_to_pass_a_local_file(monkeypatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    import rlmath.sources as sources

    monkeypatch.setattr(sources, "hub_reachable", lambda *a, **k: False)
    # _go_offline flips these for the process; let monkeypatch restore them afterwards.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", datasets.config.HF_HUB_OFFLINE)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", huggingface_hub.constants.HF_HUB_OFFLINE)
    monkeypatch.setenv("HF_DATASETS_CACHE", "/nonexistent-rlmath-cache")
    started = time.perf_counter()
    with pytest.raises(RLMathError, match=r"gsm8k.*Offline, pass a local file.*\./gsm8k.jsonl"):
        load_eval_set("gsm8k")
    assert time.perf_counter() - started < 15
