"""Fuzz the verifier's public API (``rewards.verify_batch`` and its worker pool) with hostile input.

Issue 14 asks the verifier to survive 100,000 inputs: hypothesis-drawn text plus a corpus of
adversarial strings (huge powers, deep nesting, unicode and control characters, code-injection
text, megabyte-long completions, many boxes, unbalanced braces). For every input this checks that
no exception escapes, that the verdict came back within twice the configured timeout, that nothing
the text asks for was executed (a canary file and a canary environment variable), and that the pool
still holds ``workers`` live processes (a worker killed for a timeout is replaced).

Latency is measured end to end through the public API: items go in batches of ``workers`` pairs,
so each worker holds at most one item and a batch's wall time is the slowest verdict in it.
Batches during which a killed worker was replaced, or that start while its replacement is still
importing sympy, may wait for that start; they are reported apart (``restart_batches``,
``restart_batch_max_s``, bounded by twice the timeout plus the pool's start-up grace) because that
start is not a verdict's time.

The fast subset runs in the default test run (``tests/rewards/test_rewards_fuzz.py``); the full
run is the ``fuzz``-marked test there, or from a shell or a benchmark::

    PYTHONPATH=. python -m tests.rewards.fuzz --count 100000 --timeout 1.0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import rewards
from rewards.pool import get_pool

CANARY_ENV = "RLMATH_FUZZ_CANARY"
"""Set by the injection strings if they were ever evaluated in the calling process."""

STARTUP_S = 30.0
"""The grace the pool gives a fresh worker to start (``rewards.pool``): bounds batches with a restart."""

INJECTIONS = (
    "__import__('os').system('touch {marker}')",
    "\\boxed{{__import__('os').system('touch {marker}')}}",
    "__import__('os').environ.__setitem__('" + CANARY_ENV + "', '1')",
    "\\boxed{{__import__('os').environ.update({{'" + CANARY_ENV + "': '1'}})}}",
    "exec(\"open('{marker}', 'w').close()\")",
    "eval('__import__(\"os\").system(\"touch {marker}\")')",
    "(lambda: open('{marker}', 'w'))()",
    "\\boxed{{(lambda f: f(f))(lambda f: f(f))}}",
    "The answer is $__import__('pathlib').Path('{marker}').touch()$.",
    "\\boxed{{().__class__.__bases__[0].__subclasses__()}}",
    "Symbol('x').__class__.__init__.__globals__['os'].system('touch {marker}')",
    "<answer>compile('import os; os.system(\"touch {marker}\")', 'f', 'exec')</answer>",
    "\\boxed{{getattr(__builtins__, 'ex' + 'ec')('open(\"{marker}\", \"w\")')}}",
    "x = __import__('subprocess').run(['touch', '{marker}'])",
)
"""Each would create the canary file (or set the canary variable) if any code path evaluated it."""


def adversarial_corpus(marker: Path, megabytes: int = 1) -> dict[str, list[str]]:
    """Hostile completions by class; ``megabytes`` sizes the long ones (the fast subset uses less)."""
    mb = 1_000_000 * megabytes
    return {
        "huge_power": ["9**9**9", "\\boxed{9**9**9}", "10^10^10", "\\boxed{10^{10^{10}}}", "9^{9^{9^{9^9}}}",
                       "\\boxed{2^{2^{2^{2^{2^{2^2}}}}}}", "\\boxed{(10^{100})!}", "\\boxed{10^{10^{10}}!}",
                       "\\boxed{99999999999999999999^{99999999999999999999}}", "\\boxed{1e999999999}",
                       "\\boxed{\\sqrt[10^{10}]{2}}", "\\boxed{" + "9" * 5000 + "}", "\\boxed{x^{10^{9}} - 1}"],
        "deep_nesting": ["\\boxed{" + "(" * n + "1" + ")" * n + "}" for n in (100, 1000, 5000)]
        + ["\\boxed{" + "\\frac{1}{" * n + "2" + "}" * n + "}" for n in (50, 500, 3000)]
        + ["\\boxed{" + "\\sqrt{" * n + "2" + "}" * n + "}" for n in (50, 500, 3000)]
        + ["\\boxed{" + "x^{" * n + "2" + "}" * n + "}" for n in (50, 500)]
        + ["\\boxed{" * n + "1" + "}" * n for n in (10, 1000, 20000)]
        + ["$" + "[" * 4000 + "$", "\\boxed{" + "\\left(" * 2000 + "1" + "\\right)" * 2000 + "}"],
        "unicode_control": ["\\boxed{\x00}", "\\boxed{1\x00}", "\u202e\\boxed{5}\u202d", "\\boxed{\ufeff7}",
                            "\\boxed{٣}", "\\boxed{½}", "\\boxed{①}", "\\boxed{𝟓}", "\\boxed{\u200b3\u200b}",
                            "\\boxed{3\r\n}", "\x1b[31m\\boxed{4}\x1b[0m", "\\boxed{\U0010ffff}",
                            "".join(chr(c) for c in range(32)) + "\\boxed{1}", "\\boxed{ℵ_0}", "\\boxed{∞}",
                            "\\boxed{x\u0301}", "\\boxed{\ud800}", "\\boxed{\u00a0 2}"],
        "injection": [template.format(marker=marker) for template in INJECTIONS],
        "many_boxes": ["\\boxed{1} " * 10_000, "\\boxed{1} and " * 5000 + "\\boxed{2}", "\\boxed 5 " * 20_000,
                       "\\boxed{}" * 50_000, "\\fbox{" * 30_000 + "\\boxed{3}"],
        "unbalanced": ["\\boxed{" * 100_000, "}" * 100_000 + "\\boxed{2}", "\\boxed{1" + "{" * 50_000,
                       "\\boxed{" + "}" * 50_000, "\\[" * 100_000, "\\(" * 100_000 + "\\)", "<answer>" * 50_000,
                       "$$" + "\\frac{" * 50_000, "\\boxed{\\}", "\\boxed{\\frac{1}{2}", "\\left( 1"],
        "megabyte": [("Let us compute. " * (mb // 16)) + "\\boxed{42}", "1" * mb, ("x + " * (mb // 4)) + "1",
                     "\\boxed{" + "1+" * (mb // 2) + "1}", "The answer is " + "(" * mb, "$" + "a$" * (mb // 2)],
    }


def _mathy() -> st.SearchStrategy[str]:
    """Short text over the characters LaTeX answers are made of (reaches the parser, not just extraction)."""
    return st.text(alphabet=list("0123456789+-*/^()[]{}\\,.=<>!xyzabe ipfracsqtboxed%$|_"), max_size=80)


def _wrapped(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The same text as a model would write it: boxed, after "the answer is", in math mode or bare."""
    return st.one_of(inner, inner.map(lambda s: f"\\boxed{{{s}}}"), inner.map(lambda s: f"The answer is {s}."),
                     inner.map(lambda s: f"so ${s}$"), inner.map(lambda s: f"<answer>{s}</answer>"))


