"""Worked solutions show their arithmetic one operation at a time, and every written equation is true.

SFT imitates these lines. On the families whose solutions jumped from a list of numbers to its total
(``poly_eval``, ``sequences``, ``statistics``, ``composition``, ``angles``) the embedded 135M model sat at
0-12% after SFT, so those families now write each product and each addition on its own. Plain-text
chains such as ``2 × (-3) + 1 = -6 + 1 = -5`` are parsed here with :mod:`ast` into exact fractions
(no ``eval``): each side equals the next, and each ``=`` removes at most one operation.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

import pytest

from rlmath.synth import generate

STEPWISE = ["composition", "poly_eval", "sequences", "statistics", "angles"]
ARITHMETIC = re.compile(r"[\d\s+\-×/^()]+")
OPERATORS = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__,
             ast.Div: Fraction.__truediv__, ast.Pow: Fraction.__pow__}


def value_and_operations(node: ast.AST) -> tuple[Fraction, int]:
    """Exact value of a parsed arithmetic side and how many binary operations it still holds."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return Fraction(node.value), 0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value, ops = value_and_operations(node.operand)
        return -value, ops
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        left, left_ops = value_and_operations(node.left)
        right, right_ops = value_and_operations(node.right)
        return OPERATORS[type(node.op)](left, right), left_ops + right_ops + 1
    raise ValueError(f"not plain arithmetic: {ast.dump(node)}")


def parse_side(text: str) -> tuple[Fraction, int] | None:
    """A side of an equation as (value, operations), or None when it is not plain arithmetic (words, LaTeX)."""
    if not ARITHMETIC.fullmatch(text) or not re.search(r"\d", text):
        return None
    try:
        expr = ast.parse(text.replace("×", "*").replace("^", "**"), mode="eval").body
    except SyntaxError:  # a clause cut inside parentheses, e.g. "(n - 2) · 180" split at the cdot
        return None
    return value_and_operations(expr)


def chains(solution: str) -> list[list[tuple[str, Fraction, int]]]:
    """Every run of ``=``-joined plain arithmetic sides in a solution, each side parsed."""
    found = []
    for clause in re.split(r"[\n,:;]|\.(?:\s|$)", solution):
        sides = []
        for side in clause.split("="):
            text = side.strip().rstrip(".")
            parsed = parse_side(text)
            if parsed is None:
                if len(sides) > 1:
                    found.append(sides)
                sides = []
                continue
            sides.append((text, *parsed))
        if len(sides) > 1:
            found.append(sides)
    return found


def test_chains_reads_a_worked_line_and_catches_a_wrong_or_skipped_step():
    [chain] = chains("First g(-3) = 2 × (-3) + 1 = -6 + 1 = -5.")
    assert [(text, value, ops) for text, value, ops in chain] == [
        ("2 × (-3) + 1", -5, 2), ("-6 + 1", -5, 1), ("-5", -5, 0)]
    [wrong] = chains("Add: 8 + 18 = 25.")
    assert wrong[0][1] != wrong[1][1]
    [skipped] = chains("Sum: 3 + 3 + 12 = 18.")
    assert skipped[0][2] - skipped[1][2] == 2


@pytest.mark.parametrize("family", STEPWISE)
def test_stepwise_families_write_true_equations_one_operation_at_a_time(family):
    items = generate(300, seed=4, families=[family], difficulty=(1, 2))
    checked = 0
    for item in items:
        for chain in chains(item["solution"]):
            for (left, left_value, left_ops), (right, right_value, right_ops) in zip(chain, chain[1:]):
                assert left_value == right_value, (left, right, item["solution"])
                assert left_ops - right_ops <= 1, (left, right, item["solution"])
                checked += 1
    assert checked >= len(items), f"{family}: only {checked} equations found in {len(items)} solutions"


def test_every_plain_equation_in_any_family_is_true():
    for item in generate(2000, seed=6, difficulty=(1, 5)):
        for chain in chains(item["solution"]):
            values = {value for _, value, _ in chain}
            assert len(values) == 1, (chain, item["family"], item["solution"])
