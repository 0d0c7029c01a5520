"""Preference pairs from verified rollouts: the invariants every pair obeys, as tables of cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlmath.data import Problem
from rlmath.errors import RLMathError
from rlmath.pairs import (
    Sample,
    choose_pairs,
    completion_ids,
    load_pairs,
    rollout_pairs,
    save_pairs,
    solution_pairs,
    verified_samples,
)
from rlmath.sampling import Completion

EOS = 0


def s(text: str, status: str, *ids: int) -> Sample:
    return Sample(text, tuple(ids) or (len(text),), status, 1.0 if status == "correct" else 0.0)


RIGHT_SHORT, RIGHT_LONG = s("\\boxed{4}", "correct", 1), s("so 2+2 = \\boxed{4}", "correct", 1, 2, 3)
WRONG_A, WRONG_B, NO_ANSWER = s("\\boxed{5}", "wrong", 4), s("then \\boxed{22}", "wrong", 4, 5), s("hmm", "no_answer", 6)
TIMEOUT = s("\\boxed{(((", "timeout", 7)


@pytest.mark.parametrize("group,strategy,cap,expected", [
    ([RIGHT_LONG, RIGHT_SHORT, WRONG_B, WRONG_A], "shortest_vs_wrong", 4, [(RIGHT_SHORT, WRONG_A), (RIGHT_SHORT, WRONG_B)]),
    ([RIGHT_LONG, RIGHT_SHORT, WRONG_A], "all", 4, [(RIGHT_SHORT, WRONG_A), (RIGHT_LONG, WRONG_A)]),
    ([RIGHT_LONG, RIGHT_SHORT, WRONG_B, WRONG_A], "all", 3, [(RIGHT_SHORT, WRONG_A), (RIGHT_SHORT, WRONG_B),
                                                             (RIGHT_LONG, WRONG_A)]),
    ([RIGHT_SHORT, RIGHT_LONG], "all", 4, []),                      # all right: no pair
    ([WRONG_A, WRONG_B, NO_ANSWER], "all", 4, []),                  # all wrong: no pair
    ([RIGHT_SHORT, TIMEOUT], "all", 4, []),                         # a timeout is not a verified wrong answer
    ([RIGHT_SHORT, NO_ANSWER], "all", 4, [(RIGHT_SHORT, NO_ANSWER)]),
    ([RIGHT_SHORT, WRONG_A, WRONG_A, s("\\boxed{5}", "wrong", 9)], "all", 4, [(RIGHT_SHORT, WRONG_A)]),  # deduplicated
])
def test_choose_pairs(group, strategy, cap, expected) -> None:
    assert choose_pairs(group, strategy, cap) == expected


def test_rollout_pairs_never_repeat_or_put_one_completion_on_both_sides() -> None:
    problems = [Problem("1", "2+2?", "4", "add", 1), Problem("2", "3+3?", "6", "add", 1), Problem("3", "1+1?", "2", "add", 1)]
    groups = [[RIGHT_SHORT, WRONG_A, RIGHT_SHORT, WRONG_A], [WRONG_A, WRONG_B], [RIGHT_SHORT, RIGHT_LONG]]
    rows = rollout_pairs(problems, [[7, 1], [7, 2], [7, 3]], groups, decode=lambda ids: f"<{ids}>",
                         strategy="all", cap=8, policy_version="v1")
    assert [(r["problem_id"], r["chosen"], r["rejected"]) for r in rows] == [("1", "\\boxed{4}", "\\boxed{5}")]
    row = rows[0]
    assert row["prompt"] == "<[7, 1]>" and row["prompt_ids"] == [7, 1] and row["prompt_has_chat_template"] is True
    assert (row["family"], row["policy_version"], row["chosen_reward"], row["rejected_reward"]) == ("add", "v1", 1.0, 0.0)
    assert row["chosen_ids"] != row["rejected_ids"]


def test_solution_pairs_put_the_worked_solution_against_wrong_samples_only() -> None:
    problems = [Problem("1", "2+2?", "4", "add", 1, solution="2+2 = \\boxed{4}"), Problem("2", "3+3?", "6", "add", 1)]
    groups = [[WRONG_A, s("2+2 = \\boxed{4}", "wrong", 8), RIGHT_SHORT], [WRONG_B]]
    rows = solution_pairs(problems, [[1], [2]], groups, decode=str, encode=lambda t: [len(t)], eos_id=EOS, cap=4,
                          policy_version="v0")
    assert [(r["chosen"], r["rejected"]) for r in rows] == [("2+2 = \\boxed{4}", "\\boxed{5}")]  # no solution: no pair
    assert rows[0]["chosen_ids"] == [len("2+2 = \\boxed{4}"), EOS]


@pytest.mark.parametrize("ids,finish,expected", [([5, 6], "stop", (5, 6, EOS)), ([5, 6, EOS], "stop", (5, 6, EOS)),
                                                 ([5, 6], "length", (5, 6))])
def test_completion_ids_end_with_eos_only_when_the_sample_stopped(ids, finish, expected) -> None:
    assert completion_ids(ids, finish, EOS) == expected


def test_verified_samples_follow_problem_major_verdicts() -> None:
    class V:
        def __init__(self, status):
            self.status = status

    groups = [[Completion("a", [1], [], "stop"), Completion("b", [2], [], "length")], [Completion("c", [3], [], "stop")]]
    samples = verified_samples(groups, [V("correct"), V("wrong"), V("no_answer")], [1.1, 0.0, 0.0], EOS)
    assert [[(x.text, x.token_ids, x.status) for x in g] for g in samples] == [
        [("a", (1, EOS), "correct"), ("b", (2,), "wrong")], [("c", (3, EOS), "no_answer")]]


def test_pairs_round_trip_and_bad_files_name_the_problem(tmp_path: Path) -> None:
    rows = rollout_pairs([Problem("1", "q", "4")], [[1]], [[RIGHT_SHORT, WRONG_A]], decode=str, strategy="all", cap=1,
                         policy_version="v0")
    loaded = load_pairs(save_pairs(rows, tmp_path / "pairs"))
    assert loaded[0]["chosen_ids"] == rows[0]["chosen_ids"] and len(loaded) == 1
    assert len(load_pairs(tmp_path / "pairs" / "pairs.jsonl")) == 1
    (tmp_path / "bad.jsonl").write_text('{"prompt": "p", "chosen": "c"}\n')
    with pytest.raises(RLMathError, match="rejected"):
        load_pairs(tmp_path / "bad.jsonl")
    with pytest.raises(RLMathError, match="not a pairs folder"):
        load_pairs(tmp_path / "missing.txt")
    with pytest.raises(RLMathError, match="no preference pairs"):
        save_pairs([], tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
