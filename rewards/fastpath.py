"""Answer plain numbers in the calling process, without sympy or a round trip to a worker.

Most golds the trainer produces are integers, fractions, decimals or percents, and so are most
extracted answers. After the same regex clean-up the full path applies (``normalize``), such
answers are compared here as ``fractions.Fraction``: microseconds, with every number capped at 50
digits so nothing can hang. The rules mirror ``rewards.compare`` exactly (same verdicts, same
rendering, same options; a test checks the two paths agree); anything this module is unsure of
returns None and takes the full path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from rewards.extract import answer_candidates
from rewards.normalize import normalize
from rewards.verdict import Options, Verdict

MAX_CHARS = 120
"""Longer answer texts go to the workers: it keeps the regex clean-up here trivially cheap."""

_D = r"\d{1,50}"
_NUMBER_RE = re.compile(
    rf"^(?P<sign>-?)(?:(?P<int>{_D})(?:/(?P<den>{_D}))?|(?P<dec>\d{{0,50}}\.(?P<places>{_D}))"
    rf"|\\frac\{{(?P<fsign>-?)(?P<fnum>{_D})\}}\{{(?P<fden>{_D})\}}|\((?P<mnum>{_D})/(?P<mden>{_D})\))"
    r"(?P<percent>%?)$")
"""What ``normalize`` leaves of a plain number: ``-12``, ``3/4``, ``.5``, ``\\frac{-3}{4}``, ``(5/2)``
(a mixed number), each optionally with ``%``. The grammar reads all of them as exact rationals."""
_EQUATION_RE = re.compile(r"^(?P<name>[a-zA-Z]) ?= ?(?P<value>[^=%]+)$")
"""``x = 5`` after normalize; ``e`` and ``i`` are constants to the grammar, so they are left out."""
_DEFAULT = Options()


@dataclass(frozen=True)
class Number:
    """A parsed plain number, as ``rewards.values.Scalar`` (or ``Equation`` when ``name``) would hold it."""

    value: Fraction
    percent: bool = False
    decimals: int | None = None
    name: str | None = None  # ``x`` in ``x = 5``

    def __str__(self) -> str:
        text = _render(self.value) + ("%" if self.percent else "")
        return f"{self.name} = {text}" if self.name else text


class Defer(Exception):
    """This pair needs the full verifier (a rule whose exact result this module does not reproduce)."""


def simple_number(text: str) -> Number | None:
    """The plain number (or ``x = number``) that ``text`` states after normalisation, else None.

    >>> str(simple_number("-3/4")), str(simple_number("7,425")), simple_number("x+1")
    ('-3/4', '7425', None)
    >>> str(simple_number(r"50\\%")), str(simple_number(r"y = \\frac{1}{2}")), simple_number("e = 2")
    ('50%', 'y = 1/2', None)
    """
    if len(text) > MAX_CHARS:
        return None
    text = normalize(text)
    equation = _EQUATION_RE.match(text)
    if equation and equation.group("name") not in "ei":
        value = _plain(equation.group("value").strip())
        return Number(value.value, name=equation.group("name")) if value and not value.percent else None
    return _plain(text)


def _plain(text: str) -> Number | None:
    """A number matched by ``_NUMBER_RE``, with the decimal places and percent sign it was written with."""
    match = _NUMBER_RE.match(text)
    if not match:
        return None
    groups = match.groupdict()
    if groups["dec"] is not None:
        value, decimals = Fraction(groups["dec"]), len(groups["places"])
    else:
        numerator = groups["int"] or groups["fnum"] or groups["mnum"]
        denominator = int(groups["den"] or groups["fden"] or groups["mden"] or "1")
        if denominator == 0:
            return None  # the grammar refuses division by zero: unparseable, a full-path verdict
        value, decimals = Fraction(int(numerator), denominator), None
        if groups["fsign"]:
            value = -value
    if groups["sign"]:
        value = -value
    return Number(value, percent=bool(groups["percent"]), decimals=decimals)


@lru_cache(maxsize=4096)
def gold_number(gold: str) -> Number | None:
    """The gold's plain number, chosen as ``rewards.core.parse_gold`` chooses its first candidate."""
    whole = re.sub(r"\$|\\[()\[\]]", " ", gold).strip()
    if "\\boxed" in gold or "\\fbox" in gold:
        candidates = answer_candidates(gold, number_fallback=False) or [whole]
        first = candidates[0]
    else:
        first = whole
    return simple_number(first)


def quick_verdict(gold: str, answer: str | None, options: Options = _DEFAULT) -> Verdict | None:
    """The verdict for number-vs-number pairs, or None to defer to the full verifier.

    >>> quick_verdict("x=5", "5").status, quick_verdict("3/4", "0.75").status, quick_verdict("1/3", "0.33").status
    ('correct', 'correct', 'wrong')
    >>> quick_verdict("x=5", "5", Options(strict_equations=True)).status, quick_verdict("2", "2 + 0")
    ('wrong', None)
    """
    if answer is None:
        return None
    gold_value = gold_number(gold)
    if gold_value is None:
        return None
    pred_value = simple_number(answer)
    if pred_value is None:
        return None
    try:
        same = numbers_equal(gold_value, pred_value, options)
    except Defer:
        return None
    return Verdict(same, "correct" if same else "wrong", answer, str(gold_value), str(pred_value))


def numbers_equal(gold: Number, pred: Number, options: Options) -> bool:
    """``rewards.compare.equivalent`` restricted to numbers and ``x = number`` equations."""
    if gold.name and pred.name:
        return gold.name == pred.name and gold.value == pred.value  # compare.equation_matches
    if gold.name:
        return not options.strict_equations and scalar_equal(Number(gold.value), pred, options)
    if pred.name:
        return scalar_equal(gold, Number(pred.value), options)  # compare.solved_value
    return scalar_equal(gold, pred, options)


def scalar_equal(gold: Number, pred: Number, options: Options) -> bool:
    """``rewards.compare.scalar_equal``: the percent readings of each side, then decimal rounding."""
    gold_forms = [gold.value] + ([gold.value / 100] if gold.percent and options.percent else [])
    pred_forms = [pred.value] + ([pred.value / 100] if pred.percent and options.percent else [])
    if options.percent and not gold.percent and pred.percent:
        pred_forms = [pred.value / 100, pred.value]
    for g in gold_forms:
        for p in pred_forms:
            if g == p or decimal_match(gold, g, pred, p) or decimal_match(pred, p, gold, g):
                return True
    return False


def decimal_match(approx: Number, approx_value: Fraction, exact: Number, exact_value: Fraction) -> bool:
    """``rewards.compare.decimal_match``: ``0.333`` is ``1/3`` rounded to its places (3 or more).

    The full path rounds a 40-digit float; exact rounding here gives the same answer whenever the
    value is small and its denominator modest (no tie can then be within 40 digits), else Defer.
    """
    if approx.decimals is None or exact.decimals is not None or _terminates(exact_value):
        return False
    if approx.decimals < 3:
        return False
    if approx.decimals > 15 or abs(exact_value) >= 10 ** 6 or exact_value.denominator >= 10 ** 12:
        raise Defer("rounding outside the range where exact and 40-digit rounding provably agree")
    return round(exact_value, approx.decimals) == approx_value


def _terminates(value: Fraction) -> bool:
    """True for a finite decimal (denominator 2^a 5^b): never tolerance against another decimal."""
    q = value.denominator
    for prime in (2, 5):
        while q % prime == 0:
            q //= prime
    return q == 1


def _render(value: Fraction) -> str:
    """How sympy prints the same Rational: ``5``, ``-3/4``."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
