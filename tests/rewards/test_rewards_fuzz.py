"""The verifier under stress (issue 14): regressions the fuzz run found, its fast subset, its full run."""

import time
from pathlib import Path

import pytest

from rewards.extract import MAX_COMPLETION_CHARS, answer_candidates, extract_answer
from rewards.pool import VerifierPool
from rewards.verdict import Options
from tests.rewards.fuzz import run_fuzz

N = 200_000
"""Large enough that the old quadratic scans took minutes (20,000 characters already took 4-9 s)."""

EXTRACTION_CASES = [
    # (name, completion, expected first answer)
    ("unclosed boxes, then a box", "\\boxed{" * (N // 7) + "\\boxed{2}", "2"),
    ("nested boxes", "\\boxed{" * (N // 7) + "1" + "}" * (N // 7), "1"),
    ("box inside a box", "\\boxed{x = \\boxed{5}}", "5"),
    ("many boxes in a list", "\\boxed{1}, " * (N // 11) + "\\boxed{2}", None),  # a 2,000-char list
    ("many bare boxes", "\\boxed 5 " * (N // 9), None),
    ("unclosed \\[", "\\[" * (N // 2) + "$3$", "3"),
    ("unclosed \\(", "\\(" * (N // 2) + "\\(4\\)", "4"),
    ("unclosed <answer>", "<answer>" * (N // 8) + "<answer>6</answer>", "6"),
    ("answer after a megabyte", "We add. " * 125_000 + "\\boxed{42}", "42"),
]


@pytest.mark.parametrize("name,text,expected", EXTRACTION_CASES, ids=[case[0] for case in EXTRACTION_CASES])
def test_extraction_is_linear_on_adversarial_text(name, text, expected):
    """Extraction runs in the trainer's process with no timeout: it must never be quadratic."""
    start = time.monotonic()
    found = answer_candidates(text)
    assert time.monotonic() - start < 10.0  # a hang guard, not a speed target: the old code took minutes
    if expected is not None:
        assert found and found[0] == expected


def test_only_the_tail_of_a_huge_completion_is_read():
    early = "\\boxed{7} " + "filler " * (MAX_COMPLETION_CHARS // 7 + 10)
    assert extract_answer(early, number_fallback=False) is None
    assert extract_answer(early[:MAX_COMPLETION_CHARS - 100], number_fallback=False) == "7"


def test_batch_does_not_wait_for_a_replacement_worker(tmp_path: Path, monkeypatch):
    """After a kill the fresh worker imports sympy for seconds; a ready worker takes the batch meanwhile."""
    slow = tmp_path / "slow-start"
    monkeypatch.setenv("RLMATH_SLOW_START", str(slow))
    pool = VerifierPool(2, module="tests.rewards.hang_worker")
    try:
        pool.warm()
        slow.touch()  # replacements from now on take 30 s to start
        assert pool.run([(0, "hang", ["1"])], Options(), timeout=1.0)[0].status == "timeout"
        start = time.monotonic()
        results = pool.run([(0, "2", ["2"]), (1, "x+1", ["1+x"]), (2, "3", ["4"])], Options(), timeout=1.0)
        assert time.monotonic() - start < 2 * 1.0
        assert [results[i].status for i in range(3)] == ["correct", "correct", "wrong"]
        assert len(pool.workers) == 2
    finally:
        pool.close()


def test_fuzz_fast_subset():
    """A few thousand inputs, the whole adversarial corpus (megabyte completions included)."""
    report = run_fuzz(count=3000, timeout=1.0, workers=2)
    assert report.problems == []
    assert report.inputs >= 3000 and set(report.class_statuses) >= {"injection", "megabyte", "hypothesis"}
    assert report.class_statuses["injection"].get("correct", 0) == 0
    assert report.max_verdict_s <= 2 * report.timeout_s


@pytest.mark.fuzz
def test_fuzz_full_run():
    """The issue-14 run: 100,000 inputs (about 5 minutes on 2 loaded cores); ``pytest -m fuzz``."""
    report = run_fuzz(count=100_000, timeout=1.0, workers=2)
    print(report.summary())
    assert report.problems == []
    assert report.inputs >= 100_000
    assert report.max_verdict_s <= 2 * report.timeout_s
