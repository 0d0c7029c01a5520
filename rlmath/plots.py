"""PNG plots for the run folder and mlflow: the one eval plot (every stage per category) and training curves."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402

STAGE_COLORS = {"base": "#9aa5b1", "compare": "#1864ab", "sft": "#e8a33d", "final": "#2b8a3e", "adapter": "#2b8a3e"}
"""One colour per eval stage in every plot (base grey, trained green)."""


def _save(fig, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _bar_positions(count: int, index: int, models: int, width: float) -> list[float]:
    """x of model ``index``'s bars when ``models`` bars of ``width`` share each of ``count`` slots."""
    return [i + (index - (models - 1) / 2) * width for i in range(count)]


def plot_training_curves(metrics_file: Path, out: Path) -> Path:
    """Reward (mean ± std) and sample accuracy per step, beside held-out accuracy with CI bars over training."""
    rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    steps = [r for r in rows if r.get("reward/mean") is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [r["step"] for r in steps]
    mean = [r["reward/mean"] for r in steps]
    std = [r.get("reward/std") or 0.0 for r in steps]
    left.plot(xs, mean, label="reward mean", color="#1864ab")
    left.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color="#1864ab",
                      alpha=0.15, label="± std")
    left.plot(xs, [r.get("accuracy") for r in steps], label="sample accuracy", color="#2b8a3e")
    left.set_xlabel("step")
    left.set_title("Training rewards")
    left.legend()
    evals = [(r["step"], r[f"{p}/accuracy"], r.get(f"{p}/ci_low"), r.get(f"{p}/ci_high"))
             for r in rows for p in ("eval/base", "eval/sft", "eval/during", "eval/final")
             if r.get(f"{p}/accuracy") is not None]
    if evals:
        acc = [e[1] for e in evals]
        cis = [[e[2], e[3]] if e[2] is not None and e[3] is not None else [] for e in evals]
        right.errorbar([e[0] for e in evals], acc, yerr=_ci_error(acc, cis), fmt="o-", capsize=4, color="#2b8a3e")
    right.set_ylim(0, 1)
    right.set_xlabel("step")
    right.set_ylabel("greedy accuracy (held-out)")
    right.set_title("Held-out accuracy, 95% CI")
    return _save(fig, out)


def _ci_error(values: list[float], cis: list[list[float]]) -> list[list[float]]:
    """matplotlib's yerr rows (below, above) from [low, high] intervals; NaN intervals draw no bar."""
    below = [max(v - c[0], 0.0) if c and c[0] == c[0] else 0.0 for v, c in zip(values, cis)]
    above = [max(c[1] - v, 0.0) if c and c[1] == c[1] else 0.0 for v, c in zip(values, cis)]
    return [below, above]


def plot_eval_report(report: dict, out: Path) -> Path:
    """Greedy accuracy of every stage of an eval.json report, overall and per category, with 95% CI bars."""
    stages, category = report["stages"], report["category"]
    labels = sorted({label for stage in stages for label in stage["by_category"].get(category, {})})
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * (len(labels) + 1) * len(stages) + 2), 4))
    width = 0.8 / len(stages)
    for index, stage in enumerate(stages):
        cells = [{"accuracy": stage["accuracy"], "ci_low": stage["ci_low"], "ci_high": stage["ci_high"]},
                 *[stage["by_category"].get(category, {}).get(label) for label in labels]]
        values = [cell["accuracy"] if cell else 0.0 for cell in cells]
        cis = [[cell["ci_low"], cell["ci_high"]] if cell else [] for cell in cells]
        xs = _bar_positions(len(cells), index, len(stages), width)
        ax.bar(xs, values, width, label=stage["name"], color=STAGE_COLORS.get(stage["name"], f"C{index}"),
               yerr=_ci_error(values, cis), capsize=3, ecolor="black")
    ax.set_xticks(range(len(labels) + 1), ["all", *labels], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("greedy accuracy")
    title = f"{report['dataset']}: accuracy by {category} (n={report['items']}, 95% CI)"
    if report["comparisons"]:
        last = report["comparisons"][-1]
        gain = last["metrics"].get("accuracy")
        if gain:
            title += (f"\n{last['to']} − {last['from']}: {gain['mean']:+.1%} "
                      f"[{gain['ci_low']:+.1%}, {gain['ci_high']:+.1%}]")
    ax.set_title(title)
    ax.legend()
    return _save(fig, out)