def pair_strategy(corpus: list[str]) -> st.SearchStrategy[tuple[str, str]]:
    """``(gold, completion)``: mathy, arbitrary unicode (control characters included) or mutated corpus text."""
    any_text = st.text(max_size=300)
    mutated = st.tuples(st.text(max_size=20), st.sampled_from(corpus), st.text(max_size=20)).map("".join)
    completion = st.one_of(_wrapped(_mathy()), _wrapped(any_text), mutated)
    gold = st.one_of(st.sampled_from(["42", "3/4", "x=5", "\\frac{1}{2}", "(1,2)", "\\sqrt{2}", "0.5"]), _mathy())
    return st.tuples(gold, completion)


@dataclass
class FuzzReport:
    """What one fuzz run saw; ``problems`` lists every broken promise (empty on success)."""

    inputs: int = 0
    batches: int = 0
    wall_s: float = 0.0
    timeout_s: float = 0.0
    workers: int = 0
    restarts: int = 0
    max_verdict_s: float = 0.0
    p99_verdict_s: float = 0.0
    restart_batches: int = 0
    restart_batch_max_s: float = 0.0
    slowest: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    class_statuses: dict = field(default_factory=lambda: defaultdict(Counter))
    problems: list = field(default_factory=list)

    def summary(self) -> dict:
        data = {name: value for name, value in vars(self).items() if name != "class_statuses"}
        data["class_statuses"] = {name: dict(counts) for name, counts in self.class_statuses.items()}
        data["statuses"] = dict(self.statuses)
        data["problems"] = self.problems[:20]
        return data


