"""Preference pairs from verified samples: (prompt, chosen = verified correct, rejected = verified wrong).

Both preference recipes meet here: DPO on rollout pairs and DPO on Pivotal-Token-Search pairs store
their pairs in the same ``datasets`` layout, so ``dpo.pairs: PATH`` reads either, and every pair
keeps its provenance (problem id, family, policy version, rewards, where it came from).

Pairs carry exact token ids (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) beside the text: the
prompt is already chat-templated (``prompt_has_chat_template``), and re-tokenising ``prompt + chosen``
can merge tokens across the boundary, which for a single pivotal token changes what is trained.

Rules a pair always obeys (tests check them): the chosen side verified correct and the rejected side
verified wrong (or, for ``solutions``, the chosen side is the problem's checked worked solution); never
the same completion on both sides; no duplicate pairs; no rollout pair from a group whose samples are
all right or all wrong (it says nothing about which answer is better).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from rlmath.errors import RLMathError

#: Verdicts that count as "verified wrong": the answer was read and it is not the gold, or no answer
#: was given. A verifier timeout or an unparseable gold says nothing about the completion.
REJECTABLE = frozenset({"wrong", "no_answer", "unparseable"})
REQUIRED_FIELDS = ("prompt", "chosen", "rejected")
Strategy = Literal["shortest_vs_wrong", "all"]


@dataclass(frozen=True)
class Sample:
    """One verified completion of a problem, as pair building needs it."""

    text: str
    token_ids: tuple[int, ...]  # completion ids, EOS included when the sample stopped by itself
    status: str  # rewards verdict status
    reward: float

    @property
    def correct(self) -> bool:
        return self.status == "correct"


def completion_ids(token_ids: Sequence[int], finish_reason: str, eos_id: int | None) -> tuple[int, ...]:
    """The ids a preference loss should score: a stopped sample ends with EOS (its stop decision is
    part of what is preferred); a truncated one does not."""
    ids = [t for t in token_ids]
    if ids and eos_id is not None and ids[-1] == eos_id:
        ids = ids[:-1]
    if finish_reason == "stop" and eos_id is not None:
        ids.append(eos_id)
    return tuple(ids)


def choose_pairs(samples: Sequence[Sample], strategy: Strategy, cap: int) -> list[tuple[Sample, Sample]]:
    """(chosen, rejected) pairs of one group, at most ``cap``; none unless the group holds both verdicts.

    ``shortest_vs_wrong``: the shortest correct sample against each distinct wrong one (shortest first),
    so the preference also favours concise solutions. ``all``: every correct × wrong combination,
    shortest pairs first.
    """
    correct = _distinct(s for s in samples if s.correct)
    wrong = _distinct(s for s in samples if s.status in REJECTABLE)
    if not correct or not wrong:
        return []
    correct.sort(key=lambda s: (len(s.token_ids), s.text))
    wrong.sort(key=lambda s: (len(s.token_ids), s.text))
    winners = correct[:1] if strategy == "shortest_vs_wrong" else correct
    pairs = [(c, w) for c in winners for w in wrong if c.text.strip() != w.text.strip()]
    return pairs[:cap]


def _distinct(samples) -> list[Sample]:
    """Samples with distinct text (a policy often repeats itself; a duplicate pair teaches nothing new)."""
    seen: dict[str, Sample] = {}
    for sample in samples:
        seen.setdefault(sample.text.strip(), sample)
    return list(seen.values())


def pair_row(prompt_text: str, prompt_ids: Sequence[int], chosen: Sample, rejected: Sample, *, problem,
             policy_version: str, source: str) -> dict:
    """One dataset row: what trl's DPOTrainer reads plus exact ids and provenance."""
    return {"prompt": prompt_text, "chosen": chosen.text, "rejected": rejected.text,
            "prompt_ids": list(prompt_ids), "chosen_ids": list(chosen.token_ids), "rejected_ids": list(rejected.token_ids),
            "prompt_has_chat_template": True, "problem_id": problem.id, "family": problem.family,
            "policy_version": policy_version, "chosen_reward": float(chosen.reward),
            "rejected_reward": float(rejected.reward), "source": source}


