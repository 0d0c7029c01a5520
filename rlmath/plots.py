"""PNG plots for the run folder and mlflow: the reasoning-gains bar chart and training curves."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on training machines
import matplotlib.pyplot as plt  # noqa: E402


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
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_training_curves(metrics_file: Path, out: Path) -> Path:
    """Reward mean and sample accuracy per step from metrics.jsonl."""
    rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    steps = [r for r in rows if "reward/mean" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in steps], [r["reward/mean"] for r in steps], label="reward mean")
    ax.plot([r["step"] for r in steps], [r["accuracy"] for r in steps], label="sample accuracy")
    ax.set_xlabel("step")
    ax.legend()
    ax.set_title("Training curves")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
