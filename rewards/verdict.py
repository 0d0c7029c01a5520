"""The verdict object and the option object shared by every verifier entry point.

Both are frozen dataclasses so they pickle across the worker pool and can be used as cache keys,
following Math-Verify's frozen option objects.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

STATUSES: tuple[str, ...] = ("correct", "wrong", "no_answer", "unparseable", "timeout", "gold_unparseable")
"""Every status a verdict can carry; the trainer logs a count for each so none is silent."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one prediction against one gold answer.

    ``extracted`` is the answer text pulled out of the completion; ``gold_parsed`` and
    ``pred_parsed`` are the parsed forms rendered as strings (for completion tables in mlflow).
    """

    correct: bool
    status: str
    extracted: str | None = None
    gold_parsed: str | None = None
    pred_parsed: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; expected one of {STATUSES}")
        if self.correct != (self.status == "correct"):
            raise ValueError(f"correct={self.correct} contradicts status {self.status!r}")


@dataclass(frozen=True)
class Options:
    """Verifier options; ``verify(..., **options)`` builds one and rejects unknown names.

    - ``number_fallback``: with no answer marker, take the last number of the completion.
    - ``rel_tol``: relative tolerance for numbers that are not exact (decimals vs irrationals).
    - ``percent``: accept ``50\\%`` for a gold of ``0.5`` or ``50`` (and the reverse).
    - ``strict_equations``: if False, ``x=5`` and ``5`` are the same answer.
    """

    number_fallback: bool = True
    rel_tol: float = 1e-6
    percent: bool = True
    strict_equations: bool = False

    @classmethod
    def build(cls, options: dict) -> Options:
        """Options from keyword arguments; a misspelled option is an error, not a silent default."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown verifier option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)
