"""eval.json schema v1: the one way two evaluations are compared, by ``rlmath train`` and ``rlmath eval``.

A report is a list of evaluated *stages* (train: base, sft, final; eval: base/compare, adapter) over
the same items, and paired *comparisons* between them. Pairing matters: both stages see the same
problems, so item difficulty cancels and the gain's bootstrap CI is much tighter than two independent
CIs. Families the run trained on and families it never saw (``data.eval_families``, the transfer
check) are reported apart: a gain on the second kind is what separates learning to reason from
memorising one template. The README documents the schema; :func:`load_eval_report` is how other
modules read it back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.table import Table

from rlmath.errors import RLMathError
from rlmath.eval_stats import bootstrap_ci, paired_bootstrap
from rlmath.evaluation import EvalResult

SCHEMA_VERSION = 1
GROUPS = ("trained", "untrained", "all")


@dataclass(frozen=True)
class Stage:
    """One evaluated model of a report: its name (base, sft, final, adapter, compare), adapter, result."""

    name: str
    adapter: str | None
    result: EvalResult


def _rlmath_version() -> str:
    try:
        return version("rlmath")
    except PackageNotFoundError:  # a source tree without installed metadata
        return "unknown"


def _interval(values: list[float], resamples: int, seed: int) -> dict[str, float]:
    low, high = bootstrap_ci(values, resamples=resamples, seed=seed)
    return {"accuracy": sum(values) / len(values), "ci_low": low, "ci_high": high, "n": len(values)}


def stage_summary(stage: Stage, resamples: int, seed: int) -> dict:
    """One entry of ``stages``: headline numbers, pass@k / maj@k with CIs, per-category accuracy with CIs."""
    result = stage.result
    correct = result.item_scores["accuracy"]
    by_category = {}
    for category, labels in result.item_categories.items():
        groups: dict[str, list[float]] = {}
        for label, value in zip(labels, correct):
            groups.setdefault(label, []).append(value)
        by_category[category] = {label: _interval(groups[label], resamples, seed) for label in sorted(groups)}
    return {"name": stage.name, "adapter": stage.adapter, "accuracy": result.accuracy, "ci_low": result.ci_low,
            "ci_high": result.ci_high, "total": result.total, "pass@k": result.pass_at_k, "maj@k": result.maj_at_k,
            "ci": result.ci, "by_category": by_category, "status_counts": result.status_counts,
            "mean_completion_tokens": result.mean_completion_tokens, "tokens_per_s": result.tokens_per_s,
            "truncated_fraction": result.truncated_fraction, "sampling": result.sampling}


def _paired_items(start: EvalResult, end: EvalResult, category: str) -> tuple[list[int], list[int]]:
    """Indices of the items both results scored, matched by (category, id) when the orders differ."""
    keys_a = list(zip(start.item_categories[category], start.item_ids))
    keys_b = list(zip(end.item_categories[category], end.item_ids))
    if keys_a == keys_b:
        return list(range(len(keys_a))), list(range(len(keys_b)))
    where = {key: index for index, key in enumerate(keys_b)}
    shared = [(index, where[key]) for index, key in enumerate(keys_a) if key in where]
    return [a for a, _ in shared], [b for _, b in shared]


def _gain(start: list[float], end: list[float], resamples: int, seed: int) -> dict[str, float]:
    diff = paired_bootstrap(start, end, resamples=resamples, seed=seed)
    return {"n": len(start), "from": sum(start) / len(start), "to": sum(end) / len(end), "gain": diff["mean"],
            "gain_ci_low": diff["ci_low"], "gain_ci_high": diff["ci_high"]}


def compare(start: Stage, end: Stage, *, category: str, trained: list[str], resamples: int, seed: int) -> dict:
    """One entry of ``comparisons``: paired gains per metric, per trained/untrained/all, per category."""
    ia, ib = _paired_items(start.result, end.result, category)
    a_scores, b_scores = start.result.item_scores, end.result.item_scores
    metrics = {}
    for metric in a_scores:
        if metric in b_scores and ia:
            diff = paired_bootstrap([a_scores[metric][i] for i in ia], [b_scores[metric][i] for i in ib],
                                    resamples=resamples, seed=seed)
            metrics[metric] = {"mean": diff["mean"], "ci_low": diff["ci_low"], "ci_high": diff["ci_high"], "n": len(ia)}
    labels = [start.result.item_categories[category][i] for i in ia]
    a_correct = [a_scores["accuracy"][i] for i in ia]
    b_correct = [b_scores["accuracy"][i] for i in ib]
    members = {"trained": [label in trained for label in labels],
               "untrained": [label not in trained for label in labels], "all": [True] * len(labels)}
    groups = {}
    for group in GROUPS:
        picked = [j for j, inside in enumerate(members[group]) if inside]
        if picked:
            groups[group] = _gain([a_correct[j] for j in picked], [b_correct[j] for j in picked], resamples, seed)
    by_category = {}
    for label in sorted(set(labels)):
        picked = [j for j, other in enumerate(labels) if other == label]
        by_category[label] = _gain([a_correct[j] for j in picked], [b_correct[j] for j in picked], resamples, seed)
    return {"from": start.name, "to": end.name, "metrics": metrics, "groups": groups, "by_category": by_category}


def build_eval_report(*, kind: str, dataset: str, category: str, trained_categories: list[str], stages: list[Stage],
                      comparisons: list[tuple[str, str]], meta: dict, resamples: int, seed: int) -> dict:
    """The whole eval.json v1 document (see the README's "eval.json" section)."""
    by_name = {stage.name: stage for stage in stages}
    return {
        "schema_version": SCHEMA_VERSION, "kind": kind, "dataset": dataset,
        "items": stages[0].result.total if stages else 0, "category": category,
        "trained_categories": list(trained_categories),
        "stages": [stage_summary(stage, resamples, seed) for stage in stages],
        "comparisons": [compare(by_name[a], by_name[b], category=category, trained=trained_categories,
                                resamples=resamples, seed=seed) for a, b in comparisons],
        "meta": {**meta, "rlmath_version": _rlmath_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }


def write_eval_report(report: dict, path: Path) -> Path:
    """Write the report atomically, so a crash never leaves half an eval.json behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(report, indent=2))
    partial.replace(path)
    return path


def load_eval_report(path: str | Path) -> dict:
    """Read an eval.json (a file, or a folder holding one) and check it is schema v1."""
    file = Path(path)
    if file.is_dir():
        file = file / "eval.json"
    try:
        report = json.loads(file.read_text())
    except FileNotFoundError:
        raise RLMathError(f"{file}: no eval.json there") from None
    except json.JSONDecodeError as exc:
        raise RLMathError(f"{file}: not valid JSON ({exc})") from None
    found = report.get("schema_version") if isinstance(report, dict) else None
    if found != SCHEMA_VERSION:
        raise RLMathError(f"{file}: schema_version {found!r}, expected {SCHEMA_VERSION} (written by an older rlmath? "
                          f"re-run the eval)")
    return report


def _metric_key(name: str) -> str:
    """mlflow metric names cannot hold ``@``: ``pass@4`` -> ``pass_at_4``."""
    return name.replace("@", "_at_")


def comparison_metrics(report: dict) -> dict[str, float]:
    """Flat mlflow metrics: ``compare/base_to_final/trained/gain`` (+ ``_ci_low``/``_ci_high``), per metric too."""
    flat: dict[str, float] = {}
    for comparison in report["comparisons"]:
        prefix = f"compare/{comparison['from']}_to_{comparison['to']}"
        for group, values in comparison["groups"].items():
            for key in ("gain", "gain_ci_low", "gain_ci_high", "from", "to", "n"):
                flat[f"{prefix}/{group}/{key}"] = float(values[key])
        for metric, values in comparison["metrics"].items():
            key = f"{prefix}/metric/{_metric_key(metric)}"
            flat.update({key: values["mean"], f"{key}_ci_low": values["ci_low"], f"{key}_ci_high": values["ci_high"]})
    return flat


def _metric_names(stage: dict) -> list[str]:
    return ["accuracy", *stage["pass@k"], *stage["maj@k"]]


def _stage_cell(stage: dict, metric: str) -> str:
    value = stage["accuracy"] if metric == "accuracy" else {**stage["pass@k"], **stage["maj@k"]}.get(metric)
    if value is None:
        return "-"
    low, high = stage["ci"].get(metric, [float("nan")] * 2)
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _gain_cell(mean: float, low: float, high: float) -> str:
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def print_eval_report(report: dict, console) -> None:
    """Rich tables: each stage's metrics with 95% CIs and each paired gain; then trained/untrained/all."""
    stages, comparisons = report["stages"], report["comparisons"]
    table = Table(title=f"{report['dataset']} (n={report['items']}, greedy accuracy and pass@k/maj@k, "
                        f"95% bootstrap CI; gains are paired)")
    table.add_column("metric")
    for stage in stages:
        table.add_column(stage["name"], justify="right")
    for comparison in comparisons:
        table.add_column(f"{comparison['to']} - {comparison['from']}", justify="right")
    for metric in _metric_names(stages[0]):
        gains = [comparison["metrics"].get(metric) for comparison in comparisons]
        table.add_row(metric, *[_stage_cell(stage, metric) for stage in stages],
                      *[_gain_cell(g["mean"], g["ci_low"], g["ci_high"]) if g else "-" for g in gains])
    console.print(table)
    if comparisons:
        console.print(_groups_table(report))
    for stage in stages:
        counts = ", ".join(f"{k} {v}" for k, v in stage["status_counts"].items() if v)
        console.print(f"{stage['name']}: {stage['mean_completion_tokens']:.1f} tokens/completion, "
                      f"{stage['tokens_per_s']:.0f} tokens/s; verifier: {counts}")
    if report["meta"].get("run_dir"):
        console.print(f"run folder: {report['meta']['run_dir']}")


def _groups_table(report: dict) -> Table:
    """Trained vs untrained categories, per comparison: from → to and the paired gain."""
    table = Table(title=f"Greedy accuracy by {report['category']} group (trained: "
                        f"{', '.join(report['trained_categories']) or 'none'})")
    for column in ("comparison", "group", "n", "from", "to", "gain"):
        table.add_column(column, justify="left" if column in ("comparison", "group") else "right")
    for comparison in report["comparisons"]:
        for group, v in comparison["groups"].items():
            table.add_row(f"{comparison['from']} → {comparison['to']}", group, str(v["n"]), f"{v['from']:.1%}",
                          f"{v['to']:.1%}", f"{v['gain']:+.1%} [{v['gain_ci_low']:+.1%}, {v['gain_ci_high']:+.1%}]")
    return table
