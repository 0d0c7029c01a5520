"""The one reader of dataset rows: hub presets, local files and folders, field mapping, gold answers.

Training data (``data.source: dataset``), eval sets (``rlmath eval --dataset``) and decontamination
(``rlmath synth --decontaminate-against``) all read through here, so a name that works for one works
for all three and every failure reads the same:

* presets ``gsm8k``, ``math``, ``math500`` (the hub id, split and field names of each benchmark);
* local ``.jsonl``/``.json``/``.parquet``/``.csv`` files and ``datasets.save_to_disk`` folders;
* any other ``org/name`` hub id.

Public benchmarks keep the gold inside a worked solution (GSM8K after ``####``, MATH in the last
``\\boxed{}``); :func:`gold_answer` pulls it out so the ``rewards`` verifier that scores training also
scores the benchmark. Golds the verifier cannot parse are counted and skipped, never a crash: one such
row would otherwise score every answer wrong. One rule (:func:`hub_reachable`) decides whether the hub
is reachable, and offline every hub name fails with the same message saying how to pass a local file.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import rewards
from rewards.extract import last_boxed
from rlmath.errors import RLMathError

log = logging.getLogger(__name__)

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
QUESTION_FIELDS = ("question", "problem", "prompt", "query", "input", "text")
ANSWER_FIELDS = ("answer", "solution", "final_answer", "target")
CATEGORY_FIELDS = ("family", "subject", "type", "category")
DIFFICULTY_FIELDS = ("difficulty", "level")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Problem:
    """A question with a gold answer string ``rewards.verify`` parses; what the trainer and evals consume.

    ``family`` and ``difficulty`` ride along so curricula and per-family breakdowns work the same for
    synthetic and user data; ``solution`` is a worked solution (SFT targets), when the source has one.
    """

    id: str
    question: str
    answer: str
    family: str = "dataset"
    difficulty: int = 0
    solution: str = field(default="", compare=False)


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


@dataclass(frozen=True)
class Fields:
    """Which row fields hold the question, the answer and the category; ``None`` picks the usual names."""

    question: str | None = None
    answer: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Loaded:
    """Problems of one source, the category field used, and how many rows were skipped for their gold."""

    name: str
    problems: list[Problem]
    category_field: str | None
    skipped_golds: int = 0


def preset(name: str) -> Preset | None:
    """The preset a name (or alias) stands for, if any."""
    return PRESETS.get(ALIASES.get(name.lower(), name.lower()))


# ---------------------------------------------------------------- the one offline rule


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set, else a quick TCP probe of the hub.

    The hub client otherwise retries for ~25 s before admitting it is offline.
    """
    if any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def hub_error(name: str, hub_id: str, subset: str | None, split: str | None, reason: str) -> RLMathError:
    """The one message for a hub name that cannot be loaded: how to make and pass a local copy."""
    stem = name.rstrip("/").split("/")[-1]
    call = f"datasets.load_dataset({hub_id!r}{', ' + repr(subset) if subset else ''}, split={split or 'test'!r})"
    return RLMathError(
        f"cannot load {name!r} from the Hugging Face Hub ({reason}). Offline, pass a local file instead: on a "
        f"machine with network run `python -c \"import datasets; {call}.to_json('{stem}.jsonl')\"`, copy the file "
        f"here and pass ./{stem}.jsonl (JSONL, JSON, parquet, CSV or a datasets.save_to_disk folder)")


def _hub_rows(name: str, hub_id: str, subset: str | None, split: str | None) -> list[dict]:
    """Rows of a hub dataset (every split when ``split`` is None); offline, only the local HF cache."""
    import datasets

    if not hub_reachable():
        _go_offline()  # a cached copy still loads; anything else fails in a second instead of after retries
    try:
        table = datasets.load_dataset(hub_id, subset, split=split)
    except Exception as exc:  # ConnectionError, OfflineModeIsEnabled, DatasetNotFoundError, ...
        raise hub_error(name, hub_id, subset, split, f"{type(exc).__name__}: {str(exc)[:200]}") from None
    return _table_rows(table)


