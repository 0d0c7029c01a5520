"""Geometry: areas and perimeters, Pythagoras (with integer triples), and angle facts."""

from __future__ import annotations

import random
from fractions import Fraction

from rlmath.synth.registry import Instance, register
from rlmath.synth.render import frac, tex

_TRIPLES = [(3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29), (9, 40, 41)]


def _pi(coef: Fraction) -> str:
    """Answer form of a multiple of pi: ``25\\pi``, ``\\frac{9}{2}\\pi`` as ``9/2\\pi`` is ambiguous."""
    coef = Fraction(coef)
    if coef == 1:
        return "\\pi"
    if coef.denominator == 1:
        return f"{coef.numerator}\\pi"
    return f"\\frac{{{coef.numerator}\\pi}}{{{coef.denominator}}}"


@register("area", "geometry", "Areas of rectangles, triangles, trapezoids and circles (answers in terms of pi).")
def make_area(rng: random.Random, difficulty: int) -> Instance:
    shape = rng.choice(["rectangle", "triangle", "trapezoid", "circle", "sector"][: 1 + difficulty])
    s = 3 * difficulty + 5
    if shape == "rectangle":
        w, h = rng.randint(2, s), rng.randint(2, s)
        questions = (
            f"A rectangle is {w} cm wide and {h} cm tall. What is its area in square centimetres?",
            f"Find the area of a {w} by {h} rectangle.",
        )
        return Instance(
            "area.rectangle",
            {"w": w, "h": h},
            questions,
            (f"Area = width \u00d7 height = ${w} \\times {h} = {w * h}$.",),
            str(w * h),
        )
    if shape == "triangle":
        b, h = rng.randint(2, s), 2 * rng.randint(1, s)
        area = Fraction(b * h, 2)
        questions = (
            f"A triangle has base {b} and height {h}. What is its area?",
            f"Find the area of a triangle with base {b} m and height {h} m, in square metres.",
        )
        return Instance(
            "area.triangle",
            {"b": b, "h": h},
            questions,
            (f"Area = $\\frac{{1}}{{2}} \\cdot {b} \\cdot {h} = {tex(area)}$.",),
            frac(area),
            "fraction",
        )
    if shape == "trapezoid":
        a, b, h = rng.randint(2, s), rng.randint(2, s), 2 * rng.randint(1, s)
        area = Fraction((a + b) * h, 2)
        questions = (
            f"A trapezoid has parallel sides {a} and {b} and height {h}. Find its area.",
            f"What is the area of a trapezoid with bases {a} and {b} and height {h}?",
        )
        return Instance(
            "area.trapezoid",
            {"a": a, "b": b, "h": h},
            questions,
            (f"Area = $\\frac{{{a} + {b}}}{{2}} \\cdot {h} = {tex(area)}$.",),
            frac(area),
            "fraction",
        )
    r = rng.randint(1, s)
    if shape == "circle":
        questions = (
            f"What is the area of a circle with radius {r}? Give the answer in terms of $\\pi$.",
            f"A circle has diameter {2 * r}. Find its area in terms of $\\pi$.",
        )
        return Instance(
            "area.circle",
            {"r": r},
            questions,
            (f"The radius is {r}.", f"Area = $\\pi r^2 = {_pi(Fraction(r * r))}$."),
            _pi(Fraction(r * r)),
            "expr",
        )
    angle = rng.choice([30, 45, 60, 90, 120, 135, 150, 270])
    coef = Fraction(angle, 360) * r * r
    questions = (
        f"A sector of a circle of radius {r} has a central angle of ${angle}^\\circ$. What is its area in terms of $\\pi$?",
        f"Find the area of a ${angle}^\\circ$ sector cut from a circle of radius {r}. Leave $\\pi$ in the answer.",
    )
    steps = (
        f"The sector is $\\frac{{{angle}}}{{360}}$ of the circle of area ${_pi(Fraction(r * r))}$.",
        f"Area = ${_pi(coef)}$.",
    )
    return Instance("area.sector", {"r": r, "angle": angle}, questions, steps, _pi(coef), "expr")


