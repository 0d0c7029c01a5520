"""The in-process number fast path gives exactly the full (sympy) path's verdict, or defers.

``quick_verdict`` re-implements the number rules of ``rewards.compare`` with ``Fraction``; these
tests pin it to the full path on the public cases, on a grid of number spellings under every
option that changes number verdicts, and on random numbers.
"""

from fractions import Fraction
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.core import full_verdict
from rewards.extract import answer_candidates
from rewards.fastpath import quick_verdict
from rewards.verdict import Options
from tests.rewards.cases import load_cases

OPTIONS = [Options(), Options(strict_equations=True), Options(percent=False)]
SPELLINGS = ["5", "-5", "x = 5", "y=5", "5\\%", "500\\%", "0.05", "5.0", "05", "\\$5", "5 cm", "5^\\circ",
             "1/3", "\\frac{1}{3}", "-\\frac{1}{3}", "\\frac{-1}{3}", "\\dfrac{2}{6}", "0.333", "0.33", "0.3333",
             "33.3\\%", "33.333\\%", "33\\frac{1}{3}\\%", "2\\frac{1}{2}", "2 1/2", "-2\\frac12", "2.5", "250\\%",
             "5/2", "x = 2.5", "x = \\frac{5}{2}", "1/7", "0.142857", "0.143", "1,000", "1000", "1{,}000",
             "1 000", "0", "-0", "0.0", "1/0", "\\frac{0}{0}", "3/4", "0.75", "75\\%", ".75", "e = 2", "i = 1",
             "50 percent", "x = 50\\%", "22/7", "3.143", "2/3", "0.667", "0.6667", "66.7\\%", "66.667\\%"]


def _agrees(gold: str, pred_text: str, options: Options) -> bool:
    """Assert the fast verdict equals the full one; True when the fast path answered (did not defer)."""
    candidates = answer_candidates(pred_text, options.number_fallback)
    if not candidates:
        return False
    quick = quick_verdict(gold, candidates[0], options)
    if quick is not None:
        assert quick == full_verdict(gold, candidates, options), (gold, pred_text, options)
    return quick is not None


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "strict", "no-percent"])
def test_fast_path_matches_full_path_on_public_cases(options):
    answered = sum(_agrees(case["gold"], case["pred"], options) for case in load_cases())
    assert answered >= 100  # the comparison is not vacuous: the fast path answers a third of the cases


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "strict", "no-percent"])
def test_fast_path_matches_full_path_on_spellings(options):
    answered = 0
    for gold, pred in product(SPELLINGS, repeat=2):
        answered += _agrees(gold, pred, options)
        answered += _agrees(f"$\\boxed{{{gold}}}$", f"so the answer is \\boxed{{{pred}}}.", options)
    assert answered >= len(SPELLINGS) ** 2  # most pairs (bare and boxed) are compared, not deferred


def test_fast_path_covers_common_numbers():
    """The forms a trainer sees most stay off the worker pool."""
    for gold, pred in [("5", "x = 5"), ("\\frac{1}{3}", "0.333"), ("50\\%", "0.5"), ("2\\frac{1}{2}", "2.5"),
                       ("$\\boxed{7425000}$", "7,425,000"), ("1/7", "0.142857")]:
        assert quick_verdict(gold, pred) is not None, (gold, pred)


NUMBER = st.fractions(min_value=-10**7, max_value=10**7, max_denominator=10**5)


def _spell(value: Fraction, style: int) -> str:
    if style == 0 or value.denominator == 1:
        return str(value) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if style == 1:
        sign = "-" if value < 0 else ""
        return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"
    return f"{float(value):.{style}f}" + ("\\%" if style % 2 else "")


@settings(max_examples=300, deadline=None)
@given(gold=NUMBER, pred=NUMBER, gold_style=st.integers(0, 8), pred_style=st.integers(0, 8),
       close=st.booleans())
def test_fast_path_matches_full_path_on_random_numbers(gold, pred, gold_style, pred_style, close):
    pred = gold if close else pred
    _agrees(_spell(gold, gold_style), _spell(pred, pred_style), Options())


def test_batch_honours_options_on_the_fast_path():
    """The parent-side fast path once ignored options: ``x=5`` vs ``5`` must be wrong when strict."""
    import rewards

    for options, gold, pred in (({"strict_equations": True}, "x=5", "5"), ({"percent": False}, "50\\%", "0.5")):
        batch = rewards.verify_batch([gold], [pred], **options)
        assert batch == [rewards.verify(gold, pred, **options)] and not batch[0].correct
        assert rewards.verify_batch([gold], [pred])[0].correct
