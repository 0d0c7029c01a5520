"""``rlmath eval``: one engine, base and/or adapter on the same items, a paired difference, an mlflow run.

Launch: ``rlmath eval -c configs/default.yaml --dataset gsm8k --adapter runs/<run> --compare-base
--k 1,4,8 --limit 200 --out eval.json``. The eval is its own mlflow run, nested under the training
run whose adapter it scores, with completion tables, a comparison plot and per-category bars.
``--out`` holds ``{"base": {...}, "adapter": {...}, "difference": {...}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rlmath.config import Config
from rlmath.errors import RLMathError
from rlmath.evaluation import EvalResult, evaluate
from rlmath.metrics import paired_bootstrap
from rlmath.sampling import AdapterRef


@dataclass(frozen=True)
class EvalOptions:
    """The command line of ``rlmath eval``; ``None`` means "use the config / dataset default"."""

    dataset: str | None = None
    split: str | None = None
    question_field: str | None = None
    answer_field: str | None = None
    category_field: str | None = None
    adapter: str | None = None
    compare_base: bool = False
    ks: tuple[int, ...] | None = None
    limit: int | None = None
    out: Path | None = None


@dataclass(frozen=True)
class AdapterSource:
    """The adapter folder, and the training run folder it came from (for nesting), if any."""

    path: Path
    run_dir: Path | None


def resolve_adapter(spec: str, output_dir: str) -> AdapterSource:
    """An adapter folder, a run folder holding ``adapter/``, a run name under ``output_dir``, or an mlflow run id."""
    candidates = [Path(spec).expanduser(), Path(output_dir) / spec]
    for path in candidates:
        if (path / "adapter_config.json").is_file():
            parent = path.parent if (path.parent / "mlflow_run_id").is_file() else None
            return AdapterSource(path.resolve(), parent)
        if (path / "adapter" / "adapter_config.json").is_file():
            return AdapterSource((path / "adapter").resolve(), path.resolve())
    for id_file in sorted(Path(output_dir).glob("*/mlflow_run_id")):
        if id_file.read_text().strip() == spec and (id_file.parent / "adapter").is_dir():
            return AdapterSource((id_file.parent / "adapter").resolve(), id_file.parent.resolve())
    raise RLMathError(f"--adapter {spec}: not an adapter folder (no adapter_config.json), a run folder with "
                      f"adapter/, a run name under {output_dir}/, or an mlflow run id of one")


def run_eval_command(config: Config, options: EvalOptions, console) -> dict:
    """Evaluate, log the mlflow run, write ``--out``; returns the JSON it wrote."""
    from rlmath.tracking import Tracker, new_run_dir

    source = resolve_adapter(options.adapter, config.output_dir) if options.adapter else None
    name, problems, category = _problems(config, options)
    targets = _targets(source, options.compare_base)
    parent = _parent_run_id(source)
    tracker = Tracker(config, new_run_dir(config, "eval"), kind="eval", parent_run_id=parent)
    tracker.set_tags({"rlmath.dataset": name, "rlmath.adapter": str(source.path) if source else "",
                      "rlmath.k": ",".join(map(str, options.ks or config.eval.k))})
    try:
        results = _evaluate_targets(config, source, problems, targets, options, category)
        report = build_report(results, config)
        report["meta"] = {"dataset": name, "items": len(problems), "adapter": str(source.path) if source else None,
                          "run_dir": str(tracker.run_dir), "mlflow_run_id": tracker.run_id, "parent_run_id": parent}
        log_eval(tracker, results, report, category)
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish()
    print_report(report, console)
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {options.out}")
    return report


def _problems(config: Config, options: EvalOptions):
    """``--dataset`` (preset, file, hub id) or the config's own held-out split."""
    limit = options.limit or config.eval.limit
    if options.dataset:
        from rlmath.eval_data import load_eval_set

        data = load_eval_set(options.dataset, split=options.split, question_field=options.question_field,
                             answer_field=options.answer_field, category_field=options.category_field, limit=limit)
        return data.name, data.problems, data.category_field or "family"
    from rlmath.data import load_problems

    problems = load_problems(config, "eval")
    return f"config:{config.data.source}", problems[:limit] if limit else problems, "family"


def _targets(source: AdapterSource | None, compare_base: bool) -> list[tuple[str, AdapterRef | None]]:
    if source is None:
        if compare_base:
            raise RLMathError("--compare-base needs --adapter (the model to compare the base with)")
        return [("base", None)]
    ref = AdapterRef("eval", 1, str(source.path))
    return [("base", None), ("adapter", ref)] if compare_base else [("adapter", ref)]


