"""Everyday quantitative skills: statistics of a list, unit conversion, 2x2/3x3 determinants."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import List

from rlmath.synth.registry import Instance, register
from rlmath.synth.render import decimal, frac, join_list, paren, tex

# (unit, larger unit, factor, noun) -- factor = how many of `unit` in one `larger unit`.
_UNITS = [
    ("centimetres", "metres", 100, "length"),
    ("metres", "kilometres", 1000, "distance"),
    ("grams", "kilograms", 1000, "mass"),
    ("millilitres", "litres", 1000, "volume"),
    ("minutes", "hours", 60, "time"),
    ("seconds", "minutes", 60, "time"),
    ("inches", "feet", 12, "length"),
    ("ounces", "pounds", 16, "weight"),
    ("hours", "days", 24, "time"),
    ("millimetres", "centimetres", 10, "length"),
]


def _singular(unit: str) -> str:
    """'hours' -> 'hour', 'feet' -> 'foot'."""
    return "foot" if unit == "feet" else unit[:-1]


def _median(values: List[int]) -> Fraction:
    """Median of a list (mean of the middle two for even length)."""
    s = sorted(values)
    mid = len(s) // 2
    return Fraction(s[mid]) if len(s) % 2 else Fraction(s[mid - 1] + s[mid], 2)


@register("statistics", "statistics", "Mean, median, range and a missing value given the mean.")
def make_statistics(rng: random.Random, difficulty: int) -> Instance:
    size = rng.randint(4, 4 + 2 * difficulty)
    values = [rng.randint(1, 10 * difficulty + 10) for _ in range(size)]
    kind = rng.choice(["mean", "median", "range", "missing"][: 2 + (difficulty + 1) // 2])
    listed = join_list(values)
    if kind == "mean":
        mean = Fraction(sum(values), size)
        questions = (
            f"What is the mean of {listed}?",
            f"Find the average of the numbers {', '.join(map(str, values))}.",
            f"Compute the arithmetic mean of {listed}.",
        )
        steps = (f"The sum is {' + '.join(map(str, values))} = {sum(values)}.", f"Divide by {size}: ${tex(mean)}$.")
        return Instance("stats.mean", {"v": values}, questions, steps, frac(mean), "fraction")
    if kind == "median":
        med = _median(values)
        questions = (
            f"What is the median of {listed}?",
            f"Find the median of the data set {', '.join(map(str, values))}.",
        )
        steps = (
            f"Sort: {', '.join(map(str, sorted(values)))}.",
            f"{'The middle value' if size % 2 else 'The mean of the two middle values'} is ${tex(med)}$.",
        )
        return Instance("stats.median", {"v": values}, questions, steps, frac(med), "fraction")
    if kind == "range":
        questions = (
            f"What is the range of {listed}?",
            f"Find the range (largest minus smallest) of {', '.join(map(str, values))}.",
        )
        steps = (
            f"Largest is {max(values)}, smallest is {min(values)}.",
            f"Range = {max(values)} - {min(values)} = {max(values) - min(values)}.",
        )
        return Instance("stats.range", {"v": values}, questions, steps, str(max(values) - min(values)))
    known = values[:-1]
    mean = -(-(sum(known) + 1) // size) + rng.randint(0, 5 * difficulty)  # keeps the missing value positive
    missing = mean * size - sum(known)
    questions = (
        f"The mean of {size} numbers is {mean}. Of them, {size - 1} are {join_list(known)}. What is the last number?",
        f"{size} test scores have mean {mean}. The first {size - 1} scores are {join_list(known)}. Find the remaining score.",
    )
    steps = (
        f"The total must be ${size} \\times {mean} = {mean * size}$.",
        f"The known numbers sum to {sum(known)}, so the last is ${mean * size} - {sum(known)} = {missing}$.",
    )
    return Instance("stats.missing", {"known": known, "mean": mean}, questions, steps, str(missing))


@register("unit_conversion", "measurement", "Convert between metric and imperial/time units, in one or two steps.")
def make_unit_conversion(rng: random.Random, difficulty: int) -> Instance:
    small, big, factor, noun = rng.choice(_UNITS[: 4 + 2 * difficulty])
    if difficulty <= 2 or rng.random() < 0.5:
        amount = Fraction(rng.randint(1, 20 * difficulty), rng.choice([1, 2, 4]) if difficulty >= 3 else 1)
        value = amount * factor
        questions = (
            f"How many {small} are in {decimal(amount)} {big}?",
            f"Convert {decimal(amount)} {big} to {small}.",
            f"A {noun} of {decimal(amount)} {big} is how many {small}?",
        )
        steps = (
            f"One {_singular(big)} is {factor} {small}.",
            f"${decimal(amount)} \\times {factor} = {decimal(value)}$.",
        )
        return Instance("units.up", {"u": big, "amount": str(amount)}, questions, steps, decimal(value), "decimal")
    value = Fraction(rng.randint(1, 40), rng.choice([1, 2, 4, 5]))
    amount = value * factor
    questions = (
        f"Convert {decimal(amount)} {small} to {big}.",
        f"How many {big} is {decimal(amount)} {small}?",
        f"Express {decimal(amount)} {small} in {big}.",
    )
    steps = (
        f"Divide by {factor}, the number of {small} in one of the {big}.",
        f"${decimal(amount)} \\div {factor} = {decimal(value)}$.",
    )
    return Instance("units.down", {"u": small, "amount": str(amount)}, questions, steps, decimal(value), "decimal")


def det(m: List[List[int]]) -> int:
    """Determinant by cofactor expansion along the first row (sizes 2 and 3).

    >>> det([[1, 2], [3, 4]]), det([[2, 0, 0], [0, 3, 0], [0, 0, 4]])
    (-2, 24)
    """
    if len(m) == 2:
        return m[0][0] * m[1][1] - m[0][1] * m[1][0]
    return sum((-1) ** j * m[0][j] * det([row[:j] + row[j + 1 :] for row in m[1:]]) for j in range(3))


def _matrix_tex(m: List[List[int]]) -> str:
    """LaTeX pmatrix."""
    return "\\begin{pmatrix} " + " \\\\ ".join(" & ".join(map(str, r)) for r in m) + " \\end{pmatrix}"


@register("determinant", "linear algebra", "Determinants of 2x2 (low levels) and 3x3 (high levels) integer matrices.")
def make_determinant(rng: random.Random, difficulty: int) -> Instance:
    size = 2 if difficulty <= 2 else 3
    hi = 3 + 2 * difficulty if size == 2 else difficulty + 1
    m = [[rng.randint(-hi, hi) for _ in range(size)] for _ in range(size)]
    value = det(m)
    shown = _matrix_tex(m)
    questions = (
        f"Compute the determinant of ${shown}$.",
        f"Find $\\det {shown}$.",
        f"What is the determinant of the matrix ${shown}$?",
    )
    if size == 2:
        steps = (
            f"$\\det = ad - bc = {m[0][0]} \\cdot {paren(m[1][1])} - {paren(m[0][1])} \\cdot {paren(m[1][0])} = {value}$.",
        )
    else:
        minors = [det([row[:j] + row[j + 1 :] for row in m[1:]]) for j in range(3)]
        expansion = " ".join(f"{'+' if j != 1 else '-'} {paren(m[0][j])} \\cdot {paren(minors[j])}" for j in range(3))
        steps = (
            "Expand along the first row.",
            f"The 2x2 minors are {', '.join(map(str, minors))}.",
            f"$\\det = {expansion[2:]} = {value}$.",
        )
    return Instance(f"det.{size}x{size}", {"m": m}, questions, steps, str(value))
