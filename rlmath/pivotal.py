"""Pivotal Token Search (Phi-4 technical report, section 4.3): the tokens that decide a solution.

The maths, as published:

1. Estimate p(success | question) by sampling k solutions and verifying them with ``rewards``; keep
   questions with ``p_low <= p <= p_high`` (0.2..0.8): an always-solved or never-solved question has
   no token that changes its fate.
2. For a sampled solution T, estimate p(success | question, T[:i]) by Monte Carlo: ``mc_samples``
   continuations from the exact token prefix, each verified. Subdivide T recursively:
   ``Subdivide(prefix, seg)`` stops when ``len(seg) <= 1`` or ``|p(prefix) - p(prefix + seg)| < threshold``,
   else splits ``seg`` into left and right and recurses on ``(prefix, left)`` and ``(prefix + left, right)``.
3. A one-token segment whose inclusion moves p by at least ``threshold`` is pivotal.

The split rule: ``split: logprob`` (default, the paper's) cuts a segment where its cumulative
sampled log-probability reaches half the segment's total, so the search spends its estimates around
the surprising tokens; ``split: token`` cuts at the token midpoint. Either way the cut is strictly
inside the segment, and a log-prob total of ~0 falls back to the token midpoint.

What this implementation adds for speed: the recursion runs breadth-first over *all* solutions at
once, so each level is one sampler call holding every prefix that still needs an estimate (prompts are
token ids, so a continuation starts exactly at the prefix; vLLM's prefix cache shares the question).
Estimates are cached per (question, prefix). p of the whole solution is its own verdict, and
p(question) reuses the question-level samples, so neither costs a call.

The pair: prompt = templated question + prefix (ids and text; ``prompt_has_chat_template: true``, so a
trainer must not template it again); the pivotal token on one side; on the other, the alternative next
token seen most often in the Monte Carlo continuations from the same prefix, re-estimated, and kept only
if it moves p the other way by at least ``threshold`` relative to the pivotal token.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

import rewards
from rlmath.pairs import Sample, dedupe, pair_row
from rlmath.sampling import AdapterRef, Sampler, SamplingRequest

Verify = Callable[[list[str], list[str]], list[bool]]  # (golds, completion texts) -> correct?
Decode = Callable[[Sequence[int]], str]


def rewards_verifier(timeout: float, workers: int) -> Verify:
    """Correctness by ``rewards`` (worker pool, hard timeout): the same verdicts training rewards use."""

    def verify(golds: list[str], texts: list[str]) -> list[bool]:
        return [v.correct for v in rewards.verify_batch(golds, texts, timeout=timeout, workers=workers)]

    return verify


@dataclass(frozen=True)
class PTSOptions:
    question_samples: int = 8
    p_low: float = 0.2
    p_high: float = 0.8
    threshold: float = 0.2
    mc_samples: int = 8
    split: str = "logprob"  # "logprob" | "token"
    solutions_per_question: int = 2
    max_alternatives: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 128


@dataclass
class Estimate:
    p: float
    next_tokens: Counter  # first token of each continuation: the alternatives seen at this prefix


@dataclass
class Trajectory:
    """One sampled solution of one question, to be searched for pivotal tokens."""

    problem: object  # rlmath.data.Problem
    prompt: tuple[int, ...]
    tokens: tuple[int, ...]  # completion ids without EOS
    logprobs: tuple[float, ...]
    correct: bool


@dataclass
class SearchStats:
    sampler_calls: int = 0
    continuations: int = 0
    sampling_s: float = 0.0
    questions: int = 0
    kept_questions: int = 0
    trajectories: int = 0
    pivots: int = 0
    pivots_without_alternative: int = 0
    p_changes: list[float] = field(default_factory=list)  # signed p_after - p_before of every pivotal token


class PrefixEstimator:
    """p(success | question, prefix) by batched, cached Monte Carlo continuations."""

    def __init__(self, sampler: Sampler, adapter: AdapterRef | None, options: PTSOptions, verify: Verify,
                 decode: Decode, stats: SearchStats, eos_id: int | None = None) -> None:
        self.sampler, self.adapter, self.options, self.eos_id = sampler, adapter, options, eos_id
        self.verify, self.decode, self.stats = verify, decode, stats
        self.cache: dict[tuple[tuple[int, ...], tuple[int, ...]], Estimate] = {}

    def seed(self, prompt: tuple[int, ...], prefix: tuple[int, ...], estimate: Estimate) -> None:
        self.cache[(prompt, prefix)] = estimate

    def estimate(self, queries: Sequence[tuple[tuple[int, ...], tuple[int, ...], str]]) -> list[Estimate]:
        """``queries``: (prompt ids, prefix ids, gold). One sampler call for all uncached prefixes."""
        todo = list(dict.fromkeys((prompt, prefix, gold) for prompt, prefix, gold in queries
                                  if (prompt, prefix) not in self.cache))
        if todo:
            self._sample(todo)
        return [self.cache[(prompt, prefix)] for prompt, prefix, _ in queries]

    def _sample(self, todo: list[tuple[tuple[int, ...], tuple[int, ...], str]]) -> None:
        o = self.options
        shortest = min(len(prefix) for _, prefix, _ in todo)
        # The whole solution keeps the training length budget: each continuation is cut to what its own
        # prefix left (cutting after sampling is exact: later tokens never change earlier ones).
        request = SamplingRequest(n=o.mc_samples, temperature=o.temperature, top_p=o.top_p,
                                  max_tokens=max(1, o.max_tokens - shortest))
        started = time.perf_counter()
        groups = self.sampler.generate([list(prompt) + list(prefix) for prompt, prefix, _ in todo], request, self.adapter)
        self.stats.sampling_s += time.perf_counter() - started
        self.stats.sampler_calls += 1
        groups = [[self.without_eos(c.token_ids)[: max(1, o.max_tokens - len(prefix))] for c in group]
                  for (_, prefix, _), group in zip(todo, groups)]
        golds, texts = [], []
        for (_, prefix, gold), group in zip(todo, groups):
            golds += [gold] * len(group)
            texts += [self.decode(list(prefix) + ids) for ids in group]
        self.stats.continuations += len(texts)
        correct = self.verify(golds, texts)
        index = 0
        for (prompt, prefix, _), group in zip(todo, groups):
            verdicts = correct[index:index + len(group)]
            index += len(group)
            firsts = Counter(ids[0] for ids in group if ids)
            self.cache[(prompt, prefix)] = Estimate(sum(verdicts) / max(len(verdicts), 1), firsts)


    def without_eos(self, token_ids) -> list[int]:
        """vLLM keeps the stop token in ``token_ids``; a prefix or an alternative never holds it."""
        ids = list(token_ids)
        if ids and ids[-1] == self.eos_id:
            ids.pop()
        return ids


def split_point(start: int, end: int, logprobs: Sequence[float], rule: str) -> int:
    """Where to cut tokens ``[start, end)`` (``end - start >= 2``); always ``start < cut < end``."""
    middle = (start + end) // 2
    if rule == "token":
        return middle
    surprise = [-float(x) for x in logprobs[start:end]]
    total = sum(surprise)
    if len(surprise) < end - start or total <= 1e-6:
        return middle
    running = 0.0
    for offset, value in enumerate(surprise):
        running += value
        if running >= total / 2:
            return min(max(start + offset + 1, start + 1), end - 1)
    return middle


def find_pivots(trajectories: list[Trajectory], estimator: PrefixEstimator,
                options: PTSOptions) -> list[tuple[int, int, float, float]]:
    """Breadth-first Subdivide over all trajectories: (trajectory index, position, p_before, p_after)."""

    def key(i: int, k: int):
        t = trajectories[i]
        return t.prompt, t.tokens[:k], t.problem.answer

    def p(i: int, k: int) -> float:
        t = trajectories[i]
        return float(t.correct) if k == len(t.tokens) else estimator.cache[(t.prompt, t.tokens[:k])].p

    frontier = [(i, 0, len(t.tokens)) for i, t in enumerate(trajectories) if t.tokens]
    final: list[tuple[int, int, int]] = []
    while frontier:
        estimator.estimate([key(i, k) for i, s, e in frontier for k in (s, e) if k < len(trajectories[i].tokens)])
        deeper = []
        for i, s, e in frontier:
            if e - s <= 1 or abs(p(i, e) - p(i, s)) < options.threshold:
                final.append((i, s, e))
                continue
            cut = split_point(s, e, trajectories[i].logprobs, options.split)
            deeper += [(i, s, cut), (i, cut, e)]
        frontier = deeper
    return sorted((i, s, p(i, s), p(i, e)) for i, s, e in final
                  if e - s == 1 and abs(p(i, e) - p(i, s)) >= options.threshold)


def pivot_pairs(trajectories: list[Trajectory], pivots, estimator: PrefixEstimator, options: PTSOptions,
                decode: Decode, policy_version: str, stats: SearchStats) -> list[dict]:
    """One pair per pivotal token that has an alternative moving p the other way (re-estimated)."""
    candidates = []
    for i, position, before, after in pivots:
        t = trajectories[i]
        prefix = t.tokens[:position]
        seen = estimator.cache[(t.prompt, prefix)].next_tokens
        others = [tok for tok, _ in seen.most_common() if tok != t.tokens[position]][: options.max_alternatives]
        candidates.append((i, position, before, after, others))
    estimator.estimate([(trajectories[i].prompt, trajectories[i].tokens[:pos] + (alt,), trajectories[i].problem.answer)
                        for i, pos, _, _, others in candidates for alt in others])
    rows = []
    for i, position, before, after, others in candidates:
        stats.pivots += 1
        stats.p_changes.append(after - before)
        row = _pair_for(trajectories[i], position, before, after, others, estimator, options, decode, policy_version)
        if row is None:
            stats.pivots_without_alternative += 1
        else:
            rows.append(row)
    return dedupe(rows)


def _pair_for(t: Trajectory, position: int, before: float, after: float, others: list[int], estimator,
              options: PTSOptions, decode: Decode, policy_version: str) -> dict | None:
    prefix = t.tokens[:position]
    scored = [(estimator.cache[(t.prompt, prefix + (alt,))].p, alt) for alt in others]
    raises = after > before  # the pivotal token helps: it is the chosen side
    if not scored:
        return None
    p_alt, alt = min(scored) if raises else max(scored)
    if (after - p_alt if raises else p_alt - after) < options.threshold:
        return None
    pivot = Sample(decode([t.tokens[position]]), (t.tokens[position],), "correct" if raises else "wrong", after)
    other = Sample(decode([alt]), (alt,), "wrong" if raises else "correct", p_alt)
    chosen, rejected = (pivot, other) if raises else (other, pivot)
    prompt_ids = list(t.prompt) + list(prefix)
    row = pair_row(decode(prompt_ids), prompt_ids, chosen, rejected, problem=t.problem,
                   policy_version=policy_version, source="pts")
    return row | {"p_before": before, "p_after": after, "p_alternative": p_alt, "prefix_length": position,
                  "pivot_token": t.tokens[position]}


def select_trajectories(problems, prompts: list[tuple[int, ...]], estimator: PrefixEstimator,
                        options: PTSOptions, stats: SearchStats) -> list[Trajectory]:
    """Step 1: p(success | question) from ``question_samples`` samples; solutions of in-band questions.

    The question-level samples seed the cache for the empty prefix, and the solutions searched
    alternate correct and wrong ones (Phi-4 searches both).
    """
    request = SamplingRequest(n=options.question_samples, temperature=options.temperature, top_p=options.top_p,
                              max_tokens=options.max_tokens)
    started = time.perf_counter()
    groups = estimator.sampler.generate([list(p) for p in prompts], request, estimator.adapter)
    stats.sampling_s += time.perf_counter() - started
    stats.sampler_calls += 1
    golds = [p.answer for p, group in zip(problems, groups) for _ in group]
    correct = estimator.verify(golds, [c.text for group in groups for c in group])
    stats.questions += len(problems)
    chosen, index = [], 0
    for problem, prompt, group in zip(problems, prompts, groups):
        verdicts = correct[index:index + len(group)]
        index += len(group)
        p = sum(verdicts) / max(len(verdicts), 1)
        estimator.seed(prompt, (), Estimate(p, Counter(c.token_ids[0] for c in group if c.token_ids)))
        if not options.p_low <= p <= options.p_high:
            continue
        stats.kept_questions += 1
        rights = [c for c, ok in zip(group, verdicts) if ok]
        wrongs = [c for c, ok in zip(group, verdicts) if not ok]
        mixed = [c for pair in zip(rights, wrongs) for c in pair] + rights[len(wrongs):] + wrongs[len(rights):]
        for completion in mixed[: options.solutions_per_question]:
            tokens = estimator.without_eos(completion.token_ids)
            chosen.append(Trajectory(problem, prompt, tuple(tokens), tuple(completion.logprobs[: len(tokens)]),
                                     completion in rights))
    stats.trajectories += len(chosen)
    return chosen


def search_pairs(problems, prompts: list[tuple[int, ...]], estimator: PrefixEstimator, options: PTSOptions,
                 decode: Decode, policy_version: str, stats: SearchStats) -> list[dict]:
    """PTS on one batch of questions: select, subdivide, pair."""
    trajectories = select_trajectories(problems, prompts, estimator, options, stats)
    pivots = find_pivots(trajectories, estimator, options)
    return pivot_pairs(trajectories, pivots, estimator, options, decode, policy_version, stats)


def options_from(config) -> PTSOptions:
    """The ``pts:`` section plus the sampling settings the policy is trained with."""
    p, s = config.pts, config.sampling
    return PTSOptions(question_samples=p.question_samples, p_low=p.p_low, p_high=p.p_high, threshold=p.threshold,
                      mc_samples=p.mc_samples, split=p.split, solutions_per_question=p.solutions_per_question,
                      max_alternatives=p.max_alternatives, temperature=s.temperature, top_p=s.top_p,
                      max_tokens=s.max_tokens)


def run_search(problems, prompts: list[list[int]], sampler: Sampler, adapter: AdapterRef | None, tokenizer, config,
               policy_version: str, on_batch=None) -> tuple[list[dict], SearchStats]:
    """PTS over ``problems`` in batches of ``pts.batch_questions`` until done or ``pts.max_seconds`` is spent.

    ``on_batch(rows_so_far, stats, done, total)`` reports progress (the recipe logs it to mlflow).
    """
    options, stats = options_from(config), SearchStats()

    def decode(ids) -> str:  # the prompt text keeps its chat-template tokens; completions have none to skip
        return tokenizer.decode(list(ids), skip_special_tokens=False)

    verify = rewards_verifier(config.rewards.timeout, config.rewards.workers)
    estimator = PrefixEstimator(sampler, adapter, options, verify, decode, stats, eos_id=tokenizer.eos_token_id)
    started, rows, size = time.perf_counter(), [], config.pts.batch_questions
    for begin in range(0, len(problems), size):
        if config.pts.max_seconds and time.perf_counter() - started > config.pts.max_seconds:
            break
        batch = [tuple(p) for p in prompts[begin:begin + size]]
        rows = dedupe(rows + search_pairs(problems[begin:begin + size], batch, estimator, options, decode,
                                          policy_version, stats))
        if on_batch is not None:
            on_batch(rows, stats, min(begin + size, len(problems)), len(problems))
    return rows, stats
