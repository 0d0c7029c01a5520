"""Equations and inequalities in one or two unknowns: linear, 2x2 systems, quadratics, inequalities.

Instances are built backwards from the answer (pick x, then the equation), so every answer is an
exact integer or a simple rational/surd by construction.
"""

from __future__ import annotations

import random
from fractions import Fraction

from rlmath.synth.registry import Instance, register
from rlmath.synth.render import frac, linear, paren, poly, signed, tex


def _nonzero(rng: random.Random, lo: int, hi: int) -> int:
    """A random integer in [lo, hi] other than 0."""
    while True:
        v = rng.randint(lo, hi)
        if v:
            return v


def _move(b: int, result: str) -> str:
    """The step that removes a constant term b from the left side (empty when b is 0)."""
    if not b:
        return ""
    verb = f"Subtract {b} from" if b > 0 else f"Add {-b} to"
    return f"{verb} both sides: ${result}$."


def _solve_steps(a: int, rhs: int, x: int) -> str:
    """Final division step of a linear equation ``a x = rhs``."""
    return f"Divide both sides by {a}: $x = {tex(Fraction(rhs, a))}$." if a != 1 else f"So $x = {x}$."


@register("linear", "algebra", "Solve a linear equation for x; the answer is an integer.")
def make_linear(rng: random.Random, difficulty: int) -> Instance:
    span = 5 * difficulty + 5
    x = rng.randint(-span, span) if difficulty > 1 else rng.randint(0, 12)
    a = _nonzero(rng, 2, 9) if difficulty > 1 else rng.randint(1, 9)
    b = rng.randint(-span, span) if difficulty > 1 else rng.randint(1, 20)
    if difficulty <= 2:
        c = a * x + b
        eq = f"{linear(a, b)} = {c}"
        steps = (_move(b, f"{linear(a, 0)} = {c - b}"), _solve_steps(a, c - b, x))
    elif difficulty <= 4:
        cx = _nonzero(rng, -9, 9)
        while cx == a:
            cx = _nonzero(rng, -9, 9)
        k = b if difficulty == 3 else rng.randint(-9, 9) or 1
        const = k if difficulty == 3 else a * k  # constant term of the left side once expanded
        d = a * x + const - cx * x
        left = linear(a, k) if difficulty == 3 else f"{a}({linear(1, k)})"
        eq = f"{left} = {linear(cx, d)}"
        expand = "" if difficulty == 3 else f"Expand the left side: ${linear(a, const)} = {linear(cx, d)}$."
        steps = (
            expand,
            f"Collect the x terms on the left and the numbers on the right: ${linear(a - cx, 0)} = {d} - {paren(const)} = {d - const}$.",
            _solve_steps(a - cx, d - const, x),
        )
    else:
        den = rng.randint(2, 6)
        x = den * rng.randint(-6, 6)
        c = x // den + b
        eq = f"\\frac{{x}}{{{den}}} {signed(b)} = {c}"
        steps = (_move(b, f"\\frac{{x}}{{{den}}} = {c - b}"), f"Multiply both sides by {den}: $x = {x}$.")
    steps = tuple(s for s in steps if s) + (f"Check: substituting $x = {x}$ makes both sides equal.",)
    questions = (
        f"Solve for $x$: ${eq}$.",
        f"Find $x$ if ${eq}$.",
        f"What value of $x$ satisfies ${eq}$?",
        f"Solve ${eq}$.",
    )
    return Instance(f"linear.d{min(difficulty, 5)}", {"eq": eq}, questions, steps, str(x))


