"""Problems for training and evaluation: synthetic (gold computed by sympy) or a user's dataset.

A problem is just a question and a gold answer string that ``rewards.verify`` parses; family and
difficulty ride along so curricula and per-family breakdowns work the same for both sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rlmath.config import Config, DataConfig
from rlmath.errors import RLMathError


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str
    family: str = "dataset"
    difficulty: int = 0
    solution: str = field(default="", compare=False)


def load_problems(config: Config, split: Literal["train", "eval"]) -> list[Problem]:
    """Train or held-out eval problems; the synth engine's split keeps template instances apart."""
    data = config.data
    if data.source == "dataset":
        return _dataset_split(data, split)
    if split == "train":
        levels = (data.difficulty, data.max_difficulty or data.difficulty)  # a range when escalating
        return _synthetic(data.families, data.train_size, data.train_seed, levels, "train")
    families = data.families + [f for f in data.eval_families if f not in data.families]
    per_family = max(1, data.eval_size // max(len(data.families), 1))
    # Equal counts per family, so a per-family accuracy is never a handful of items.
    return [p for name in families for p in _synthetic([name], per_family, data.eval_seed, data.difficulty, "test")]


def _synthetic(families: list[str], n: int, seed: int, difficulty: int | tuple[int, int], split: str) -> list[Problem]:
    """``n`` problems of one side of the engine's train/test split (it sends about 10% to test)."""
    from rlmath.synth import FAMILIES, generate

    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise RLMathError(f"data.families: unknown {unknown}; known: {sorted(FAMILIES)}")
    kept: list[dict] = []
    drawn = n
    while len(kept) < n:
        drawn = drawn * (12 if split == "test" else 2)
        kept = [item for item in generate(drawn, seed, families=list(families), difficulty=difficulty)
                if item["meta"]["split"] == split]
        if drawn > 200 * n:  # a family with (almost) no instances on this side of the split
            break
    return [Problem(id=str(item["id"]), question=item["question"], answer=str(item["answer"]),
                    family=item["family"], difficulty=int(item["difficulty"]), solution=item.get("solution", ""))
            for item in kept[:n]]


def _dataset_split(data: DataConfig, split: str) -> list[Problem]:
    """A local file/folder or hub id: the train split trains; eval uses the last eval_size rows."""
    if data.path is None:
        raise RLMathError("data.path: required when data.source is 'dataset'")
    rows = read_rows(data.path, data.split)
    problems = rows_to_problems(rows, data.question_field, data.answer_field, data.path)
    if split == "eval":
        return problems[-data.eval_size:]
    return problems[: max(len(problems) - data.eval_size, 0)][: data.train_size]


def read_rows(path: str, split: str) -> list[dict]:
    """Rows of a JSONL/JSON/parquet/CSV file, a ``save_to_disk`` folder, or a hub dataset."""
    import datasets

    local = Path(path).expanduser()
    try:
        if local.is_dir():
            loaded = datasets.load_from_disk(str(local))
            table = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        elif local.is_file():
            kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(local.suffix)
            if kind is None:
                raise RLMathError(f"{local}: unsupported file type {local.suffix!r} (use .jsonl, .json, .parquet, .csv)")
            table = datasets.load_dataset(kind, data_files=str(local), split="train")
        elif path.startswith((".", "/", "~")):
            raise RLMathError(f"dataset file not found: {path}")
        else:
            table = datasets.load_dataset(path, split=split)
    except RLMathError:
        raise
    except KeyError:
        raise RLMathError(f"{path}: has no split {split!r}") from None
    except Exception as exc:  # datasets raises many types; the user needs the path and the reason
        raise RLMathError(f"cannot load dataset {path!r} ({type(exc).__name__}: {exc}); offline, pass a local "
                          "JSONL/parquet file or a datasets folder instead of a hub id") from None
    return list(table)


def rows_to_problems(rows: list[dict], question_field: str, answer_field: str, source: str) -> list[Problem]:
    """Check the fields exist (naming them) and build problems; category fields ride along as family."""
    if not rows:
        raise RLMathError(f"{source}: the dataset is empty")
    for name in (question_field, answer_field):
        if name not in rows[0]:
            raise RLMathError(f"{source}: no field {name!r}; fields are {sorted(rows[0])}")
    return [Problem(id=str(row.get("id", index)), question=str(row[question_field]), answer=str(row[answer_field]),
                    family=str(row.get("family", row.get("subject", row.get("type", "dataset")))),
                    difficulty=int(row.get("difficulty", row.get("level", 0)) or 0)
                    if str(row.get("difficulty", row.get("level", 0)) or 0).isdigit() else 0)
            for index, row in enumerate(rows)]
