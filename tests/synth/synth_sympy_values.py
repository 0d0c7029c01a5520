"""Helpers for the synth tests: sympy values of gold answers (trusted engine strings only)."""

from __future__ import annotations

import re

import sympy as sp
from sympy.parsing.sympy_parser import implicit_multiplication_application, parse_expr, standard_transformations

X = sp.Symbol("x")
_T = standard_transformations + (implicit_multiplication_application,)


def latex_to_text(s: str) -> str:
    """Turn the small LaTeX subset the engine emits into sympy-parsable text."""
    s = (
        s.replace("\\left(", "(")
        .replace("\\right)", ")")
        .replace("\\times", "*")
        .replace("\\div", "/")
        .replace("\\cdot", "*")
    )
    s = s.replace("\\infty", "oo").replace("\\pi", "*pi")
    for _ in range(3):
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"*sqrt(\1)", s)
        s = re.sub(r"\^\{([^{}]*)\}", r"**(\1)", s)
    s = s.replace("^", "**").replace("(*", "(").replace("+ *", "+ ").replace("- *", "- ")
    return s.lstrip("*").strip()


def value(answer: str, kind: str = ""):
    """Sympy value of a gold answer: number, expression, tuple or (with kind="interval") interval."""
    m = re.fullmatch(r"([\(\[])(.*), (.*)([\)\]])", answer)
    if m and kind == "interval":
        lo, hi = value(m.group(2)), value(m.group(3))
        return sp.Interval(lo, hi, left_open=m.group(1) == "(", right_open=m.group(4) == ")")
    if m:
        return (value(m.group(2)), value(m.group(3)))
    return parse_expr(latex_to_text(answer), local_dict={"x": X}, transformations=_T)


def same(a, b) -> bool:
    """Exact equality of two sympy values (tuples element-wise)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and all(same(p, q) for p, q in zip(a, b))
    if isinstance(a, sp.Set) or isinstance(b, sp.Set):
        return a == b
    return sp.simplify(sp.sympify(a) - sp.sympify(b)) == 0
