"""Independent recomputation of gold answers with sympy, from each item's parameters.

The engine computes answers with fast int/Fraction arithmetic; here sympy (or brute force)
recomputes them from `meta["params"]` (or the question text), so a wrong formula in a family
cannot hide behind a self-consistent solution.
"""

from __future__ import annotations

import json
import re
from itertools import product
from math import comb, perm

import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr
from synth_sympy_values import _T, X, latex_to_text, same, value

from rlmath.synth import FAMILIES, generate
from rlmath.synth.families.data import _UNITS


def _poly(coeffs):
    return sum(sp.nsimplify(c) * X ** (len(coeffs) - 1 - i) for i, c in enumerate(coeffs))


def _latex(text):
    return parse_expr(latex_to_text(text), local_dict={"x": X}, transformations=_T)


def _math(question):
    """The first $...$ span of a question."""
    return re.search(r"\$([^$]*)\$", question).group(1)


def _arith(it, p):
    t = it["meta"]["template"]
    if t == "add.terms":
        return sum(p["nums"])
    if t == "sub.terms":
        return p["nums"][0] - sum(p["nums"][1:])
    if t == "mul.two":
        return p["a"] * p["b"]
    if t == "order.tree":
        return _latex(p["expr"])
    if t == "fractions.chain":
        acc = sp.Rational(p["values"][0])
        for op, v in zip(p["ops"], p["values"][1:]):
            v = sp.Rational(v)
            acc = {"+": acc + v, "-": acc - v, "*": acc * v, "/": acc / v}[op]
        return acc
    if t.startswith("decimals."):
        a, b = sp.Rational(p["a"]), sp.Rational(p["b"])
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[p["op"]]
    if t == "percent.of":
        return sp.Rational(str(p["p"])) * p["n"] / 100
    if t == "percent.what":
        return sp.Rational(p["part"]) / p["whole"] * 100
    if t == "percent.change":
        return p["n"] * sp.prod([1 + sp.Rational(c, 100) for c in p["changes"]])
    if t == "ratio.share":
        return sp.Rational(p["total"] * p["parts"][p["who"]], sum(p["parts"]))
    if t == "ratio.scale":
        return sp.Rational(p["known"] * p["b"], p["a"])
    return None


def _relation(text):
    text = text.replace("\\le", "<=").replace("\\ge", ">=")
    parts = re.split(r"(<=|>=|<|>|=)", text)
    exprs = [_latex(s) for s in parts[::2]]
    ops = parts[1::2]
    rel = {"<=": sp.Le, ">=": sp.Ge, "<": sp.Lt, ">": sp.Gt, "=": sp.Eq}
    return [rel[o](exprs[i], exprs[i + 1]) for i, o in enumerate(ops)]


def _algebra(it, p):
    t = it["meta"]["template"]
    if t.startswith("linear."):
        (sol,) = sp.solve(_relation(p["eq"])[0], X)
        return sol
    if t == "system.2x2":
        a, b, c, d = p["coef"]
        y = sp.Symbol("y")
        s = sp.solve([a * X + b * y - p["rhs"][0], c * X + d * y - p["rhs"][1]], [X, y])
        return (s[X], s[y])
    if t.startswith("quadratic."):
        roots = sorted(set(sp.solve(_poly(p["coeffs"]), X)), key=lambda r: float(r))
        return {"larger": roots[-1], "smaller": roots[0], "sum": sum(roots), "surd": roots[-1]}[t.split(".")[1]]
    if t.startswith("inequality."):
        return sp.Intersection(*[sp.solveset(r, X, sp.S.Reals) for r in _relation(p["ineq"])])
    if t == "poly.expand":
        return sp.expand(sp.prod([_poly(f) for f in p["factors"]]))
    if t == "poly.eval":
        return _poly(p["p"]).subs(X, p["x"])
    if t == "poly.remainder":
        return sp.rem(_poly(p["p"]), X - p["x"], X)
    if t == "compose.value":
        return _poly(p["f"]).subs(X, _poly(p["g"]).subs(X, p["k"]))
    if t == "compose.symbolic":
        return sp.expand(_poly(p["f"]).subs(X, _poly(p["g"])))
    if t.startswith("exp."):
        if t == "exp.laws":
            return sp.Integer(p["b"]) ** p["m"] * sp.Integer(p["b"]) ** p["n"] / sp.Integer(p["b"]) ** p["k"]
        if t == "exp.fractional":
            return sp.Integer(p["b"]) ** sp.Rational(p["p"], p["q"])
        return sp.Integer(p["b"]) ** p["e"]
    if t == "surd.simplify":
        return sp.sqrt(p["n"])
    if t == "surd.product":
        return sp.sqrt(p["x"]) * sp.sqrt(p["y"])
    if t == "surd.sum":
        return sum(s * c * sp.sqrt(r * r * p["free"]) for s, c, r in zip(p["signs"], p["coefs"], p["roots"]))
    return None


