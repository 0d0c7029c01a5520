"""N-gram decontamination: tables of (questions, eval texts, dropped indices)."""

from __future__ import annotations

import pytest

from rlmath.synth.decontam import contaminated, tokens

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
