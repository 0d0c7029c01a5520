"""Rational numbers in their everyday forms: fractions, decimals, percents and ratios.

All arithmetic is exact (`fractions.Fraction`); answers are reduced fractions (``3/4``) or
terminating decimals (``2.5``).
"""

from __future__ import annotations

import random
from fractions import Fraction
from math import gcd

from rlmath.synth.registry import Instance, register
from rlmath.synth.render import decimal, frac, join_list, tex

_OPS = {"+": ("+", "sum"), "-": ("-", "difference"), "*": ("\\times", "product"), "/": ("\\div", "quotient")}


def _fraction(rng: random.Random, max_den: int) -> Fraction:
    """A proper, non-integer fraction with denominator in 2..max_den."""
    den = rng.randint(2, max_den)
    return Fraction(rng.randint(1, den - 1) if den > 2 else 1, den)


def _combine(op: str, a: Fraction, b: Fraction) -> tuple[Fraction, str]:
    """Result of `a op b` with the one-line explanation a student would write."""
    if op in "+-":
        lcd = a.denominator * b.denominator // gcd(a.denominator, b.denominator)
        na, nb = a * lcd, b * lcd
        r = a + b if op == "+" else a - b
        why = f"Use the common denominator {lcd}: $\\frac{{{na}}}{{{lcd}}} {op} \\frac{{{nb}}}{{{lcd}}} = {tex(r)}$."
        return r, why
    if op == "*":
        r = a * b
        return r, f"Multiply numerators and denominators: ${tex(a)} \\times {tex(b)} = {tex(r)}$."
    r = a / b
    return r, f"Multiply by the reciprocal: ${tex(a)} \\times {tex(1 / b)} = {tex(r)}$."


@register("fractions", "rationals", "Add, subtract, multiply and divide fractions; answer in lowest terms.")
def make_fractions(rng: random.Random, difficulty: int) -> Instance:
    max_den = {1: 6, 2: 9, 3: 12, 4: 12, 5: 15}[difficulty]
    ops = {1: "+-", 2: "+-*", 3: "+-*/", 4: "+-*/", 5: "+-*/"}[difficulty]
    terms = 3 if difficulty >= 4 else 2
    values = [_fraction(rng, max_den) for _ in range(terms)]
    if difficulty == 5:
        values[0] += rng.randint(1, 3)
    chosen = [rng.choice(ops) for _ in range(terms - 1)]
    expr = tex(values[0])
    total, steps = values[0], []
    for op, v in zip(chosen, values[1:]):
        expr = f"\\left({expr}\\right)" if len(steps) else expr
        expr = f"{expr} {_OPS[op][0]} {tex(v)}"
        total, why = _combine(op, total, v)
        steps.append(why)
    steps.append(f"In lowest terms the result is ${tex(total)}$.")
    questions = (
        f"Compute ${expr}$ and write the answer in lowest terms.",
        f"What is ${expr}$? Simplify fully.",
        f"Simplify ${expr}$.",
    )
    params = {"values": [str(v) for v in values], "ops": chosen}
    return Instance("fractions.chain", params, questions, tuple(steps), frac(total), "fraction")


def _dec(rng: random.Random, places: int, hi: int) -> Fraction:
    """A random decimal with exactly `places` decimal places and integer part below `hi`."""
    scale = 10**places
    return Fraction(rng.randint(1, hi * scale - 1), scale)


def _places(q: Fraction) -> int:
    """Number of decimal places in the exact decimal form of q."""
    text = decimal(q)
    return len(text.split(".")[1]) if "." in text else 0


def _decimal_operands(rng: random.Random, difficulty: int, op: str) -> tuple[Fraction, Fraction]:
    """Operands for `op`; for division the dividend is a multiple of the divisor, so the quotient is exact."""
    places = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3}[difficulty]
    if op == "/":
        b = _dec(rng, 1, 5)
        return b * rng.randint(2, 10 * difficulty), b
    return _dec(rng, places, 10 * difficulty), _dec(rng, 1 if op == "*" else places, 10)


@register("decimals", "rationals", "Decimal arithmetic with exact terminating answers.")
def make_decimals(rng: random.Random, difficulty: int) -> Instance:
    op = rng.choice({1: "+-", 2: "+-*", 3: "+-*", 4: "*/", 5: "*/+"}[difficulty])
    a, b = _decimal_operands(rng, difficulty, op)
    r = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
    expr = f"{decimal(a)} {_OPS[op][0]} {decimal(b)}"
    word = _OPS[op][1]
    if op == "*":
        how = f"Multiply as whole numbers, then place the decimal point ({_places(a) + _places(b)} decimal places in total)."
    elif op == "/":
        scale = 10 ** _places(b)
        how = f"Multiply both numbers by {scale} so the divisor is whole: ${decimal(a * scale)} \\div {decimal(b * scale)}$."
    else:
        how = "Line up the decimal points and work column by column."
    questions = (
        f"Compute ${expr}$.",
        f"What is the {word} of {decimal(a)} and {decimal(b)}?" if op in "+*" else f"Evaluate ${expr}$.",
        f"Find ${expr}$ as a decimal.",
    )
    return Instance(
        f"decimals.{word}",
        {"a": str(a), "b": str(b), "op": op},
        questions,
        (how, f"${expr} = {decimal(r)}$."),
        decimal(r),
        "decimal",
    )


