"""Parse an answer string into a value (``rewards.values``): the structure layer over the grammar.

The grammar (``rewards.grammar``) handles one scalar expression; this module decides what kind of
answer the text is first: a multiple-choice letter, a word, a matrix, a set or list, a tuple or
interval, a union, an equation or inequality, a ``\\pm`` pair, a percent, or a plain expression.
"""

from __future__ import annotations

import re

import sympy

from rewards.grammar import ParseError, parse_expression
from rewards.normalize import normalize, unwrap_text
from rewards.values import Equation, RealSet, Relation, Scalar, Seq, Text

__all__ = ["ParseError", "parse_answer"]

MAX_ITEMS = 64
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_RELATIONS_RE = re.compile(r"\\le(?![a-zA-Z])|\\ge(?![a-zA-Z])|\\neq(?![a-zA-Z])|\\approx(?![a-zA-Z])|<=|>=|!=|[=<>≤≥≠]")
_CHOICE_RE = re.compile(r"^\(?([A-E])\)?$|^\(([A-Ea-e])\)(?:\s.*)?$|^\\text\{\s*\(?([A-E])\)?\s*\}$")
_MATRIX_RE = re.compile(r"^\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.DOTALL)
_WORD_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*$")
_OR_RE = re.compile(r"\s*(?:\\text\{\s*(?:or|and)\s*\}|\bor\b|\band\b)\s*")
_LABEL_RE = re.compile(r"^[\sA-Za-z_{}\d,():\\]*$")
_TIME_RE = re.compile(r"^\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?$", re.IGNORECASE)
_FUNCTION_WORDS = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt", "pi"}
_ENUMERATION_SEPARATORS = (",", ";")


def parse_answer(text: str):
    """Parse answer text (LaTeX or plain) into a value; raises ParseError when it is not an answer.

    >>> str(parse_answer(r"\\{3, 1, 2\\}")), str(parse_answer("(1, 2]")), str(parse_answer("x = 5"))
    ('{3, 1, 2}', 'Interval.Lopen(1, 2)', 'x = 5')
    >>> str(parse_answer("x > 3")), str(parse_answer(r"1 \\pm \\sqrt{2}"))
    ('Interval.open(3, oo)', '1 + sqrt(2), 1 - sqrt(2)')
    """
    text = normalize(text)
    if not text:
        raise ParseError("empty answer")
    return parse_normalized(text)


def parse_normalized(text: str):
    """Dispatch on the outermost structure of already-normalized text."""
    text = re.sub(r"^[A-Za-z](?:_\{?\w+\}?)?\s*\\in\s*", "", text)
    if _TIME_RE.match(text):
        return Text(text.lower().replace(" ", ""))
    for parser in (parse_choice, parse_words, parse_matrix, parse_alternatives, parse_union, parse_bracketed,
                   parse_enumeration, parse_plus_minus, parse_relation):
        value = parser(text)
        if value is not None:
            return value
    return parse_scalar(text)


def parse_choice(text: str) -> Text | None:
    """A multiple-choice letter: ``B``, ``(B)``, ``\\text{(B)}``, ``(B) 12``."""
    match = _CHOICE_RE.match(text.strip())
    if not match:
        return None
    return Text(next(group for group in match.groups() if group).upper(), choice=True)


def parse_words(text: str) -> Text | None:
    """A word answer (``yes``, ``\\text{Monday}``, ``no solution``); short letter runs stay math."""
    plain = unwrap_text(text)
    if not _WORD_RE.match(plain):
        return None
    words = re.findall(r"[A-Za-z]+", plain)
    wordy = [w for w in words if len(w) >= 3 and w.lower() not in _FUNCTION_WORDS]
    if not wordy and plain.lower() not in ("no", "yes"):
        return None
    return Text(" ".join(plain.lower().replace("-", " ").split()))


def parse_matrix(text: str) -> Seq | None:
    """``\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}``; a single column is a vector."""
    match = _MATRIX_RE.match(text.strip())
    if not match:
        return None
    rows = [row for row in re.split(r"\\\\", match.group(2)) if row.strip() and row.strip() != "\\hline"]
    cells = [[parse_scalar(cell.strip()) for cell in row.split("&")] for row in rows]
    if len(cells) > MAX_ITEMS or not cells:
        raise ParseError("matrix too large or empty")
    if all(len(row) == 1 for row in cells):
        return Seq(tuple(row[0] for row in cells), ordered=True, kind="tuple")
    return Seq(tuple(Seq(tuple(row), ordered=True, kind="tuple") for row in cells), ordered=True, kind="matrix")


def split_top(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split at separators outside any brackets (interval brackets may be mismatched: ``(1, 2]``)."""
    parts, depth, start, index = [], 0, 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in "{}":
            depth += 1 if text[index + 1] == "{" else -1
            index += 2
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            for separator in separators:
                if text.startswith(separator, index):
                    parts.append(text[start:index])
                    start = index + len(separator)
                    index = start - 1
                    break
        index += 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def parse_alternatives(text: str) -> Seq | RealSet | None:
    """``x = 1 or x = 2``, ``3 and 5``: an unordered list (a union when every part is a set)."""
    pieces = [piece.strip(" ,") for piece in _OR_RE.split(text) if piece and piece.strip(" ,")]
    if len(pieces) < 2:
        return None
    values = [parse_normalized(piece.strip()) for piece in pieces[:MAX_ITEMS]]
    if all(isinstance(value, RealSet) for value in values):
        return RealSet(sympy.Union(*(value.value for value in values)))
    return unordered(values)


def unordered(values) -> Seq:
    """An unordered list, flattening nested unordered lists (``1, 2 or 3``; a ``\\pm`` inside a list)."""
    flat = []
    for value in values:
        if isinstance(value, Seq) and value.kind in ("list", "pm"):
            flat.extend(value.items)
        else:
            flat.append(value)
    return Seq(tuple(flat), ordered=False, kind="list")


def parse_union(text: str) -> RealSet | None:
    r"""``(-\infty, 1) \cup (2, \infty)``."""
    pieces = split_top(text, ("\\cup", "∪"))
    if len(pieces) < 2:
        return None
    sets = [as_real_set(parse_normalized(piece)) for piece in pieces[:MAX_ITEMS]]
    return RealSet(sympy.Union(*sets))


def as_real_set(value) -> sympy.Set:
    """A value that can stand for a set of reals: an interval, a tuple read as one, or points."""
    if isinstance(value, RealSet):
        return value.value
    if isinstance(value, Seq) and value.kind == "tuple" and len(value.items) == 2:
        return sympy.Interval.open(value.items[0].expr, value.items[1].expr)
    if isinstance(value, Seq) and value.kind == "set":
        return sympy.FiniteSet(*(item.expr for item in value.items if isinstance(item, Scalar)))
    if isinstance(value, Scalar):
        return sympy.FiniteSet(value.expr)
    raise ParseError("not a set of reals")


def parse_bracketed(text: str):
    r"""``\{...\}`` sets, ``(a, b)`` tuples, ``[a, b)`` intervals, ``\langle a, b \rangle`` vectors."""
    opener, closer, inner = outer_brackets(text)
    if opener is None:
        return None
    items = split_top(inner, _ENUMERATION_SEPARATORS)
    if len(items) > MAX_ITEMS:
        raise ParseError("too many items")
    if opener in ("\\{", "{") and closer in ("\\}", "}"):
        if opener == "{" and len(items) == 1:
            return parse_normalized(inner)
        return Seq(tuple(parse_normalized(item) for item in items if item), ordered=False, kind="set")
    if len(items) == 1:
        return None if opener == "(" else parse_normalized(inner) if opener == "[" else None
    values = tuple(parse_normalized(item) for item in items)
    if len(values) == 2 and all(isinstance(v, Scalar) for v in values) and opener + closer != "()" and opener != "\\langle":
        return RealSet(interval(values[0].expr, values[1].expr, opener == "(", closer == ")"))
    if len(values) == 2 and opener == "(" and any(isinstance(v, Scalar) and v.expr.has(sympy.oo) for v in values):
        return RealSet(interval(values[0].expr, values[1].expr, True, True))
    return Seq(values, ordered=True, kind="tuple")


def interval(low, high, left_open: bool, right_open: bool) -> sympy.Set:
    if not (low.is_real or low.is_infinite) or not (high.is_real or high.is_infinite):
        raise ParseError("interval with non-real ends")
    return sympy.Interval(low, high, left_open or low == -sympy.oo, right_open or high == sympy.oo)


def outer_brackets(text: str):
    """The enclosing bracket pair of the whole text, e.g. ``('(', ']', '1, 2')``, or Nones."""
    text = text.strip()
    pairs = (("\\{", "\\}"), ("\\langle", "\\rangle"), ("(", ")"), ("(", "]"), ("[", "]"), ("[", ")"), ("{", "}"))
    for opener, closer in pairs:
        if text.startswith(opener) and text.endswith(closer) and len(text) >= len(opener) + len(closer):
            inner = text[len(opener):len(text) - len(closer)]
            if balanced(inner):
                return opener, closer, inner
    return None, None, None


def balanced(text: str) -> bool:
    """True when brackets in ``text`` never close more than they opened (ignoring bracket kinds)."""
    depth = 0
    for char in text:
        depth += 1 if char in "([{" else -1 if char in ")]}" else 0
        if depth < 0:
            return False
    return depth == 0


def parse_enumeration(text: str) -> Seq | None:
    """``1, 2, 3`` without brackets: an unordered list of answers."""
    items = split_top(text, _ENUMERATION_SEPARATORS)
    if len(items) < 2:
        return None
    if len(items) > MAX_ITEMS or any(not item for item in items):
        raise ParseError("bad list")
    return unordered(parse_normalized(item) for item in items)


def parse_relation(text: str):
    """``x = 5`` (an equation), ``-1 < x \\le 2`` (a set of reals), ``(p, q) = (3, 2)`` (a labelled value).

    An ``\\approx`` ends the exact part of a chain: ``x = 1/3 \\approx 0.33`` states 1/3.
    """
    pieces = _RELATIONS_RE.split(text)
    if len(pieces) < 2:
        return None
    operators = _RELATIONS_RE.findall(text)
    if "\\approx" in operators and operators.index("\\approx") >= 1:
        cut = operators.index("\\approx")
        pieces, operators = pieces[:cut + 1], operators[:cut]
    if any(not piece.strip() for piece in pieces):
        raise ParseError("relation with an empty side")
    if all(op in ("=", "\\approx") for op in operators):
        return parse_equation(pieces)
    sides = [parse_expression(piece) for piece in pieces]
    try:
        return RealSet(inequality_set(sides, operators))
    except ParseError:
        return Relation(tuple(sides), tuple(operators))


def parse_equation(pieces: list[str]):
    """An equation chain; a label on the left (``D = (0, 1)``, ``A:B = 1``) is dropped for a non-scalar."""
    try:
        sides = [parse_expression(piece) for piece in pieces]
        return Equation(sides[0], sides[-1])
    except ParseError:
        if not _LABEL_RE.match(pieces[0]):
            raise
        return parse_normalized(pieces[-1])


def inequality_set(sides: list, operators: list[str]) -> sympy.Set:
    """The solution set of a chain like ``a < x <= b`` where x is a lone symbol and the rest numbers."""
    symbols = set().union(*(side.free_symbols for side in sides))
    if len(symbols) != 1:
        raise ParseError("inequality not in one variable")
    variable = symbols.pop()
    result = sympy.S.Reals
    for left, op, right in zip(sides, operators, sides[1:]):
        try:
            piece = bound(left, op, right, variable)
        except ParseError:
            piece = solved_bound(left, op, right, variable)
        result = result.intersect(piece)
    return result


def solved_bound(left, op: str, right, variable) -> sympy.Set:
    """``-x > -1``, ``1 \\le |z|``: solve a low-degree inequality in one real variable."""
    real = sympy.Symbol(variable.name, real=True)
    difference = (left - right).subs(variable, real)
    polynomial = difference.replace(sympy.Abs, lambda arg: arg)
    if not polynomial.is_polynomial(real) or sympy.degree(polynomial, real) > 4:
        raise ParseError("inequality too complex")
    relation = {">": sympy.Gt, "<": sympy.Lt, "\\ge": sympy.Ge, "\\le": sympy.Le}.get(op)
    if relation is None:
        raise ParseError(f"cannot solve {op}")
    linear = linear_bound(difference, op, real)
    if linear is not None:
        return linear
    return sympy.solve_univariate_inequality(relation(difference, 0), real, relational=False)


def linear_bound(difference, op: str, real) -> sympy.Set | None:
    """``a*x + b op 0`` with rational a != 0 and b: the half-line, without sympy's general solver.

    ``solve_univariate_inequality`` spends ~20 ms even on ``-x > -1`` (it simplifies and checks
    periodicity); the rational linear case is most inequality answers and gives the same Interval.
    """
    if difference.has(sympy.Abs):
        return None
    expanded = sympy.expand(difference)
    slope, intercept = expanded.coeff(real, 1), expanded.coeff(real, 0)
    if not (isinstance(slope, sympy.Rational) and isinstance(intercept, sympy.Rational)) or slope == 0:
        return None
    if expanded != slope * real + intercept:
        return None
    if slope < 0:
        op = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}[op]
    return bound(real, op, -intercept / slope, real)


def bound(left, op: str, right, variable) -> sympy.Set:
    """The set of ``variable`` satisfying ``left op right`` when one side is the variable itself."""
    flips = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "<=": ">=", ">=": "<=", "≤": "≥", "≥": "≤"}
    if right == variable and left != variable:
        left, right, op = right, left, flips.get(op, op)
    if left != variable or right.free_symbols:
        raise ParseError("inequality is not variable-vs-number")
    if op in ("\\neq", "!=", "≠"):
        return sympy.S.Reals - sympy.FiniteSet(right)
    if op in ("=", "\\approx"):
        return sympy.FiniteSet(right)
    if op in (">", ">=", "\\ge", "≥"):
        return sympy.Interval(right, sympy.oo, op == ">", True)
    return sympy.Interval(-sympy.oo, right, True, op == "<")


def parse_plus_minus(text: str) -> Seq | None:
    """``a \\pm b``: both values, as an unordered pair."""
    if "\\pm" not in text and "\\mp" not in text and "±" not in text:
        return None
    first = re.sub(r"\\pm|\\mp|±", "+", text, count=1)
    second = re.sub(r"\\pm|\\mp|±", "-", text, count=1)
    return Seq((parse_normalized(first), parse_normalized(second)), ordered=False, kind="pm")


def parse_scalar(text: str) -> Scalar:
    """One expression, with a trailing percent sign and decimal places remembered; ``a:b`` is a ratio."""
    text = text.strip()
    ratio = split_top(text, (":",))
    if len(ratio) == 2:
        left, right = parse_expression(ratio[0]), parse_expression(ratio[1])
        if right == 0:
            raise ParseError("ratio with zero")
        return Scalar(left / right)
    percent = text.endswith("%")
    if percent:
        text = text[:-1].strip()
    decimal = re.fullmatch(r"[-+]?\d*\.(\d+)", text)
    return Scalar(parse_expression(text), percent=percent, decimals=len(decimal.group(1)) if decimal else None)
