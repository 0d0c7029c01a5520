"""Calculus and sequences: derivatives, definite integrals, limits, arithmetic/geometric series.

Everything is polynomial or rational, so exact integer/`Fraction` arithmetic computes each gold
answer without sympy in the hot path (tests cross-check a sample with sympy).
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import List

from rlmath.synth.families.polynomials import eval_poly, mul_poly
from rlmath.synth.registry import Instance, register
from rlmath.synth.render import frac, paren, poly, tex


def derive(p: List[int]) -> List[int]:
    """Derivative of a coefficient list (highest degree first).

    >>> derive([3, 0, 2, 1])
    [9, 0, 2]
    """
    n = len(p) - 1
    return [c * (n - i) for i, c in enumerate(p[:-1])] or [0]


def _poly(rng: random.Random, degree: int, hi: int) -> List[int]:
    """Random polynomial of exactly `degree` with coefficients in [-hi, hi]."""
    return [rng.randint(1, hi)] + [rng.randint(-hi, hi) for _ in range(degree)]


@register("derivative", "calculus", "Differentiate polynomials; product and chain rule evaluated at a point.")
def make_derivative(rng: random.Random, difficulty: int) -> Instance:
    if difficulty <= 2:
        p = _poly(rng, difficulty + 1, 6)
        d = derive(p)
        questions = (
            f"Differentiate $f(x) = {poly(p)}$.",
            f"Find $\\frac{{d}}{{dx}}\\left({poly(p)}\\right)$.",
            f"What is $f'(x)$ if $f(x) = {poly(p)}$?",
        )
        steps = ("Use the power rule $\\frac{d}{dx} x^n = n x^{n-1}$ on each term.", f"$f'(x) = {poly(d)}$.")
        return Instance("deriv.poly", {"p": p}, questions, steps, poly(d), "expr")
    k = rng.randint(-2, 3)
    if difficulty == 3:
        p = _poly(rng, 3, 5)
        value = eval_poly(derive(p), k)
        questions = (
            f"Let $f(x) = {poly(p)}$. Find $f'({k})$.",
            f"What is the slope of the tangent to $y = {poly(p)}$ at $x = {k}$?",
        )
        steps = (f"$f'(x) = {poly(derive(p))}$.", f"$f'({k}) = {value}$.")
        return Instance("deriv.at", {"p": p, "k": k}, questions, steps, str(value))
    if difficulty == 4:
        u, v = _poly(rng, 1, 4), _poly(rng, 2, 4)
        value = eval_poly(derive(u), k) * eval_poly(v, k) + eval_poly(u, k) * eval_poly(derive(v), k)
        expr = f"({poly(u)})({poly(v)})"
        questions = (
            f"Let $f(x) = {expr}$. Find $f'({k})$.",
            f"Use the product rule to compute $f'({k})$ for $f(x) = {expr}$.",
        )
        steps = (
            f"Product rule: $f' = u'v + uv'$ with $u = {poly(u)}$, $v = {poly(v)}$.",
            f"At $x = {k}$: $u = {eval_poly(u, k)}$, $u' = {eval_poly(derive(u), k)}$, $v = {eval_poly(v, k)}$, $v' = {eval_poly(derive(v), k)}$.",
            f"$f'({k}) = {value}$.",
        )
        return Instance("deriv.product", {"u": u, "v": v, "k": k}, questions, steps, str(value))
    inner, n = _poly(rng, rng.randint(1, 2), 3), rng.randint(2, 4)
    k = rng.randint(-1, 2)
    g = eval_poly(inner, k)
    value = n * g ** (n - 1) * eval_poly(derive(inner), k)
    questions = (
        f"Let $f(x) = ({poly(inner)})^{{{n}}}$. Find $f'({k})$.",
        f"Use the chain rule to find $f'({k})$ when $f(x) = ({poly(inner)})^{n}$.",
    )
    steps = (
        f"Chain rule: $f'(x) = {n}({poly(inner)})^{{{n - 1}}} \\cdot ({poly(derive(inner))})$.",
        f"At $x = {k}$ the inner value is {g} and its derivative is {eval_poly(derive(inner), k)}.",
        f"$f'({k}) = {value}$.",
    )
    return Instance("deriv.chain", {"inner": inner, "n": n, "k": k}, questions, steps, str(value))


def antiderive(p: List[int]) -> List[Fraction]:
    """An antiderivative (constant 0) of a coefficient list."""
    n = len(p) - 1
    return [Fraction(c, n - i + 1) for i, c in enumerate(p)] + [Fraction(0)]


@register("definite_integral", "calculus", "Definite integrals of polynomials (and of (ax+b)^n at level 5).")
def make_definite_integral(rng: random.Random, difficulty: int) -> Instance:
    a = rng.randint(-2, 2) if difficulty >= 3 else 0
    b = a + rng.randint(1, 3)
    if difficulty == 5:
        inner, n = [rng.randint(1, 3), rng.randint(-2, 2)], rng.randint(2, 3)
        p = [1]
        for _ in range(n):
            p = mul_poly(p, inner)
        shown = f"({poly(inner)})^{{{n}}}"
    else:
        p = _poly(rng, min(difficulty, 3), 4 + difficulty)
        shown = f"\\left({poly(p)}\\right)"
    F = antiderive(p)
    value = eval_poly(F, b) - eval_poly(F, a)
    integral = f"\\int_{{{a}}}^{{{b}}} {shown} \\, dx"
    questions = (f"Evaluate ${integral}$.", f"Compute the definite integral ${integral}$.", f"What is ${integral}$?")
    steps = (
        [f"Expand: ${shown} = {poly(p)}$."]
        if difficulty == 5
        else [f"Integrate ${poly(p)}$ term by term with the power rule."]
    ) + [
        f"An antiderivative is $F(x) = {poly(F)}$.",
        f"$F({b}) - F({a}) = {tex(eval_poly(F, b))} - {paren(eval_poly(F, a))} = {tex(value)}$.",
    ]
    return Instance("integral.poly", {"p": p, "a": a, "b": b}, questions, tuple(steps), frac(value), "fraction")


def _ratio(num: List[int], den: List[int]) -> str:
    """LaTeX fraction of two polynomials."""
    return f"\\frac{{{poly(num)}}}{{{poly(den)}}}"


@register("limit", "calculus", "Limits of rational functions: removable singularities and limits at infinity.")
def make_limit(rng: random.Random, difficulty: int) -> Instance:
    if difficulty <= 3 or rng.random() < 0.5:
        r = rng.randint(-5, 5)
        other = _poly(rng, 1 if difficulty <= 2 else 2, 4)
        den_other = [1] if difficulty <= 3 else [rng.randint(1, 3), rng.randint(1, 4)]
        if eval_poly(den_other, r) == 0:
            den_other = [1]
        num, den = mul_poly([1, -r], other), mul_poly([1, -r], den_other)
        value = Fraction(eval_poly(other, r), eval_poly(den_other, r))
        expr = f"\\frac{{{poly(num)}}}{{{poly(den)}}}"
        steps = (
            f"Both numerator and denominator vanish at $x = {r}$; factor out $(x {'-' if r >= 0 else '+'} {abs(r)})$.",
            f"The quotient simplifies to ${poly(other) if den_other == [1] else _ratio(other, den_other)}$.",
            f"Substitute $x = {r}$: ${tex(value)}$.",
        )
        point = str(r)
        template = "limit.removable"
    else:
        deg = rng.randint(1, 3)
        num, den = _poly(rng, deg, 6), _poly(rng, deg, 6)
        num[0] *= rng.choice([1, -1])
        value = Fraction(num[0], den[0])
        expr = f"\\frac{{{poly(num)}}}{{{poly(den)}}}"
        steps = (
            f"Divide numerator and denominator by $x^{{{deg}}}$; all lower terms vanish as $x \\to \\infty$.",
            f"The limit is the ratio of leading coefficients: ${tex(value)}$.",
        )
        point, template = "\\infty", "limit.infinity"
    lim = f"\\lim_{{x \\to {point}}} {expr}"
    questions = (f"Evaluate ${lim}$.", f"Find ${lim}$.", f"What is ${lim}$?")
    return Instance(template, {"num": num, "den": den, "at": point}, questions, steps, frac(value), "fraction")


@register("sequences", "sequences", "Arithmetic and geometric sequences and series, including infinite geometric sums.")
def make_sequences(rng: random.Random, difficulty: int) -> Instance:
    kind = rng.choice(["arith_term", "arith_sum", "geo_term", "geo_sum", "geo_inf"][: 1 + difficulty])
    a = rng.randint(-10, 20) if kind.startswith("arith") else rng.randint(1, 6)
    if kind.startswith("arith"):
        d, n = rng.randint(-5, 9) or 2, rng.randint(5, 10 + 8 * difficulty)
        first = ", ".join(str(a + i * d) for i in range(4))
        if kind == "arith_term":
            value = a + (n - 1) * d
            questions = (
                f"What is the {n}th term of the arithmetic sequence {first}, ...?",
                f"An arithmetic sequence starts {first}, .... Find term number {n}.",
            )
            steps = (
                f"The first term is {a} and the common difference is {d}.",
                f"$a_{{{n}}} = {a} + ({n} - 1) \\cdot {paren(d)} = {value}$.",
            )
        else:
            last = a + (n - 1) * d
            value = n * (a + last) // 2
            questions = (
                f"Find the sum of the first {n} terms of the arithmetic sequence {first}, ....",
                f"What is the sum of the first {n} terms of {first}, ...?",
            )
            steps = (
                f"The {n}th term is ${a} + {n - 1} \\cdot {paren(d)} = {last}$.",
                f"$S_{{{n}}} = \\frac{{{n}({a} + {paren(last)})}}{{2}} = {value}$.",
            )
        return Instance(f"seq.{kind}", {"a": a, "d": d, "n": n}, questions, steps, str(value))
    r = (
        Fraction(rng.choice([2, 3, -2]))
        if kind != "geo_inf"
        else Fraction(rng.choice([1, -1, 1, 2]), rng.choice([2, 3, 4, 5]))
    )
    if kind == "geo_inf" and abs(r) >= 1:
        r = Fraction(1, 3)
    n = rng.randint(4, 7)
    first = ", ".join(tex(a * r**i) for i in range(4))
    if kind == "geo_term":
        value = a * r ** (n - 1)
        questions = (
            f"What is the {n}th term of the geometric sequence ${first}, \\dots$?",
            f"A geometric sequence begins ${first}, \\dots$. Find term {n}.",
        )
        steps = (f"The ratio is {tex(r)}.", f"$a_{{{n}}} = {a} \\cdot {paren(r)}^{{{n - 1}}} = {tex(value)}$.")
    elif kind == "geo_sum":
        value = a * (1 - r**n) / (1 - r)
        questions = (
            f"Find the sum of the first {n} terms of the geometric sequence ${first}, \\dots$.",
            f"What is $\\sum_{{k=0}}^{{{n - 1}}} {a} \\cdot {paren(r)}^k$?",
        )
        steps = (
            f"The ratio is {tex(r)}.",
            f"$S_{{{n}}} = {a} \\cdot \\frac{{1 - {paren(r)}^{{{n}}}}}{{1 - {paren(r)}}} = {tex(value)}$.",
        )
    else:
        value = a / (1 - r)
        questions = (
            f"Find the sum of the infinite geometric series ${first}, \\dots$.",
            f"Evaluate $\\sum_{{k=0}}^{{\\infty}} {a} \\left({tex(r)}\\right)^k$.",
        )
        steps = (
            f"The ratio is ${tex(r)}$, and $|r| < 1$ so the series converges.",
            f"$S = \\frac{{{a}}}{{1 - {paren(r)}}} = {tex(value)}$.",
        )
    return Instance(f"seq.{kind}", {"a": a, "r": str(r), "n": n}, questions, steps, frac(value), "fraction")
