"""Answer plain numbers in the parent process, without sympy or a round trip to a worker.

Most golds the trainer produces are integers or fractions and most extracted answers are too;
comparing them as ``fractions.Fraction`` takes microseconds and cannot hang, so only the remaining
answers go to the worker pool. The rules match the full path exactly (same verdicts, same
rendering); anything the fast path is unsure about (a decimal against a repeating fraction,
percents, units) returns None and takes the full path.
"""

from __future__ import annotations

import re
from fractions import Fraction

from rewards.normalize import fix_thousands
from rewards.verdict import Verdict

_NUMBER_RE = re.compile(
    r"^(?P<sign>-?)(?:(?P<int>\d{1,50})(?:/(?P<den>\d{1,50}))?|(?P<dec>\d{0,50}\.\d{1,50})"
    r"|\\frac\{(?P<fnum>\d{1,50})\}\{(?P<fden>\d{1,50})\})$")
_GOLD_VAR_RE = re.compile(r"^([a-zA-Z])\s*=\s*(.+)$")


def simple_number(text: str) -> tuple[Fraction, bool] | None:
    """``(value, is_decimal)`` for an integer, ``a/b``, ``\\frac{a}{b}`` or decimal, else None.

    >>> simple_number("-3/4"), simple_number("7,425"), simple_number("x+1")
    ((Fraction(-3, 4), False), (Fraction(7425, 1), False), None)
    """
    text = fix_thousands(text.strip())
    match = _NUMBER_RE.match(text)
    if not match:
        return None
    sign = -1 if match.group("sign") else 1
    if match.group("dec") is not None:
        return sign * Fraction(match.group("dec")), True
    numerator = match.group("int") or match.group("fnum")
    denominator = match.group("den") or match.group("fden") or "1"
    if int(denominator) == 0:
        return None
    return sign * Fraction(int(numerator), int(denominator)), False


def _terminates(value: Fraction) -> bool:
    q = value.denominator
    for prime in (2, 5):
        while q % prime == 0:
            q //= prime
    return q == 1


def quick_verdict(gold: str, answer: str | None) -> Verdict | None:
    """The verdict for number-vs-number pairs, or None to defer to the full verifier.

    >>> quick_verdict("x=5", "5").status, quick_verdict("3/4", "0.75").status, quick_verdict("1/3", "0.33")
    ('correct', 'correct', None)
    """
    if answer is None or len(gold) > 120 or len(answer) > 120:
        return None
    variable = _GOLD_VAR_RE.match(gold.strip())
    gold_number = simple_number(variable.group(2) if variable else gold)
    pred_number = simple_number(answer)
    if gold_number is None or pred_number is None:
        return None
    (gold_value, gold_decimal), (pred_value, pred_decimal) = gold_number, pred_number
    gold_text = _render(gold_value)
    if variable:
        gold_text = f"{variable.group(1)} = {gold_text}"
    if gold_value == pred_value:
        return Verdict(True, "correct", answer, gold_text, _render(pred_value))
    if gold_decimal != pred_decimal and not _terminates(pred_value if gold_decimal else gold_value):
        return None  # decimal vs repeating fraction: rounding rules live in rewards.compare
    return Verdict(False, "wrong", answer, gold_text, _render(pred_value))


def _render(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
