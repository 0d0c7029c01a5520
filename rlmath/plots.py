"""PNG plots for the run folder and mlflow: the reasoning-gains bar chart and training curves."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402


MODEL_COLORS = {"base": "#9aa5b1", "adapter": "#2b8a3e"}
"""One colour per model in every eval plot (base grey, adapter green, as in the gains plot)."""


def _save(fig, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _bar_positions(count: int, index: int, models: int, width: float) -> list[float]:
    """x of model ``index``'s bars when ``models`` bars of ``width`` share each of ``count`` slots."""
    return [i + (index - (models - 1) / 2) * width for i in range(count)]


def plot_gains(before, after, out: Path) -> Path:
    """Held-out accuracy before vs after, overall and per family, with 95% CI bars on the totals."""
    families = sorted(set(before.by_family) | set(after.by_family))
    labels = ["all", *families]
    b = [before.accuracy, *[before.by_family.get(f, 0.0) for f in families]]
    a = [after.accuracy, *[after.by_family.get(f, 0.0) for f in families]]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels)), 4))
    x = range(len(labels))
    width = 0.38
    ax.bar([i - width / 2 for i in x], b, width, label="before", color="#9aa5b1")
    ax.bar([i + width / 2 for i in x], a, width, label="after", color="#2b8a3e")
    ax.errorbar([-width / 2, width / 2], [before.accuracy, after.accuracy],
                yerr=[[before.accuracy - before.ci_low, after.accuracy - after.ci_low],
                      [before.ci_high - before.accuracy, after.ci_high - after.accuracy]],
                fmt="none", ecolor="black", capsize=4)
    ax.set_xticks(list(x), labels, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("greedy accuracy (held-out)")
    ax.set_title(f"Reasoning gains: {before.accuracy:.1%} → {after.accuracy:.1%} (n={after.total})")
    ax.legend()
    return _save(fig, out)


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
             for r in rows for p in ("eval/before", "eval/after_sft", "eval/during", "eval/after")
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


def plot_eval_comparison(results: dict, out: Path, difference: dict | None = None) -> Path:
    """Accuracy, pass@k and maj@k per model (base / adapter) with 95% bootstrap CI bars."""
    names = list(results)
    first = results[names[0]]
    metrics = ["accuracy", *first.pass_at_k, *first.maj_at_k]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(metrics) + 2), 4))
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        result = results[name]
        values = [result.accuracy if m == "accuracy" else {**result.pass_at_k, **result.maj_at_k}[m] for m in metrics]
        cis = [result.ci.get(m, []) for m in metrics]
        xs = _bar_positions(len(metrics), index, len(names), width)
        ax.bar(xs, values, width, label=name, color=MODEL_COLORS.get(name, f"C{index}"),
               yerr=_ci_error(values, cis), capsize=4, ecolor="black")
    ax.set_xticks(range(len(metrics)), ["greedy" if m == "accuracy" else m for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of problems solved")
    title = f"Eval (n={first.total}, 95% CI)"
    if difference and "accuracy" in difference:
        d = difference["accuracy"]
        title += f": adapter − base {d['mean']:+.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}]"
    ax.set_title(title)
    ax.legend()
    return _save(fig, out)


def plot_categories(results: dict, out: Path, category: str = "family") -> Path:
    """Greedy accuracy per category value (family, subject, level), one bar per model."""
    names = list(results)
    groups = sorted({key for r in results.values() for key in r.by_category.get(category, r.by_family)})
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) * len(names) + 2), 4))
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        values = results[name].by_category.get(category, results[name].by_family)
        xs = _bar_positions(len(groups), index, len(names), width)
        ax.bar(xs, [values.get(g, 0.0) for g in groups], width, label=name, color=MODEL_COLORS.get(name, f"C{index}"))
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("greedy accuracy")
    ax.set_title(f"Accuracy by {category}")
    ax.legend()
    return _save(fig, out)