def _percent_of(rng: random.Random, difficulty: int) -> Instance:
    """p% of N with a whole or terminating answer."""
    p = rng.choice([10, 20, 25, 50, 75, 5, 15, 30, 40, 60, 12, 35, 45, 8, 2.5][: 4 + 3 * difficulty])
    n = rng.randint(1, 20 * difficulty) * 20
    r = Fraction(str(p)) * n / 100
    questions = (f"What is {p}% of {n}?", f"Find {p} percent of {n}.", f"Compute {p}\\% of {n}.")
    steps = (
        f"{p}% means {decimal(Fraction(str(p)) / 100)}.",
        f"${decimal(Fraction(str(p)) / 100)} \\times {n} = {decimal(r)}$.",
    )
    return Instance("percent.of", {"p": p, "n": n}, questions, steps, decimal(r), "decimal")


def _what_percent(rng: random.Random, difficulty: int) -> Instance:
    """A is what percent of B."""
    whole = rng.choice([20, 25, 40, 50, 80, 200, 400, 125, 250][: 3 + difficulty])
    part = (
        whole * rng.choice([Fraction(k, 20) for k in range(1, 40)])
        if difficulty >= 3
        else whole * Fraction(rng.randint(1, 9), 10)
    )
    if part.denominator != 1:
        part = Fraction(part.numerator // part.denominator or 1)
    r = part / whole * 100
    questions = (
        f"{part} is what percent of {whole}?",
        f"What percentage of {whole} is {part}?",
        f"Express {part} out of {whole} as a percentage (give just the number).",
    )
    steps = (
        f"Divide the part by the whole: $\\frac{{{part}}}{{{whole}}} = {decimal(part / whole)}$.",
        f"Multiply by 100: {decimal(r)}%.",
    )
    return Instance("percent.what", {"part": str(part), "whole": whole}, questions, steps, decimal(r), "decimal")


def _percent_change(rng: random.Random, difficulty: int) -> Instance:
    """Increase or decrease by p%, twice at the top level (successive changes)."""
    n = rng.randint(2, 30) * 100
    changes = [rng.choice([-20, -10, -5, 5, 10, 20, 25, 50]) for _ in range(2 if difficulty == 5 else 1)]
    value, steps = Fraction(n), []
    for c in changes:
        new = value * (100 + c) / 100
        steps.append(
            f"{'Increase' if c > 0 else 'Decrease'} by {abs(c)}%: ${decimal(value)} \\times {decimal(Fraction(100 + c, 100))} = {decimal(new)}$."
        )
        value = new
    desc = " and then ".join(f"{'increased' if c > 0 else 'decreased'} by {abs(c)}%" for c in changes)
    questions = (
        f"A price of {n} dollars is {desc}. What is the new price in dollars?",
        f"Start with {n} and apply these changes: {desc}. What is the result?",
        f"A quantity of {n} is {desc}. Find the final amount.",
    )
    return Instance("percent.change", {"n": n, "changes": changes}, questions, tuple(steps), decimal(value), "decimal")


@register("percents", "rationals", "Percent of a number, percentage of a whole, and (successive) percent change.")
def make_percents(rng: random.Random, difficulty: int) -> Instance:
    makers = [_percent_of, _what_percent] + ([_percent_change] if difficulty >= 3 else [])
    return rng.choice(makers)(rng, difficulty)


@register("ratios", "rationals", "Share a quantity in a ratio, or scale one part of a ratio.")
def make_ratios(rng: random.Random, difficulty: int) -> Instance:
    parts = [rng.randint(1, 3 + difficulty) for _ in range(3 if difficulty >= 4 else 2)]
    g = gcd(*parts)
    parts = [p // g for p in parts]
    unit = rng.randint(2, 5 * difficulty + 5)
    total = unit * sum(parts)
    ratio = ":".join(map(str, parts))
    names = ["Ana", "Ben", "Chloe"][: len(parts)]
    who = rng.randrange(len(parts))
    if rng.random() < 0.5:
        share = parts[who] * unit
        questions = (
            f"{total} marbles are shared among {join_list(names)} in the ratio {ratio}. How many does {names[who]} get?",
            f"Divide {total} in the ratio {ratio}. What is the share for part {who + 1}?",
            f"A sum of {total} dollars is split in the ratio {ratio}. How large is share number {who + 1}, in dollars?",
        )
        steps = (
            f"There are {' + '.join(map(str, parts))} = {sum(parts)} equal parts.",
            f"One part is ${total} \\div {sum(parts)} = {unit}$.",
            f"Share {who + 1} is ${parts[who]} \\times {unit} = {share}$.",
        )
        return Instance("ratio.share", {"parts": parts, "total": total, "who": who}, questions, steps, str(share))
    other = (who + 1) % len(parts)
    known = parts[who] * unit
    questions = (
        f"The ratio of boys to girls is {parts[who]}:{parts[other]}. If there are {known} boys, how many girls are there?",
        f"Two quantities are in the ratio {parts[who]}:{parts[other]}. The first is {known}. What is the second?",
        f"If $a:b = {parts[who]}:{parts[other]}$ and $a = {known}$, find $b$.",
    )
    steps = (
        f"One part is ${known} \\div {parts[who]} = {unit}$.",
        f"The second quantity is ${parts[other]} \\times {unit} = {parts[other] * unit}$.",
    )
    return Instance(
        "ratio.scale", {"a": parts[who], "b": parts[other], "known": known}, questions, steps, str(parts[other] * unit)
    )