def _go_offline() -> None:
    """Switch ``datasets``/``huggingface_hub`` to offline mode in this process (as ``HF_HUB_OFFLINE=1`` would)."""
    import datasets.config
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True


# ---------------------------------------------------------------- rows


def read_rows(name: str, split: str | None = None) -> tuple[list[dict], Preset | None]:
    """Rows of a preset, local file or folder, or hub id, and the preset used (if any).

    ``split`` picks one split of a folder or hub dataset (``None``: a preset's own split, else every
    split); a single file is one split.
    """
    local = Path(name).expanduser()
    found = preset(name)
    if found is not None and not local.exists():
        return _hub_rows(name, found.hub_id, found.subset, split or found.split), found
    if local.is_dir():
        return _folder_rows(local, split), None
    if local.is_file():
        return _file_rows(local), None
    if name.startswith((".", "/", "~")) or local.suffix.lower() in LOCAL_SUFFIXES:
        raise RLMathError(f"dataset file not found: {name}")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return _hub_rows(name, name, None, split), None
    raise RLMathError(f"dataset {name!r}: not a local file or folder, a preset ({', '.join(PRESETS)}) or a hub "
                      "id like 'org/name'")


def _file_rows(path: Path) -> list[dict]:
    """Rows of one local file; a malformed line is named by file and line number."""
    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise RLMathError(f"{path}: unsupported file type {path.suffix!r} (use {', '.join(LOCAL_SUFFIXES)})")
    if suffix == ".parquet":
        return _parquet_rows(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RLMathError(f"{path}: cannot read ({exc})") from None
    if suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    if suffix == ".json" and text.lstrip().startswith("["):
        return _json_array_rows(path, text)
    return _jsonl_rows(path, text)


def _jsonl_rows(path: Path, text: str) -> list[dict]:
    """One JSON object per non-blank line."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RLMathError(f"{path}, line {number}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(row, dict):
            raise RLMathError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _json_array_rows(path: Path, text: str) -> list[dict]:
    """A JSON file holding a list of objects."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RLMathError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    bad = next((index for index, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise RLMathError(f"{path}: item {bad} is a {type(rows[bad]).__name__}, expected a JSON object")
    return rows


def _parquet_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...: the user needs the file and reason
        raise RLMathError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None


def _folder_rows(path: Path, split: str | None) -> list[dict]:
    """Rows of a ``save_to_disk`` folder: one split of a DatasetDict, or all of them when ``split`` is None."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # FileNotFoundError for a folder that is not a saved dataset, ...
        raise RLMathError(f"{path}: not a datasets.save_to_disk folder ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, datasets.DatasetDict) and split is not None:
        if split not in loaded:
            raise RLMathError(f"{path}: has no split {split!r}; splits are {sorted(loaded)}")
        loaded = loaded[split]
    return _table_rows(loaded)


def _table_rows(table) -> list[dict]:
    """Rows of a Dataset, or of every split of a DatasetDict."""
    splits = table.values() if isinstance(table, dict) else [table]
    return [row for split in splits for row in split]


# ---------------------------------------------------------------- fields and values


def pick_field(row: dict, given: str | None, choices: tuple[str, ...], role: str, name: str) -> str:
    """The named field, or (when none was named) the first usual name present; errors list the fields."""
    if given is not None:
        if given not in row:
            raise RLMathError(f"{name}: no field {given!r}; fields are {sorted(row)}")
        return given
    for candidate in choices:
        if candidate in row:
            return candidate
    raise RLMathError(f"{name}: no {role} field (tried {list(choices)}); fields are {sorted(row)}; name it with "
                      f"--{role}-field (eval) or data.{role}_field (config)")


def gold_answer(text: str) -> str:
    r"""The gold answer inside a reference solution: after GSM8K's ``####``, else the last ``\boxed{}``.

    >>> gold_answer("She sells 16 - 3 - 4 = 9 eggs.\n#### 1,800")
    '1800'
    >>> gold_answer(r"Thus the answer is $\boxed{\dfrac{3}{4}}$.")
    '\\dfrac{3}{4}'
    >>> gold_answer("42")
    '42'
    """
    if "####" in text:
        return text.rsplit("####", 1)[1].strip().replace(",", "")
    boxed = last_boxed(text)
    return boxed if boxed is not None else text.strip()


def parse_difficulty(value) -> int:
    """An int level from ``3``, ``"3"`` or MATH's ``"Level 3"``; 0 when there is none (``"Level ?"``).

    >>> parse_difficulty("Level 3"), parse_difficulty(2), parse_difficulty(None), parse_difficulty("Level ?")
    (3, 2, 0, 0)
    """
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    digits = re.findall(r"\d+", str(value))
    return int(digits[0]) if digits else 0


def rows_to_problems(rows: list[dict], fields: Fields, name: str, default_family: str = "dataset") -> Loaded:
    """Problems from rows (fields checked on the first row, naming what exists); bad golds skipped."""
    if not rows:
        raise RLMathError(f"{name}: the dataset is empty")
    question = pick_field(rows[0], fields.question, QUESTION_FIELDS, "question", name)
    answer = pick_field(rows[0], fields.answer, ANSWER_FIELDS, "answer", name)
    category = fields.category or next((f for f in CATEGORY_FIELDS if f in rows[0]), None)
    if category is not None and category not in rows[0]:
        raise RLMathError(f"{name}: no category field {category!r}; fields are {sorted(rows[0])}")
    level = next((f for f in DIFFICULTY_FIELDS if f in rows[0]), None)
    problems = [Problem(id=str(row.get("id", row.get("unique_id", index))), question=str(row[question]),
                        answer=gold_answer(str(row[answer])),
                        family=str(row[category]) if category else default_family,
                        difficulty=parse_difficulty(row.get(level)) if level else 0,
                        solution=str(row.get("solution", "") or ""))
                for index, row in enumerate(rows)]
    kept = parseable_golds(problems, name)
    if not kept:
        raise RLMathError(f"{name}: none of the {len(problems)} gold answers parses with the rewards verifier "
                          f"(field {answer!r}); is it the answer field?")
    return Loaded(name, kept, category, len(problems) - len(kept))


def parseable_golds(problems: list[Problem], name: str) -> list[Problem]:
    """The problems whose gold the verifier can read; the rest are counted and logged as a warning.

    The pool's per-item timeout keeps a pathological gold from hanging the load.
    """
    verdicts = rewards.verify_batch([p.answer for p in problems], [p.answer for p in problems])
    bad = [index for index, v in enumerate(verdicts) if v.status in ("gold_unparseable", "timeout")]
    if bad:
        examples = ", ".join(f"row {i} {problems[i].answer[:40]!r}" for i in bad[:3])
        log.warning("%s: skipped %d of %d rows whose gold answer does not parse (%s)", name, len(bad),
                    len(problems), examples)
    drop = set(bad)
    return [p for index, p in enumerate(problems) if index not in drop]


def load(name: str, *, split: str | None = None, fields: Fields = Fields(), limit: int | None = None,
         default_family: str = "dataset") -> Loaded:
    """Problems from a preset, local file/folder or hub id; a preset supplies its own field names."""
    rows, found = read_rows(name, split)
    if found is not None:
        fields = Fields(fields.question or found.question_field, fields.answer or found.answer_field,
                        fields.category or found.category_field)
    if not rows:
        raise RLMathError(f"{name}: the dataset is empty")
    return rows_to_problems(rows[:limit] if limit else rows, fields, name, default_family)


def question_texts(name: str, question_field: str | None = None) -> list[str]:
    """Question texts of every split of a source (a preset: its eval split), for decontamination."""
    rows, found = read_rows(name, None)
    if not rows:
        raise RLMathError(f"{name}: the dataset is empty")
    question = pick_field(rows[0], question_field or (found.question_field if found else None), QUESTION_FIELDS,
                          "question", name)
    return [str(row[question]) for row in rows]