@register("linear_system", "algebra", "Solve a 2x2 linear system; the answer is the ordered pair (x, y).")
def make_linear_system(rng: random.Random, difficulty: int) -> Instance:
    span = 3 * difficulty + 2
    x, y = rng.randint(-span, span), rng.randint(-span, span)
    while True:
        a, b, c, d = (_nonzero(rng, -2 * difficulty - 1, 2 * difficulty + 1) for _ in range(4))
        if difficulty == 1:
            a, b, c, d = 1, 1, 1, -1
        det = a * d - b * c
        if det:
            break
    e, f = a * x + b * y, c * x + d * y
    eq1, eq2 = f"{poly([a, 0], 'x')} {signed(b)}y = {e}".replace(
        " 1y", " y"
    ), f"{poly([c, 0], 'x')} {signed(d)}y = {f}".replace(" 1y", " y")
    steps = (
        f"The determinant is ${a} \\cdot {paren(d)} - {paren(b)} \\cdot {paren(c)} = {det}$.",
        f"Eliminate $y$: multiply the first equation by {d} and the second by {b} and subtract: ${det}x = {e * d - f * b}$, so $x = {x}$.",
        f"Substitute back into the first equation: ${poly([b, 0], 'y')} = {e} - {paren(a)} \\cdot {paren(x)} = {e - a * x}$, so $y = {y}$.",
    )
    questions = (
        f"Solve the system ${eq1}$ and ${eq2}$. Give the answer as $(x, y)$.",
        f"Find the ordered pair $(x, y)$ with ${eq1}$ and ${eq2}$.",
        f"Two numbers $x$ and $y$ satisfy ${eq1}$ and ${eq2}$. Write the solution as $(x, y)$.",
    )
    return Instance("system.2x2", {"coef": [a, b, c, d], "rhs": [e, f]}, questions, steps, f"({x}, {y})", "tuple")


def _quadratic_rational(rng: random.Random, difficulty: int) -> Instance:
    """ax^2+bx+c built from rational roots; asks for one root or a root combination."""
    r1, r2 = rng.randint(-4 * difficulty, 4 * difficulty), rng.randint(-4 * difficulty, 4 * difficulty)
    a = 1 if difficulty <= 2 else rng.randint(1, 3)
    q = Fraction(r1) if a == 1 else Fraction(r1, a)
    coeffs = [a, -a * (q + r2), a * q * r2]
    if any(Fraction(c).denominator != 1 for c in coeffs):
        q, coeffs = Fraction(r1), [a, -a * (r1 + r2), a * r1 * r2]
    coeffs = [int(c) for c in coeffs]
    roots = sorted({q, Fraction(r2)})
    eq = f"{poly(coeffs)} = 0"
    ask = rng.choice(["larger", "smaller", "sum"] if len(roots) == 2 else ["larger"])
    steps = [
        f"Factor: ${poly(coeffs)} = {'' if a == 1 else a}"
        + "".join(f"(x {signed(-r)})" for r in (q, Fraction(r2))).replace("x + 0", "x").replace("x - 0", "x")
        + "$."
    ]
    steps.append(f"The roots are $x = {', '.join(tex(r) for r in roots)}$.")
    if ask == "sum":
        ans = sum(roots)
        steps.append(f"Their sum is ${tex(ans)}$.")
        questions = (
            f"What is the sum of the distinct solutions of ${eq}$?",
            f"Add up all distinct real roots of ${eq}$.",
        )
    else:
        ans = roots[-1] if ask == "larger" else roots[0]
        questions = (
            f"What is the {ask} solution of ${eq}$?",
            f"Find the {ask} root of ${eq}$.",
            f"Solve ${eq}$ and give the {ask} value of $x$." if len(roots) == 2 else f"Solve ${eq}$.",
        )
    return Instance(f"quadratic.{ask}", {"coeffs": coeffs}, questions, tuple(steps), frac(ans), "fraction")


