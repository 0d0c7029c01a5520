"""verify one (gold, completion) pair: extract, parse both sides safely, compare.

This runs inside pool workers (``verify_batch``) and in-process (``verify``). Gold parses are cached
because the trainer checks k completions against each gold.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rewards.compare import equivalent
from rewards.extract import answer_candidates
from rewards.fastpath import quick_verdict
from rewards.parse import ParseError, parse_answer
from rewards.verdict import Options, Verdict


@lru_cache(maxsize=4096)
def parse_gold(gold: str):
    """Parse a gold answer once; golds may be bare LaTeX/plain text or a boxed solution."""
    whole = re.sub(r"\$|\\[()\[\]]", " ", gold).strip()
    candidates = answer_candidates(gold, number_fallback=False)
    candidates = (candidates + [whole]) if "\\boxed" in gold or "\\fbox" in gold else [whole] + candidates
    text, value = parse_first(candidates)
    if value is None:
        raise ParseError(f"gold answer {gold[:80]!r} does not parse")
    return value


_PARSE_ERRORS = (ParseError, RecursionError, ValueError, TypeError, OverflowError, MemoryError, AttributeError,
                 ZeroDivisionError)


def verify_options(gold: str, pred: str, options: Options) -> Verdict:
    """The full check of one completion with explicit options."""
    return verify_extracted(gold, answer_candidates(pred, options.number_fallback), options)


def parse_first(candidates: list[str]):
    """``(text, value)`` of the first candidate that parses, or ``(first text, None)``."""
    for candidate in candidates:
        value = parse_cached(candidate)
        if value is not None:
            return candidate, value
    return (candidates[0] if candidates else None), None


@lru_cache(maxsize=16384)
def parse_cached(text: str):
    """The parsed answer, or None when it does not parse; cached because a GRPO group repeats answers.

    Parsed values are frozen dataclasses over immutable sympy objects, so sharing them is safe.
    """
    try:
        return parse_answer(text)
    except _PARSE_ERRORS:
        return None


def verify_extracted(gold: str, candidates: list[str] | str | None, options: Options) -> Verdict:
    """Compare extracted answer candidates with the gold; every failure mode has its own status."""
    if isinstance(candidates, str) or candidates is None:
        candidates = [candidates] if candidates else []
    quick = quick_verdict(gold, candidates[0], options) if candidates else None
    return quick if quick is not None else full_verdict(gold, candidates, options)


def full_verdict(gold: str, candidates: list[str], options: Options) -> Verdict:
    """The sympy path: parse gold and the first parseable candidate, then compare the values."""
    try:
        gold_value = parse_gold(gold)
    except _PARSE_ERRORS:
        return Verdict(False, "gold_unparseable", candidates[0] if candidates else None)
    if not candidates:
        return Verdict(False, "no_answer", None, str(gold_value))
    answer, pred_value = parse_first(candidates)
    if pred_value is None:
        return Verdict(False, "unparseable", answer, str(gold_value))
    try:
        same = equivalent(gold_value, pred_value, options)
    except (RecursionError, ValueError, TypeError, OverflowError, ZeroDivisionError, MemoryError, AttributeError):
        same = False
    return Verdict(same, "correct" if same else "wrong", answer, str(gold_value), str(pred_value))
