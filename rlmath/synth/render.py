"""How numbers, fractions and polynomials are written in questions, solutions and answers.

Answers use the simplest canonical forms the verifier parses: ``42``, ``-7``, ``3/4``, ``2.5``,
``x^2 + 2x + 1``. Questions and solutions use LaTeX (``\\frac{3}{4}``) where a reader expects it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence


def frac(q: Fraction | int) -> str:
    """Plain answer form of a rational: ``3/4``, ``-5/2`` or ``7``.

    >>> frac(Fraction(6, 8)), frac(Fraction(-4, 2))
    ('3/4', '-2')
    """
    q = Fraction(q)
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def tex(q: Fraction | int) -> str:
    """LaTeX form of a rational for questions and solution steps: ``\\frac{3}{4}``, ``-\\frac{1}{2}``.

    >>> tex(Fraction(-1, 2))
    '-\\\\frac{1}{2}'
    """
    q = Fraction(q)
    if q.denominator == 1:
        return str(q.numerator)
    sign = "-" if q < 0 else ""
    return f"{sign}\\frac{{{abs(q.numerator)}}}{{{q.denominator}}}"


def paren(q: Fraction | int) -> str:
    """A number wrapped in parentheses when negative, for use inside a product or power.

    >>> paren(-3), paren(4)
    ('(-3)', '4')
    """
    s = tex(q)
    return f"({s})" if q < 0 else s


def decimal(q: Fraction | int) -> str:
    """Exact decimal string of a rational with a terminating expansion: ``2.5``, ``-0.125``, ``3``.

    >>> decimal(Fraction(5, 2)), decimal(Fraction(-1, 8)), decimal(Fraction(6, 2))
    ('2.5', '-0.125', '3')
    """
    q = Fraction(q)
    if q.denominator == 1:
        return str(q.numerator)
    places = 0
    while (q * 10**places).denominator != 1:
        places += 1
        if places > 12:
            raise ValueError(f"{q} has no short terminating decimal")
    scaled = abs(q.numerator * 10**places // q.denominator)
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if q < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


def poly(coeffs: Sequence[int | Fraction], var: str = "x") -> str:
    """A polynomial from coefficients, highest degree first: ``[1, 2, 1]`` -> ``x^2 + 2x + 1``.

    Fractional coefficients are written as ``3/2x`` would be ambiguous, so they use ``(3/2)x``.

    >>> poly([1, -2, 0, 5]), poly([0, -1, 0]), poly([0])
    ('x^3 - 2x^2 + 5', '-x', '0')
    """
    degree = len(coeffs) - 1
    parts = []
    for i, c in enumerate(coeffs):
        if c == 0:
            continue
        power = degree - i
        mag = abs(Fraction(c))
        if power == 0:
            body = frac(mag)
        else:
            body = "" if mag == 1 else (frac(mag) if mag.denominator == 1 else f"({frac(mag)})")
            body += var if power == 1 else f"{var}^{power}"
        if not parts:
            parts.append(f"-{body}" if c < 0 else body)
        else:
            parts.append(f"- {body}" if c < 0 else f"+ {body}")
    return " ".join(parts) if parts else "0"


def linear(a: int, b: int, var: str = "x") -> str:
    """``ax + b`` written naturally: ``linear(3, -5)`` -> ``3x - 5``.

    >>> linear(1, 0), linear(-1, 4)
    ('x', '-x + 4')
    """
    return poly([a, b], var)


def signed(n: int | Fraction) -> str:
    """A term with its sign spaced out for appending: ``+ 3`` or ``- 3``.

    >>> signed(-3), signed(3)
    ('- 3', '+ 3')
    """
    return f"- {tex(-n)}" if n < 0 else f"+ {tex(n)}"


def join_list(items: Sequence[object]) -> str:
    """Human list: ``3, 5 and 9``.

    >>> join_list([3, 5, 9])
    '3, 5 and 9'
    """
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]



def running_total(values: Sequence[int | Fraction]) -> str:
    """A sum written one addition at a time: ``8 + 18 = 26, 26 - 7 = 19``.

    Worked solutions that jumped from a list of numbers to its total left the embedded 135M model at
    0-12% after SFT on the families that need one (poly_eval, statistics, sequences): it adds two
    numbers far more reliably than a list at once, so each arithmetic step of a worked solution does
    one operation. Plain text, not LaTeX: every digit is a token, and the solutions must fit the caps.

    >>> running_total([8, 18, -7])
    '8 + 18 = 26, 26 - 7 = 19'
    >>> running_total([5])
    ''
    """
    total, parts = Fraction(values[0]), []
    for value in values[1:]:
        parts.append(f"{frac(total)} {'-' if value < 0 else '+'} {frac(abs(value))} = {frac(total + value)}")
        total += value
    return ", ".join(parts)


def term_values(coeffs: Sequence[int], x: int) -> tuple[list[str], list[int]]:
    """Each nonzero non-constant term of a polynomial (highest degree first) at ``x``, one product each.

    Returns those products and every term's value (the constant included).

    >>> term_values([5, -1, 4], 2)
    (['5 × 2^2 = 5 × 4 = 20', '-1 × 2 = -2'], [20, -2, 4])
    """
    shown, values = [], []
    for i, c in enumerate(coeffs):
        power = len(coeffs) - 1 - i
        if not c:
            continue
        if power >= 2:
            shown.append(f"{c} × {paren(x)}^{power} = {c} × {x**power} = {c * x**power}")
        elif power == 1:
            shown.append(f"{c} × {paren(x)} = {c * x}")
        values.append(c * x**power)
    return shown, values


def linear_value(name: str, a: int, b: int, x: int) -> str:
    """``f(x) = ax + b`` at a point, one operation per equals sign.

    >>> linear_value("g", 2, 1, -3)
    'g(-3) = 2 × (-3) + 1 = -6 + 1 = -5'
    >>> linear_value("f", 3, 0, 2)
    'f(2) = 3 × 2 = 6'
    """
    product = f"{a} × {paren(x)}"
    if not b:
        return f"{name}({x}) = {product} = {a * x}"
    return f"{name}({x}) = {product} {signed(b)} = {a * x} {signed(b)} = {a * x + b}"