def dedupe(rows: list[dict]) -> list[dict]:
    """Drop repeated (prompt, chosen, rejected) id triples and any row with the same ids on both sides."""
    seen: set[tuple] = set()
    kept = []
    for row in rows:
        key = (tuple(row["prompt_ids"]), tuple(row["chosen_ids"]), tuple(row["rejected_ids"]))
        if key in seen or key[1] == key[2]:
            continue
        seen.add(key)
        kept.append(row)
    return kept


def rollout_pairs(problems, prompts: list[list[int]], groups: list[list[Sample]], *, decode, strategy: Strategy,
                  cap: int, policy_version: str) -> list[dict]:
    """Pairs from k verified samples per problem (``groups[i]`` answers ``problems[i]``)."""
    rows = [pair_row(decode(prompt), prompt, chosen, rejected, problem=problem, policy_version=policy_version,
                     source="rollouts")
            for problem, prompt, group in zip(problems, prompts, groups)
            for chosen, rejected in choose_pairs(group, strategy, cap)]
    return dedupe(rows)


def solution_pairs(problems, prompts: list[list[int]], groups: list[list[Sample]], *, decode, encode, eos_id: int | None,
                   cap: int, policy_version: str) -> list[dict]:
    """The problem's checked worked solution (chosen) against the model's own verified-wrong samples.

    For a policy that rarely answers right (a fresh small model): rollout pairs need a correct sample,
    this source needs only a wrong one. The synthetic engine checked each worked solution with ``rewards``.
    """
    rows = []
    for problem, prompt, group in zip(problems, prompts, groups):
        if not problem.solution:
            continue
        ids = tuple(encode(problem.solution)) + ((eos_id,) if eos_id is not None else ())
        gold = Sample(problem.solution, ids, "correct", 1.0)
        wrong = sorted(_distinct(s for s in group if s.status in REJECTABLE), key=lambda s: (len(s.token_ids), s.text))
        rows += [pair_row(decode(prompt), prompt, gold, w, problem=problem, policy_version=policy_version,
                          source="solutions")
                 for w in wrong[:cap] if w.text.strip() != gold.text.strip()]
    return dedupe(rows)


def save_pairs(rows: list[dict], out: Path) -> Path:
    """A ``datasets`` folder (``load_from_disk``) plus ``pairs.jsonl`` for grepping; refuses an empty set."""
    from datasets import Dataset

    if not rows:
        raise RLMathError(f"no preference pairs to write to {out}")
    out.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).save_to_disk(str(out / "dataset"))
    with (out / "pairs.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return out


def load_pairs(path: str | Path):
    """A pairs dataset: a folder written by :func:`save_pairs`, a ``save_to_disk`` folder, or a JSONL file."""
    import datasets

    source = Path(path).expanduser()
    if (source / "dataset").is_dir():
        source = source / "dataset"
    try:
        if source.is_dir():
            table = datasets.load_from_disk(str(source))
        elif source.is_file() and source.suffix in {".jsonl", ".json"}:
            table = datasets.load_dataset("json", data_files=str(source), split="train")
        else:
            raise RLMathError(f"dpo.pairs: {path} is not a pairs folder or a .jsonl file")
    except RLMathError:
        raise
    except Exception as exc:  # datasets raises many types; the user needs the path and the reason
        raise RLMathError(f"dpo.pairs: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if isinstance(table, datasets.DatasetDict):
        table = table["train"]
    missing = [name for name in REQUIRED_FIELDS if name not in table.column_names]
    if missing:
        raise RLMathError(f"dpo.pairs: {path} has no field(s) {missing}; fields are {sorted(table.column_names)}")
    if len(table) == 0:
        raise RLMathError(f"dpo.pairs: {path} holds no pairs")
    return table


def verified_samples(groups, verdicts, rewards: Sequence[float], eos_id: int | None) -> list[list[Sample]]:
    """Sampler completions plus their verdicts (problem-major, as ``score_groups`` returns them) as Samples."""
    out, index = [], 0
    for group in groups:
        row = []
        for completion in group:
            row.append(Sample(completion.text, completion_ids(completion.token_ids, completion.finish_reason, eos_id),
                              verdicts[index].status, float(rewards[index])))
            index += 1
        out.append(row)
    return out
