"""``rlmath eval``: one engine, base and/or adapters on the same items, a paired comparison, an mlflow run.

Launch: ``rlmath eval -c configs/default.yaml --dataset gsm8k --adapter runs/<run> --compare base
--k 1,4,8 --limit 200 --out eval.json``. ``--compare`` takes ``base`` or a second adapter/run folder.
The eval is its own mlflow run, nested under the training run whose adapter it scores. It writes
eval.json schema v1 (:mod:`rlmath.eval_report`, the same file ``rlmath train`` writes) to its run
folder and to ``--out``, with stages ``base``/``compare`` and ``adapter``.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from rlmath.config import Config
from rlmath.data import load_problems
from rlmath.errors import RLMathError
from rlmath.eval_data import load_eval_set
from rlmath.eval_report import Stage, build_eval_report, comparison_metrics, print_eval_report, write_eval_report
from rlmath.evaluation import EvalResult, evaluate
from rlmath.models import resolve_model
from rlmath.plots import plot_eval_report
from rlmath.policy import load_policy, require_fitting_adapter
from rlmath.prompts import PromptEncoder
from rlmath.run import EVAL_PLOT, tracked_run
from rlmath.sampling import AdapterRef, build_sampler
from rlmath.tracking import Tracker, new_run_dir


@dataclass(frozen=True)
class EvalOptions:
    """The command line of ``rlmath eval``; ``None`` means "use the config / dataset default"."""

    dataset: str | None = None
    split: str | None = None
    question_field: str | None = None
    answer_field: str | None = None
    category_field: str | None = None
    adapter: str | None = None
    compare: str | None = None
    """``base``, or a second adapter / run folder / run name / mlflow run id to compare the adapter with."""
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
    """Evaluate, log the mlflow run, write eval.json (and ``--out``); returns the report."""
    source = resolve_adapter(options.adapter, config.output_dir) if options.adapter else None
    targets = _targets(source, options.compare, config.output_dir)
    base = resolve_model(config.model.name_or_path)
    for _, ref in targets:
        if ref is not None:  # before the run folder and mlflow run exist: nothing half-written
            require_fitting_adapter(Path(ref.path), base)
    name, problems, category, trained = _problems(config, options)
    parent = _parent_run_id(source)
    tracker = Tracker(config, new_run_dir(config, "eval"), kind="eval", parent_run_id=parent)
    tracker.set_tags({"rlmath.dataset": name, "rlmath.adapter": str(source.path) if source else "",
                      "rlmath.k": ",".join(map(str, options.ks or config.eval.k))})
    with tracked_run(tracker):
        results = _evaluate_targets(config, problems, targets, options, category)
        stages = [Stage(stage, ref.path if ref else None, results[stage]) for stage, ref in targets]
        pairs = [(stages[0].name, "adapter")] if len(stages) == 2 else []
        meta = {"run_dir": str(tracker.run_dir), "mlflow_run_id": tracker.run_id, "seed": config.seed,
                "adapter": str(source.path) if source else None, "parent_run_id": parent}
        report = build_eval_report(kind="eval", dataset=name, category=category, trained_categories=trained,
                                   stages=stages, comparisons=pairs, meta=meta,
                                   resamples=config.eval.bootstrap_resamples, seed=config.seed)
        log_eval(tracker, results, report)
        tracker.finish()
    print_eval_report(report, console)
    if options.out is not None:
        write_eval_report(report, options.out)
        console.print(f"wrote {options.out}")
    return report


def _problems(config: Config, options: EvalOptions):
    """``--dataset`` (preset, file, hub id) or the config's own held-out split.

    Returns (dataset name, problems, category field, trained categories): the config's split was
    drawn from the families the config trains, a foreign set has none of them.
    """
    limit = options.limit or config.eval.limit
    if options.dataset:
        data = load_eval_set(options.dataset, split=options.split, question_field=options.question_field,
                             answer_field=options.answer_field, category_field=options.category_field, limit=limit)
        return data.name, data.problems, data.category_field or "family", []
    problems = load_problems(config, "eval")
    return (f"config:{config.data.source}", problems[:limit] if limit else problems, "family",
            list(config.data.families))


def _targets(source: AdapterSource | None, compare: str | None,
             output_dir: str) -> list[tuple[str, AdapterRef | None]]:
    """Stages in report order: what the adapter is compared with first, then the adapter."""
    if source is None:
        if compare:
            raise RLMathError(f"--compare {compare}: needs --adapter (the model to compare it with)")
        return [("base", None)]
    ref = AdapterRef("eval", 1, str(source.path))
    if not compare:
        return [("adapter", ref)]
    if compare == "base":
        return [("base", None), ("adapter", ref)]
    other = resolve_adapter(compare, output_dir)
    return [("compare", AdapterRef("compare", 2, str(other.path))), ("adapter", ref)]


def _parent_run_id(source: AdapterSource | None) -> str | None:
    """The training run's mlflow id, so this eval run nests under it in the UI."""
    if source is None or source.run_dir is None or not (source.run_dir / "mlflow_run_id").is_file():
        return None
    return (source.run_dir / "mlflow_run_id").read_text().strip() or None


