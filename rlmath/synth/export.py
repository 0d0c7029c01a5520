"""Write a synthetic dataset folder atomically: datasets folder + JSONL + parquet + dataset card.

Layout of the output folder (loadable with ``datasets.load_from_disk(DIR)`` as a DatasetDict)::

    DIR/dataset_dict.json, DIR/train/, DIR/test/   # save_to_disk
    DIR/train.jsonl, DIR/test.jsonl               # one item per line
    DIR/train.parquet, DIR/test.parquet           # same rows, for the Hub / pandas
    DIR/README.md                                 # dataset card
    DIR/synth_stats.json                          # counts, seed, version, drops

Everything is written to a sibling temp folder first and renamed into place, so an interrupted
run never leaves a half-written dataset behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, List

from rlmath.errors import RLMathError
from rlmath.synth.dedup import capacity_text

STATS_FILE = "synth_stats.json"


def features():
    """The fixed Arrow schema (also used for empty splits, which have no rows to infer from)."""
    from datasets import Features, Value

    meta = {
        "template": Value("string"),
        "surface": Value("int32"),
        "surfaces": Value("int32"),
        "kind": Value("string"),
        "instance": Value("string"),
        "split": Value("string"),
        "params": Value("string"),
        "attempt": Value("int32"),
    }
    return Features(
        {
            "id": Value("string"),
            "family": Value("string"),
            "difficulty": Value("int32"),
            "question": Value("string"),
            "answer": Value("string"),
            "solution": Value("string"),
            "meta": meta,
        }
    )


def by_split(items: List[dict]) -> Dict[str, List[dict]]:
    """Items grouped by their ``meta['split']`` (train first)."""
    return {s: [it for it in items if it["meta"]["split"] == s] for s in ("train", "test")}


def _write_files(tmp: Path, splits: Dict[str, List[dict]], stats: dict) -> None:
    """Write every artefact into the temp folder."""
    import datasets
    from datasets import Dataset, DatasetDict

    feats = features()
    # An empty split saved to disk cannot be loaded back by `datasets`, so only non-empty splits are written.
    dd = DatasetDict({name: Dataset.from_list(rows, features=feats) for name, rows in splits.items() if rows})
    bars_were_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the command prints its own summary; bars would interleave with it
    try:
        _write_rows(tmp, dd, splits, stats)
    finally:
        if not bars_were_off:
            datasets.enable_progress_bars()


def _write_rows(tmp: Path, dd, splits: Dict[str, List[dict]], stats: dict) -> None:
    """save_to_disk, JSONL, parquet, card and stats into `tmp`."""
    dd.save_to_disk(str(tmp))
    for name, rows in splits.items():
        with open(tmp / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        if name in dd:
            dd[name].to_parquet(str(tmp / f"{name}.parquet"))
    (tmp / "README.md").write_text(card(splits, stats), encoding="utf-8")
    (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_dataset(items: List[dict], out: Path, stats: dict) -> Path:
    """Write `items` to `out` atomically; an existing synth output there is replaced, anything else refused."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / STATS_FILE).exists())):
        raise RLMathError(f"out: {out} exists and is not an earlier `rlmath synth` output; choose another folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the dataset folder should be readable like any other
    try:
        _write_files(tmp, by_split(items), stats)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def card(splits: Dict[str, List[dict]], stats: dict) -> str:
    """The dataset card: Hub front matter, what the data is, counts per family and difficulty."""
    per_family = {s: Counter(it["family"] for it in rows) for s, rows in splits.items()}
    families = sorted(set(per_family["train"]) | set(per_family["test"]))
    capacity = stats.get("capacity", {})
    repeats = stats.get("duplicates_by_family", {})
    table = "\n".join(f"| {f} | {per_family['train'][f]} | {per_family['test'][f]} | {repeats.get(f, 0)} | "
                      f"{capacity_text(capacity.get(f))} |" for f in families)
    levels = Counter(it["difficulty"] for rows in splits.values() for it in rows)
    level_line = ", ".join(f"{d}: {levels[d]}" for d in sorted(levels))
    decon = stats.get("decontamination")
    decon_line = (
        f"Dropped {decon['dropped']} items overlapping `{decon['against']}` ({decon['n']}-gram overlap >= {decon['threshold']})."
        if decon
        else "Not decontaminated against an eval set."
    )
    data_files = "\n".join(f"  - split: {name}\n    path: {name}.parquet" for name, rows in splits.items() if rows)
    return f"""---
license: apache-2.0
task_categories: [question-answering]
tags: [math, synthetic, rlmath, verifiable]
configs:
- config_name: default
  data_files:
{data_files}
---

# rlmath synthetic math problems

Machine-made math problems with exactly known answers and step-by-step worked solutions, built by
`rlmath synth` (engine version {stats['engine_version']}, rlmath {stats['rlmath_version']}).

- Command: `{stats['command']}`
- Seed: {stats['seed']} (the same seed and options give identical output)
- Items: {len(splits['train'])} train, {len(splits['test'])} test
- Difficulty levels: {level_line}
- Generation check: every solution's final `\\boxed{{}}` answer verifies against its gold answer
  ({stats['check']}); {stats['retried']} items were regenerated, {stats['dropped_check']} dropped.
- Decontamination: {decon_line}

The train/test split is by *template instance* (family, template and parameters, whatever the
wording), so no question appears on both sides in any of its surface forms.

## Fields

`id`, `family`, `difficulty` (1-5), `question`, `answer` (canonical string), `solution` (worked
steps ending in `\\boxed{{answer}}`), `meta` (`template`, `surface` index, `kind` of answer, `instance`
key, `split`, `params` JSON).

## Families

No question repeats within a split or across the two (case and spacing ignored): repeats are dropped,
the first kept. *Capacity* is the Chao1 estimate of how many distinct questions the family can make at
these levels, from this draw ("> N": a draw of N repeated nothing).

| family | train | test | repeats dropped | capacity (est.) |
|---|---|---|---|---|
{table}

Load with `datasets.load_from_disk(DIR)` or `datasets.load_dataset("parquet", data_dir=DIR)`.
"""
