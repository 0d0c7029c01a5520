"""Decide whether two parsed answers are the same answer.

Exact where the answer is exact (rationals compare as rationals, so ``1/2004!`` is not ``1/2006!``),
numeric at random points for symbolic expressions (cheaper and safer than ``simplify``), and
tolerant only where the text itself is approximate (a decimal with d places vs an exact value).
"""

from __future__ import annotations

import random
import zlib
from itertools import product

import sympy

from rewards.values import Equation, RealSet, Relation, Scalar, Seq, Text
from rewards.verdict import Options

PRECISION = 40
"""Digits for numeric checks; well past anything an answer distinguishes."""
SAMPLE_POINTS = 4


def equivalent(gold, pred, options: Options) -> bool:
    """True when ``pred`` states the same answer as ``gold`` (the gold's form decides the rules)."""
    if isinstance(gold, Text) or isinstance(pred, Text):
        return text_equal(gold, pred)
    if isinstance(gold, Relation) or isinstance(pred, Relation):
        return relation_equal(gold, pred, options)
    if isinstance(gold, Equation):
        return equation_matches(gold, pred, options)
    if isinstance(pred, Equation):
        value = solved_value(pred)
        return value is not None and equivalent(gold, Scalar(value), options)
    if isinstance(gold, RealSet) or isinstance(pred, RealSet):
        return set_equal(gold, pred, options)
    if isinstance(gold, Seq) or isinstance(pred, Seq):
        return seq_equal(as_seq(gold), as_seq(pred), options)
    return scalar_equal(gold, pred, options)


def text_equal(gold, pred) -> bool:
    """Words compare case- and space-insensitively; a choice letter also matches ``\\text{B}``."""
    if not (isinstance(gold, Text) and isinstance(pred, Text)):
        letter = _as_letter(pred) if isinstance(gold, Text) else _as_letter(gold)
        text = gold if isinstance(gold, Text) else pred
        return text.choice and letter == text.text
    if gold.choice or pred.choice:
        return gold.text.upper() == pred.text.upper()
    return gold.text.replace(" ", "") == pred.text.replace(" ", "")


def _as_letter(value) -> str | None:
    if isinstance(value, Scalar) and isinstance(value.expr, sympy.Symbol) and len(value.expr.name) == 1:
        return value.expr.name.upper()
    return None


_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "\\neq": "\\neq"}


def relation_equal(gold, pred, options: Options) -> bool:
    """Inequalities written as-is: same sides and operators, or the whole chain mirrored."""
    if not (isinstance(gold, Relation) and isinstance(pred, Relation)):
        return False
    mirrored = (tuple(reversed(pred.sides)), tuple(_FLIP.get(op, op) for op in reversed(pred.operators)))
    for sides, operators in ((pred.sides, pred.operators), mirrored):
        if operators == gold.operators and len(sides) == len(gold.sides) and all(
                expr_equal(g, p, options) for g, p in zip(gold.sides, sides)):
            return True
    return False


def solved_value(equation: Equation):
    """The value an equation states: ``x = 5`` -> 5 (a lone symbol or a number on one side)."""
    if equation.lhs.is_Symbol or (equation.lhs.is_number and equation.rhs.is_number):
        return equation.rhs
    if is_label(equation.lhs) and equation.rhs.is_number:
        return equation.rhs  # |AB| = 1, f(x) = 1, NO/BO = 1/sqrt(6): a named quantity
    if equation.rhs.is_Symbol and equation.lhs.is_number:
        return equation.lhs
    return None


def is_label(expr) -> bool:
    """A name-like left side: one term of symbols (``AB``, ``|AB|``, ``NO/BO``), no digits but 1."""
    if expr.is_Add or not expr.free_symbols:
        return False
    return all(abs(number) == 1 for number in expr.atoms(sympy.Number))


def equation_matches(gold: Equation, pred, options: Options) -> bool:
    """``x = 5`` matches ``x = 5``, ``5 = x`` and (unless strict) ``5``; equations compare as sets."""
    if isinstance(pred, Equation):
        if gold.lhs.is_Symbol and pred.lhs.is_Symbol:
            return gold.lhs == pred.lhs and expr_equal(gold.rhs, pred.rhs, options)
        if gold.lhs.is_Symbol and pred.rhs.is_Symbol and not pred.lhs.free_symbols:
            return gold.lhs == pred.rhs and expr_equal(gold.rhs, pred.lhs, options)
        return same_equation(gold, pred)
    if options.strict_equations:
        return False
    value = solved_value(gold)
    if value is None:
        return False
    return equivalent(Scalar(value), pred, options)


def same_equation(gold: Equation, pred: Equation) -> bool:
    """Two equations are the same when ``lhs - rhs`` of one is a nonzero constant times the other's.

    So ``x + y = 1`` matches ``2x + 2y = 2``, but ``x^2 - 1 = 0`` does not match ``x^2 - 4 = 0``.
    """
    first = gold.lhs - gold.rhs
    second = pred.lhs - pred.rhs
    if first == 0 or second == 0:
        return first == second
    ratios = []
    for point in sample_points(first.free_symbols | second.free_symbols):
        a, b = numeric(first, point), numeric(second, point)
        if a is None or b is None or abs(b) < 1e-30:
            continue
        ratios.append(a / b)
    return len(ratios) >= 2 and abs(ratios[0]) > 1e-30 and all(close(r, ratios[0]) for r in ratios)