def _engine_groups(targets, backend: str) -> list[tuple[str | None, list]]:
    """Which targets share one sampler: vLLM serves every adapter from one engine; an HF policy holds one
    adapter (and serves the base by disabling it), so a second adapter gets a policy of its own."""
    if backend == "vllm":
        return [(None, list(targets))]
    groups: dict[str | None, list] = {}
    for name, ref in targets:
        groups.setdefault(ref.path if ref else None, []).append((name, ref))
    if None in groups and len(groups) > 1:  # the base rides along with the first adapter's policy
        base = groups.pop(None)
        first = next(iter(groups))
        groups[first] = base + groups[first]
    return list(groups.items())


def _evaluate_targets(config: Config, problems, targets, options: EvalOptions,
                      category: str) -> dict[str, EvalResult]:
    """Evaluate every target on the same items, as few samplers as the backend allows, each closed after."""
    base = resolve_model(config.model.name_or_path)
    ks = list(options.ks or config.eval.k)
    results: dict[str, EvalResult] = {}
    if config.sampling.backend == "vllm" and config.engine_sync == "merged":
        return _evaluate_merged(config, base, problems, targets, ks, category)
    for adapter_path, group in _engine_groups(targets, config.sampling.backend):
        policy = None
        if config.sampling.backend == "hf":
            policy = load_policy(config, base, adapter=Path(adapter_path) if adapter_path else None, trainable=False)
        with closing(build_sampler(config, base, policy)) as sampler:
            encoder = PromptEncoder(_tokenizer(base, policy), config)
            for name, ref in group:
                results[name] = evaluate(sampler, encoder, problems, config, ref, ks=ks, category=category)
    return results


def _evaluate_merged(config: Config, base: str, problems, targets, ks: list[int], category: str) -> dict[str, EvalResult]:
    """One engine for every target: each adapter's weights go into one policy, which the engine reloads merged.

    A second engine in the same process would not start: on CPU vLLM's RAM share is counted after what the
    process already holds, and the first engine's memory is not handed back when it closes.
    """
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    first = next((ref.path for _, ref in targets if ref is not None), None)
    policy = load_policy(config, base, adapter=Path(first) if first else None, trainable=False)
    results: dict[str, EvalResult] = {}
    with closing(build_sampler(config, base, policy)) as sampler:
        encoder = PromptEncoder(policy.tokenizer, config)
        for version, (name, ref) in enumerate(targets, start=1):
            if ref is not None:
                try:
                    set_peft_model_state_dict(policy.model, load_peft_weights(ref.path))
                except RuntimeError as exc:
                    raise RLMathError(f"adapter {ref.path} does not fit the first adapter's shape: "
                                      f"{str(exc).splitlines()[0]}") from None
                ref = AdapterRef(ref.name, version, ref.path)  # a new version: the engine reloads
            results[name] = evaluate(sampler, encoder, problems, config, ref, ks=ks, category=category)
    return results


def log_eval(tracker: Tracker, results: dict[str, EvalResult], report: dict) -> None:
    """Metrics (``eval/<stage>/...``, ``compare/...``), completion tables, the plot and eval.json."""
    for name, result in results.items():
        tracker.log_metrics(result.metrics(f"eval/{name}"), 0)
        tracker.log_table(result.rows, f"{name}_completions.json")
        if result.sample_rows:
            tracker.log_table(result.sample_rows, f"{name}_samples.json")
    tracker.log_metrics(comparison_metrics(report), 0)
    run_dir = tracker.run_dir
    write_eval_report(report, run_dir / "eval.json")
    for path in [run_dir / "eval.json", plot_eval_report(report, run_dir / EVAL_PLOT)]:
        tracker.log_artifact(path)


def _tokenizer(base: str, policy):
    if policy is not None:
        return policy.tokenizer
    from transformers import AutoTokenizer  # heavy: only for a vLLM eval, which has no policy

    return AutoTokenizer.from_pretrained(base)