def _quadratic_surd(rng: random.Random) -> Instance:
    """x^2 + bx + c with irrational roots p +- sqrt(s); asks for the larger root."""
    p = rng.randint(-6, 6)
    s = rng.choice([2, 3, 5, 6, 7, 10, 11])
    coeffs = [1, -2 * p, p * p - s]
    eq = f"{poly(coeffs)} = 0"
    disc = 4 * s
    answer = f"{p} + \\sqrt{{{s}}}" if p else f"\\sqrt{{{s}}}"
    steps = (
        f"Use the quadratic formula: the discriminant is ${(-2 * p)}^2 - 4 \\cdot {paren(p * p - s)} = {disc}$.",
        f"$x = \\frac{{{2 * p} \\pm \\sqrt{{{disc}}}}}{{2}} = {p} \\pm \\sqrt{{{s}}}$.",
        "The larger root takes the plus sign.",
    )
    questions = (f"Find the larger root of ${eq}$.", f"What is the larger solution of ${eq}$? Give an exact answer.")
    return Instance("quadratic.surd", {"coeffs": coeffs}, questions, steps, answer, "expr")


@register(
    "quadratic", "algebra", "Quadratic equations: factorable at low levels, quadratic formula with surds at level 5."
)
def make_quadratic(rng: random.Random, difficulty: int) -> Instance:
    if difficulty == 5 and rng.random() < 0.5:
        return _quadratic_surd(rng)
    return _quadratic_rational(rng, difficulty)


def _interval(lo: str, lo_closed: bool, hi: str, hi_closed: bool) -> str:
    """Interval notation with infinite ends always open."""
    return f"{'[' if lo_closed else '('}{lo}, {hi}{']' if hi_closed else ')'}"


@register("inequality", "algebra", "Solve a linear (or compound) inequality; answer in interval notation.")
def make_inequality(rng: random.Random, difficulty: int) -> Instance:
    a = _nonzero(rng, -9, 9) if difficulty >= 3 else rng.randint(1, 9)
    x0 = rng.randint(-10, 10)
    b = rng.randint(-15, 15)
    if difficulty <= 3:
        rel = rng.choice(["<", ">", "\\le", "\\ge"])
        c = a * x0 + b
        flipped = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}[rel] if a < 0 else rel
        closed = "le" in flipped or "ge" in flipped
        answer = (
            _interval("-\\infty", False, str(x0), closed)
            if flipped in ("<", "\\le")
            else _interval(str(x0), closed, "\\infty", False)
        )
        ineq = f"{linear(a, b)} {rel} {c}"
        steps = (
            _move(b, f"{linear(a, 0)} {rel} {c - b}") or "There is no constant term to move.",
            f"Divide by {a}{' and flip the inequality because it is negative' if a < 0 else ''}: $x {flipped} {x0}$.",
        )
    else:
        x1 = x0 + rng.randint(1, 8)
        lo, hi = a * x0 + b, a * x1 + b
        if a < 0:
            lo, hi = hi, lo
        left_rel, right_rel = rng.choice(["<", "\\le"]), rng.choice(["<", "\\le"])
        ineq = f"{lo} {left_rel} {linear(a, b)} {right_rel} {hi}"
        # dividing by a negative swaps which end each relation bounds
        lclosed, rclosed = (
            (left_rel == "\\le", right_rel == "\\le") if a > 0 else (right_rel == "\\le", left_rel == "\\le")
        )
        answer = _interval(str(x0), lclosed, str(x1), rclosed)
        steps = (
            _move(b, f"{lo - b} {left_rel} {linear(a, 0)} {right_rel} {hi - b}").replace(
                "both sides", "all three parts"
            )
            or "There is no constant term to move.",
            f"Divide by {a}{' and reverse the inequalities' if a < 0 else ''} to get the interval ${answer}$.",
        )
    questions = (
        f"Solve ${ineq}$. Write the solution in interval notation.",
        f"For which $x$ is ${ineq}$? Answer with an interval.",
        f"Find the solution set of ${ineq}$ in interval notation.",
    )
    return Instance(
        "inequality.linear" if difficulty <= 3 else "inequality.compound",
        {"ineq": ineq},
        questions,
        steps,
        answer,
        "interval",
    )
