"""Polynomials and functions: expand products, evaluate, compose functions, exponent laws, surds.

Polynomial arithmetic is done on integer coefficient lists (highest degree first), which is
exact and much faster than sympy for these sizes.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import List

from rlmath.synth.registry import Instance, register
from rlmath.synth.render import frac, paren, poly, tex


def mul_poly(p: List[int], q: List[int]) -> List[int]:
    """Product of two coefficient lists (highest degree first).

    >>> mul_poly([1, 2], [1, 3])
    [1, 5, 6]
    """
    out = [0] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def eval_poly(p: List[int], x: int) -> int:
    """Horner evaluation of a coefficient list at x."""
    acc = 0
    for c in p:
        acc = acc * x + c
    return acc


def _factor(rng: random.Random, lead_hi: int, const_hi: int, degree: int = 1) -> List[int]:
    """A random factor: linear (ax + b) or, for degree 2, ax^2 + bx + c, with nonzero lead."""
    coeffs = [rng.randint(1, lead_hi)] + [rng.randint(-const_hi, const_hi) for _ in range(degree)]
    if coeffs[-1] == 0:
        coeffs[-1] = 1
    return coeffs


@register("poly_expand", "polynomials", "Expand a product of polynomial factors into standard form.")
def make_poly_expand(rng: random.Random, difficulty: int) -> Instance:
    if difficulty == 4 and rng.random() < 0.5:
        f = _factor(rng, 1, 4)
        factors = [f, f, f]
        shown = f"({poly(f)})^3"
    else:
        shapes = {
            1: [(1, 1), (1, 1)],
            2: [(1, 1), (2, 1)],
            3: [(3, 1), (3, 1)],
            4: [(1, 1), (1, 1), (1, 1)],
            5: [(3, 1), (2, 2)],
        }[difficulty]
        factors = [_factor(rng, lead, 4 + difficulty, deg) for lead, deg in shapes]
        shown = "".join(f"({poly(f)})" for f in factors)
    product, steps = factors[0], []
    for f in factors[1:]:
        new = mul_poly(product, f)
        steps.append(f"Multiply $({poly(product)})({poly(f)})$ term by term and collect like terms: ${poly(new)}$.")
        product = new
    questions = (
        f"Expand ${shown}$.",
        f"Write ${shown}$ as a polynomial in standard form.",
        f"Multiply out and simplify ${shown}$.",
    )
    return Instance("poly.expand", {"factors": factors}, questions, tuple(steps), poly(product), "expr")


@register(
    "poly_eval", "polynomials", "Evaluate a polynomial at a point (or find a remainder by the remainder theorem)."
)
def make_poly_eval(rng: random.Random, difficulty: int) -> Instance:
    degree = min(difficulty + 1, 4)
    p = [rng.randint(1, 5)] + [rng.randint(-9, 9) for _ in range(degree)]
    x = rng.randint(-3, 3) if difficulty >= 3 else rng.randint(0, 4)
    value = eval_poly(p, x)
    terms = [f"{c} \\cdot {paren(x)}^{{{len(p) - 1 - i}}}" for i, c in enumerate(p) if c]
    steps = (f"Substitute $x = {x}$: ${' + '.join(terms)}$.", f"Add the terms: the value is {value}.")
    if difficulty >= 4 and rng.random() < 0.5:
        questions = (
            f"What is the remainder when $p(x) = {poly(p)}$ is divided by $x {'-' if x >= 0 else '+'} {abs(x)}$?",
            f"Find the remainder of $({poly(p)}) \\div (x {'-' if x >= 0 else '+'} {abs(x)})$.",
        )
        steps = (f"By the remainder theorem the remainder is $p({x})$.",) + steps
        return Instance("poly.remainder", {"p": p, "x": x}, questions, steps, str(value))
    questions = (
        f"If $p(x) = {poly(p)}$, what is $p({x})$?",
        f"Evaluate ${poly(p)}$ at $x = {x}$.",
        f"Let $f(x) = {poly(p)}$. Compute $f({x})$.",
    )
    return Instance("poly.eval", {"p": p, "x": x}, questions, steps, str(value))


@register("composition", "functions", "Compose two functions, numerically or symbolically.")
def make_composition(rng: random.Random, difficulty: int) -> Instance:
    f = [rng.randint(1, 5), rng.randint(-6, 6)]
    g = [rng.randint(1, 3), rng.randint(-4, 4)] if difficulty <= 2 else [rng.randint(1, 2), 0, rng.randint(-5, 5)]
    k = rng.randint(-3, 4)
    inner = eval_poly(g, k)
    defs = f"$f(x) = {poly(f)}$ and $g(x) = {poly(g)}$"
    if difficulty < 5:
        value = eval_poly(f, inner)
        questions = (
            f"Let {defs}. Find $f(g({k}))$.",
            f"Given {defs}, compute $(f \\circ g)({k})$.",
            f"If {defs}, what is $f(g({k}))$?",
        )
        steps = (f"First $g({k}) = {inner}$.", f"Then $f({inner}) = {value}$.")
        return Instance("compose.value", {"f": f, "g": g, "k": k}, questions, steps, str(value))
    composed = mul_poly([f[0]], g)
    composed[-1] += f[1]
    questions = (
        f"Let {defs}. Find $f(g(x))$ as a polynomial.",
        f"Given {defs}, write $(f \\circ g)(x)$ in standard form.",
    )
    steps = (
        f"Replace $x$ in $f$ by $g(x)$: $f(g(x)) = {f[0]}({poly(g)}) {'+' if f[1] >= 0 else '-'} {abs(f[1])}$.",
        f"Simplify: ${poly(composed)}$.",
    )
    return Instance("compose.symbolic", {"f": f, "g": g}, questions, steps, poly(composed), "expr")


@register("exponents", "powers", "Powers and exponent laws, including negative and fractional exponents.")
def make_exponents(rng: random.Random, difficulty: int) -> Instance:
    base = rng.randint(2, 5 if difficulty < 3 else 3)
    if difficulty == 1:
        e = rng.randint(2, 4)
        questions = (f"What is ${base}^{{{e}}}$?", f"Compute ${base}^{{{e}}}$.", f"Evaluate {base} to the power {e}.")
        times = " \\times ".join([str(base)] * e)
        steps = (f"${base}^{{{e}}} = {times} = {base ** e}$.",)
        return Instance("exp.power", {"b": base, "e": e}, questions, steps, str(base**e))
    if difficulty <= 3:
        m, n, k = rng.randint(2, 6), rng.randint(2, 6), rng.randint(1, 5)
        e = m + n - k
        expr = f"\\frac{{{base}^{{{m}}} \\cdot {base}^{{{n}}}}}{{{base}^{{{k}}}}}"
        value = Fraction(base) ** e
        steps = (
            f"Add exponents when multiplying and subtract when dividing: ${base}^{{{m} + {n} - {k}}} = {base}^{{{e}}}$.",
            f"${base}^{{{e}}} = {tex(value)}$.",
        )
        questions = (f"Simplify ${expr}$ to a number.", f"Evaluate ${expr}$.", f"What is the value of ${expr}$?")
        return Instance("exp.laws", {"b": base, "m": m, "n": n, "k": k}, questions, steps, frac(value), "fraction")
    if difficulty == 4:
        e = -rng.randint(1, 3)
        value = Fraction(base) ** e
        questions = (
            f"Evaluate ${base}^{{{e}}}$ as a fraction.",
            f"What is ${base}^{{{e}}}$?",
            f"Write ${base}^{{{e}}}$ as a fraction.",
        )
        steps = (
            f"A negative exponent means a reciprocal: ${base}^{{{e}}} = \\frac{{1}}{{{base}^{{{-e}}}}} = {tex(value)}$.",
        )
        return Instance("exp.negative", {"b": base, "e": e}, questions, steps, frac(value), "fraction")
    root, power = rng.choice([(2, 3), (3, 2), (2, 5), (3, 4), (4, 3), (2, -3), (3, -2)])
    r = rng.randint(2, 4)
    b = r**root
    value = Fraction(r) ** power
    questions = (
        f"Evaluate ${b}^{{{power}/{root}}}$.",
        f"What is ${b}^{{\\frac{{{power}}}{{{root}}}}}$?",
        f"Compute ${b}$ raised to the power ${power}/{root}$.",
    )
    steps = (
        f"Take the root first: $\\sqrt[{root}]{{{b}}} = {r}$.",
        f"Then raise to the power {power}: ${r}^{{{power}}} = {tex(value)}$.",
    )
    return Instance("exp.fractional", {"b": b, "p": power, "q": root}, questions, steps, frac(value), "fraction")


def _split_square(n: int) -> tuple[int, int]:
    """Write n = a^2 * b with b square-free: returns (a, b).

    >>> _split_square(72)
    (6, 2)
    """
    a, b, f = 1, n, 2
    while f * f <= b:
        while b % (f * f) == 0:
            b //= f * f
            a *= f
        f += 1
    return a, b


def surd(a: int, b: int) -> str:
    """Answer form of a*sqrt(b): ``6\\sqrt{2}``, ``\\sqrt{3}``, or an integer when b == 1."""
    if b == 1:
        return str(a)
    return f"{'' if a == 1 else a}\\sqrt{{{b}}}"


@register("surds", "powers", "Simplify square roots and sums of like surds.")
def make_surds(rng: random.Random, difficulty: int) -> Instance:
    free = rng.choice([2, 3, 5, 6, 7, 10])
    if difficulty <= 2:
        a = rng.randint(2, 3 + 2 * difficulty)
        n = a * a * free
        questions = (
            f"Simplify $\\sqrt{{{n}}}$.",
            f"Write $\\sqrt{{{n}}}$ in simplest radical form.",
            f"Simplify the square root of {n}.",
        )
        steps = (
            f"${n} = {a * a} \\cdot {free}$ and ${a * a}$ is a perfect square.",
            f"$\\sqrt{{{n}}} = {a}\\sqrt{{{free}}}$.",
        )
        return Instance("surd.simplify", {"n": n}, questions, steps, surd(a, free), "expr")
    if difficulty == 3:
        x, y = rng.randint(1, 6) * free, rng.randint(1, 6) * free
        a, b = _split_square(x * y)
        questions = (
            f"Simplify $\\sqrt{{{x}}} \\cdot \\sqrt{{{y}}}$.",
            f"Write $\\sqrt{{{x}}}\\sqrt{{{y}}}$ in simplest radical form.",
        )
        steps = (f"$\\sqrt{{{x}}} \\cdot \\sqrt{{{y}}} = \\sqrt{{{x * y}}}$.", f"$\\sqrt{{{x * y}}} = {surd(a, b)}$.")
        return Instance("surd.product", {"x": x, "y": y}, questions, steps, surd(a, b), "expr")
    count = 2 if difficulty == 4 else 3
    coefs = [rng.randint(1, 5) for _ in range(count)]
    roots = [rng.randint(1, 4) for _ in range(count)]
    signs = [1] + [rng.choice([1, -1]) for _ in range(count - 1)]
    total = sum(s * c * r for s, c, r in zip(signs, coefs, roots))
    if total <= 0:
        signs = [1] * count
        total = sum(c * r for c, r in zip(coefs, roots))
    terms = [
        f"{'' if i == 0 else ('+ ' if s > 0 else '- ')}{surd(c, r * r * free)}"
        for i, (s, c, r) in enumerate(zip(signs, coefs, roots))
    ]
    expr = " ".join(terms)
    simplified = " ".join(
        f"{'' if i == 0 else ('+ ' if s > 0 else '- ')}{c * r}\\sqrt{{{free}}}"
        for i, (s, c, r) in enumerate(zip(signs, coefs, roots))
    )
    questions = (f"Simplify ${expr}$.", f"Combine and simplify: ${expr}$.", f"Write ${expr}$ as a single surd.")
    steps = (f"Simplify each root: ${simplified}$.", f"Combine like surds: ${surd(total, free)}$.")
    return Instance(
        "surd.sum",
        {"coefs": coefs, "roots": roots, "signs": signs, "free": free},
        questions,
        steps,
        surd(total, free),
        "expr",
    )