class Fuzzer:
    """Runs batches through ``verify_batch`` and checks every promise after each one."""

    def __init__(self, timeout: float, workers: int, marker: Path) -> None:
        self.timeout, self.workers, self.marker = timeout, workers, marker
        self.report = FuzzReport(timeout_s=timeout, workers=workers)
        self.latencies: list[float] = []
        self.pool = get_pool(workers)
        self.pool.warm()
        self.pids = self._pids()

    def _pids(self) -> set[int]:
        return {worker.process.pid for worker in self.pool.workers}

    def check(self, pairs: list[tuple[str, str]], label: str) -> None:
        """One batch: verdicts, latency, canary, pool size."""
        golds, preds = [gold for gold, _ in pairs], [pred for _, pred in pairs]
        starting = bool(self.pool.fresh)  # a replacement from the last batch is still importing sympy
        start = time.monotonic()
        try:
            verdicts = rewards.verify_batch(golds, preds, timeout=self.timeout, workers=self.workers)
        except Exception as error:  # noqa: BLE001 - the point of the run is to catch any escape
            self.report.problems.append(f"{label}: {type(error).__name__}: {error!s:.200}")
            return
        elapsed = time.monotonic() - start
        self._account(verdicts, len(pairs), elapsed, label, starting)
        self._note_slow(pairs, verdicts, elapsed, label)

    def _note_slow(self, pairs: list, verdicts: list, elapsed: float, label: str) -> None:
        """Keep the five slowest batches, with a glimpse of their text, for the closing report."""
        glimpse = [(f"{gold[:40]!r}/{len(gold)}", f"{pred[:40]!r}/{len(pred)}", verdict.status)
                   for (gold, pred), verdict in zip(pairs, verdicts)]
        self.report.slowest = sorted(self.report.slowest + [(round(elapsed, 3), label, glimpse)], reverse=True)[:5]

    def _account(self, verdicts: list, count: int, elapsed: float, label: str, starting: bool) -> None:
        report = self.report
        report.inputs += count
        report.batches += 1
        pids = self._pids()
        restarted = len(pids - self.pids)
        report.restarts += restarted
        self.pids = pids
        if restarted or starting:
            report.restart_batches += 1
            report.restart_batch_max_s = max(report.restart_batch_max_s, elapsed)
            if elapsed > 2 * self.timeout + STARTUP_S:
                report.problems.append(f"{label}: batch with a worker restart took {elapsed:.2f}s")
        else:
            self.latencies.append(elapsed)
            if elapsed > 2 * self.timeout:
                report.problems.append(f"{label}: batch of {count} took {elapsed:.2f}s > 2x timeout")
        for verdict in verdicts:
            report.statuses[verdict.status] += 1
            report.class_statuses[label][verdict.status] += 1
        if len(verdicts) != count or any(v.status not in rewards.STATUSES for v in verdicts):
            report.problems.append(f"{label}: bad verdict list {verdicts!r:.200}")
        if len(self.pool.workers) != self.workers or not all(w.alive() for w in self.pool.workers):
            report.problems.append(f"{label}: pool has {len(self.pool.workers)} workers, some dead")
        if self.marker.exists() or os.environ.get(CANARY_ENV):
            report.problems.append(f"{label}: canary fired: model text was executed")

    def finish(self, started: float) -> FuzzReport:
        ordered = sorted(self.latencies) or [0.0]
        self.report.wall_s = time.monotonic() - started
        self.report.max_verdict_s = ordered[-1]
        self.report.p99_verdict_s = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return self.report


def run_corpus(fuzzer: Fuzzer, corpus: dict[str, list[str]]) -> None:
    """Every corpus string as a completion (against a few golds) and as a gold; and in process for injections."""
    golds = ("42", "x=5", "\\frac{1}{2}")
    for label, texts in corpus.items():
        pairs = [(gold, text) for text in texts for gold in golds] + [(text, "42") for text in texts]
        for start in range(0, len(pairs), fuzzer.workers):
            fuzzer.check(pairs[start:start + fuzzer.workers], label)
    for text in corpus["injection"]:  # the in-process verb: the environment canary is only visible here
        for gold, pred in (("42", text), (text, "42"), (text, text)):
            if rewards.verify(gold, pred).status not in rewards.STATUSES:
                fuzzer.report.problems.append(f"injection: bad in-process verdict for {pred!r:.80}")
    if fuzzer.marker.exists() or os.environ.get(CANARY_ENV):
        fuzzer.report.problems.append("injection: canary fired in process")


def run_generated(fuzzer: Fuzzer, corpus: dict[str, list[str]], count: int, seed: int) -> None:
    """``count`` hypothesis-drawn pairs, ``workers`` per batch (deterministic for a given seed)."""
    short = [text for texts in corpus.values() for text in texts if len(text) <= 5000]
    batches = max(1, count // fuzzer.workers)

    @settings(max_examples=batches, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(pairs=st.lists(pair_strategy(short), min_size=fuzzer.workers, max_size=fuzzer.workers))
    def one_batch(pairs):
        fuzzer.check(pairs, "hypothesis")

    random.seed(seed)
    one_batch()


def run_fuzz(count: int, timeout: float = 1.0, workers: int = 2, megabytes: int = 1, seed: int = 0) -> FuzzReport:
    """The whole run: the adversarial corpus, then hypothesis pairs until ``count`` inputs were checked."""
    os.environ.pop(CANARY_ENV, None)
    with tempfile.TemporaryDirectory(prefix="rlmath-fuzz-") as folder:
        marker = Path(folder) / "canary"
        corpus = adversarial_corpus(marker, megabytes)
        started = time.monotonic()
        fuzzer = Fuzzer(timeout, workers, marker)
        run_corpus(fuzzer, corpus)
        run_generated(fuzzer, corpus, count - fuzzer.report.inputs, seed)
        return fuzzer.finish(started)


def main() -> None:
    """CLI: print the report as JSON; exit 1 when any promise was broken."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--megabytes", type=int, default=1)
    args = parser.parse_args()
    report = run_fuzz(args.count, args.timeout, args.workers, args.megabytes)
    print(json.dumps(report.summary(), indent=1))
    raise SystemExit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
