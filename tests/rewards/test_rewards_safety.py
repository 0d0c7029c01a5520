"""Model text never runs, pathological inputs end within 2x the timeout, the pool survives them."""

import time
from pathlib import Path

import pytest
import sympy
import sympy.parsing.sympy_parser as sympy_parser
from hypothesis import given, settings
from hypothesis import strategies as st

import rewards
from rewards.pool import VerifierPool
from rewards.verdict import Options

PAYLOADS = [
    "__import__('os').system('touch {marker}')",
    "\\boxed{{__import__('os').system('touch {marker}')}}",
    "exec(\"open('{marker}','w')\")",
    "eval('__import__(\"os\").system(\"touch {marker}\")')",
    "\\boxed{{().__class__.__bases__[0].__subclasses__()}}",
    "lambda: open('{marker}', 'w')",
    "Symbol('x').__class__",
]
PATHOLOGICAL = ["9^{9^{9^{9^9}}}", "\\boxed{factorial(10**9)}", "\\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}",
                "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}", "\\boxed{2^{2^{2^{2^{2^{2^{2}}}}}}}",
                "\\boxed{10^{10^{10}}!}", "\\boxed{\\frac{1}{0}}", "\\boxed{" + "x^" * 500 + "2}"]


@pytest.mark.parametrize("template", PAYLOADS)
def test_payloads_do_not_run(template, tmp_path: Path, monkeypatch):
    marker = tmp_path / "pwned"
    payload = template.format(marker=marker)
    calls = []
    monkeypatch.setattr(sympy, "sympify", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(sympy_parser, "parse_expr", lambda *a, **k: calls.append(a))
    for gold, pred in ((payload, "5"), ("5", payload), (payload, payload)):
        verdict = rewards.verify(gold, pred)
        assert verdict.status in rewards.STATUSES
    batch = rewards.verify_batch([payload, "5"], ["5", payload])
    assert all(v.status in rewards.STATUSES for v in batch)
    assert not marker.exists() and not calls


@pytest.mark.parametrize("text", PATHOLOGICAL)
def test_pathological_in_process_fails_fast(text):
    start = time.monotonic()
    assert rewards.verify(text, text).status in ("gold_unparseable", "unparseable", "wrong", "correct")
    assert rewards.verify("1", text).status in ("unparseable", "wrong", "no_answer")
    assert time.monotonic() - start < 2.0


def test_pathological_batch_within_twice_timeout():
    timeout = 1.0
    rewards.verify_batch(["1"], ["\\boxed{x+1}"], timeout=timeout)  # warm the pool
    start = time.monotonic()
    verdicts = rewards.verify_batch(["1"] * len(PATHOLOGICAL), PATHOLOGICAL, timeout=timeout)
    assert all(v.status in ("timeout", "unparseable", "wrong", "no_answer") for v in verdicts)
    assert time.monotonic() - start < 2 * timeout * len(PATHOLOGICAL)
    assert rewards.verify_batch(["2"], ["\\boxed{2}"], timeout=timeout)[0].correct


def test_stuck_worker_is_killed_and_replaced():
    pool = VerifierPool(2, module="tests.rewards.hang_worker")
    try:
        items = [(0, "hang", ["1"]), (1, "x+1", ["1+x"]), (2, "hang", ["1"]), (3, "2", ["2"])]
        start = time.monotonic()
        results = pool.run(items, Options(), timeout=1.0)
        elapsed = time.monotonic() - start
        assert results[0].status == "timeout" and results[2].status == "timeout"
        assert results[1].correct and results[3].correct
        assert elapsed < 30  # includes starting fresh interpreters
        again = pool.run([(0, "x", ["x"])], Options(), timeout=1.0)
        assert again[0].correct
    finally:
        pool.close()


MATHY = st.text(alphabet=list("0123456789+-*/^()[]{}\\,.=<>!xyzabe ipfracsqt%$|_"), max_size=60)


@settings(max_examples=300, deadline=None)
@given(gold=MATHY, pred=MATHY)
def test_fuzz_in_process_never_raises(gold, pred):
    start = time.monotonic()
    verdict = rewards.verify(gold, pred)
    assert verdict.status in rewards.STATUSES
    assert time.monotonic() - start < 4.0


@settings(max_examples=10, deadline=None)
@given(pairs=st.lists(st.tuples(MATHY, st.text(max_size=200)), min_size=1, max_size=20))
def test_fuzz_batch_within_twice_timeout(pairs):
    timeout = 2.0
    start = time.monotonic()
    verdicts = rewards.verify_batch([g for g, _ in pairs], [p for _, p in pairs], timeout=timeout)
    assert len(verdicts) == len(pairs) and all(v.status in rewards.STATUSES for v in verdicts)
    assert time.monotonic() - start < 2 * timeout + 30  # 30 s: a replaced worker's interpreter start
