"""The generation-time check regenerates (or finally drops) items whose answer does not verify."""

from __future__ import annotations

import pytest

from rewards.extract import last_boxed as extract_boxed
from rlmath.errors import RLMathError
from rlmath.synth import FAMILIES, Family, Instance, engine, generate
from rlmath.synth.check import failing, structural_ok


def _flaky(rng, difficulty):
    """Half the time the gold answer is garbage the verifier cannot parse."""
    answer = "@@" if rng.random() < 0.5 else "5"
    return Instance("flaky.t", {"a": answer}, ("What is 2 + 3?", "Compute 2 + 3."), ("2 + 3 = 5.",), answer)


def _broken(rng, difficulty):
    return Instance("broken.t", {}, ("What?",), ("No idea.",), "@@")


@pytest.fixture
def fake_families(monkeypatch):
    monkeypatch.setitem(FAMILIES, "flaky", Family("flaky", "test", "sometimes wrong", _flaky))
    monkeypatch.setitem(FAMILIES, "broken", Family("broken", "test", "always wrong", _broken))


def test_failing_items_are_regenerated(fake_families):
    items = generate(50, seed=0, families=["flaky"], dedup=False)
    assert len(items) == 50 and all(it["answer"] == "5" for it in items)
    assert engine.last_stats["retried"] > 0 and engine.last_stats["dropped"] == 0
    assert any(it["meta"]["attempt"] > 0 for it in items)


def test_items_that_never_verify_are_dropped(fake_families):
    assert generate(5, seed=0, families=["broken"]) == []
    stats = engine.last_stats
    assert (stats["retried"], stats["dropped"], stats["kept"]) == (5 * engine.MAX_ATTEMPTS, 5, 0)


@pytest.mark.parametrize(
    "gold, solution, ok",
    [
        ("42", "so \\boxed{42}", True),
        ("3/4", "\\boxed{3/4}", True),
        ("(-\\infty, 3]", "\\boxed{(-\\infty, 3]}", True),
        ("12\\sqrt{7}", "\\boxed{12\\sqrt{7}}", True),
        ("42", "\\boxed{41}", False),
        ("42", "no box", False),
        ("@@", "\\boxed{@@}", False),
    ],
)
def test_check_table(gold, solution, ok):
    assert structural_ok(gold, solution) is ok
    assert (failing([gold], [solution]) == []) is ok


def test_a_verifier_that_raises_stops_generation_loudly(monkeypatch):
    """No silent fallback: data no verifier has checked must never be written."""
    import rewards

    def broken(*args, **kwargs):
        raise ValueError("pool died")

    monkeypatch.setattr(rewards, "verify_batch", broken)
    with pytest.raises(RLMathError, match="rewards verifier raised ValueError: pool died"):
        failing(["42"], ["so \\boxed{42}"])
    with pytest.raises(RLMathError, match="rewards verifier"):
        generate(5, seed=0, families=["add"])


def test_extract_boxed_handles_nested_braces_and_takes_the_last():
    assert extract_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{unclosed") is None
