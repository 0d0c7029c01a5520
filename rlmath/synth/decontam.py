"""Decontamination: drop synthetic items whose question shares many word n-grams with an eval set.

Following Phi-4 and GPT-3, overlap is measured on normalised word n-grams: an item is dropped
when at least `threshold` of its n-grams (or its whole text, if shorter than n words) occur in
the eval set. The eval set is a local JSONL/JSON/parquet file, a `datasets.save_to_disk`
folder, or a hub id (which needs network access; offline it fails with a clear message).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, List, Sequence, Set, Tuple

from rlmath.errors import RLMathError

TEXT_FIELDS = ("question", "problem", "prompt", "query", "input", "text")
_TOKEN = re.compile(r"[a-z]+|\d+")
N = 8
THRESHOLD = 0.5


def tokens(text: str) -> List[str]:
    """Lower-cased words and numbers; LaTeX commands and punctuation are ignored.

    >>> tokens(r"Solve $3x + 5 = 20$.")
    ['solve', '3', 'x', '5', '20']
    """
    return _TOKEN.findall(re.sub(r"\\[a-zA-Z]+", " ", text.lower()))


def windows(toks: Sequence[str], n: int) -> Set[Tuple[str, ...]]:
    """All contiguous n-token windows of a token list."""
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def _text_of(row: dict) -> str:
    """The question-like field of an eval row."""
    for key in TEXT_FIELDS:
        if isinstance(row.get(key), str):
            return row[key]
    raise RLMathError(f"decontaminate_against: rows need one of the fields {', '.join(TEXT_FIELDS)}; got {sorted(row)}")


def _rows_from_file(path: Path) -> Iterable[dict]:
    """Rows of a JSONL, JSON (list of objects) or parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _rows_from_datasets(obj) -> List[dict]:
    """Rows of a Dataset or of every split of a DatasetDict."""
    import datasets

    splits = obj.values() if isinstance(obj, (datasets.DatasetDict, dict)) else [obj]
    return [row for split in splits for row in split]


def load_eval_texts(source: str) -> List[str]:
    """Question texts of the eval set named by `source` (path or hub id); errors name the field."""
    path = Path(source).expanduser()
    try:
        if path.is_file():
            rows = _rows_from_file(path)
        elif path.is_dir():
            import datasets

            rows = _rows_from_datasets(datasets.load_from_disk(str(path)))
        elif re.fullmatch(r"[\w.-]+/[\w.-]+", source) and not source.startswith("."):
            rows = _rows_from_hub(source)
        else:
            raise RLMathError(
                f"decontaminate_against: {source!r} is not an existing file or folder (nor a hub id like 'org/name')"
            )
    except RLMathError:
        raise
    except Exception as exc:  # malformed file: say which and why
        raise RLMathError(f"decontaminate_against: could not read {source!r}: {exc}") from exc
    return [_text_of(r) for r in rows]


def _rows_from_hub(hub_id: str) -> List[dict]:
    """Rows of a hub dataset; offline or unknown ids become a clear RLMathError."""
    import datasets

    if not _hub_reachable():
        raise RLMathError(
            f"decontaminate_against: {hub_id!r} is not a local path and the Hugging Face Hub is unreachable "
            "(offline). Pass a local JSONL/parquet file or a save_to_disk folder instead."
        )
    try:
        return _rows_from_datasets(datasets.load_dataset(hub_id))
    except Exception as exc:
        raise RLMathError(
            f"decontaminate_against: could not load hub dataset {hub_id!r} ({type(exc).__name__}: {str(exc)[:200]}). "
            "Offline? Pass a local JSONL/parquet file or a save_to_disk folder instead."
        ) from exc


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Quick probe so an offline machine fails in seconds, not after `datasets`' minute of retries."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or os.environ.get(
        "HF_DATASETS_OFFLINE", "0"
    ) in ("1", "true"):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def contaminated(
    questions: Sequence[str], eval_texts: Sequence[str], n: int = N, threshold: float = THRESHOLD
) -> List[int]:
    """Indices of questions whose n-gram overlap with the eval texts is at least `threshold`.

    A question shorter than n words is compared as one window of its own length, so a short
    synthetic question found verbatim inside a longer eval problem is still caught.

    >>> contaminated(["What is 2 + 2?", "Solve 3x = 9."], ["Quick: what is 2 + 2? Explain."])
    [0]
    """
    q_tokens = [tokens(q) for q in questions]
    e_tokens = [tokens(t) for t in eval_texts]
    index = {}
    for size in {min(len(t), n) for t in q_tokens if t}:
        index[size] = set().union(*(windows(t, size) for t in e_tokens)) if e_tokens else set()
    out = []
    for i, toks in enumerate(q_tokens):
        if not toks:
            continue
        size = min(len(toks), n)
        grams = windows(toks, size)
        hits = sum(1 for g in grams if g in index[size])
        if hits / len(grams) >= threshold:
            out.append(i)
    return out
