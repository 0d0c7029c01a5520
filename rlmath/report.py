"""The end-of-run answer to "did it get better at math?": trained vs never-trained families.

Before and after are greedy runs over the same held-out items, so the gain gets a paired bootstrap
CI (item difficulty cancels). Families the run trained on and families it never saw (the transfer
check, ``data.eval_families``) are reported apart: a gain on the second kind is what separates
learning to reason from memorising one template.
"""

from __future__ import annotations

from rlmath.metrics import bootstrap_ci, paired_bootstrap


def _by_item(result) -> dict[tuple[str, str], float]:
    """(family, item id) -> correct (0 or 1) from the greedy completion table."""
    return {(row["family"], row["id"]): float(row["correct"]) for row in result.rows}


def gains(before, after, trained: list[str], seed: int = 0) -> dict[str, dict[str, float]]:
    """``{"trained": {...}, "untrained": {...}, "all": {...}}`` with accuracies, CIs and the paired gain."""
    start, end = _by_item(before), _by_item(after)
    shared = [item for item in start if item in end]
    groups = {"trained": [i for i in shared if i[0] in trained],
              "untrained": [i for i in shared if i[0] not in trained], "all": shared}
    summary: dict[str, dict[str, float]] = {}
    for name, items in groups.items():
        if not items:
            continue
        b, a = [start[i] for i in items], [end[i] for i in items]
        b_low, b_high = bootstrap_ci(b, seed=seed)
        a_low, a_high = bootstrap_ci(a, seed=seed)
        diff = paired_bootstrap(b, a, seed=seed)
        summary[name] = {"n": float(len(items)), "before": sum(b) / len(b), "before_ci_low": b_low,
                         "before_ci_high": b_high, "after": sum(a) / len(a), "after_ci_low": a_low,
                         "after_ci_high": a_high, "gain": diff["mean"], "gain_ci_low": diff["ci_low"],
                         "gain_ci_high": diff["ci_high"]}
    return summary


def gains_metrics(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flat mlflow metrics: ``gains/trained/after``, ``gains/untrained/gain_ci_low``, ..."""
    return {f"gains/{group}/{key}": value for group, values in summary.items() for key, value in values.items()}


def print_gains(summary: dict[str, dict[str, float]], console) -> None:
    """A rich table: before → after with 95% CIs, and the paired gain."""
    from rich.table import Table

    table = Table(title="Held-out greedy accuracy (95% bootstrap CIs; gain is paired)")
    for column in ("families", "n", "before", "after", "gain"):
        table.add_column(column, justify="left" if column == "families" else "right")
    for group, v in summary.items():
        table.add_row(group, f"{int(v['n'])}", f"{v['before']:.1%} [{v['before_ci_low']:.1%}, {v['before_ci_high']:.1%}]",
                      f"{v['after']:.1%} [{v['after_ci_low']:.1%}, {v['after_ci_high']:.1%}]",
                      f"{v['gain']:+.1%} [{v['gain_ci_low']:+.1%}, {v['gain_ci_high']:+.1%}]")
    console.print(table)
