"""Eval sets for ``rlmath eval --dataset``: a preset (GSM8K, MATH, MATH-500), a local file, or a hub id.

Reading, field mapping and gold extraction are :mod:`rlmath.sources`' (the same reader the trainer and
decontamination use); this module only sets the eval defaults: a folder's ``test`` split, a local
file's only split, and ``all`` as the family of rows without a category.
"""

from __future__ import annotations

from pathlib import Path

from rlmath.sources import Fields, Loaded, load


def load_eval_set(dataset: str, *, split: str | None = None, question_field: str | None = None,
                  answer_field: str | None = None, category_field: str | None = None,
                  limit: int | None = None) -> Loaded:
    """Problems from a preset name, a local file/folder, or a hub id; ``None`` options use defaults."""
    if split is None and Path(dataset).expanduser().is_dir():
        split = "test"
    return load(dataset, split=split, fields=Fields(question_field, answer_field, category_field), limit=limit,
                default_family="all")