def _calculus(it, p):
    t = it["meta"]["template"]
    if t == "deriv.poly":
        return sp.diff(_poly(p["p"]), X)
    if t == "deriv.at":
        return sp.diff(_poly(p["p"]), X).subs(X, p["k"])
    if t == "deriv.product":
        return sp.diff(_poly(p["u"]) * _poly(p["v"]), X).subs(X, p["k"])
    if t == "deriv.chain":
        return sp.diff(_poly(p["inner"]) ** p["n"], X).subs(X, p["k"])
    if t == "integral.poly":
        return sp.integrate(_poly(p["p"]), (X, p["a"], p["b"]))
    if t.startswith("limit."):
        at = sp.oo if p["at"] == "\\infty" else int(p["at"])
        return sp.limit(_poly(p["num"]) / _poly(p["den"]), X, at)
    if t.startswith("seq."):
        k = sp.Symbol("k", integer=True)
        if "arith" in t:
            term = p["a"] + k * p["d"]
            return term.subs(k, p["n"] - 1) if t.endswith("term") else sp.summation(term, (k, 0, p["n"] - 1))
        term = p["a"] * sp.Rational(p["r"]) ** k
        if t.endswith("term"):
            return term.subs(k, p["n"] - 1)
        return sp.summation(term, (k, 0, sp.oo if t.endswith("inf") else p["n"] - 1))
    return None


def _discrete(it, p):
    t, q = it["meta"]["template"], it["question"]
    if t in ("nt.gcd", "nt.lcm"):
        return (sp.gcd if t == "nt.gcd" else sp.lcm)(p["nums"])
    if t == "mod.remainder":
        return p["n"] % p["m"]
    if t == "mod.power":
        return sp.Integer(p["b"]) ** p["e"] % p["m"]
    if t == "mod.congruence":
        (sol,) = [x for x in range(p["m"]) if (p["a"] * x + p["c"] - p["rhs"]) % p["m"] == 0]
        return sol
    if t.startswith("prime."):
        f = sp.factorint(p["n"])
        return {"largest": max(f), "distinct": len(f), "divisors": sp.divisor_count(p["n"]), "sum": sum(f)}[
            t.split(".")[1]
        ]
    if t == "base.to10":
        digits = re.search(r"(\d+)_\{\d+\}|number (\d+) in", q)
        return int(digits.group(1) or digits.group(2), p["b"])
    if t == "base.from10":
        assert int(it["answer"], p["b"]) == p["n"]
        return int(it["answer"])
    if t == "count.choose":
        return comb(p["n"], p["k"])
    if t == "count.arrange":
        return perm(p["n"], p["k"])
    if t == "count.word":
        return sp.multinomial_coefficients(len(set(p["word"])), len(p["word"]))[
            tuple(p["word"].count(c) for c in sorted(set(p["word"])))
        ]
    if t == "prob.dice":
        outcomes = [a + b for a, b in product(range(1, 7), repeat=2)]
        hits = sum(1 for s in outcomes if (s >= p["target"] if p["at_least"] else s == p["target"]))
        return sp.Rational(hits, 36)
    if t == "prob.urn1":
        return sp.Rational(p["r"], p["r"] + p["b"])
    if t == "prob.urn2":
        return sp.Rational(comb(p["r"], 2), comb(p["r"] + p["b"], 2))
    if t == "prob.coins":
        return sp.Rational(comb(p["n"], p["k"]), 2 ** p["n"])
    return None


