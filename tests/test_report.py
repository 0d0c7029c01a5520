"""The end-of-run gains table: trained vs untrained families, paired gain."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rlmath.report import gains, gains_metrics


def result(flags: dict[tuple[str, str], bool]):
    return SimpleNamespace(rows=[{"family": f, "id": i, "correct": c} for (f, i), c in flags.items()])


def test_gains_split_trained_and_untrained_families_and_pair_items() -> None:
    before = result({("add", "1"): False, ("add", "2"): False, ("mul", "1"): True, ("decimals", "1"): False})
    after = result({("add", "1"): True, ("add", "2"): True, ("mul", "1"): True, ("decimals", "1"): True})
    summary = gains(before, after, trained=["add", "mul"])
    assert summary["trained"]["n"] == 3
    assert summary["trained"]["before"] == pytest.approx(1 / 3)
    assert summary["trained"]["after"] == 1.0
    assert summary["trained"]["gain"] == pytest.approx(2 / 3)
    assert summary["untrained"]["gain"] == 1.0
    assert summary["all"]["n"] == 4
    assert gains_metrics(summary)["gains/untrained/after"] == 1.0
