"""The parsed forms of an answer: a scalar, an equation, a set of reals, a sequence, or text.

Small frozen dataclasses instead of raw sympy objects, so the comparison can honour how the answer
was written (a percent, a decimal with d places, an ordered tuple vs an unordered list).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

MAX_RENDER = 200


def render(expr) -> str:
    """``str(expr)`` capped in length; huge integers (``2006!``) print as a digit count instead."""
    try:
        text = str(expr)
    except ValueError:  # Python refuses int->str beyond 4300 digits
        return "<number with more than 4300 digits>"
    return text if len(text) <= MAX_RENDER else text[:MAX_RENDER] + "..."


@dataclass(frozen=True)
class Scalar:
    """A number or expression; ``decimals`` is the places of a decimal literal it was written with."""

    expr: sympy.Expr
    percent: bool = False
    decimals: int | None = None

    def __str__(self) -> str:
        return f"{render(self.expr)}%" if self.percent else render(self.expr)


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs`` (a chain ``a = b = c`` keeps its first and last sides)."""

    lhs: sympy.Expr
    rhs: sympy.Expr

    def __str__(self) -> str:
        return f"{render(self.lhs)} = {render(self.rhs)}"


@dataclass(frozen=True)
class RealSet:
    """An interval, a union of intervals, or the solution set of an inequality in one variable."""

    value: sympy.Set

    def __str__(self) -> str:
        return render(self.value)


@dataclass(frozen=True)
class Seq:
    """A tuple (``ordered``), a set or unordered list of answers, or a matrix (rows of ``Seq``)."""

    items: tuple
    ordered: bool
    kind: str = "list"  # "tuple", "set", "list", "matrix", "pm"

    def __str__(self) -> str:
        inner = ", ".join(str(item) for item in self.items)
        return {"tuple": f"({inner})", "set": f"{{{inner}}}", "matrix": f"[{inner}]"}.get(self.kind, inner)


@dataclass(frozen=True)
class Text:
    """A word answer (yes/no, a day, a name) or a multiple-choice letter (``choice=True``)."""

    text: str
    choice: bool = False

    def __str__(self) -> str:
        return f"({self.text})" if self.choice else self.text


@dataclass(frozen=True)
class Relation:
    """An inequality that is not a set in one variable (``f(2) < f(1) < f(4)``), compared as written."""

    sides: tuple
    operators: tuple

    def __str__(self) -> str:
        parts = [render(self.sides[0])]
        for op, side in zip(self.operators, self.sides[1:]):
            parts += [op, render(side)]
        return " ".join(parts)