def _parent_run_id(source: AdapterSource | None) -> str | None:
    """The training run's mlflow id, so this eval run nests under it in the UI."""
    if source is None or source.run_dir is None or not (source.run_dir / "mlflow_run_id").is_file():
        return None
    return (source.run_dir / "mlflow_run_id").read_text().strip() or None


def _evaluate_targets(config: Config, source: AdapterSource | None, problems, targets, options: EvalOptions,
                      category: str) -> dict[str, EvalResult]:
    """One sampler for every target: vLLM switches LoRARequests, HF disables the adapter for the base."""
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy
    from rlmath.prompts import PromptEncoder
    from rlmath.sampling import build_sampler

    base = resolve_model(config.model.name_or_path)
    adapter = source.path if source else None
    policy = load_policy(config, base, adapter=adapter, trainable=False) if config.sampling.backend == "hf" else None
    sampler = build_sampler(config, base, policy)
    try:
        encoder = PromptEncoder(_tokenizer(base, policy), config)
        ks = list(options.ks or config.eval.k)
        return {name: evaluate(sampler, encoder, problems, config, ref, ks=ks, category=category)
                for name, ref in targets}
    finally:
        sampler.close()


def build_report(results: dict[str, EvalResult], config: Config) -> dict:
    """``{"base": ..., "adapter": ..., "difference": ...}``; the difference is adapter minus base, paired."""
    report: dict = {name: result.summary() for name, result in results.items()}
    if "base" in results and "adapter" in results:
        base, adapter = results["base"].item_scores, results["adapter"].item_scores
        report["difference"] = {metric: paired_bootstrap(base[metric], adapter[metric],
                                                         resamples=config.eval.bootstrap_resamples, seed=config.seed)
                                for metric in base if metric in adapter}
    return report


def log_eval(tracker, results: dict[str, EvalResult], report: dict, category: str) -> None:
    """Metrics, completion tables, plots and eval.json into the run folder and mlflow."""
    from rlmath.plots import plot_categories, plot_eval_comparison

    for name, result in results.items():
        tracker.log_metrics(result.metrics(name), 0)
        tracker.log_table(result.rows, f"{name}_completions.json")
        if result.sample_rows:
            tracker.log_table(result.sample_rows, f"{name}_samples.json")
    for metric, diff in report.get("difference", {}).items():
        key = f"difference/{metric.replace('@', '_at_')}"
        tracker.log_metrics({key: diff["mean"], f"{key}_ci_low": diff["ci_low"], f"{key}_ci_high": diff["ci_high"]}, 0)
    run_dir = tracker.run_dir
    (run_dir / "eval.json").write_text(json.dumps(report, indent=2))
    plots = [plot_eval_comparison(results, run_dir / "eval_comparison.png", report.get("difference")),
             plot_categories(results, run_dir / f"eval_by_{category}.png", category)]
    for path in [run_dir / "eval.json", *plots]:
        tracker.log_artifact(path)


def print_report(report: dict, console) -> None:
    """A small table: one row per metric, a column per model, and the paired difference with its CI."""
    from rich.table import Table

    models = [name for name in ("base", "adapter") if name in report]
    table = Table(title=f"{report['meta']['dataset']} (n={report['meta']['items']}, 95% bootstrap CI)")
    table.add_column("metric")
    for name in models:
        table.add_column(name)
    if "difference" in report:
        table.add_column("adapter - base")
    first = report[models[0]]
    for metric in ["accuracy", *first["pass@k"], *first["maj@k"]]:
        cells = []
        for name in models:
            value = report[name]["accuracy"] if metric == "accuracy" else {**report[name]["pass@k"],
                                                                           **report[name]["maj@k"]}[metric]
            low, high = report[name]["ci"].get(metric, [float("nan")] * 2)
            cells.append(f"{value:.3f} [{low:.3f}, {high:.3f}]")
        if "difference" in report and metric in report["difference"]:
            diff = report["difference"][metric]
            cells.append(f"{diff['mean']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]")
        table.add_row(metric, *cells)
    console.print(table)
    for name in models:
        counts = ", ".join(f"{k} {v}" for k, v in report[name]["status_counts"].items() if v)
        console.print(f"{name}: {report[name]['mean_completion_tokens']:.1f} tokens/completion, "
                      f"{report[name]['tokens_per_s']:.0f} tokens/s; verifier: {counts}")
    console.print(f"run folder: {report['meta']['run_dir']}")


def _tokenizer(base: str, policy):
    if policy is not None:
        return policy.tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base)