@register(
    "pythagoras", "geometry", "Right triangles: missing sides from Pythagorean triples, distances between points."
)
def make_pythagoras(rng: random.Random, difficulty: int) -> Instance:
    a, b, c = rng.choice(_TRIPLES[: 2 + difficulty])
    k = rng.randint(1, 1 + difficulty)
    a, b, c = a * k, b * k, c * k
    if difficulty >= 4 and rng.random() < 0.5:
        x1, y1 = rng.randint(-9, 9), rng.randint(-9, 9)
        x2, y2 = x1 + rng.choice([a, -a]), y1 + rng.choice([b, -b])
        questions = (
            f"What is the distance between $({x1}, {y1})$ and $({x2}, {y2})$?",
            f"Find the length of the segment from $({x1}, {y1})$ to $({x2}, {y2})$.",
        )
        steps = (
            f"The horizontal and vertical differences are {a} and {b}.",
            f"$d = \\sqrt{{{a}^2 + {b}^2}} = \\sqrt{{{c * c}}} = {c}$.",
        )
        return Instance("pyth.distance", {"p": [x1, y1], "q": [x2, y2]}, questions, steps, str(c))
    if rng.random() < 0.5:
        questions = (
            f"A right triangle has legs {a} and {b}. How long is the hypotenuse?",
            f"The legs of a right triangle measure {a} and {b}. Find the hypotenuse.",
            f"A ladder reaches {b} m up a wall with its foot {a} m from the wall. How long is the ladder, in metres?",
        )
        steps = (f"$c^2 = {a}^2 + {b}^2 = {a * a} + {b * b} = {c * c}$.", f"$c = \\sqrt{{{c * c}}} = {c}$.")
        return Instance("pyth.hypotenuse", {"a": a, "b": b}, questions, steps, str(c))
    questions = (
        f"A right triangle has hypotenuse {c} and one leg {a}. How long is the other leg?",
        f"The hypotenuse of a right triangle is {c} and a leg is {a}. Find the other leg.",
    )
    steps = (f"$b^2 = {c}^2 - {a}^2 = {c * c} - {a * a} = {b * b}$.", f"$b = \\sqrt{{{b * b}}} = {b}$.")
    return Instance("pyth.leg", {"a": a, "c": c}, questions, steps, str(b))


@register("angles", "geometry", "Angle facts: triangles, supplementary angles, polygon interior and exterior angles.")
def make_angles(rng: random.Random, difficulty: int) -> Instance:
    kind = rng.choice(
        ["triangle", "supplement", "interior_sum", "regular_interior", "exterior_sides"][: 1 + difficulty]
    )
    if kind == "triangle":
        x, y = rng.randint(20, 80), rng.randint(20, 80)
        questions = (
            f"Two angles of a triangle are ${x}^\\circ$ and ${y}^\\circ$. What is the third angle in degrees?",
            f"A triangle has angles {x}\u00b0 and {y}\u00b0. Find the remaining angle, in degrees.",
        )
        return Instance(
            "angle.triangle",
            {"x": x, "y": y},
            questions,
            (f"Angles of a triangle sum to $180^\\circ$: $180 - {x} - {y} = {180 - x - y}$.",),
            str(180 - x - y),
        )
    if kind == "supplement":
        x = rng.randint(10, 170)
        questions = (
            f"What is the supplement of a ${x}^\\circ$ angle, in degrees?",
            f"Two angles on a straight line add up to $180^\\circ$. One is ${x}^\\circ$. Find the other.",
        )
        return Instance("angle.supplement", {"x": x}, questions, (f"$180 - {x} = {180 - x}$.",), str(180 - x))
    n = rng.randint(5, 6 + 2 * difficulty)
    if kind == "interior_sum":
        questions = (
            f"What is the sum of the interior angles of a polygon with {n} sides, in degrees?",
            f"Find the interior angle sum of a {n}-gon in degrees.",
        )
        return Instance(
            "angle.sum",
            {"n": n},
            questions,
            (f"The sum is $(n - 2) \\cdot 180 = {n - 2} \\cdot 180 = {(n - 2) * 180}$.",),
            str((n - 2) * 180),
        )
    if kind == "regular_interior":
        value = Fraction((n - 2) * 180, n)
        questions = (
            f"What is each interior angle of a regular polygon with {n} sides, in degrees?",
            f"Find one interior angle of a regular {n}-gon (degrees).",
        )
        steps = (
            f"The interior angles sum to ${(n - 2) * 180}$.",
            f"Each of the {n} equal angles is $\\frac{{{(n - 2) * 180}}}{{{n}}} = {tex(value)}$.",
        )
        return Instance("angle.regular", {"n": n}, questions, steps, frac(value), "fraction")
    ext = rng.choice([d for d in range(5, 73) if 360 % d == 0])
    questions = (
        f"Each exterior angle of a regular polygon is ${ext}^\\circ$. How many sides does it have?",
        f"A regular polygon has exterior angles of {ext} degrees. Find its number of sides.",
    )
    return Instance(
        "angle.sides",
        {"ext": ext},
        questions,
        (f"Exterior angles sum to $360^\\circ$, so $n = \\frac{{360}}{{{ext}}} = {360 // ext}$.",),
        str(360 // ext),
    )
