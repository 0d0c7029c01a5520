"""Eval datasets for ``rlmath eval --dataset``: presets (GSM8K, MATH, MATH-500), local files, hub ids.

Public math benchmarks store the gold answer inside a worked solution: GSM8K after ``####``, MATH
and MATH-500 in the solution's last ``\\boxed{}``. :func:`gold_answer` pulls it out so the same
``rewards`` verifier that scores training also scores the benchmark. Local exports of these sets
(``problem``/``solution`` fields, say) work without naming a preset: missing default fields fall back
to the usual alternatives. Offline, a hub id fails with a message that says how to pass a local file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rewards.extract import last_boxed
from rlmath.data import Problem, read_rows
from rlmath.errors import RLMathError


@dataclass(frozen=True)
class Preset:
    """Where a benchmark lives on the hub and which fields hold question, answer and categories."""

    hub_id: str
    subset: str | None
    split: str
    question_field: str
    answer_field: str
    category_field: str | None


PRESETS: dict[str, Preset] = {
    "gsm8k": Preset("openai/gsm8k", "main", "test", "question", "answer", None),
    "math": Preset("DigitalLearningGmbH/MATH-lighteval", "default", "test", "problem", "solution", "type"),
    "math500": Preset("HuggingFaceH4/MATH-500", None, "test", "problem", "solution", "subject"),
}
ALIASES = {"math-500": "math500", "math_500": "math500", "openai/gsm8k": "gsm8k", "huggingfaceh4/math-500": "math500"}
FALLBACK_FIELDS = {"question": ("problem", "prompt", "input"), "answer": ("solution", "final_answer", "target")}
CATEGORY_FIELDS = ("subject", "type", "family", "category")


@dataclass(frozen=True)
class EvalSet:
    """Problems plus where they came from (logged as mlflow params/tags)."""

    name: str
    problems: list[Problem]
    category_field: str | None


def gold_answer(text: str) -> str:
    r"""The gold answer inside a reference solution: after GSM8K's ``####``, else the last ``\boxed{}``.

    Boxes are found by the same ``rewards`` extraction that reads model answers, so a gold and a
    completion written the same way are read the same way.

    >>> gold_answer("She sells 16 - 3 - 4 = 9 eggs.\n#### 1,800")
    '1800'
    >>> gold_answer(r"Thus the answer is $\boxed{\dfrac{3}{4}}$.")
    '\\dfrac{3}{4}'
    >>> gold_answer(r"so $\boxed{\frac{1}{2}}$ and finally \boxed{3}"), gold_answer(r"\boxed{\frac{a}{b}}")
    ('3', '\\frac{a}{b}')
    >>> gold_answer("42")
    '42'
    """
    if "####" in text:
        return text.rsplit("####", 1)[1].strip().replace(",", "")
    boxed = last_boxed(text)
    return boxed if boxed is not None else text.strip()


def load_eval_set(dataset: str, *, split: str | None = None, question_field: str | None = None,
                  answer_field: str | None = None, category_field: str | None = None,
                  limit: int | None = None) -> EvalSet:
    """Problems from a preset name, a local file/folder, or a hub id; ``None`` options use defaults."""
    preset = PRESETS.get(ALIASES.get(dataset.lower(), dataset.lower()))
    local = Path(dataset).expanduser()
    if preset is not None and not local.exists():
        rows = _hub_rows(preset.hub_id, preset.subset, split or preset.split, dataset)
        question_field = question_field or preset.question_field
        answer_field = answer_field or preset.answer_field
        category_field = category_field or preset.category_field
    elif local.exists() or dataset.startswith((".", "/", "~")) or local.suffix in {".jsonl", ".json", ".parquet", ".csv"}:
        rows = read_rows(str(local), split or "test") if local.is_dir() else read_rows(dataset, split or "train")
    else:
        rows = _hub_rows(dataset, None, split or "test", dataset)
    if not rows:
        raise RLMathError(f"{dataset}: the dataset is empty")
    question = _field(rows[0], question_field, "question", dataset)
    answer = _field(rows[0], answer_field, "answer", dataset)
    category = category_field or next((f for f in CATEGORY_FIELDS if f in rows[0]), None)
    if category is not None and category not in rows[0]:
        raise RLMathError(f"{dataset}: no category field {category!r}; fields are {sorted(rows[0])}")
    rows = rows[:limit] if limit else rows
    problems = [_problem(row, index, question, answer, category) for index, row in enumerate(rows)]
    return EvalSet(name=dataset, problems=problems, category_field=category)


def _field(row: dict, given: str | None, default: str, dataset: str) -> str:
    """The named field, or (when the user named none) the default or a common alternative."""
    if given is not None:
        if given not in row:
            raise RLMathError(f"{dataset}: no field {given!r}; fields are {sorted(row)}")
        return given
    for name in (default, *FALLBACK_FIELDS[default]):
        if name in row:
            return name
    raise RLMathError(f"{dataset}: no {default} field (tried {[default, *FALLBACK_FIELDS[default]]}); fields are "
                      f"{sorted(row)}; pass --{default}-field NAME")


def _problem(row: dict, index: int, question: str, answer: str, category: str | None) -> Problem:
    level = str(row.get("level", row.get("difficulty", "")))
    digits = re.sub(r"\D", "", level)  # MATH stores "Level 3"
    return Problem(id=str(row.get("id", row.get("unique_id", index))), question=str(row[question]),
                   answer=gold_answer(str(row[answer])), family=str(row[category]) if category else "all",
                   difficulty=int(digits) if digits else 0, solution=str(row.get("solution", "")))


def _hub_rows(hub_id: str, subset: str | None, split: str, asked: str) -> list[dict]:
    """Load from the Hugging Face Hub, or fail saying exactly how to evaluate offline."""
    import datasets

    if not _hub_reachable():
        _go_offline()  # use the local HF cache if it has the set; fail in a second instead of after retries
    try:
        table = datasets.load_dataset(hub_id, subset, split=split)
    except Exception as exc:  # offline: ConnectionError, OfflineModeIsEnabled, DatasetNotFoundError, ...
        export = f"datasets.load_dataset({hub_id!r}{', ' + repr(subset) if subset else ''}, split={split!r})"
        raise RLMathError(
            f"cannot load {asked!r} from the Hugging Face Hub ({type(exc).__name__}: {str(exc)[:200]}). "
            f"Offline, evaluate a local copy instead: on a machine with network run "
            f"`python -c \"import datasets; {export}.to_json('{asked.split('/')[-1]}.jsonl')\"`, copy the file "
            f"here and pass --dataset ./{asked.split('/')[-1]}.jsonl (JSONL, parquet, CSV or a "
            f"datasets.save_to_disk folder; fields --question-field/--answer-field)") from None
    return list(table)


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A quick TCP probe: the hub client otherwise retries for ~25 s before admitting it is offline."""
    import os
    import socket
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT")
    host = urlparse(endpoint).hostname or host if endpoint else host
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _go_offline() -> None:
    """Switch ``datasets``/``huggingface_hub`` to offline mode in this process (as ``HF_HUB_OFFLINE=1`` would)."""
    import os

    import datasets.config
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True