def set_equal(gold, pred, options: Options) -> bool:
    """Intervals, unions and inequality solution sets compare as sets of reals."""
    try:
        first, second = _real_set(gold), _real_set(pred)
    except ValueError:
        return False
    if first == second:
        return True
    if isinstance(first, sympy.FiniteSet) and isinstance(second, sympy.FiniteSet):
        return seq_equal(as_seq(gold), as_seq(pred), options)
    return False


def _real_set(value) -> sympy.Set:
    from rewards.parse import as_real_set  # local: parse imports values only, no cycle at import time

    try:
        return as_real_set(value)
    except Exception as exc:  # noqa: BLE001 - ParseError and sympy errors mean "not a set"
        raise ValueError(str(exc)) from exc


def as_seq(value) -> Seq:
    return value if isinstance(value, Seq) else Seq((value,), ordered=False, kind="list")


def seq_equal(gold: Seq, pred: Seq, options: Options) -> bool:
    """Ordered when both are tuples or matrices; otherwise a one-to-one matching in any order."""
    if {gold.kind, pred.kind} in ({"tuple", "set"}, {"matrix", "set"}):
        return False  # an ordered pair is not a set, nor the reverse
    if gold.ordered and pred.ordered or (gold.kind == "tuple" and pred.kind == "list" and len(gold.items) > 1):
        return len(gold.items) == len(pred.items) and all(
            equivalent(g, p, options) for g, p in zip(gold.items, pred.items))
    # Unordered: the same set of answers (a repeated answer is still the same answer).
    return all(any(equivalent(g, p, options) for p in pred.items) for g in gold.items) and all(
        any(equivalent(g, p, options) for g in gold.items) for p in pred.items)


def scalar_equal(gold: Scalar, pred: Scalar, options: Options) -> bool:
    """Numbers and expressions, trying the percent readings when either side was written with %."""
    gold_forms = [gold.expr] + ([gold.expr / 100] if gold.percent and options.percent else [])
    pred_forms = [pred.expr] + ([pred.expr / 100] if pred.percent and options.percent else [])
    if options.percent and not gold.percent and pred.percent:
        pred_forms = [pred.expr / 100, pred.expr]
    for g, p in product(gold_forms, pred_forms):
        if expr_equal(g, p, options):
            return True
        if decimal_match(gold, g, pred, p) or decimal_match(pred, p, gold, g):
            return True
    return False


def decimal_match(approx: Scalar, approx_value, exact: Scalar, exact_value) -> bool:
    """A decimal with d >= 3 places matches an exact value rounded to d places.

    ``0.333`` matches ``1/3`` and ``1.414`` matches ``\\sqrt{2}``; ``0.33`` does not match ``1/3``, and
    a decimal never gets tolerance against another terminating decimal or integer.
    """
    if approx.decimals is None or exact.decimals is not None or not exact_value.is_number:
        return False
    if isinstance(exact_value, sympy.Rational) and _terminates(exact_value):
        return False
    if approx.decimals < 3:
        return False  # 1.41 is not sqrt(2), 6.28 is not 2*pi; 1.414 and 0.333 are
    try:
        rounded = sympy.Float(exact_value.evalf(PRECISION), PRECISION).round(approx.decimals)
        return abs(rounded - approx_value) < sympy.Rational(1, 10 ** (approx.decimals + 3))
    except (TypeError, ValueError):
        return False


def _terminates(value: sympy.Rational) -> bool:
    q = int(value.q)
    for prime in (2, 5):
        while q % prime == 0:
            q //= prime
    return q == 1


def expr_equal(first: sympy.Expr, second: sympy.Expr, options: Options) -> bool:
    """Exact for rationals; 40-digit numeric for other constants; random points for expressions."""
    if first == second:
        return True
    if isinstance(first, sympy.Rational) and isinstance(second, sympy.Rational):
        return False
    symbols = first.free_symbols | second.free_symbols
    if not symbols:
        a, b = numeric(first, {}), numeric(second, {})
        return a is not None and b is not None and close(a, b, options.rel_tol if _approx(first, second) else 1e-25)
    checked = 0
    for point in sample_points(symbols):
        a, b = numeric(first, point), numeric(second, point)
        if a is None and b is None:
            continue
        if a is None or b is None or not close(a, b, 1e-20):
            return False
        checked += 1
    return checked >= 2


def _approx(first: sympy.Expr, second: sympy.Expr) -> bool:
    return first.has(sympy.Float) or second.has(sympy.Float)


def close(a: complex, b: complex, rel_tol: float = 1e-20) -> bool:
    return abs(a - b) <= rel_tol * max(1.0, abs(a), abs(b))


def numeric(expr: sympy.Expr, point: dict) -> complex | None:
    """``expr`` at ``point`` as a complex number, or None where undefined (division by zero, oo)."""
    try:
        value = expr.evalf(PRECISION, subs=point) if point else expr.evalf(PRECISION)
        number = complex(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    if number != number or abs(number) == float("inf"):
        return None
    return number


def sample_points(symbols: set) -> list[dict]:
    """A few deterministic pseudo-random points (irrational-looking reals) for the free symbols."""
    ordered = sorted(symbols, key=lambda symbol: symbol.name)
    rng = random.Random(zlib.crc32(",".join(s.name for s in ordered).encode()))
    return [{symbol: sympy.Float(rng.uniform(0.3, 2.7), 30) for symbol in ordered} for _ in range(SAMPLE_POINTS)]
