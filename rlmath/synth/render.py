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