def _everyday(it, p):
    t, q = it["meta"]["template"], it["question"]
    if t.startswith("area."):
        shape = t.split(".")[1]
        return {
            "rectangle": lambda: p.get("w", 0) * p.get("h", 0),
            "triangle": lambda: sp.Rational(p["b"] * p["h"], 2),
            "trapezoid": lambda: sp.Rational((p["a"] + p["b"]) * p["h"], 2),
            "circle": lambda: sp.pi * p["r"] ** 2,
            "sector": lambda: sp.pi * p["r"] ** 2 * sp.Rational(p["angle"], 360),
        }[shape]()
    if t == "pyth.distance":
        return sp.sqrt((p["p"][0] - p["q"][0]) ** 2 + (p["p"][1] - p["q"][1]) ** 2)
    if t == "pyth.hypotenuse":
        return sp.sqrt(p["a"] ** 2 + p["b"] ** 2)
    if t == "pyth.leg":
        return sp.sqrt(p["c"] ** 2 - p["a"] ** 2)
    if t.startswith("angle."):
        kind = t.split(".")[1]
        return {
            "triangle": lambda: 180 - p["x"] - p["y"],
            "supplement": lambda: 180 - p["x"],
            "sum": lambda: (p["n"] - 2) * 180,
            "regular": lambda: sp.Rational((p["n"] - 2) * 180, p["n"]),
            "sides": lambda: sp.Rational(360, p["ext"]),
        }[kind]()
    if t.startswith("stats."):
        kind = t.split(".")[1]
        if kind == "missing":
            return p["mean"] * (len(p["known"]) + 1) - sum(p["known"])
        v = sorted(p["v"])
        return {
            "mean": lambda: sp.Rational(sum(v), len(v)),
            "range": lambda: v[-1] - v[0],
            "median": lambda: sp.Rational(v[(len(v) - 1) // 2] + v[len(v) // 2], 2),
        }[kind]()
    if t.startswith("units."):
        factor = next(
            f for small, big, f, _ in _UNITS if p["u"] in (small, big) and (big == p["u"]) == t.endswith("up")
        )
        amount = sp.Rational(p["amount"])
        return amount * factor if t.endswith("up") else amount / factor
    if t.startswith("det."):
        return sp.Matrix(p["m"]).det()
    return _word(it, p, q)


def _word(it, p, q):
    t = it["meta"]["template"]
    if t == "word.shopping":
        bill = int(
            re.search(r"(\d+)-dollar bill|with (\d+) dollars", q).group(1)
            or re.search(r"with (\d+) dollars", q).group(1)
        )
        return bill - (p["qa"] * p["pa"] + p["qb"] * p["pb"] - p["discount"])
    if t == "word.savings":
        return p["start"] + (p["earn"] - p["spend"]) * p["weeks"]
    if t == "word.bakery":
        return sp.Rational(p["trays"] * p["per"] - p["sold"] - p["given"], p["box"])
    if t == "word.travel":
        return sum(v * s for v, s in zip(p["v"], p["t"]))
    if t == "word.avg_speed":
        return sp.Rational(sum(v * s for v, s in zip(p["v"], p["t"])), sum(p["t"]))
    if t == "word.ages":
        return p["child"] * p["k"] + p["child"] + 2 * p["n"]
    return None


def expected(it):
    """Sympy recomputation of an item's answer, or None for an unknown template."""
    p = json.loads(it["meta"]["params"])
    for fn in (_arith, _algebra, _calculus, _discrete, _everyday):
        got = fn(it, p)
        if got is not None:
            return got
    return None


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sympy_recomputes_every_gold_answer(family):
    for it in generate(60, seed=11, families=[family], difficulty=(1, 5)):
        want = expected(it)
        assert want is not None, f"no sympy check for template {it['meta']['template']}"
        assert same(value(it["answer"], it["meta"]["kind"]), want), (it["question"], it["answer"], want)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sympy_recomputes_gold_answers_over_many_seeds(family):
    for seed in range(10):
        for it in generate(100, seed=seed, families=[family]):
            assert same(value(it["answer"], it["meta"]["kind"]), expected(it)), (it["question"], it["answer"])
